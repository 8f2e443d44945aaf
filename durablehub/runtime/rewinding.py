"""What a rewound parent does about the sub-orchestrations it still waits for.

The engine (``durablehub.engine.rewind``) knows which children are unanswered; only storage
knows how they are doing. Each gets the message that makes it answer: a failed child is
rewound in turn (its completion then reaches this parent, whose execution it recorded), a
completed child's result is delivered again (the original notice was dropped while the
parent was failed), a running child will answer by itself, and a child that is gone or was
terminated is started again for the same call.
"""

from __future__ import annotations

import logging
from datetime import datetime

from durablehub.engine import history as ev
from durablehub.engine.episode import OutboundMessage, new_execution_id, sub_orchestration_start
from durablehub.engine.rewind import UnansweredChild
from durablehub.models import OrchestrationStatus
from durablehub.taskhub.aio.instances_table import AsyncInstancesTable

_LOG = logging.getLogger("durablehub.worker")

_ANSWERS_BY_ITSELF = frozenset(
    {
        OrchestrationStatus.RUNNING,
        OrchestrationStatus.PENDING,
        OrchestrationStatus.SUSPENDED,
        OrchestrationStatus.CONTINUED_AS_NEW,
    }
)


async def messages_for_children(
    instances: AsyncInstancesTable,
    children: tuple[UnansweredChild, ...],
    *,
    parent: ev.ExecutionStarted,
    reason: str | None,
    now: datetime,
) -> list[OutboundMessage]:
    me = parent.orchestration_instance
    messages: list[OutboundMessage] = []
    for child in children:
        child_id = child.created.instance_id or ""
        record = await instances.get_record(child_id, resolve_blobs=True)
        status = record.runtime_status if record else None
        if status is OrchestrationStatus.FAILED and record is not None:
            messages.append(
                OutboundMessage(
                    target_instance_id=child_id,
                    target_execution_id=record.execution_id,
                    event=ev.ExecutionRewound(timestamp=now, reason=reason),
                )
            )
        elif status is OrchestrationStatus.COMPLETED and record is not None:
            result = record.output
            messages.append(
                OutboundMessage(
                    target_instance_id=me.instance_id,
                    target_execution_id=me.execution_id,
                    event=ev.SubOrchestrationInstanceCompleted(
                        timestamp=now, task_scheduled_id=child.task_id, result=result
                    ),
                )
            )
        elif status in _ANSWERS_BY_ITSELF:
            continue
        else:
            _LOG.info("rewind of %r starts its sub-orchestration %r again", me.instance_id, child_id)
            start = sub_orchestration_start(
                parent,
                task_id=child.task_id,
                instance_id=child_id,
                name=child.created.name,
                version=child.created.version,
                input=child.created.input,
                execution_id=new_execution_id(),
                now=now,
            )
            messages.append(
                OutboundMessage(
                    target_instance_id=child_id,
                    target_execution_id=start.orchestration_instance.execution_id,
                    event=start,
                )
            )
    return messages
