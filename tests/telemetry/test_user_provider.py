"""A program that sets up OpenTelemetry the ordinary way (its own TracerProvider, before or after
durablehub is imported, or a vendor's one-call setup) gets one whole trace from its request to
the last activity, with no extra configuration and no warning; and ``opentelemetry-instrument``
users get durablehub's id generator from ``OTEL_PYTHON_ID_GENERATOR=durablehub``.

Each case runs in a fresh interpreter: a process can set its global provider only once."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from durablehub.settings import TaskHubSettings
from durablehub.taskhub.hub import TaskHub
from tests.telemetry import spantree as st
from tests.telemetry.otel_setups import VENDOR_SPAN_PREFIX
from tests.telemetry.processes import ROOT


def _clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}, **extra}


@pytest.mark.azurite
@pytest.mark.parametrize("setup", ["before", "after", "vendor"])
def test_a_provider_made_the_ordinary_way_gets_one_tree(
    settings: TaskHubSettings, hub: TaskHub, setup: str
) -> None:
    assert settings.connection_string is not None
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.telemetry.otel_setups",
            setup,
            settings.connection_string.get_secret_value(),
            settings.task_hub,
            str(settings.partition_count),
        ],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    found = [st.S(attributes={}, **json.loads(line)) for line in run.stdout.splitlines()]
    st.no_duplicates(found)
    request = st.one(found, "POST /orders", "INTERNAL")
    assert {s.trace_id for s in found} == {request.trace_id}, st.describe(found)
    assert st.is_one_tree(found) == request
    # Every activity span chains up to the orchestration span, and that to the client's start.
    start = st.one(found, "create_orchestration:chain", "PRODUCER")
    root = st.one(found, "orchestration:chain", "SERVER")
    assert root.parent_id == start.span_id and start.parent_id == request.span_id
    activities = st.by_name(found, "activity:add_one")
    assert sorted(s.kind for s in activities) == ["CLIENT", "CLIENT", "SERVER", "SERVER"]
    for span in activities:
        assert root in st.ancestors(found, span), st.describe(found)
    if setup == "vendor":  # ids durablehub need not fix are the vendor generator's
        server = [s for s in activities if s.kind == "SERVER"]
        assert all(int(s.span_id, 16) >> 48 == VENDOR_SPAN_PREFIX for s in server), st.describe(server)
    warnings = [line for line in run.stderr.splitlines() if "durablehub" in line]
    assert not warnings, warnings


def test_otel_python_id_generator_names_durablehub() -> None:
    """The SDK's configurator, which ``opentelemetry-instrument`` runs, loads the generator that
    ``OTEL_PYTHON_ID_GENERATOR`` names from the ``opentelemetry_id_generator`` entry points."""
    probe = (
        "from opentelemetry import trace;"
        "from opentelemetry.sdk._configuration import _OTelSDKConfigurator;"
        "_OTelSDKConfigurator().configure();"
        "print(type(trace.get_tracer_provider().id_generator).__qualname__)"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe],
        env=_clean_env(OTEL_PYTHON_ID_GENERATOR="durablehub", OTEL_TRACES_EXPORTER="console"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "DurableIdGenerator", run.stdout + run.stderr
