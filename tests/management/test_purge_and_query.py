"""Purging instances and querying the Instances table, against Azurite and a running worker."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.taskhub.names import escape_partition_key

pytestmark = pytest.mark.azurite
Status = dh.OrchestrationStatus
BIG = "x" * 70_000  # over 60 KiB of UTF-16 in a table column, over 45 KiB in a queue message


def run(client: DurableClient, name: str, input: object, iid: str) -> dh.OrchestrationState:  # noqa: A002
    client.schedule_new_orchestration(name, input=input, instance_id=iid)
    state = client.wait_for_orchestration_completion(iid, timeout=30)
    assert state.runtime_status is Status.COMPLETED, state
    return state


def history_rows(settings: dh.TaskHubSettings, iid: str) -> list[dict]:
    conn = settings.connection_string.get_secret_value()  # type: ignore[union-attr]
    with TableClient.from_connection_string(conn, settings.names.history_table) as table:
        return list(table.query_entities("PartitionKey eq @pk", parameters={"pk": escape_partition_key(iid)}))


def blobs_of(settings: dh.TaskHubSettings, iid: str) -> list[str]:
    conn = settings.connection_string.get_secret_value()  # type: ignore[union-attr]
    with ContainerClient.from_connection_string(conn, settings.names.large_messages_container) as container:
        return [b.name for b in container.list_blobs(name_starts_with=f"{iid}/")]


def test_purge_removes_one_instance_and_nothing_of_its_prefix_neighbours(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings
) -> None:
    base = f"purge-{uuid.uuid4().hex[:6]}"
    victim, neighbour = f"{base}-1", f"{base}-10"  # one id is a prefix of the other
    for iid in (victim, neighbour):
        run(client, "echo_input", BIG, iid)
        assert history_rows(mgmt_settings, iid) and blobs_of(mgmt_settings, iid)

    result = client.purge_orchestration(victim)
    assert result == dh.PurgeResult(1, True)
    assert client.get_orchestration_state(victim) is None
    assert history_rows(mgmt_settings, victim) == []
    assert blobs_of(mgmt_settings, victim) == []

    neighbour_state = client.get_orchestration_state(neighbour)
    assert neighbour_state is not None and neighbour_state.get_output() == BIG
    assert history_rows(mgmt_settings, neighbour) and blobs_of(mgmt_settings, neighbour)
    assert client.purge_orchestration(victim) == dh.PurgeResult(0, True)  # nothing left to purge


def test_purge_refuses_a_live_instance(client: DurableClient) -> None:
    iid = client.schedule_new_orchestration(
        "waits_for_event", input="Never", instance_id=f"live-{uuid.uuid4().hex[:6]}"
    )
    client.wait_for_orchestration_start(iid, timeout=20)
    with pytest.raises(dh.OrchestrationStateError, match="cannot purge .* it is Running"):
        client.purge_orchestration(iid)
    assert client.get_orchestration_state(iid) is not None
    client.terminate_orchestration(iid)
    client.wait_for_orchestration_completion(iid, timeout=20)
    assert client.purge_orchestration(iid).deleted_instance_count == 1


@pytest.mark.parametrize("recursive", [True, False])
def test_recursive_purge_takes_the_sub_orchestrations(client: DurableClient, recursive: bool) -> None:
    iid = f"tree-{uuid.uuid4().hex[:6]}"
    run(client, "pipeline_parent", "tree", iid)
    child = f"{iid}-child"
    assert client.get_orchestration_state(child) is not None
    result = client.purge_orchestration(iid, recursive=recursive)
    assert result.deleted_instance_count == (2 if recursive else 1)
    assert (client.get_orchestration_state(child) is None) is recursive


def test_purge_by_filter_takes_only_matching_finished_instances(client: DurableClient) -> None:
    before = datetime.now(UTC)
    done = [run(client, "echo_input", i, f"bulk-{uuid.uuid4().hex[:6]}").instance_id for i in range(3)]
    live = client.schedule_new_orchestration(
        "waits_for_event", input="Never", instance_id=f"bulk-live-{uuid.uuid4().hex[:6]}"
    )
    client.wait_for_orchestration_start(live, timeout=20)
    after = datetime.now(UTC)

    with pytest.raises(ValueError, match="only finished instances can be purged"):
        client.purge_orchestrations_by(runtime_status=[Status.RUNNING])
    none_in_range = client.purge_orchestrations_by(created_time_to=before - timedelta(days=1))
    assert none_in_range.deleted_instance_count == 0

    result = client.purge_orchestrations_by(
        created_time_from=before, created_time_to=after, runtime_status=[Status.COMPLETED]
    )
    assert result.deleted_instance_count >= 3  # other tests' instances of the same window may go too
    assert all(client.get_orchestration_state(iid) is None for iid in done)
    assert client.get_orchestration_state(live) is not None
    client.terminate_orchestration(live)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_purge_by_filter_out_of_time_stops_and_says_so_and_running_it_again_finishes(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings, flavour: str
) -> None:
    """DurableTask.Core's PurgeInstanceFilter.Timeout: no instance is started after it, and the
    result is incomplete. A timeout of 0 has run out before the first instance."""
    before = datetime.now(UTC)
    done = [run(client, "echo_input", i, f"tmo-{uuid.uuid4().hex[:6]}").instance_id for i in range(3)]
    window = {"created_time_from": before, "created_time_to": datetime.now(UTC)}

    def purge(**options: object) -> dh.PurgeResult:
        if flavour == "sync":
            return client.purge_orchestrations_by(**window, **options)  # type: ignore[arg-type]

        async def go() -> dh.PurgeResult:
            async with dh.AsyncDurableClient(mgmt_settings) as bulk:
                return await bulk.purge_orchestrations_by(**window, **options)  # type: ignore[arg-type]

        return asyncio.run(go())

    with pytest.raises(ValueError, match="timeout"):
        purge(timeout=-1)
    assert purge(timeout=0) == dh.PurgeResult(0, False)
    assert all(client.get_orchestration_state(iid) is not None for iid in done)
    again = purge(timeout=timedelta(minutes=5))
    assert again.deleted_instance_count >= 3 and again.is_complete  # others' instances may go too
    assert all(client.get_orchestration_state(iid) is None for iid in done)


def test_queries_filter_and_page(client: DurableClient) -> None:
    prefix = f"q{uuid.uuid4().hex[:6]}-"
    t0 = datetime.now(UTC)
    completed = [run(client, "echo_input", {"n": i}, f"{prefix}{i}").instance_id for i in range(5)]
    waiting = client.schedule_new_orchestration("waits_for_event", input="Never", instance_id=f"{prefix}w")
    client.wait_for_orchestration_start(waiting, timeout=20)

    everything = client.get_all_orchestration_states(dh.OrchestrationQuery(instance_id_prefix=prefix))
    assert sorted(s.instance_id for s in everything) == sorted([*completed, waiting])
    assert all(s.serialized_input is None for s in everything)  # payloads only when asked for

    pages, token, seen = 0, None, []
    while True:
        page = client.query_orchestrations(
            dh.OrchestrationQuery(instance_id_prefix=prefix, page_size=2, continuation_token=token)
        )
        assert len(page.items) <= 2
        seen += [s.instance_id for s in page.items]
        pages += 1
        token = page.continuation_token
        if token is None:
            break
    assert sorted(seen) == sorted([*completed, waiting]) and pages >= 3

    running = client.get_all_orchestration_states(
        dh.OrchestrationQuery(
            instance_id_prefix=prefix, runtime_status=[Status.RUNNING], fetch_inputs_and_outputs=True
        )
    )
    assert [(s.instance_id, s.get_input()) for s in running] == [(waiting, "Never")]
    with_payloads = client.get_all_orchestration_states(
        dh.OrchestrationQuery(
            instance_id_prefix=prefix, runtime_status=[Status.COMPLETED], fetch_inputs_and_outputs=True
        )
    )
    assert sorted(s.get_output()["n"] for s in with_payloads) == [0, 1, 2, 3, 4]

    future = client.get_all_orchestration_states(
        dh.OrchestrationQuery(
            instance_id_prefix=prefix, created_time_from=datetime.now(UTC) + timedelta(minutes=1)
        )
    )
    assert future == []
    since_t0 = client.get_all_orchestration_states(
        dh.OrchestrationQuery(created_time_from=t0 - timedelta(seconds=1), instance_id_prefix=prefix)
    )
    assert len(since_t0) == 6

    with pytest.raises(ValueError, match="not one a previous page returned"):
        client.query_orchestrations(dh.OrchestrationQuery(continuation_token="garbage!"))
    with pytest.raises(ValueError, match="page_size"):
        dh.OrchestrationQuery(page_size=0)
    client.terminate_orchestration(waiting)


def test_a_query_does_not_list_entities(client: DurableClient, mgmt_settings: dh.TaskHubSettings) -> None:
    conn = mgmt_settings.connection_string.get_secret_value()  # type: ignore[union-attr]
    with TableClient.from_connection_string(conn, mgmt_settings.names.instances_table) as table:
        table.upsert_entity(
            {"PartitionKey": "@counter@q1", "RowKey": "", "RuntimeStatus": "Running", "Name": "@counter"}
        )
    time.sleep(0.1)
    ids = [s.instance_id for s in client.get_all_orchestration_states()]
    assert "@counter@q1" not in ids


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_purge_by_filter_works_on_several_instances_at_once_and_reports_progress(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings, flavour: str
) -> None:
    import asyncio

    started = datetime.now(UTC)
    tag = f"many-{flavour}-{uuid.uuid4().hex[:6]}"
    ids = [
        client.schedule_new_orchestration("echo_input", input=i, instance_id=f"{tag}-{i}") for i in range(24)
    ]
    for iid in ids:
        assert client.wait_for_orchestration_completion(iid, timeout=30).runtime_status is Status.COMPLETED
    seen: list[tuple[int, int]] = []
    settings = mgmt_settings.model_copy(update={"bulk_concurrency": 4})
    window = {"created_time_from": started, "created_time_to": datetime.now(UTC)}
    if flavour == "sync":
        with DurableClient(settings) as bulk:
            result = bulk.purge_orchestrations_by(**window, progress=lambda d, t: seen.append((d, t)))
    else:

        async def purge() -> dh.PurgeResult:
            async with dh.AsyncDurableClient(settings) as bulk:
                return await bulk.purge_orchestrations_by(**window, progress=lambda d, t: seen.append((d, t)))

        result = asyncio.run(purge())
    assert result.deleted_instance_count >= 24 and result.is_complete
    total = seen[-1][1]
    assert [d for d, _ in seen] == list(range(1, total + 1)) and {t for _, t in seen} == {total}
    assert all(client.get_orchestration_state(iid) is None for iid in ids)


def test_purge_by_filter_costs_two_requests_an_instance(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings
) -> None:
    """The query's rows carry what a guarded purge needs (ETag, ExecutionId, Timestamp): no
    second read of each row. One query lists the histories of the range of instances
    (test_purge_by_filter_lists_histories_a_range_at_a_time); per instance: delete its history
    in one transaction, delete its row (a plain DELETE with If-Match). Blobs: one listing of the
    container's instance folders for the whole purge, then a listing only for the instances
    that have one; a prefix neighbour outside the filter keeps its blobs."""
    from durablehub.taskhub.hub import TaskHub

    tag = f"cost-{uuid.uuid4().hex[:6]}"
    neighbour = run(client, "echo_input", BIG, f"{tag}-1").instance_id  # before the window
    started = datetime.now(UTC)
    ids = [run(client, "echo_input", BIG if i < 2 else i, f"{tag}-1{i}").instance_id for i in range(6)]
    assert blobs_of(mgmt_settings, ids[0]) and blobs_of(mgmt_settings, ids[1])
    window = {"created_time_from": started, "created_time_to": datetime.now(UTC)}
    with TaskHub(mgmt_settings) as hub, DurableClient(mgmt_settings, hub=hub) as bulk:
        bulk.get_orchestration_state("nobody")  # opens the hub
        hub.counter.reset()
        assert bulk.purge_orchestrations_by(**window) == dh.PurgeResult(6)
        counts = hub.counter.reset()
    deleted_blobs = counts.pop("blob.delete")
    assert counts == {"table.query": 1 + 1, "table.batch": 6, "table.delete": 6, "blob.list": 1 + 2}, counts
    assert deleted_blobs >= 2
    assert all(
        client.get_orchestration_state(iid) is None
        and not history_rows(mgmt_settings, iid)
        and not blobs_of(mgmt_settings, iid)
        for iid in ids
    )
    assert client.get_orchestration_state(neighbour) is not None and blobs_of(mgmt_settings, neighbour)


def _start_all(client: DurableClient, plan: dict[str, tuple[str, object]]) -> None:
    """Start every instance of ``plan`` (id: orchestrator, input) at once, wait for each."""
    for iid, (name, value) in plan.items():
        client.schedule_new_orchestration(name, input=value, instance_id=iid)
    for iid, (name, _) in plan.items():
        if name == "waits_for_event":
            client.wait_for_orchestration_start(iid, timeout=30)
        else:
            state = client.wait_for_orchestration_completion(iid, timeout=60)
            assert state.runtime_status is Status.COMPLETED, state


def test_purge_by_filter_lists_histories_a_range_at_a_time(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings
) -> None:
    """One History query for a range of instances, not one per instance; an instance in the
    range that the filter does not select (still running) keeps every row."""
    from durablehub.taskhub.hub import TaskHub

    tag = f"rng-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC)
    ids = [f"{tag}-{i:02}" for i in range(12)]
    outsider = f"{tag}-05x"  # sorts between -05 and -06
    _start_all(
        client,
        {**{iid: ("echo_input", i) for i, iid in enumerate(ids)}, outsider: ("waits_for_event", "Never")},
    )
    outsider_rows = history_rows(mgmt_settings, outsider)
    window = {"created_time_from": started, "created_time_to": datetime.now(UTC)}
    with TaskHub(mgmt_settings) as hub, DurableClient(mgmt_settings, hub=hub) as bulk:
        bulk.get_orchestration_state("nobody")  # opens the hub
        hub.counter.reset()
        result = bulk.purge_orchestrations_by(**window, runtime_status=[Status.COMPLETED])
        counts = hub.counter.reset()
    assert result == dh.PurgeResult(12)
    # The Instances query, one History query for the range, and per instance two deletes.
    assert (counts.get("table.query"), counts.get("table.batch"), counts.get("table.delete")) == (
        2,
        12,
        12,
    ), counts
    assert all(
        client.get_orchestration_state(iid) is None and not history_rows(mgmt_settings, iid) for iid in ids
    )
    state = client.get_orchestration_state(outsider)
    assert state is not None and state.runtime_status is Status.RUNNING
    assert history_rows(mgmt_settings, outsider) == outsider_rows
    client.terminate_orchestration(outsider)


def test_a_range_full_of_other_instances_is_given_up_for_one_query_each(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows a range query reads for instances outside the purge are bounded: once they
    outgrow what it found, the range is given up and the rest are listed one by one."""
    from durablehub import _history_ranges as ranges
    from durablehub.taskhub.hub import TaskHub

    monkeypatch.setattr(ranges, "PAGE_SIZE", 4)
    monkeypatch.setattr(ranges, "WASTE_ALLOWANCE_ROWS", 0)
    tag = f"gap-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC)
    ids = [f"{tag}-{i}" for i in range(4)]
    outsiders = [f"{tag}-0{c}" for c in "abc"]  # between -0 and -1, all running
    _start_all(
        client,
        {**{iid: ("echo_input", 1) for iid in ids}, **{o: ("waits_for_event", "Never") for o in outsiders}},
    )
    kept = {o: history_rows(mgmt_settings, o) for o in outsiders}
    in_range = sum(len(history_rows(mgmt_settings, iid)) for iid in ids) + sum(map(len, kept.values()))
    window = {"created_time_from": started, "created_time_to": datetime.now(UTC)}
    with TaskHub(mgmt_settings) as hub, DurableClient(mgmt_settings, hub=hub) as bulk:
        bulk.get_orchestration_state("nobody")
        hub.counter.reset()
        result = bulk.purge_orchestrations_by(**window, runtime_status=[Status.COMPLETED])
        counts = hub.counter.reset()
    assert result == dh.PurgeResult(4)
    # The Instances query, the range's pages until the outsiders' rows outgrow the rows found,
    # and a query for each of the three instances past them: fewer than the range's pages.
    assert 1 + 1 + 3 <= counts["table.query"] < 1 + 3 + -(-in_range // 4), (counts, in_range)
    assert all(
        client.get_orchestration_state(iid) is None and not history_rows(mgmt_settings, iid) for iid in ids
    )
    assert {o: history_rows(mgmt_settings, o) for o in outsiders} == kept
    for o in outsiders:
        client.terminate_orchestration(o)


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_an_interrupted_recursive_purge_by_filter_is_finished_by_running_it_again(
    client: DurableClient, mgmt_settings: dh.TaskHubSettings, monkeypatch: pytest.MonkeyPatch, flavour: str
) -> None:
    """Stopped part way (here by its progress callback), a purge by filter leaves instances
    that a second run purges, sub-orchestrations included, every row gone."""
    import asyncio

    from durablehub import _history_ranges as ranges

    monkeypatch.setattr(ranges, "INSTANCES_PER_RANGE", 3)  # several ranges
    tag = f"stop-{flavour}-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC)
    plan: dict[str, tuple[str, object]] = {f"{tag}-{i}": ("echo_input", i) for i in range(6)}
    plan[f"{tag}-p"] = ("pipeline_parent", tag)
    _start_all(client, plan)
    ids = [*plan, f"{tag}-p-child"]
    window = {"created_time_from": started, "created_time_to": datetime.now(UTC)}
    settings = mgmt_settings.model_copy(update={"bulk_concurrency": 2})

    def stop_after_three(done: int, total: int) -> None:
        if done == 3:
            raise _Interrupted

    def purge(progress: object) -> dh.PurgeResult:
        kwargs = {**window, "recursive": True, "progress": progress}
        if flavour == "sync":
            with DurableClient(settings) as bulk:
                return bulk.purge_orchestrations_by(**kwargs)  # type: ignore[arg-type]

        async def go() -> dh.PurgeResult:
            async with dh.AsyncDurableClient(settings) as bulk:
                return await bulk.purge_orchestrations_by(**kwargs)  # type: ignore[arg-type]

        return asyncio.run(go())

    with pytest.raises(_Interrupted):
        purge(stop_after_three)
    left = [iid for iid in ids if client.get_orchestration_state(iid) is not None]
    assert 0 < len(left) < len(ids)
    second = purge(None)
    assert second.is_complete and second.deleted_instance_count == len(left)
    assert all(
        client.get_orchestration_state(iid) is None and not history_rows(mgmt_settings, iid) for iid in ids
    )
