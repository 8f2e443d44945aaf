# Generated from durablehub/taskhub/aio/poison.py by scripts/unasync.py: edit that file instead.
"""PoisonQueue: ``{hub}-poison``, where messages that can never be processed go (#553).

``move`` takes a message off a control or work-item queue into a record that keeps its body
verbatim (``durablehub.taskhub.quarantine``); ``peek`` shows the oldest 32 without touching
them (Azure peeks no deeper) and counts the rest; ``requeue`` sends bodies back, unchanged, to
the queue each came from -- or, for a bare body, to the control queue of its instance (or the
work-item queue for a TaskScheduled) -- and deletes them here. The queue is created on first
use, not by ``hub create``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from azure.core.exceptions import ResourceNotFoundError

from durablehub.taskhub import quarantine
from durablehub.taskhub.connections import StorageClients
from durablehub.taskhub.large_messages import LargeMessageStore
from durablehub.taskhub.queues import TaskHubQueue, ReceivedMessage
from durablehub.taskhub.names import partition_index
from durablehub.taskhub.quarantine import PoisonRecord

_LOG = logging.getLogger("durablehub.taskhub")
PEEK_LIMIT = 32  # Azure returns at most 32 messages to a peek


@dataclass(frozen=True, slots=True, kw_only=True)
class PoisonEntry:
    """A message in the poison queue: its id there (what ``requeue`` takes) and its record;
    ``received`` (its pop receipt) only when it was dequeued, not peeked."""

    message_id: str
    inserted_on: datetime | None
    record: PoisonRecord
    received: ReceivedMessage | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PoisonListing:
    """What ``peek`` saw: the oldest entries and the queue's approximate length."""

    entries: list[PoisonEntry]
    approximate_count: int

    @property
    def more(self) -> int:
        """About how many messages are in the queue beyond those peeked. Only a full peek
        leaves any out: one short of ``PEEK_LIMIT`` saw every visible message, and a higher
        count (read after the peek) is a message that arrived meanwhile or one a requeue holds."""
        if len(self.entries) < PEEK_LIMIT:
            return 0
        return max(0, self.approximate_count - len(self.entries))


@dataclass(slots=True)
class RequeueResult:
    requeued: list[tuple[str, str]] = field(default_factory=list)  # (poison message id, queue)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (poison message id, why)
    missing: list[str] = field(default_factory=list)  # ids not in the poison queue


def _entry(
    message_id: str, inserted_on: datetime | None, body: str, received: ReceivedMessage | None = None
) -> PoisonEntry:
    record = quarantine.decode(body) or quarantine.bare(body)
    return PoisonEntry(message_id=message_id, inserted_on=inserted_on, record=record, received=received)


class PoisonQueue(TaskHubQueue):
    def __init__(
        self,
        clients: StorageClients,
        name: str,
        large_messages: LargeMessageStore,
        *,
        control_queues: Sequence[TaskHubQueue],
        work_items: TaskHubQueue,
    ) -> None:
        super().__init__(clients, name, large_messages)
        self._control_queues = list(control_queues)
        self._work_items = work_items
        self._created = False

    def move(
        self, source: TaskHubQueue, message: ReceivedMessage, *, reason: str, reported: bool = False
    ) -> bool:
        """Move ``message`` from ``source`` here, logged with the reason; False (and logged)
        if that failed, in which case it stays in ``source`` and comes back when visible."""
        if message.message is not None and message.message.task_message is not None:
            instance_id: str | None = message.message.instance_id
            event_type: str | None = message.message.event.event_type.name
        else:
            instance_id, event_type, _ = quarantine.describe_body(message.body)
        _LOG.error(
            "poison message: moving message %s (instance %r, %s) from %s to %s after %d dequeues: %s",
            message.message_id,
            instance_id,
            event_type or "unreadable",
            source.name,
            self.name,
            message.dequeue_count,
            reason,
        )
        record = PoisonRecord(
            body=message.body,
            reason=reason,
            original_queue=source.name,
            original_message_id=message.message_id,
            original_inserted_on=message.inserted_on,
            dequeue_count=message.dequeue_count,
            instance_id=instance_id if isinstance(instance_id, str) else None,
            event_type=event_type,
            poisoned_at=datetime.now(UTC),
            reported=reported,
        )
        try:
            text = quarantine.encode(record)
            if not quarantine.fits_in_queue(text):  # escaping grew it: the body goes to a blob
                blob_name = f"{self.name}/{message.message_id}.json.gz"
                self._blobs.upload(blob_name, message.body)
                text = quarantine.encode(replace(record, body=None, body_blob_name=blob_name))
            self._ensure_created()
            self.send_raw(text)
            source.delete_message(message)
        except Exception:
            _LOG.exception(
                "could not move message %s from %s to %s", message.message_id, source.name, self.name
            )
            return False
        return True

    def _ensure_created(self) -> None:
        if not self._created:
            self.create()
            self._created = True

    def peek(self) -> PoisonListing:
        """The oldest messages here (at most 32) and how many there are, without dequeuing or
        hiding any: a listing must not raise dequeue counts or hide messages from a requeue."""
        try:
            peeked = self._queue.peek_messages(max_messages=PEEK_LIMIT)
            count = self.approximate_count()
        except ResourceNotFoundError:  # no poison queue yet: nothing was ever poisoned
            return PoisonListing(entries=[], approximate_count=0)
        entries = [_entry(m.id, m.inserted_on, str(m.content)) for m in peeked]
        return PoisonListing(entries=entries, approximate_count=max(count, len(entries)))

    def entries(self, *, hold: timedelta = timedelta(seconds=60)) -> list[PoisonEntry]:
        """Every message here, each hidden for ``hold`` (give them back with ``release``).

        Always ends: at an empty batch, at a message seen before (its hold ran out: it keeps
        its newest receipt), or after as many messages as the queue held at the start plus one
        batch (others keep arriving)."""
        try:
            budget = self.approximate_count() + PEEK_LIMIT
        except ResourceNotFoundError:  # no poison queue yet: nothing was ever poisoned
            return []
        found: dict[str, PoisonEntry] = {}
        while len(found) < budget:
            batch = self.receive(max_messages=PEEK_LIMIT, visibility_timeout=hold)
            seen_before = False
            for m in batch:
                seen_before = seen_before or m.message_id in found
                found[m.message_id] = _entry(m.message_id, m.inserted_on, m.body, m)
            if not batch or seen_before:
                break
        return list(found.values())

    def release(self, entries: Sequence[PoisonEntry]) -> None:
        for entry in entries:
            if entry.received is None:  # peeked: never hidden
                continue
            try:
                self.update_visibility(entry.received, timedelta(0))
            except Exception:  # it reappears when its hold ends anyway
                _LOG.debug("could not release poison message %s", entry.message_id, exc_info=True)

    def requeue(self, message_ids: Sequence[str] | None, *, force: bool = False) -> RequeueResult:
        """Send the given messages (None: all) back where they belong and delete them here.

        Refused unless ``force``: a work item whose failure the instance was already told
        (rewind the instance instead) and a body that cannot be read (it would come back).
        """
        result = RequeueResult()
        entries = self.entries()
        wanted = None if message_ids is None else list(dict.fromkeys(message_ids))
        by_id = {e.message_id: e for e in entries}
        chosen = entries if wanted is None else [by_id[i] for i in wanted if i in by_id]
        result.missing = [] if wanted is None else [i for i in wanted if i not in by_id]
        try:
            for entry in chosen:
                body = self._body(entry.record)
                destination, why = self._destination(entry.record, body, force=force)
                if destination is None:
                    result.refused.append((entry.message_id, why))
                    continue
                destination.send_raw(body)
                assert entry.received is not None  # entries() dequeued it
                if not self.delete_message(entry.received):
                    # Another process holds it now: it may be requeued twice (harmless, as any
                    # duplicate), and its body blob must stay for that copy.
                    _LOG.warning(
                        "requeued poison message %s but could not delete it from %s",
                        entry.message_id,
                        self.name,
                    )
                elif entry.record.body_blob_name:
                    self._blobs.delete(entry.record.body_blob_name)
                by_id.pop(entry.message_id)
                result.requeued.append((entry.message_id, destination.name))
                _LOG.info(
                    "requeued poison message %s (instance %r) to %s",
                    entry.message_id,
                    entry.record.instance_id,
                    destination.name,
                )
        finally:
            self.release(list(by_id.values()))
        return result

    def _body(self, record: PoisonRecord) -> str:
        if record.body is not None:
            return record.body
        assert record.body_blob_name is not None
        return self._blobs.download(record.body_blob_name)

    def _destination(
        self, record: PoisonRecord, body: str, *, force: bool
    ) -> tuple[TaskHubQueue | None, str]:
        instance_id, event_type, unreadable = quarantine.describe_body(body)
        if record.reported and not force:
            return None, (
                f"instance {record.instance_id!r} was already told that this activity failed; "
                f"fix the cause and rewind the instance (durablehub rewind {record.instance_id}), "
                "or pass --force to run the activity anyway"
            )
        if unreadable and not force:
            return None, f"the message is unreadable ({unreadable}): it would come straight back"
        queues = {q.name: q for q in [*self._control_queues, self._work_items]}
        if record.original_queue is not None:
            queue = queues.get(record.original_queue)
            if queue is None:
                return None, f"it came from {record.original_queue!r}, which is not a queue of this hub"
            return queue, ""
        if instance_id is None or event_type is None:
            return None, "its queue is not recorded and cannot be told from the message"
        if event_type == "TaskScheduled":
            return self._work_items, ""
        return self._control_queues[partition_index(instance_id, len(self._control_queues))], ""
