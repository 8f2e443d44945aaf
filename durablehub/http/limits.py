"""A limit on request body sizes, enforced before a route reads the body into memory.

A pure ASGI middleware: a declared ``Content-Length`` over the limit is answered at once, and a
body without one (chunked) is counted as it arrives, so that a caller cannot make the server
buffer an unbounded body by leaving the length out (or understating it).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from durablehub.http.errors import error_response

MAX_BODY_SETTING = "DURABLEHUB_HTTP_MAX_BODY_BYTES"


class BodyTooLargeError(Exception):
    """Raised from ``receive`` once a streamed body passes the limit; caught by the middleware."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _refusal(self) -> str:
        return f"the request body is larger than the limit of {self.max_bytes} bytes ({MAX_BODY_SETTING})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await error_response(400, "the Content-Length header is not a number")(scope, receive, send)
                return
            if length > self.max_bytes:
                await error_response(413, self._refusal())(scope, receive, send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            if started:  # a route that streams its answer while reading: nothing left to say
                raise
            await error_response(413, self._refusal())(scope, receive, send)
