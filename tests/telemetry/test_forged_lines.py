"""Forged log lines: names and ids with control characters are refused by the client, and the
text log formatter escapes control characters in whatever reaches it anyway."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from durablehub.client import DurableClient
from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from durablehub.telemetry.logs import configure_logging

FORGED = "x\r\n2026-01-01 00:00:00,000 CRITICAL durablehub.worker: forged"


@pytest.fixture
def root_logging() -> Iterator[io.StringIO]:
    """durablehub's text handler on the root logger, writing to a buffer; restored after."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging("INFO", stream=stream, force=True)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _lines(text: str) -> list[str]:
    return text.splitlines()


def test_a_control_character_in_an_argument_does_not_start_a_line(root_logging: io.StringIO) -> None:
    logging.getLogger("durablehub.tracking").info("%s: Function '%s' started.", "i-1", FORGED)
    logging.getLogger("tests").warning("bell \x07, escape \x1b[31m, NEL \x85, tab\t, LS \u2028 end")
    lines = _lines(root_logging.getvalue())
    assert len(lines) == 2, lines
    assert "Function 'x\\r\\n2026-01-01 00:00:00,000 CRITICAL" in lines[0]
    assert lines[1].endswith("bell \\x07, escape \\x1b[31m, NEL \\x85, tab\\t, LS \\u2028 end")


def test_a_traceback_keeps_its_lines_but_none_starts_a_record(root_logging: io.StringIO) -> None:
    try:
        raise ValueError(f"bad input {FORGED}\nCRITICAL second forged line")
    except ValueError:
        logging.getLogger("tests").exception("activity %s failed", "a\nb")
    first, *rest = _lines(root_logging.getvalue())
    assert first.endswith("ERROR tests: activity a\\nb failed")
    assert rest and all(line.startswith("  ") for line in rest), rest
    assert any("Traceback (most recent call last):" in line for line in rest)
    assert any("ValueError: bad input x\\r" in line for line in rest), rest


CONTROL_NAMES: dict[str, Callable[[DurableClient, str], Any]] = {
    "orchestrator name": lambda c, iid: c.schedule_new_orchestration(FORGED, instance_id=f"{iid}-new"),
    "version": lambda c, iid: c.schedule_new_orchestration("hello", instance_id=f"{iid}-new", version="1\n2"),
    "instance id": lambda c, iid: c.get_orchestration_state(f"{iid}\r\nforged"),
    "event name": lambda c, iid: c.raise_orchestration_event(iid, FORGED, data=1),
    "operation name": lambda c, iid: c.signal_entity(("counter", "k"), FORGED, 1),
}


@pytest.mark.azurite
@pytest.mark.parametrize("field", list(CONTROL_NAMES))
def test_the_client_refuses_control_characters(settings: TaskHubSettings, hub: TaskHub, field: str) -> None:
    with DurableClient(settings, hub=hub) as client:
        iid = client.schedule_new_orchestration("hello", instance_id=f"live-{field.replace(' ', '-')}")
        with pytest.raises(ValueError, match=f"{field} .* control character") as refused:
            CONTROL_NAMES[field](client, iid)
    assert "\r" not in str(refused.value) and "\n" not in str(refused.value)
