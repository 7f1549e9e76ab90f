"""Filters and the armed state across fork, vfork, threads and execve, for
untraced and auto-attached (TRACEFORK/TRACEVFORK/TRACECLONE) children."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

import pytest

from seccomplib.bpf import ArgEq, Rule, errno_action, install_filter, trace_action
from seccomplib.child import TRACE_DATA, block_sigchld, outcome, write_bytes
from seccomplib.proc import Lab, Pipe, Reporter
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_SECCOMP,
    PTRACE_EVENT_STOP,
    PTRACE_EVENT_VFORK,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_O_TRACEVFORK,
    PTRACE_SECCOMP,
    event_msg,
    resume,
    skip_syscall,
    syscall_info,
    wait_stop,
)
from seccomplib.scenario import (
    NEW_TASK_KINDS,
    expect_syscall_entry_stop,
    run_in_new_task,
    spawn_tracee,
)
from seccomplib.syscalls import NR

AUTO_ATTACH = PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE
EVENT_OF_KIND = {
    "fork": PTRACE_EVENT_FORK,
    "vfork": PTRACE_EVENT_VFORK,
    "thread": PTRACE_EVENT_CLONE,
}

# kill(2) on a pid above any pid_max: ESRCH unless a filter says otherwise.
ABSENT_PID = 2_000_000_000


def write_rule(effects: Pipe, action: int) -> Rule:
    return Rule(NR.write, action, (ArgEq(0, effects.w),))


def kill_probe_rule(action: int) -> Rule:
    # int arguments: compare the low 32 bits only
    return Rule(NR.kill, action, (ArgEq(0, ABSENT_PID, wide=False), ArgEq(1, 0, wide=False)))


def find_shell() -> str:
    # The initramfs ships busybox's /bin/sh: without it the test fails, as
    # the execve rules would otherwise go unchecked in a green cell.
    for path in ("/bin/sh", "/usr/bin/sh"):
        if os.access(path, os.X_OK):
            return path
    raise AssertionError("no /bin/sh to execve: the initramfs must provide one")


def exec_kill_probe(shell: str, out: Pipe) -> None:
    """In a child: exec a shell that runs kill -0 on ABSENT_PID (the filtered
    call) and on ABSENT_PID + 1 (a control) and writes both statuses to fd 9."""
    os.dup2(out.w, 9)  # dup2 makes fd 9 inheritable
    script = (
        f"kill -0 {ABSENT_PID} 2>/dev/null; a=$?; "
        f'kill -0 {ABSENT_PID + 1} 2>/dev/null; echo "$a $?" >&9'
    )
    os.execv(shell, [shell, "-c", script])


def child_writer(effects: Pipe, reporter: Reporter, data: bytes = b"c") -> Callable[[], None]:
    def task() -> None:
        reporter.send(child_pid=os.getpid(), child=outcome(write_bytes(effects.w, data)))

    return task


# ------------------------------------------------------------ mainline


@pytest.mark.parametrize("kind", NEW_TASK_KINDS)
def test_filter_is_inherited(lab: Lab, kind: str) -> None:
    effects, reporter = lab.pipe(), lab.reporter()

    def child() -> None:
        install_filter([write_rule(effects, errno_action(errno.EXDEV))])
        run_in_new_task(kind, child_writer(effects, reporter))

    assert lab.wait_gone(lab.spawn(child)).exit_code == 0
    assert reporter.collect()["child"] == {"ret": -1, "errno": errno.EXDEV}
    assert effects.drain() == b""


def test_filter_survives_execve(lab: Lab) -> None:
    shell = find_shell()
    out = lab.pipe()

    def child() -> None:
        install_filter([kill_probe_rule(errno_action(0))])  # fake success
        exec_kill_probe(shell, out)

    assert lab.wait_gone(lab.spawn(child)).exit_code == 0
    assert out.drain() == b"0 1\n"


@pytest.mark.parametrize("tracesecomp", [False, True], ids=["no-event", "event-inherited"])
@pytest.mark.parametrize("kind", NEW_TASK_KINDS)
def test_auto_attached_child_resumed_with_cont(lab: Lab, kind: str, tracesecomp: bool) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    options = AUTO_ATTACH | PTRACE_O_TRACESYSGOOD | (PTRACE_O_TRACESECCOMP if tracesecomp else 0)
    parent = spawn_tracee(
        lab,
        lambda: run_in_new_task(kind, child_writer(effects, reporter)),
        rules=[write_rule(effects, trace_action(TRACE_DATA))],
        options=options,
        prepare=block_sigchld,
        resume_with=PTRACE_CONT,
    )
    status = wait_stop(parent.pid)
    assert status.is_event(EVENT_OF_KIND[kind]), f"expected the {kind} event: {status}"
    new = event_msg(parent.pid)
    lab.track(new)
    assert wait_stop(new).is_event(PTRACE_EVENT_STOP)  # the auto-attach stop
    resume(new, PTRACE_CONT)
    resume(parent.pid, PTRACE_CONT)
    if tracesecomp:
        status = wait_stop(new)
        assert status.is_event(PTRACE_EVENT_SECCOMP), f"expected the seccomp event: {status}"
        assert event_msg(new) == TRACE_DATA
        resume(new, PTRACE_CONT)
        expected, written = {"ret": 1, "errno": 0}, b"c"
    else:
        expected, written = {"ret": -1, "errno": errno.ENOSYS}, b""
    assert lab.wait_gone(new).exit_code == 0
    assert lab.wait_gone(parent.pid).exit_code == 0
    assert reporter.collect()["child"] == expected
    assert effects.drain() == written


# ---------------------------------------------------- PTRACE_SECCOMP only


@pytest.mark.ptrace_seccomp
def test_armed_state_survives_execve(lab: Lab) -> None:
    shell = find_shell()
    out = lab.pipe()
    tracee = spawn_tracee(
        lab,
        lambda: exec_kill_probe(shell, out),
        rules=[kill_probe_rule(trace_action(TRACE_DATA))],
        options=PTRACE_O_TRACESYSGOOD,
        resume_with=PTRACE_SECCOMP,
    )
    # A seized tracee has no exec stop without TRACEEXEC: the next stop is the
    # shell's kill, still armed from before the execve.
    expect_syscall_entry_stop(tracee.pid)
    info = syscall_info(tracee.pid)
    assert info.nr == NR.kill and info.args[0] & 0xFFFFFFFF == ABSENT_PID
    skip_syscall(tracee.pid, 0)  # the shell sees kill succeed
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert out.drain() == b"0 1\n"


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("kind", NEW_TASK_KINDS)
def test_untraced_child_of_armed_tracee_gets_enosys(lab: Lab, kind: str) -> None:
    effects, reporter = lab.pipe(), lab.reporter()

    def body() -> None:
        run_in_new_task(kind, child_writer(effects, reporter))
        reporter.send(parent=outcome(write_bytes(effects.w, b"p")))

    parent = spawn_tracee(
        lab,
        body,
        rules=[write_rule(effects, trace_action(TRACE_DATA))],
        options=PTRACE_O_TRACESYSGOOD,
        prepare=block_sigchld,
        resume_with=PTRACE_SECCOMP,
    )
    # The first stop is the parent's own write: the child neither stopped nor ran it.
    expect_syscall_entry_stop(parent.pid)
    assert reporter.collect()["child"] == {"ret": -1, "errno": errno.ENOSYS}
    assert effects.drain() == b""
    resume(parent.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(parent.pid).exit_code == 0
    assert reporter.collect()["parent"] == {"ret": 1, "errno": 0}
    assert effects.drain() == b"p"


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("child_resume", ["seccomp", "cont"])
@pytest.mark.parametrize("kind", NEW_TASK_KINDS)
def test_auto_attached_child_first_resume_decides(lab: Lab, kind: str, child_resume: str) -> None:
    first_resume_decides(lab, kind, child_resume, tracesecomp=False)


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("child_resume", ["seccomp", "cont"])
def test_auto_attached_child_of_armed_parent_inherits_tracesecomp(
    lab: Lab, child_resume: str
) -> None:
    """The child inherits the options, not the armed state: resumed with CONT
    it gets mainline's PTRACE_EVENT_SECCOMP; resumed with PTRACE_SECCOMP it is
    armed, and the entry stop takes the event's place."""
    first_resume_decides(lab, "fork", child_resume, tracesecomp=True)


def first_resume_decides(lab: Lab, kind: str, child_resume: str, *, tracesecomp: bool) -> None:
    """An armed parent makes a `kind` child that is auto-attached; the child
    is resumed from its first stop with `child_resume` and writes once."""
    effects, reporter = lab.pipe(), lab.reporter()

    def body() -> None:
        run_in_new_task(kind, child_writer(effects, reporter))
        reporter.send(parent=outcome(write_bytes(effects.w, b"p")))

    options = AUTO_ATTACH | PTRACE_O_TRACESYSGOOD | (PTRACE_O_TRACESECCOMP if tracesecomp else 0)
    parent = spawn_tracee(
        lab,
        body,
        rules=[write_rule(effects, trace_action(TRACE_DATA))],
        options=options,
        prepare=block_sigchld,
        resume_with=PTRACE_SECCOMP,
    )
    status = wait_stop(parent.pid)
    assert status.is_event(EVENT_OF_KIND[kind]), f"expected the {kind} event: {status}"
    new = event_msg(parent.pid)
    lab.track(new)
    assert wait_stop(new).is_event(PTRACE_EVENT_STOP)
    resume(new, PTRACE_SECCOMP if child_resume == "seccomp" else PTRACE_CONT)
    resume(parent.pid, PTRACE_SECCOMP)  # keeps the parent armed
    if child_resume == "seccomp":
        expect_syscall_entry_stop(new)
        info = syscall_info(new)
        assert info.nr == NR.write and info.args[0] == effects.w
        resume(new, PTRACE_SECCOMP)
        expected, written = {"ret": 1, "errno": 0}, b"c"
    elif tracesecomp:
        status = wait_stop(new)
        assert status.is_event(PTRACE_EVENT_SECCOMP), f"expected the seccomp event: {status}"
        assert event_msg(new) == TRACE_DATA
        resume(new, PTRACE_CONT)
        expected, written = {"ret": 1, "errno": 0}, b"c"
    else:
        expected, written = {"ret": -1, "errno": errno.ENOSYS}, b""
    assert lab.wait_gone(new).exit_code == 0
    expect_syscall_entry_stop(parent.pid)  # the parent's own write: still armed
    resume(parent.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(parent.pid).exit_code == 0
    report = reporter.collect()
    assert report["child"] == expected
    assert report["parent"] == {"ret": 1, "errno": 0}
    assert effects.drain() == written + b"p"
