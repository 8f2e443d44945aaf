"""Every ``durablehub`` module can be the first one a program imports: no import cycle.

A cycle only shows when a process imports one particular module of it first, so each module is
imported on its own, in a process in which no durablehub module was ever imported. Starting an
interpreter for each of ~140 modules takes minutes on a busy machine; instead one fresh
interpreter loads the third-party modules that durablehub uses (found in a first child) and
forks a child per module, one per core at a time.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import durablehub

# Runs in a fresh interpreter. The preloads only save time: a cycle inside durablehub shows
# whatever third-party modules are loaded already.
_DRIVER = r"""
import importlib, json, os, sys, traceback


def in_child(work):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            out, code = work(), 0
        except BaseException:
            out, code = traceback.format_exc()[-4000:], 1
        os.write(write, out.encode())
        os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        output = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    return status == 0, output


def third_party():
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException:
            pass
    return json.dumps(sorted(m for m in sys.modules if m.split(".")[0] != "durablehub"))


modules = json.loads(sys.argv[1])
# The preload only saves time (each child would load them again): a cycle inside durablehub
# shows whatever third-party modules are loaded already.
for name in json.loads(in_child(third_party)[1] or "[]"):
    try:
        importlib.import_module(name)
    except BaseException:
        pass
assert not [m for m in sys.modules if m.split(".")[0] == "durablehub"]


def start(module):  # a child importing the module: its pid and the read end of its pipe
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(module)
            out, code = "", 0
        except BaseException:
            out, code = traceback.format_exc()[-4000:], 1
        os.write(write, out.encode())  # under a pipe's buffer: never blocks
        os._exit(code)
    os.close(write)
    return pid, read


failures = {}
running = []  # one child per core at a time
for module in [*modules, None]:
    while running and (module is None or len(running) >= (os.cpu_count() or 1)):
        name, pid, read = running.pop(0)
        with os.fdopen(read, "rb") as pipe:
            output = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failures[name] = output
    if module is not None:
        running.append((module, *start(module)))
print(json.dumps(failures))
"""


def all_modules() -> list[str]:
    root = Path(durablehub.__file__).parent
    found = ["durablehub"]
    for info in pkgutil.walk_packages([str(root)], prefix="durablehub."):
        if info.name.rsplit(".", 1)[-1] != "__main__":  # importing it runs the program
            found.append(info.name)
    return sorted(found)


def test_the_module_list_is_complete() -> None:
    modules = all_modules()
    assert {"durablehub.cli.instances", "durablehub.cli.main", "durablehub.taskhub.aio.queues"} <= set(
        modules
    )
    assert len(modules) >= 80


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_every_module_imports_first_in_a_fresh_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _DRIVER, json.dumps(all_modules())],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n\n".join(f"{module}:\n{trace}" for module, trace in failures.items())


def test_python_dash_m_durablehub_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "durablehub", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "poison" in done.stdout and "entity" in done.stdout
