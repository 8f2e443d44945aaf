"""Which instances a range query of the History table lists, and the bulk loop over ranges (no storage)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from durablehub import _bulk
from durablehub import _history_ranges as ranges


def rows(key: str, count: int) -> list[dict[str, str]]:
    return [{"PartitionKey": key, "RowKey": f"{n:016X}"} for n in range(count)]


def test_groups_are_sorted_and_cut() -> None:
    assert ranges.groups(["c", "a", "b", "a"], size=2) == [["a", "b"], ["c"]]
    assert ranges.groups([]) == []


def test_a_range_read_to_its_end_lists_its_instances_and_skips_the_others() -> None:
    listing = ranges.RangeListing(["a", "c"])
    assert (listing.low, listing.high) == ("a", "c")
    assert listing.add_page([*rows("a", 3), *rows("b", 2), *rows("c", 1)], True) is False
    assert {k: len(v) for k, v in listing.listed().items()} == {"a": 3, "c": 1}


def test_a_range_full_of_others_is_given_up_and_its_last_instance_is_not_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ranges, "WASTE_ALLOWANCE_ROWS", 2)
    listing = ranges.RangeListing(["a", "b", "d"])
    assert listing.add_page([*rows("a", 2), *rows("b", 1)], False) is True
    # 5 rows of "c" skipped: more than the 4 kept and the allowance of 2.
    assert listing.add_page([*rows("b", 1), *rows("c", 5)], False) is False
    # "c" came after "b", so "b" is whole; "d" was never reached: the caller lists it alone.
    assert {k: len(v) for k, v in listing.listed().items()} == {"a": 2, "b": 2}


def test_a_range_stopped_inside_a_wanted_instance_leaves_it_out() -> None:
    listing = ranges.RangeListing(["a", "b"])
    ranges_waste = ranges.WASTE_ALLOWANCE_ROWS
    listing.add_page([*rows("a", 1), *rows("x", ranges_waste + 5), *rows("b", 1)], False)
    assert set(listing.listed()) == {"a"}  # "b" may go on in the next page


def test_recursive_purges_read_what_finds_sub_orchestrations() -> None:
    assert ranges.history_select(recursive=False) == ["PartitionKey", "RowKey", "Timestamp"]
    assert {"EventType", "InstanceId", "ExecutionId"} <= set(ranges.history_select(recursive=True))


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_grouped_bulk_work_prepares_each_group_once_keeps_order_and_holds_two_groups(flavour: str) -> None:
    groups = [[1, 2, 3], [4, 5], [6], [7, 8, 9]]
    prepared: list[int] = []
    held: set[int] = set()
    left = {group[0]: len(group) for group in groups}
    most_held = 0
    lock = threading.Lock()
    seen: list[tuple[int, int]] = []

    def on_prepare(group: Sequence[int]) -> int:
        nonlocal most_held
        with lock:
            prepared.append(group[0])
            held.add(group[0])
            most_held = max(most_held, len(held))
        return group[0]

    def on_item(item: int, first: int) -> int:
        with lock:
            left[first] -= 1
            if not left[first]:
                held.discard(first)
        return item * 10 + first

    if flavour == "sync":
        results = _bulk.for_each_grouped(
            groups, on_prepare, on_item, limit=2, progress=lambda d, t: seen.append((d, t))
        )
    else:

        async def prepare(group: Sequence[int]) -> int:
            await asyncio.sleep(0)
            return on_prepare(group)

        async def item(value: int, first: int) -> int:
            await asyncio.sleep(0)
            return on_item(value, first)

        results = asyncio.run(
            _bulk.async_for_each_grouped(
                groups, prepare, item, limit=2, progress=lambda d, t: seen.append((d, t))
            )
        )
    assert results == [11, 21, 31, 44, 54, 66, 77, 87, 97]
    assert prepared == [1, 4, 6, 7]
    assert most_held == 2  # the group being worked on and the next one
    assert [d for d, _ in seen] == list(range(1, 10)) and {t for _, t in seen} == {9}


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_grouped_bulk_work_stops_at_the_first_failure(flavour: str) -> None:
    groups = [[1, 2], [3, 4], [5, 6]]
    done: list[int] = []

    def on_item(value: int) -> int:
        if value == 3:
            raise ValueError("three")
        done.append(value)
        return value

    with pytest.raises(ValueError, match="three"):
        if flavour == "sync":
            _bulk.for_each_grouped(groups, lambda g: None, lambda v, _: on_item(v), limit=1)
        else:

            async def item(value: int, _: None) -> int:
                return on_item(value)

            async def prepare(group: Sequence[int]) -> None:
                return None

            asyncio.run(_bulk.async_for_each_grouped(groups, prepare, item, limit=1))
    assert 5 not in done and 6 not in done


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_grouped_bulk_work_starts_nothing_once_told_to_stop(flavour: str) -> None:
    """A purge's timeout: items not started when ``stop()`` turns true are left (None), and
    groups after that are not even listed."""
    groups = [[1, 2], [3, 4], [5, 6]]
    prepared: list[int] = []
    done: list[int] = []

    def on_item(value: int) -> int:
        done.append(value)
        return value

    def stop() -> bool:
        return 2 in done

    if flavour == "sync":

        def prepare_sync(group: Sequence[int]) -> None:
            prepared.append(group[0])

        results = _bulk.for_each_grouped(groups, prepare_sync, lambda v, _: on_item(v), limit=1, stop=stop)
    else:

        async def prepare(group: Sequence[int]) -> None:
            prepared.append(group[0])

        async def item(value: int, _: None) -> int:
            await asyncio.sleep(0)
            return on_item(value)

        results = asyncio.run(_bulk.async_for_each_grouped(groups, prepare, item, limit=1, stop=stop))
    assert results == [1, 2, None, None, None, None]
    assert done == [1, 2]
    assert prepared == [1, 3]  # the group after the stop was never listed
