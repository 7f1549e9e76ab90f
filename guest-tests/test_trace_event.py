"""Mainline SECCOMP_RET_TRACE with PTRACE_O_TRACESECCOMP: the event stop, its
message, skipping, redirecting and the filters' re-check; SUSPEND_SECCOMP."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from seccomplib.bpf import ArgEq, Rule, errno_action, trace_action
from seccomplib.child import (
    MAGIC_DENY,
    MAGIC_PLAIN,
    MAGIC_TRACE,
    TRACE_DATA,
    X7_MARKER,
    getppid_as_write,
    getppid_marked,
    getppid_marked_x7,
    outcome,
    write_bytes,
)
from seccomplib.proc import Lab, Pipe
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_EVENT_SECCOMP,
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
    set_syscall_nr,
    skip_syscall,
    syscall_info,
    syscall_walk_to_entry,
    wait_stop,
)
from seccomplib.scenario import spawn_tracee
from seccomplib.syscalls import ARCH, IS_ARM64, NR


def traced_write_rule(effects: Pipe) -> Rule:
    return Rule(NR.write, trace_action(TRACE_DATA), (ArgEq(0, effects.w),))


def expect_seccomp_event(pid: int) -> None:
    status = wait_stop(pid)
    assert status.is_event(PTRACE_EVENT_SECCOMP), f"expected the seccomp event stop: {status}"
    assert status.stop_sig == signal.SIGTRAP


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


@pytest.mark.parametrize("fake", [7, -errno.EXDEV], ids=["value", "error"])
def test_event_skip_with_faked_return(lab: Lab, fake: int) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_CONT,
    )
    expect_seccomp_event(tracee.pid)
    skip_syscall(tracee.pid, fake)
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    expected = {"ret": fake, "errno": 0} if fake >= 0 else {"ret": -1, "errno": -fake}
    assert reporter.collect() == expected
    assert effects.drain() == b""


def test_event_redirect_to_write_runs_it(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    keep: list[object] = []
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_as_write(effects.w, b"r", keep))),
        rules=[Rule(NR.getppid, trace_action(TRACE_DATA))],
        options=PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_CONT,
    )
    expect_seccomp_event(tracee.pid)
    set_syscall_nr(tracee.pid, NR.write)
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect()["ret"] == 1
    assert effects.drain() == b"r"


def recheck_rules() -> list[Rule]:
    """getppid is traced; what it is redirected to is judged on args[1] (the
    same register role on both arches; arm64 re-reads args[0] from orig_x0)."""
    return [
        Rule(NR.getppid, trace_action(TRACE_DATA)),
        Rule(NR.getpid, errno_action(errno.EXDEV), (ArgEq(1, MAGIC_DENY),)),
        Rule(NR.gettid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),)),
    ]


RECHECK_CASES = {
    # name: (marker in args[1], redirect target, expected outcome builder)
    "allowed": (MAGIC_PLAIN, "getpid", "own-pid"),
    "denied-on-recheck": (MAGIC_DENY, "getpid", "exdev"),
    "trace-on-recheck-allows": (MAGIC_TRACE, "gettid", "own-pid"),
}


def expected_recheck(kind: str, pid: int) -> dict[str, int]:
    if kind == "exdev":
        return {"ret": -1, "errno": errno.EXDEV}
    return {"ret": pid, "errno": 0}  # getpid/gettid of a single-threaded child


@pytest.mark.parametrize("case", RECHECK_CASES)
def test_event_redirect_is_rechecked(lab: Lab, case: str) -> None:
    marker, target, kind = RECHECK_CASES[case]
    reporter = lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_marked(marker))),
        rules=recheck_rules(),
        options=PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_CONT,
    )
    expect_seccomp_event(tracee.pid)
    assert syscall_info(tracee.pid).args[1] == marker
    set_syscall_nr(tracee.pid, getattr(NR, target))
    resume(tracee.pid, PTRACE_CONT)
    # lab.wait_gone fails on any stop: a TRACE on the re-check must not stop again.
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == expected_recheck(kind, tracee.pid)


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
    try:
        tracee = spawn_tracee(
            lab,
            body,
            rules=rules,
            options=PTRACE_O_SUSPEND_SECCOMP | PTRACE_O_TRACESECCOMP,
            resume_with=PTRACE_CONT,
        )
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            pytest.skip("PTRACE_O_SUSPEND_SECCOMP needs CONFIG_CHECKPOINT_RESTORE")
        raise
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {
        "write": {"ret": 1, "errno": 0},
        "getppid": {"ret": os.getpid(), "errno": 0},
    }
    assert effects.drain() == b"x"
