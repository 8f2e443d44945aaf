"""Generate the sync task-hub adapters from their async source, as httpcore does.

``durablehub/taskhub/aio/*.py`` is the source; ``durablehub/taskhub/<same name>.py`` is
written from it by a handful of textual substitutions. ``--check`` exits 1 if a generated
file is out of date (a test runs it), so the twins cannot drift.

    python scripts/unasync.py          # regenerate
    python scripts/unasync.py --check  # verify
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "durablehub" / "taskhub" / "aio"
TARGET = ROOT / "durablehub" / "taskhub"

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


def header(name: str) -> str:
    return f"# Generated from durablehub/taskhub/aio/{name} by scripts/unasync.py: edit that file instead.\n"


def convert(text: str) -> str:
    for pattern, replacement in SUBSTITUTIONS:
        text = re.sub(pattern, replacement, text, flags=re.MULTILINE)
    return text


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale: list[str] = []
    for source in sorted(SOURCE.glob("*.py")):
        if source.name == "__init__.py":
            continue
        target = TARGET / source.name
        expected = header(source.name) + convert(source.read_text())
        current = target.read_text() if target.exists() else None
        if current != expected:
            stale.append(str(target.relative_to(ROOT)))
            if not check:
                target.write_text(expected)
    if check and stale:
        print("out of date (run python scripts/unasync.py):", *stale, sep="\n  ")
        return 1
    if not check:
        print(f"regenerated {len(stale)} file(s)" + (": " + ", ".join(stale) if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
