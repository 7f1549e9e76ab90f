"""Fixtures, markers, the --repeat option and the PTRACE_SECCOMP probe."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterator

import pytest

from seccomplib.proc import Lab
from seccomplib.ptrace import (
    PTRACE_SECCOMP,
    PTRACE_TRACEME,
    ptrace,
    wait_gone,
    wait_stop,
)

MARKERS = {
    "ptrace_seccomp": "needs the PTRACE_SECCOMP patch; skipped when the kernel probe says EIO",
    "race": "detach/kill/resume test repeated --repeat N times to shake out races",
    "model": "Hypothesis-generated sequences checked against seccomplib.model (--model-examples N)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each test marked 'race' N times (default 1)",
    )
    parser.addoption(
        "--model-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples Hypothesis generates for test_model.py (default: its small fixed budget)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.fixture
def race_iteration(request: pytest.FixtureRequest) -> int:
    return int(getattr(request, "param", 0))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    count = metafunc.config.getoption("repeat")
    if count > 1 and metafunc.definition.get_closest_marker("race"):
        metafunc.fixturenames.append("race_iteration")
        metafunc.parametrize("race_iteration", range(count), indirect=True, ids=lambda i: f"rep{i}")


# ------------------------------------------------------------ the probe

_probe_result: str | None = None  # None: not probed; "": supported; else skip reason


def _probe_ptrace_seccomp() -> str:
    """Ask the kernel: ptrace(0x4213) on a stopped tracee. "" when supported."""
    pid = os.fork()
    if pid == 0:
        try:
            ptrace(PTRACE_TRACEME, 0)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    try:
        stop = wait_stop(pid)
        if stop.stop_sig != signal.SIGSTOP:
            return f"PTRACE_SECCOMP probe: unexpected stop {stop}"
        try:
            ptrace(PTRACE_SECCOMP, pid, 0, 0)
        except OSError as exc:
            name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            return f"kernel has no PTRACE_SECCOMP (0x4213 -> {name})"
        wait_gone(pid)  # resumed like PTRACE_CONT: the child just exits
        pid = 0
        return ""
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def ptrace_seccomp_skip_reason() -> str:
    global _probe_result
    if _probe_result is None:
        _probe_result = _probe_ptrace_seccomp()
    return _probe_result


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("ptrace_seccomp"):
        reason = ptrace_seccomp_skip_reason()
        if reason:
            pytest.skip(reason)


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Children and pipes of one test; every child is killed and reaped after it."""
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()
