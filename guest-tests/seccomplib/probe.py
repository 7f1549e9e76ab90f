"""The PTRACE_SECCOMP probe: ask the kernel once, then classify its answer.

Mainline answers an unknown ptrace request with EIO, so EIO (and only EIO)
means "this kernel has no PTRACE_SECCOMP" and its tests skip. Any other
answer -- another errno, a nonzero return value, a tracee that is not where
the probe put it, or one that does not resume like after PTRACE_CONT -- is a
kernel whose request exists but is broken: the tests that need it must then
error with the probe's result, never skip quietly.

The classification is pure, so it is unit-tested with crafted results
(test_probe.py), on the host as well as in the guest.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from dataclasses import dataclass

import pytest

from .ptrace import (
    DEFAULT_TIMEOUT,
    PTRACE_SECCOMP,
    PTRACE_TRACEME,
    ptrace,
    wait_status,
)

SUPPORTED = "supported"
ABSENT = "absent"
BROKEN = "broken"


@dataclass(frozen=True)
class ProbeResult:
    """What the kernel did when the probe asked it."""

    # The errno of ptrace(PTRACE_SECCOMP) at the tracee's stop; 0 when it
    # succeeded, None when the probe never got as far as asking.
    request_errno: int | None = None
    request_ret: int | None = None  # its return value when it succeeded
    problem: str = ""  # anything else that went wrong, in words

    def describe(self) -> str:
        if self.request_errno is None:
            asked = "ptrace(0x4213) not issued"
        elif self.request_errno:
            name = errno.errorcode.get(self.request_errno, str(self.request_errno))
            asked = f"ptrace(0x4213) -> -1 {name}"
        else:
            asked = f"ptrace(0x4213) -> {self.request_ret}"
        return f"{asked}; {self.problem}" if self.problem else asked


@dataclass(frozen=True)
class Verdict:
    kind: str  # SUPPORTED, ABSENT or BROKEN
    message: str  # the skip reason (ABSENT) or the error text (BROKEN)


def classify(result: ProbeResult) -> Verdict:
    """SUPPORTED only for a clean 0, ABSENT only for EIO, BROKEN for the rest."""
    if result.request_errno == errno.EIO and not result.problem:
        return Verdict(ABSENT, "kernel has no PTRACE_SECCOMP (0x4213 -> EIO)")
    if result.request_errno == 0 and result.request_ret == 0 and not result.problem:
        return Verdict(SUPPORTED, "")
    return Verdict(
        BROKEN,
        f"PTRACE_SECCOMP probe: {result.describe()}; expected 0 and a tracee that resumes "
        "and exits 0 (patched) or EIO (no such request)",
    )


def gate(verdict: Verdict) -> None:
    """Setup of a test that needs PTRACE_SECCOMP: skip on ABSENT, error on BROKEN."""
    if verdict.kind == ABSENT:
        pytest.skip(verdict.message)
    if verdict.kind == BROKEN:
        # A failure in setup is reported as an error of the test, not a skip.
        pytest.fail(verdict.message, pytrace=False)


def probe(timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """ptrace(0x4213, pid, 0, 0) on a tracee in its SIGSTOP signal-delivery stop.

    On a kernel with the request it resumes the tracee like PTRACE_CONT and the
    tracee just exits 0.
    """
    pid = os.fork()
    if pid == 0:
        try:
            ptrace(PTRACE_TRACEME, 0)
            os.kill(os.getpid(), signal.SIGSTOP)
        finally:
            os._exit(0)
    try:
        stop = wait_status(pid, timeout)
        if not stop.stopped or stop.stop_sig != signal.SIGSTOP:
            return ProbeResult(problem=f"expected the tracee's SIGSTOP stop, got: {stop}")
        try:
            ret = ptrace(PTRACE_SECCOMP, pid, 0, 0)
        except OSError as exc:
            return ProbeResult(request_errno=exc.errno or 0)
        try:
            end = wait_status(pid, timeout)
        except TimeoutError as exc:
            return ProbeResult(0, ret, f"then the tracee did not end: {exc}")
        if not end.stopped:
            pid = 0  # reaped
        if end.exit_code != 0:
            return ProbeResult(0, ret, f"then expected the tracee to exit 0, got: {end}")
        return ProbeResult(0, ret)
    except TimeoutError as exc:
        return ProbeResult(problem=str(exc))
    finally:
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError, ChildProcessError):
                while wait_status(pid, timeout).stopped:
                    pass
