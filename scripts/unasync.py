"""Generate the sync task-hub adapters from their async source, as httpcore does.

``durablehub/taskhub/aio/*.py`` is the source of ``durablehub/taskhub/<same name>.py``, and
``durablehub/async_client.py`` of ``durablehub/client.py``: each is written from its source by
a handful of textual substitutions. ``--check`` exits 1 if a generated
file is out of date (a test runs it), so the twins cannot drift. The generated files are
linted and formatted through their sources: this script also writes ruff's ``extend-exclude``
list in ``pyproject.toml`` from the same pairs, and ``--check`` verifies it, so that list
cannot drift either.

    python scripts/unasync.py          # regenerate
    python scripts/unasync.py --check  # verify
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ROOT / "durablehub" / "taskhub" / "aio"


def pairs() -> list[tuple[Path, Path]]:
    """(async source, generated sync file) for every twin."""
    adapters = [
        (s, ADAPTERS.parent / s.name) for s in sorted(ADAPTERS.glob("*.py")) if s.name != "__init__.py"
    ]
    return [*adapters, (ROOT / "durablehub" / "async_client.py", ROOT / "durablehub" / "client.py")]


SUBSTITUTIONS: list[tuple[str, str]] = [
    (r"\bdurablehub\.taskhub\.aio\.", "durablehub.taskhub."),
    (r"\b(azure\.[a-z_.]+?)\.aio\b", r"\1"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"__aenter__", "__enter__"),
    (r"__aexit__", "__exit__"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncItemPaged\b", "ItemPaged"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
    (r"\bAsync([A-Z]\w*)", r"\1"),
    (r"\basync_", ""),
]


def ruff_excludes(pyproject: str) -> str:
    """``pyproject`` with ruff's ``extend-exclude`` listing exactly the generated files."""
    generated = sorted(target.relative_to(ROOT).as_posix() for _, target in pairs())
    listing = "extend-exclude = [\n" + "".join(f'    "{name}",\n' for name in generated) + "]"
    block = re.compile(r"^extend-exclude = \[\n(?:    \"[^\"\n]*\",\n)*\]", flags=re.MULTILINE)
    if len(block.findall(pyproject)) != 1:
        raise SystemExit("pyproject.toml: expected one extend-exclude list under [tool.ruff]")
    return block.sub(listing, pyproject)


def header(source: Path) -> str:
    return f"# Generated from {source.relative_to(ROOT)} by scripts/unasync.py: edit that file instead.\n"


def convert(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale: list[str] = []
    for source, target in pairs():
        expected = header(source) + convert(source.read_text())
        current = target.read_text() if target.exists() else None
        if current != expected:
            stale.append(str(target.relative_to(ROOT)))
            if not check:
                target.write_text(expected)
    pyproject = ROOT / "pyproject.toml"
    current_toml = pyproject.read_text()
    expected_toml = ruff_excludes(current_toml)
    if current_toml != expected_toml:
        stale.append("pyproject.toml (ruff's extend-exclude)")
        if not check:
            pyproject.write_text(expected_toml)
    if check and stale:
        print("out of date (run python scripts/unasync.py):", *stale, sep="\n  ")
        return 1
    if not check:
        print(f"regenerated {len(stale)} file(s)" + (": " + ", ".join(stale) if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
