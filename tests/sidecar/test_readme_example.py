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
