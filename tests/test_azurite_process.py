"""The Azurite a program starts is stopped by that program, not by the terminal's Ctrl-C: in
the same process group it would die at the same moment as the program's server and worker,
which then spend minutes failing to release their leases (the quickstart's ``--serve``)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import StorageEmulator

pytestmark = pytest.mark.azurite


def test_azurite_runs_in_its_own_process_group(azurite: StorageEmulator) -> None:
    if azurite.process is None:
        pytest.skip("Azurite runs in a container here")
    child = azurite.process._process
    assert child is not None and azurite.process.running
    assert os.getpgid(child.pid) != os.getpgrp()
