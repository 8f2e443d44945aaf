"""Durable entities end to end: a client, two worker processes, one Azurite (issue 5's Done-when)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

import durablehub as dh
from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.e2e.conftest import WorkerProcesses, wait_until

pytestmark = pytest.mark.azurite
DONE = dh.OrchestrationStatus.COMPLETED


def state_of(client: DurableClient, entity: dh.EntityInstanceId, default: object = None) -> object:
    meta = client.get_entity(entity)
    return default if meta is None else meta.get_state()


def wait_for_state(
    client: DurableClient,
    entity: dh.EntityInstanceId,
    check: object,
    timeout: float,
    workers: WorkerProcesses,
) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = state_of(client, entity)
        if check(last) if callable(check) else last == check:
            return last
        time.sleep(0.25)
    raise AssertionError(f"{entity} is {last!r} after {timeout} s\n{workers.logs()}")


def test_shopping_cart_with_20_concurrent_signallers_loses_no_operation(
    client: DurableClient, two_workers: WorkerProcesses, hub_settings: TaskHubSettings
) -> None:
    cart = dh.EntityInstanceId("ShoppingCart", "docs")
    senders, per_sender = 20, 10

    def signaller(n: int) -> None:
        with DurableClient(hub_settings) as own:
            for j in range(per_sender):
                own.signal_entity(cart, "AddItem", f"s{n:02d}-{j:02d}")
            own.signal_entity(cart, "RemoveItem", f"s{n:02d}-00")

    threads = [threading.Thread(target=signaller, args=(n,)) for n in range(senders)]
    for t in threads:
        t.start()
    shoppers = [client.schedule_new_orchestration("cart_shopper", input="orch") for _ in range(3)]
    for t in threads:
        t.join()
    expected = {f"s{n:02d}-{j:02d}" for n in range(senders) for j in range(1, per_sender)}
    contents = wait_for_state(client, cart, lambda s: s is not None and set(s) == expected, 120, two_workers)
    assert isinstance(contents, list) and len(contents) == len(expected)  # nothing lost, nothing twice
    for n in range(senders):  # in order per sender
        mine = [item for item in contents if item.startswith(f"s{n:02d}-")]
        assert mine == sorted(mine)
    for iid in shoppers:
        state = client.wait_for_orchestration_completion(iid, timeout=60)
        assert state.runtime_status == DONE, two_workers.logs()
    other = client.get_entity(dh.EntityInstanceId("shoppingcart", "orch"))  # names ignore case
    assert other is not None and other.get_state() == ["pear"] * 3
    # Stored as the reference stores entities: '@name@key' instances, Running, EntityStatus.
    with TaskHub(hub_settings) as hub:
        row = hub.instances.get("@shoppingcart@docs")
        assert row is not None and row["RuntimeStatus"] == "Running" and row["Name"] == "@shoppingcart@docs"
        assert '"entityExists":true' in row["CustomStatus"]
        history = hub.history.load("@shoppingcart@docs")
        assert [type(e).__name__ for e in history.events] == [
            "OrchestratorStarted",
            "ExecutionStarted",
            "OrchestratorCompleted",
        ]


def test_bank_transfers_in_both_directions_keep_the_total_and_never_deadlock(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    a, b = dh.EntityInstanceId("account", "alice"), dh.EntityInstanceId("account", "bob")
    client.signal_entity(a, "deposit", 1000)
    client.signal_entity(b, "deposit", 1000)
    wait_for_state(client, a, 1000, 60, two_workers)
    wait_for_state(client, b, 1000, 60, two_workers)
    ids = []
    for _ in range(10):
        ids.append(
            client.schedule_new_orchestration("transfer", input={"from": "alice", "to": "bob", "amount": 7})
        )
        ids.append(
            client.schedule_new_orchestration("transfer", input={"from": "bob", "to": "alice", "amount": 5})
        )
    started = time.monotonic()
    for iid in ids:
        state = client.wait_for_orchestration_completion(iid, timeout=180)
        assert state.runtime_status == DONE and state.get_output() == "done", two_workers.logs()
    took = time.monotonic() - started
    alice, bob = client.get_entity(a), client.get_entity(b)
    assert alice is not None and bob is not None
    assert alice.get_state() + bob.get_state() == 2000
    assert (alice.get_state(), bob.get_state()) == (1000 - 70 + 50, 1000 - 50 + 70)
    # The last holder's release is sent in the episode that completes it and applied by the entity
    # afterwards, so the locks come free shortly after the last transfer completes, never stay held.
    wait_until(
        lambda: all(getattr(client.get_entity(e), "locked_by", "?") is None for e in (a, b)),
        30,
        "both accounts unlocked",
    )
    print(f"20 concurrent transfers took {took:.1f} s")


def test_an_operation_that_raises_fails_only_the_calling_task(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    acct = dh.EntityInstanceId("account", "carol")
    client.signal_entity(acct, "deposit", 5)
    iid = client.schedule_new_orchestration("withdraw_too_much", input="carol")
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == DONE, two_workers.logs()
    output = state.get_output()
    assert output["caught"]["error_type"] == "builtins.ValueError"
    assert "insufficient funds" in output["caught"]["message"]
    assert output["after"] == 6  # the failed withdrawal changed nothing

    # Uncaught inside a critical section: the orchestration fails and its lock is released.
    failed = client.schedule_new_orchestration("withdraw_uncaught", input="carol")
    state = client.wait_for_orchestration_completion(failed, timeout=60)
    assert state.runtime_status == dh.OrchestrationStatus.FAILED
    assert state.failure_details is not None and "insufficient funds" in str(state.failure_details)
    wait_for_state(client, acct, 6, 30, two_workers)
    wait_until(lambda: client.get_entity(acct).locked_by is None, 30, "the lock to be released")
    again = client.schedule_new_orchestration("transfer", input={"from": "carol", "to": "dave", "amount": 6})
    assert client.wait_for_orchestration_completion(again, timeout=60).get_output() == "done"


def test_entities_signal_entities_and_start_orchestrations(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    relay = dh.EntityInstanceId("Relay", "r1")
    client.signal_entity(relay, "forward", {"key": "erin", "amount": 3})
    client.signal_entity(relay, "forward", {"key": "erin", "amount": 4})
    wait_for_state(client, dh.EntityInstanceId("account", "erin"), 7, 60, two_workers)
    client.signal_entity(relay, "start", "started-by-relay-1")
    state = client.wait_for_orchestration_start("started-by-relay-1", timeout=60)
    state = client.wait_for_orchestration_completion("started-by-relay-1", timeout=60)
    assert state.runtime_status == DONE and state.get_output() == 10, two_workers.logs()


def test_client_reads_queries_schedules_and_cleans_entities(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    for key in ("k1", "k2", "k3"):
        client.signal_entity(dh.EntityInstanceId("account", key), "deposit", 1)
    client.signal_entity(dh.EntityInstanceId("ShoppingCart", "q"), "AddItem", "x")
    for key in ("k1", "k2", "k3"):
        wait_for_state(client, dh.EntityInstanceId("account", key), 1, 60, two_workers)
    wait_for_state(client, dh.EntityInstanceId("ShoppingCart", "q"), ["x"], 60, two_workers)

    meta = client.get_entity(dh.EntityInstanceId("account", "k1"))
    assert meta is not None and meta.get_state() == 1 and meta.backlog_queue_size == 0
    assert datetime.now(UTC) - meta.last_modified < timedelta(minutes=1)
    assert client.get_entity("@account@nobody") is None
    accounts = client.get_all_entities(dh.EntityQuery(instance_id_starts_with="Account", page_size=2))
    assert sorted(str(m.id) for m in accounts) == ["@account@k1", "@account@k2", "@account@k3"]
    assert all(m.get_state() == 1 for m in accounts)
    page = client.query_entities(dh.EntityQuery(include_state=False, page_size=1))
    assert len(page.items) <= 1 and page.continuation_token is not None
    assert not page.items or not page.items[0].includes_state
    everything = client.get_all_entities()
    assert {str(m.id) for m in everything} >= {"@account@k1", "@shoppingcart@q"}
    assert not any(s.instance_id.startswith("@") for s in client.get_all_orchestration_states())

    due = datetime.now(UTC) + timedelta(seconds=3)
    client.signal_entity(dh.EntityInstanceId("account", "k2"), "deposit", 10, signal_time=due)
    time.sleep(1)
    assert state_of(client, dh.EntityInstanceId("account", "k2")) == 1  # not yet
    wait_for_state(client, dh.EntityInstanceId("account", "k2"), 11, 30, two_workers)
    assert datetime.now(UTC) >= due

    client.signal_entity(dh.EntityInstanceId("account", "k3"), "delete")
    wait_until(lambda: client.get_entity(dh.EntityInstanceId("account", "k3")) is None, 30, "k3 deleted")
    result = client.clean_entity_storage()
    assert result.empty_entities_removed == 1 and result.orphaned_locks_released == 0
    remaining = client.get_all_entities(
        dh.EntityQuery(instance_id_starts_with="account", include_transient=True)
    )
    assert sorted(str(m.id) for m in remaining) == ["@account@k1", "@account@k2"]

    with pytest.raises(ValueError, match="not an entity instance id"):
        client.signal_entity("account-k1", "deposit", 1)
    with pytest.raises(dh.PayloadError):
        client.signal_entity(dh.EntityInstanceId("account", "k1"), "deposit", object())


def test_entity_state_survives_a_worker_killed_with_sigkill(
    client: DurableClient, workers: WorkerProcesses
) -> None:
    first, second = workers.start(2)
    acct = dh.EntityInstanceId("account", "frank")
    with TaskHub(workers.settings) as hub:
        wait_until(
            lambda: len({s.lease.owner for s in hub.leases.list() if s.leased}) == 2,
            40,
            "both workers own partitions",
        )
    for _ in range(25):
        client.signal_entity(acct, "deposit", 1)
    wait_for_state(client, acct, lambda s: s is not None and s >= 5, 60, workers)
    transfers = [
        client.schedule_new_orchestration("transfer", input={"from": "frank", "to": f"heir{i}", "amount": 1})
        for i in range(3)
    ]
    workers.kill(first)  # mid-stream: some deposits and transfers are in flight
    for _ in range(25):
        client.signal_entity(acct, "deposit", 1)
    for iid in transfers:
        state = client.wait_for_orchestration_completion(iid, timeout=120)
        assert state.runtime_status == DONE and state.get_output() == "done", workers.logs()
    wait_for_state(client, acct, 47, 120, workers)  # exactly once: 50 deposits, 3 transfers out
    for i in range(3):
        assert state_of(client, dh.EntityInstanceId("account", f"heir{i}")) == 1
    time.sleep(2)
    assert state_of(client, acct) == 47 and second.poll() is None


def test_large_entity_state_goes_to_blobs_and_back(
    client: DurableClient, two_workers: WorkerProcesses
) -> None:
    cart = dh.EntityInstanceId("ShoppingCart", "big")
    big = "x" * 100_000  # over the 60 KiB property limit
    client.signal_entity(cart, "AddItem", big)
    client.signal_entity(cart, "AddItem", "small")
    assert wait_for_state(client, cart, [big, "small"], 60, two_workers) == [big, "small"]
    iid = client.schedule_new_orchestration("cart_shopper", input="big")
    state = client.wait_for_orchestration_completion(iid, timeout=60)
    assert state.runtime_status == DONE and state.get_output() == [big, "small", "pear"], two_workers.logs()
