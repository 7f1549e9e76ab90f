"""Mainline SECCOMP_RET_TRACE with PTRACE_O_TRACESECCOMP: the event stop, its
message, skipping, redirecting and the filters' re-check; SUSPEND_SECCOMP."""

from __future__ import annotations

import errno
import os

from seccomplib.bpf import ArgEq, Rule, errno_action, trace_action
from seccomplib.child import (
    MAGIC_DENY,
    MAGIC_TRACE,
    TRACE_DATA,
    X7_MARKER,
    getppid_marked,
    getppid_marked_x7,
    outcome,
    write_bytes,
)
from seccomplib.proc import Lab
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_EVENTMSG_SYSCALL_ENTRY,
    PTRACE_EVENTMSG_SYSCALL_EXIT,
    PTRACE_O_SUSPEND_SECCOMP,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SYSCALL,
    SYSCALL_INFO_ENTRY,
    SYSCALL_INFO_EXIT,
    SYSCALL_INFO_SECCOMP,
    event_msg,
    get_syscall_nr,
    get_x7,
    resume,
    syscall_info,
    syscall_walk_to_entry,
    wait_stop,
)
from seccomplib.scenario import expect_seccomp_event, spawn_tracee, traced_write_rule
from seccomplib.syscalls import ARCH, IS_ARM64, NR


def test_event_stop_reports_data_then_cont_runs_syscall(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_CONT,
    )
    expect_seccomp_event(tracee.pid)
    assert event_msg(tracee.pid) == TRACE_DATA
    info = syscall_info(tracee.pid)
    assert (info.op, info.arch, info.nr) == (SYSCALL_INFO_SECCOMP, ARCH.audit_arch, NR.write)
    assert info.args[0] == effects.w and info.args[2] == 1
    assert info.ret_data == TRACE_DATA
    assert get_syscall_nr(tracee.pid) == NR.write
    assert effects.drain() == b"", "the syscall ran before the tracer resumed it"
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect()["ret"] == 1
    assert effects.drain() == b"x"


def test_syscall_entry_stop_then_event_then_exit(lab: Lab) -> None:
    """PTRACE_SYSCALL's entry stop comes before the filter's event stop; on
    arm64 x7 is 0 at the entry stop, 1 at the exit stop and the tracee's own
    value at the event stop (seccomp stops do not touch registers)."""
    reporter = lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_marked_x7(MAGIC_TRACE, X7_MARKER))),
        rules=[Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),))],
        options=PTRACE_O_TRACESECCOMP | PTRACE_O_TRACESYSGOOD,
    )
    tracee.go()
    entry = syscall_walk_to_entry(tracee.pid, NR.getppid, 1, MAGIC_TRACE)
    assert entry.op == SYSCALL_INFO_ENTRY
    # The message PTRACE_SECCOMP's entry stop must also give (test_entry_stop).
    assert event_msg(tracee.pid) == PTRACE_EVENTMSG_SYSCALL_ENTRY
    if IS_ARM64:
        assert get_x7(tracee.pid) == 0
    resume(tracee.pid, PTRACE_SYSCALL)
    expect_seccomp_event(tracee.pid)
    if IS_ARM64:
        assert get_x7(tracee.pid) == X7_MARKER
    resume(tracee.pid, PTRACE_SYSCALL)
    status = wait_stop(tracee.pid)
    assert status.is_syscall_stop, f"expected the syscall-exit stop: {status}"
    exit_info = syscall_info(tracee.pid)
    assert exit_info.op == SYSCALL_INFO_EXIT and exit_info.rval == os.getpid()
    assert event_msg(tracee.pid) == PTRACE_EVENTMSG_SYSCALL_EXIT
    if IS_ARM64:
        assert get_x7(tracee.pid) == 1
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": os.getpid(), "errno": 0}


def test_suspend_seccomp_bypasses_filters(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()

    def body() -> None:
        reporter.send(write=outcome(write_bytes(effects.w, b"x")))
        reporter.send(getppid=outcome(getppid_marked(MAGIC_DENY)))

    rules = [
        Rule(NR.write, errno_action(errno.EPERM), (ArgEq(0, effects.w),)),
        Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_DENY),)),
    ]
    # kernel-configs/seccomp.config sets CHECKPOINT_RESTORE, which the option
    # needs: an EINVAL here is a departure, not a reason to skip.
    tracee = spawn_tracee(
        lab,
        body,
        rules=rules,
        options=PTRACE_O_SUSPEND_SECCOMP | PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_CONT,
    )
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {
        "write": {"ret": 1, "errno": 0},
        "getppid": {"ret": os.getpid(), "errno": 0},
    }
    assert effects.drain() == b"x"
