"""Mainline ptrace behaviour that PTRACE_SECCOMP (0x4213) must keep.

These answers come from code the series does not change -- ptrace_check_attach()
before any request is looked at, and ptrace_resume()'s signal check -- so they
are the same whether 0x4213 is PTRACE_SECCOMP or an unknown request. They run,
and must pass, on both variants; they prove nothing about the series beyond
"it did not break this". (Until this module existed they sat among the
patch's tests and counted as patch tests passing.)
"""

from __future__ import annotations

import errno

from seccomplib.child import outcome, write_bytes
from seccomplib.proc import Lab
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SECCOMP,
    PTRACE_SEIZE,
    event_msg,
    ptrace,
    ptrace_errno,
    resume,
)
from seccomplib.scenario import spawn_tracee, traced_write_rule


def test_request_esrch_when_not_traced(lab: Lab) -> None:
    gate = lab.gate()
    pid = lab.spawn(gate.wait)
    assert ptrace_errno(PTRACE_SECCOMP, pid) == errno.ESRCH


def test_request_esrch_when_tracee_is_running(lab: Lab) -> None:
    gate = lab.gate()
    pid = lab.spawn(gate.wait)
    ptrace(PTRACE_SEIZE, pid, 0, 0)  # seized but never stopped: blocked in read()
    assert ptrace_errno(PTRACE_SECCOMP, pid) == errno.ESRCH


def test_request_eio_for_invalid_signal_leaves_tracee_stopped(lab: Lab) -> None:
    """EIO both ways: an unknown request on mainline, signal 65 > _NSIG with
    the series. Either way the tracee must still be in its stop afterwards
    (a patch that resumed before checking the signal would fail here)."""
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=PTRACE_O_TRACESYSGOOD,
    )
    assert ptrace_errno(PTRACE_SECCOMP, tracee.pid, 0, 65) == errno.EIO
    event_msg(tracee.pid)  # ESRCH unless the tracee is still in a ptrace stop
    resume(tracee.pid, PTRACE_CONT)
    tracee.go()
    assert lab.wait_gone(tracee.pid).exit_code == 0
    # Resumed with PTRACE_CONT: not armed, so the TRACE syscall is ENOSYS'd.
    assert reporter.collect() == {"ret": -1, "errno": errno.ENOSYS}
    assert effects.drain() == b""
