"""The README's durabletask-python example, run as written against a sidecar (its address
swapped for the test sidecar's)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Using the Durable Task SDKs") :]
    blocks = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    assert blocks, "the README's durabletask-python example is gone"
    return blocks[0]


def test_the_readme_example_runs(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = readme_example()
    assert "localhost:4001" in code
    exec(compile(code.replace("localhost:4001", address), str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    assert capsys.readouterr().out.strip() == '["Hello Tokyo!", "Hello London!"]'


def test_the_readme_sidecar_has_a_hub_of_its_own() -> None:
    """Durablehub workers on the SDK's hub would take its instances and fail them (they lack
    the SDK's orchestrators): the sidecar example must not reuse the workers' hub."""
    text = README.read_text()
    start = text.index("## Using the Durable Task SDKs")
    end = text.index("\n## ", start + 1)
    section, elsewhere = text[start:end], text[:start] + text[end:]
    hubs = set(re.findall(r"DURABLEHUB_TASK_HUB=(\w+)", section))
    assert hubs, "the sidecar example names no hub"
    shared = {hub for hub in hubs if re.search(rf"\b{hub}\b", elsewhere)}
    assert not shared, f"the sidecar example uses the hub of other sections: {shared}"
