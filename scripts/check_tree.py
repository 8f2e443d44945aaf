"""Fail if the repository tracks a binary file or a very large one.

Wheels, archives, profiler dumps and downloads belong in .gitignore, never in git: a committed
wheel stays in every clone for ever. The only binaries the tree may hold are the pictures under
docs/ (screenshots the README shows). The test command runs this on the files git tracks (the
index), so a binary is caught before it lands.

    python scripts/check_tree.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PICTURES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
MAX_BYTES = 1_000_000
# git's own test for binary content: a NUL byte in the first 8,000 bytes.
SNIFF_BYTES = 8000


def tracked_files() -> list[Path] | None:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an unpacked source archive): nothing to check
    return [ROOT / name for name in listing.split("\0") if name]


def problems(files: list[Path]) -> list[str]:
    found: list[str] = []
    for path in files:
        if not path.is_file():
            continue  # deleted in the work tree, not yet in the index
        name = path.relative_to(ROOT).as_posix()
        if name.startswith("docs/") and path.suffix.lower() in PICTURES:
            continue
        size = path.stat().st_size
        if size > MAX_BYTES:
            found.append(f"{name}: {size:,} bytes (over {MAX_BYTES:,})")
            continue
        with path.open("rb") as stream:
            if b"\0" in stream.read(SNIFF_BYTES):
                found.append(f"{name}: binary")
    return found


def main() -> int:
    files = tracked_files()
    if files is None:
        print("check_tree: not a git checkout, nothing to check")
        return 0
    found = problems(files)
    if found:
        print("binary or oversized files tracked by git (remove them: git rm --cached FILE, and list")
        print("them in .gitignore; pictures for the docs go under docs/):", *found, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
