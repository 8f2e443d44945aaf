"""Regression (#1252, running variant): a crash between an episode's History and Instances writes.

If the Instances row of a running instance was never written (or lost), the next checkpoint by
a worker that read the state from history writes the whole row again, not a status-less merge.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from azure.data.tables import TableClient

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.hub import TaskHub
from durablehub.taskhub.names import escape_partition_key
from tests.conftest import StorageEmulator, new_hub_name

pytestmark = pytest.mark.azurite

app = dh.App()


@app.activity
def echo(ctx: dh.ActivityContext, value: str) -> str:
    return value


@app.orchestrator
def nap_then_echo(ctx: dh.OrchestrationContext, value: str):
    yield ctx.create_timer(timedelta(seconds=3))
    return (yield ctx.call_activity(echo, input=value))


def test_a_lost_instances_row_is_written_whole_by_the_next_episode(azurite: StorageEmulator) -> None:
    settings = dh.TaskHubSettings(task_hub=new_hub_name(), connection_string=azurite.connection_string)
    with TaskHub(settings) as hub:
        hub.create()
        with DurableClient(settings, hub=hub) as client:
            with dh.Worker(app, settings):
                iid = client.schedule_new_orchestration("nap_then_echo", input="kept", instance_id="row-lost")
                client.wait_for_orchestration_start(iid, timeout=20)
            conn = settings.connection_string.get_secret_value()  # type: ignore[union-attr]
            with TableClient.from_connection_string(conn, settings.names.instances_table) as table:
                table.delete_entity(escape_partition_key(iid), "")  # as if that write never happened
            assert client.get_orchestration_state(iid) is None
            time.sleep(3)
            with dh.Worker(app, settings):  # a cold worker: the state comes from history
                state = client.wait_for_orchestration_completion(iid, timeout=30)
            assert state.runtime_status is dh.OrchestrationStatus.COMPLETED
            assert (
                state.name == "nap_then_echo" and state.get_input() == "kept" and state.get_output() == "kept"
            )
        hub.delete()
