"""The repository tracks no binaries or downloads (scripts/check_tree.py, run by the test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_tree  # noqa: E402

sys.path.pop(0)


def test_the_tree_holds_no_binaries() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_tree.py")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_wheel_or_a_big_file_is_named() -> None:
    root = check_tree.ROOT
    wheel = root / "build" / "check-tree-probe.whl"
    big = root / "build" / "check-tree-probe.txt"
    picture = root / "docs" / "dashboard" / "hub.png"
    wheel.parent.mkdir(exist_ok=True)
    try:
        wheel.write_bytes(b"PK\x03\x04\x00\x00binary")
        big.write_text("x" * (check_tree.MAX_BYTES + 1))
        found = check_tree.problems([wheel, big, picture])
    finally:
        wheel.unlink(missing_ok=True)
        big.unlink(missing_ok=True)
    assert found == [
        "build/check-tree-probe.whl: binary",
        f"build/check-tree-probe.txt: {check_tree.MAX_BYTES + 1:,} bytes (over {check_tree.MAX_BYTES:,})",
    ]
