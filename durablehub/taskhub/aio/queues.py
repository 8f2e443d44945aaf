"""AsyncTaskHubQueue: a control queue, the work-item queue or the poison queue.

Sends ``MessageData`` envelopes as raw UTF-8 JSON with an infinite TTL, offloading bodies
over 45 KiB to the large-message container. Receives in one request per batch; a message
that cannot be read is returned with its ``error`` set instead of raising, so one bad
message never blocks the queue and the caller can quarantine it.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)

from durablehub.errors import MalformedMessageError
from durablehub.taskhub import envelope, on_demand
from durablehub.taskhub.aio.connections import AsyncStorageClients
from durablehub.taskhub.aio.large_messages import AsyncLargeMessageStore
from durablehub.taskhub.offload import async_offload
from durablehub.taskhub.on_demand import async_made_on_demand

_LOG = logging.getLogger("durablehub.taskhub")
# Azure rejects a visibility delay of 7 days or more; longer timers are chained by the engine.
MAX_VISIBILITY_DELAY = timedelta(days=6)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivedMessage:
    """A dequeued message: the envelope (or why it could not be read) and its receipt."""

    message_id: str
    pop_receipt: str
    dequeue_count: int
    inserted_on: datetime | None
    next_visible_on: datetime | None
    body: str
    message: envelope.MessageData | None = None
    error: MalformedMessageError | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedMessage:
    """A message ready to go (``encode``): its body, and the blob the body goes to when it is
    too large for a queue message (known before sending, so a row can point at it)."""

    message: envelope.MessageData
    body: str
    blob_name: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SentMessage:
    """What ``send`` enqueued: enough to withdraw it again (``delete_sent``)."""

    message_id: str
    pop_receipt: str
    blob_name: str | None = None  # set when the body went to the large-message container


def _seconds(delay: timedelta | None) -> int | None:
    if delay is None:
        return None
    if delay > MAX_VISIBILITY_DELAY:
        raise ValueError(
            f"queue visibility delay {delay} exceeds {MAX_VISIBILITY_DELAY}; chain shorter timers"
        )
    # Rounded up: a timer must never fire early (the queue counts whole seconds).
    return max(0, math.ceil(delay.total_seconds()))


class AsyncTaskHubQueue:
    def __init__(
        self, clients: AsyncStorageClients, name: str, large_messages: AsyncLargeMessageStore
    ) -> None:
        self.name = name
        self._queue = clients.queue.get_queue_client(name)
        self._blobs = large_messages
        self._resource = on_demand.queue(name)

    async def create(self) -> None:
        try:
            await self._queue.create_queue()
        except ResourceExistsError:
            pass

    async def delete(self) -> None:
        try:
            await self._queue.delete_queue()
        except ResourceNotFoundError:
            pass

    async def exists(self) -> bool:
        try:
            await self._queue.get_queue_properties()
        except ResourceNotFoundError:
            return False
        return True

    async def approximate_count(self) -> int:
        props = await self._queue.get_queue_properties()
        return int(props.approximate_message_count or 0)

    async def oldest_visible(self) -> datetime | None:
        """When the first visible message was enqueued, or None when none is visible. A peek:
        nothing is hidden and no dequeue is counted. Timers and held messages are invisible,
        so this tells how long ready work has been waiting (the dashboard's queue age)."""
        peeked = await self._queue.peek_messages(max_messages=1)
        return peeked[0].inserted_on if peeked else None

    async def encode(self, message: envelope.MessageData) -> EncodedMessage:
        """``message`` as it will be sent, without sending it."""
        body = await async_offload(envelope.encode, envelope.approximate_size(message), message)
        blob_name = envelope.large_message_blob_name(message) if envelope.needs_offload(body) else None
        return EncodedMessage(message=message, body=body, blob_name=blob_name)

    async def send(
        self, message: envelope.MessageData | EncodedMessage, *, visible_after: timedelta | None = None
    ) -> SentMessage:
        """Enqueue ``message`` (or what ``encode`` made of it), invisible for ``visible_after``
        (a timer), never expiring."""
        encoded = message if isinstance(message, EncodedMessage) else await self.encode(message)
        sent, _body, blob_name = await self._put(encoded, visible_after)
        return SentMessage(message_id=sent.id, pop_receipt=sent.pop_receipt, blob_name=blob_name)

    async def send_held(self, message: envelope.MessageData, *, hold: timedelta) -> ReceivedMessage:
        """Enqueue ``message`` invisible for ``hold`` and return it as if this process had
        received it, so a local consumer skips the receive. Renew or delete it with the
        returned receipt; if this process dies, every reader sees it once ``hold`` ends."""
        sent, body, blob_name = await self._put(await self.encode(message), hold)
        return ReceivedMessage(
            message_id=sent.id,
            pop_receipt=sent.pop_receipt,
            dequeue_count=0,
            inserted_on=sent.inserted_on,
            next_visible_on=sent.next_visible_on,
            body=body,
            message=replace(message, compressed_blob_name=blob_name) if blob_name else message,
        )

    async def _put(
        self, encoded: EncodedMessage, visible_after: timedelta | None
    ) -> tuple[Any, str, str | None]:
        body, blob_name = encoded.body, encoded.blob_name
        if blob_name is not None:
            await self._blobs.upload(blob_name, body)
            body = envelope.encode(envelope.wrapper_for(blob_name))
        sent = await self._send(body, visible_after)
        return sent, body, blob_name

    async def _send(self, body: str, visible_after: timedelta | None) -> Any:
        """Send a body; a missing queue (a hub not yet whole, or deleted) is made first."""
        send = functools.partial(
            self._queue.send_message, body, visibility_timeout=_seconds(visible_after), time_to_live=-1
        )
        return await async_made_on_demand(self._resource, send, self.create)

    async def delete_sent(self, sent: SentMessage) -> bool:
        """Withdraw a message this process sent (and its blob); False if a reader holds it now."""
        try:
            await self._queue.delete_message(sent.message_id, sent.pop_receipt)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):  # dequeued meanwhile: the pop receipt changed
                return False
            raise
        if sent.blob_name is not None:
            await self._blobs.delete(sent.blob_name)
        return True

    async def send_raw(self, body: str, *, visible_after: timedelta | None = None) -> None:
        """Enqueue a body as is (to requeue a quarantined message, or in tests)."""
        await self._send(body, visible_after)

    async def receive(
        self, *, max_messages: int = 32, visibility_timeout: timedelta, max_dequeue_count: int | None = None
    ) -> list[ReceivedMessage]:
        """Dequeue up to ``max_messages`` (at most 32) in a single request.

        A message that cannot be read comes back with its ``error`` set, whatever went wrong;
        so does one dequeued more than ``max_dequeue_count`` times whose body is in a large-message
        blob, without downloading it (a blob that crashed workers must not crash another). One
        whose blob could not be fetched for a storage fault (not its own) is left out, to come
        back when ``visibility_timeout`` ends."""
        pager = self._queue.receive_messages(
            messages_per_page=min(max_messages, 32), visibility_timeout=_seconds(visibility_timeout)
        )
        received: list[ReceivedMessage] = []
        async for page in pager.by_page():
            async for item in page:
                message = await self._read(item, max_dequeue_count)
                if message is not None:
                    received.append(message)
            break  # one request per batch: the pager would otherwise poll again
        return received

    async def _read(self, item: object, max_dequeue_count: int | None) -> ReceivedMessage | None:
        body = item.content if isinstance(item.content, str) else str(item.content)  # type: ignore[attr-defined]
        base = ReceivedMessage(
            message_id=item.id,  # type: ignore[attr-defined]
            pop_receipt=item.pop_receipt,  # type: ignore[attr-defined]
            dequeue_count=int(item.dequeue_count or 0),  # type: ignore[attr-defined]
            inserted_on=item.inserted_on,  # type: ignore[attr-defined]
            next_visible_on=item.next_visible_on,  # type: ignore[attr-defined]
            body=body,
        )
        try:
            message = envelope.decode(body)
            blob_name = message.compressed_blob_name
            if blob_name:
                if max_dequeue_count is not None and base.dequeue_count > max_dequeue_count:
                    raise MalformedMessageError(
                        f"dequeued {base.dequeue_count} times, more than the limit of {max_dequeue_count}: "
                        f"its large message blob {blob_name!r} was not downloaded"
                    )
                try:
                    full = await self._blobs.download(blob_name)
                except ResourceNotFoundError as exc:
                    raise MalformedMessageError(f"large message blob {blob_name!r} does not exist") from exc
                # Keep the blob's name on the real message, so purge and poison tools can find it.
                decoded = await async_offload(envelope.decode, len(full), full)
                message = replace(decoded, compressed_blob_name=blob_name)
        except AzureError as exc:  # storage failed us, not the message: it comes back
            _LOG.warning(
                "could not read message %s of %s (%s: %s); it comes back when its hold ends",
                base.message_id,
                self.name,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )
            return None
        except Exception as exc:  # anything else is this message's fault: never its batch's
            return replace(base, error=envelope.as_malformed(exc))
        return replace(base, message=message)

    async def update_visibility(
        self, received: ReceivedMessage, visibility_timeout: timedelta
    ) -> ReceivedMessage:
        """Extend (renew) or shorten (abandon) the message's invisibility; returns the new receipt."""
        result = await self._queue.update_message(
            received.message_id, received.pop_receipt, visibility_timeout=_seconds(visibility_timeout)
        )
        receipt = result.pop_receipt
        assert receipt is not None  # an update always answers with the message's new receipt
        return replace(received, pop_receipt=receipt, next_visible_on=result.next_visible_on)

    async def delete_message(self, received: ReceivedMessage) -> bool:
        """Delete a consumed message; False if it was already gone or its receipt is stale."""
        try:
            await self._queue.delete_message(received.message_id, received.pop_receipt)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            if exc.status_code in (400, 404):  # pop receipt mismatch: someone else holds it now
                return False
            raise
        return True

    async def clear(self) -> None:
        await self._queue.clear_messages()
