"""32-bit tracees (ia32 on x86_64, AArch32 on arm64): seccomp's actions and the
series' stop on the kernel's compat entry paths, which no 64-bit test reaches.
Each test drives /compat/tracee32 (seccomplib/compat.py), whose filter gives
getppid() the action under test; the test process is its parent, so a
getppid() that ran returns the test's pid."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from seccomplib import kmsg
from seccomplib.bpf import (
    RET_ALLOW,
    RET_KILL_PROCESS,
    RET_KILL_THREAD,
    RET_LOG,
    RET_USER_NOTIF,
    errno_action,
    trace_action,
    trap_action,
)
from seccomplib.compat import (
    COMPAT,
    MARK,
    Tracee32,
    get_gpr,
    set_gpr,
    skip_syscall32,
    spawn_tracee32,
)
from seccomplib.proc import Lab
from seccomplib.ptrace import (
    PTRACE_DETACH,
    SYSCALL_INFO_ENTRY,
    SYSCALL_INFO_SECCOMP,
    WaitStatus,
    ptrace,
    resume,
    seize_and_interrupt,
    set_syscall_nr,
    syscall_info,
)
from seccomplib.scenario import EVENT_STOP, PTRACE_SECCOMP_STOP, StopKind, spawn_remote_tracer

TRACE_DATA = 0x1234
SKIPPED_RETURN = 4321
TRACER_WRITE = 0xBAD  # what a tracer writes into the entry stops' borrowed register

STOPS = [
    pytest.param(EVENT_STOP, id="event"),
    pytest.param(PTRACE_SECCOMP_STOP, id="ptrace_seccomp", marks=pytest.mark.ptrace_seccomp),
]


def record_matches(pid: int, message: str) -> bool:
    """seccomp_log()'s audit record of this tracee's compat getppid()."""
    return (
        kmsg.seccomp_record_of(pid, COMPAT.getppid)(message)
        and f" arch={COMPAT.audit_arch:x} " in message
        and " compat=1 " in message
    )


def finished(lab: Lab, tracee: Tracee32) -> WaitStatus:
    status = lab.wait_gone(tracee.pid)
    tracee.output()
    return status


# --------------------------------------------------------------- actions


RUNNING_ACTIONS = {
    "allow": (RET_ALLOW, None),
    "log": (RET_LOG, None),
    "errno": (errno_action(errno.E2BIG), -errno.E2BIG),
    "trace-untraced": (trace_action(TRACE_DATA), -errno.ENOSYS),
    "user-notif-no-listener": (RET_USER_NOTIF, -errno.ENOSYS),
}


@pytest.mark.parametrize("name", list(RUNNING_ACTIONS))
def test_compat_action_return_value(lab: Lab, name: str) -> None:
    """The action's return value for a 32-bit syscall (None: the call ran);
    LOG's record says it was a compat call of the 32-bit arch."""
    action, expected = RUNNING_ACTIONS[name]
    with kmsg.watching() as cursor:
        tracee = spawn_tracee32(lab, action)
        tracee.go()
        status = finished(lab, tracee)
        assert status.exit_code == 0, f"{status}; printed {tracee.text!r}"
        result = tracee.result()
        assert result is not None, tracee.text
        assert result.ret == (os.getpid() if expected is None else expected)
        if action == RET_LOG:
            record = cursor.wait_for(lambda message: record_matches(tracee.pid, message))
            assert record, f"no compat LOG record for pid {tracee.pid}: {cursor.seen[-5:]}"


def test_compat_trap_reports_the_32bit_call(lab: Lab) -> None:
    """TRAP's SIGSYS names the call as the 32-bit arch numbers it, with the data."""
    tracee = spawn_tracee32(lab, trap_action(0x42))
    tracee.go()
    status = finished(lab, tracee)
    assert status.exit_code == 0, f"{status}; printed {tracee.text!r}"
    sigsys = tracee.sigsys()
    assert sigsys is not None, tracee.text
    assert (sigsys.nr, sigsys.arch, sigsys.errno) == (COMPAT.getppid, COMPAT.audit_arch, 0x42)
    assert tracee.result() is None


@pytest.mark.parametrize("action", [RET_KILL_THREAD, RET_KILL_PROCESS], ids=["thread", "process"])
def test_compat_kill_is_sigsys_and_logged(lab: Lab, action: int) -> None:
    with kmsg.watching() as cursor:
        tracee = spawn_tracee32(lab, action)
        tracee.go()
        status = finished(lab, tracee)
        assert status.term_sig == signal.SIGSYS, f"{status}; printed {tracee.text!r}"
        assert tracee.result() is None
        record = cursor.wait_for(lambda message: record_matches(tracee.pid, message))
        assert record, f"no compat kill record for pid {tracee.pid}: {cursor.seen[-5:]}"


# ------------------------------------------------------- at the stop


def stopped_at_getppid(lab: Lab, stop: StopKind) -> Tracee32:
    """A 32-bit tracee at `stop` for its SECCOMP_RET_TRACE getppid()."""
    tracee = spawn_tracee32(lab, trace_action(TRACE_DATA))
    seize_and_interrupt(tracee.pid, stop.options)
    resume(tracee.pid, stop.resume_request)
    tracee.go()
    stop.expect_stop(tracee.pid)
    return tracee


@pytest.mark.parametrize("stop", STOPS)
def test_compat_stop_and_its_registers(lab: Lab, stop: StopKind) -> None:
    """The stop names the 32-bit call (arch, number; the event's data). On
    AArch32 the patch's entry stop borrows r12 as an entry stop does (0,
    writes dropped, the tracee's own value back after); the event stop shows
    the tracee's r12 and keeps the tracer's write, as in mainline."""
    tracee = stopped_at_getppid(lab, stop)
    info = syscall_info(tracee.pid)
    assert (info.arch, info.nr) == (COMPAT.audit_arch, COMPAT.getppid), info
    if stop is EVENT_STOP:
        assert (info.op, info.ret_data) == (SYSCALL_INFO_SECCOMP, TRACE_DATA), info
    else:
        assert info.op == SYSCALL_INFO_ENTRY, info
    register = COMPAT.entry_stop_register
    if register is not None:
        seen = get_gpr(tracee.pid, register)
        assert seen == (MARK if stop is EVENT_STOP else 0), f"r{register} read {seen:#x}"
        set_gpr(tracee.pid, register, TRACER_WRITE)
    resume(tracee.pid, stop.resume_request)
    status = finished(lab, tracee)
    assert status.exit_code == 0, f"{status}; printed {tracee.text!r}"
    result = tracee.result()
    assert result is not None and result.ret == os.getpid(), tracee.text
    if register is not None:
        kept = TRACER_WRITE if stop is EVENT_STOP else MARK
        assert result.mark == kept, f"the tracee found {result.mark:#x} in r{register}"


@pytest.mark.parametrize("change", ["change", "skip"])
@pytest.mark.parametrize("stop", STOPS)
def test_compat_change_or_skip_at_the_stop(lab: Lab, stop: StopKind, change: str) -> None:
    """A 32-bit call changed at the stop runs as the new call (its compat
    number); a skipped one returns what the tracer set."""
    tracee = stopped_at_getppid(lab, stop)
    if change == "change":
        set_syscall_nr(tracee.pid, COMPAT.getpid)
    else:
        skip_syscall32(tracee.pid, SKIPPED_RETURN)
    resume(tracee.pid, stop.resume_request)
    status = finished(lab, tracee)
    assert status.exit_code == 0, f"{status}; printed {tracee.text!r}"
    result = tracee.result()
    assert result is not None, tracee.text
    assert result.ret == (tracee.pid if change == "change" else SKIPPED_RETURN)


@pytest.mark.parametrize("how", ["detach", "tracer-exit"])
@pytest.mark.parametrize("stop", STOPS)
def test_compat_stop_left_without_resume(lab: Lab, stop: StopKind, how: str) -> None:
    """Left at the stop by a detach or its tracer's exit: mainline's event stop
    runs the call; the patch's stop kills the 32-bit tracee before it runs."""
    if how == "detach":
        tracee = stopped_at_getppid(lab, stop)
        ptrace(PTRACE_DETACH, tracee.pid)
    else:
        tracee = spawn_tracee32(lab, trace_action(TRACE_DATA))
        reports = lab.reporter()
        tracer = spawn_remote_tracer(
            lab,
            tracee.pid,
            tracee.gate,
            reports,
            options=stop.options,
            resume_with=stop.resume_request,
            then="exit",
        )
        assert lab.wait_gone(tracer).exit_code == 0
        stopped = WaitStatus(tracee.pid, reports.collect()["stop_status"])
        assert stopped.stopped, f"the tracer saw {stopped}"
    status = finished(lab, tracee)
    if stop is EVENT_STOP:
        assert status.exit_code == 0, f"{status}; printed {tracee.text!r}"
        result = tracee.result()
        assert result is not None and result.ret == os.getpid(), tracee.text
    else:
        assert status.term_sig == signal.SIGKILL, f"{status}; printed {tracee.text!r}"
        assert tracee.result() is None, f"the call ran: {tracee.text!r}"
