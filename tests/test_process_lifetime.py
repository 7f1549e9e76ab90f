"""Children die with the harness, and a hang-up stops it as Ctrl-C does.

Each case runs a real harness process (a small script around harness code)
and signals it from here: SIGKILL must take its make/QEMU-like child along,
SIGHUP and SIGTERM must end it with exit 130.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.status import EXIT_INTERRUPTED

# A child that would outlive its parent: a sleep whose argument marks it as ours.
RUN_A_LONG_CHILD = """
import sys
from pathlib import Path
from harness.core.process import run_logged
print("started", flush=True)
run_logged(["sleep", sys.argv[1]], Path(sys.argv[2]))
"""

# `harness doctor` made slow, so that a signal arrives while it works.
A_SLOW_COMMAND = """
import time
from harness.cli import doctor
from harness.cli.main import main
def slow(path):
    print("working", flush=True)
    time.sleep(60)
doctor.read_requirements = slow
raise SystemExit(main(["doctor"]))
"""


def pids_running(marker: str) -> list[int]:
    """Processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if marker in cmdline and "python" not in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def wait_for(condition: object, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_a_child_dies_when_the_harness_is_killed_outright(tmp_path: Path) -> None:
    marker = f"{os.getpid() % 1000 + 1000}.{time.monotonic_ns() % 1000:03d}"  # sleep's seconds
    harness = subprocess.Popen(
        [sys.executable, "-c", RUN_A_LONG_CHILD, marker, str(tmp_path / "log")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert harness.stdout is not None and harness.stdout.readline() == "started\n"
    assert wait_for(lambda: pids_running(f"sleep {marker}"))
    harness.kill()  # SIGKILL: no handler, no cleanup runs
    harness.wait()
    assert wait_for(lambda: not pids_running(f"sleep {marker}")), "the child outlived the harness"


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_a_hang_up_or_a_terminate_stops_the_harness_with_130(signum: int) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", A_SLOW_COMMAND], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert harness.stdout is not None and harness.stdout.readline() == "working\n"
    harness.send_signal(signum)
    _, err = harness.communicate(timeout=20)
    assert harness.returncode == EXIT_INTERRUPTED
    assert err.strip().splitlines() == ["harness: interrupted; children stopped"]
