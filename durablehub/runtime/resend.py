"""Handing back a message many times without it being taken for a poison message.

A deliberate hand-back (a versioning or unknown-function REJECT: ``runtime/versions.py``,
``runtime/unknown.py``) raises the message's dequeue count like a crash does, and the count is
all the queue remembers. So once a handed-back message has been dequeued half the poison limit
(``max_dequeue_count``) it is sent again as a fresh copy (same body, dequeue count 0) and the
caller deletes the original. If that delete fails the copy is a duplicate, which its instance
drops like any other redelivery.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from durablehub.runtime.outage import outage_of
from durablehub.runtime.retries import retry_transient
from durablehub.taskhub.aio.hub import AsyncTaskHub
from durablehub.taskhub.aio.queues import AsyncTaskHubQueue, ReceivedMessage


def due_for_fresh_copy(message: ReceivedMessage, max_dequeue_count: int) -> bool:
    """Whether a handed-back message has been dequeued enough to be sent again fresh."""
    return message.dequeue_count >= max(max_dequeue_count // 2, 1)


async def send_fresh_copy(
    hub: AsyncTaskHub, queue: AsyncTaskHubQueue, message: ReceivedMessage, *, delay: int
) -> bool:
    """Send ``message``'s body to ``queue`` again, visible after ``delay`` s; True if sent (then
    the caller deletes the original), False if it could not be (then it hands it back as is)."""
    try:
        await retry_transient(
            functools.partial(queue.send_raw, message.body, visible_after=timedelta(seconds=delay)),
            what="sending a rejected message again",
        )
    except Exception as exc:
        outage_of(hub).failed(f"could not send message {message.message_id} again", exc)
        return False
    return True
