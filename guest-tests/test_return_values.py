"""Mainline seccomp return values, each checked by its effect on a write(2)
into a pipe the test reads (did the syscall run?) and on the child's fate."""

from __future__ import annotations

import errno
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from seccomplib import kmsg, notify
from seccomplib.bpf import (
    RET_ALLOW,
    RET_KILL_PROCESS,
    RET_KILL_THREAD,
    RET_LOG,
    RET_USER_NOTIF,
    SECCOMP_FILTER_FLAG_NEW_LISTENER,
    ArgEq,
    Rule,
    errno_action,
    install_filter,
    trace_action,
    trap_action,
)
from seccomplib.child import make_undumpable, outcome, write_bytes
from seccomplib.proc import Lab, Pipe, thread_gone
from seccomplib.ptrace import DEFAULT_TIMEOUT
from seccomplib.sigsys import SYS_SECCOMP, SigsysRecorder
from seccomplib.syscalls import ARCH, NR


def write_rule(pipe: Pipe, action: int) -> Rule:
    """The filter rule every test here uses: write(2) on this pipe only."""
    return Rule(NR.write, action, (ArgEq(0, pipe.w),))


@dataclass
class Run:
    pid: int
    exit_code: int | None
    term_sig: int | None
    report: dict[str, Any]
    effects: bytes


def run_filtered_write(lab: Lab, actions: Sequence[int], undumpable: bool = False) -> Run:
    """Fork a child that stacks one filter per action (oldest first), then
    writes b"x" into the effects pipe and reports the outcome."""
    effects, reporter = lab.pipe(), lab.reporter()

    def child() -> None:
        if undumpable:
            make_undumpable()
        for action in actions:
            install_filter([write_rule(effects, action)])
        reporter.send(reached=True)
        reporter.send(**outcome(write_bytes(effects.w, b"x")))

    pid = lab.spawn(child)
    status = lab.wait_gone(pid)
    report = reporter.collect()
    assert report.get("reached"), f"child failed before the syscall: {status}"
    return Run(pid, status.exit_code, status.term_sig, report, effects.drain())


def test_allow_runs_the_syscall(lab: Lab) -> None:
    run = run_filtered_write(lab, [RET_ALLOW])
    assert run.exit_code == 0
    assert run.report["ret"] == 1 and run.effects == b"x"


def test_log_runs_the_syscall(lab: Lab) -> None:
    # ALLOW passes this too: test_log_writes_an_audit_record tells them apart.
    run = run_filtered_write(lab, [RET_LOG])
    assert run.exit_code == 0
    assert run.report["ret"] == 1 and run.effects == b"x"


def seccomp_record_of(pid: int) -> Callable[[str], bool]:
    return kmsg.seccomp_record_of(pid, NR.write)


def test_log_writes_an_audit_record(lab: Lab) -> None:
    """What LOG adds to ALLOW is the record: an ALLOW'd write logs none, the
    LOG'd write right after it logs one with code=SECCOMP_RET_LOG."""
    # The seccomp config fragment asks for CONFIG_AUDIT: without it there is no record.
    assert kmsg.have_audit(), "kernel without CONFIG_AUDIT: SECCOMP_RET_LOG writes no record"
    logged = Path("/proc/sys/kernel/seccomp/actions_logged").read_text().split()
    assert "log" in logged, f"actions_logged leaves out log: {logged}"
    with kmsg.watching() as cursor:
        allowed = run_filtered_write(lab, [RET_ALLOW])
        run = run_filtered_write(lab, [RET_LOG])
        record = cursor.wait_for(seccomp_record_of(run.pid))
        assert record, f"no audit record for the LOG'd write of pid {run.pid}: {cursor.seen[-5:]}"
        # Records come out in order: any for the ALLOW'd write is seen by now.
        assert not any(seccomp_record_of(allowed.pid)(m) for m in cursor.seen), cursor.seen
    assert f" code={RET_LOG:#x}" in record, record
    assert run.report["ret"] == 1 and run.effects == b"x"


@pytest.mark.parametrize(
    ("data", "expected_errno"),
    [
        (errno.EPERM, errno.EPERM),
        (errno.EXDEV, errno.EXDEV),
        (4095, 4095),
        (4096, 4095),
        (0xFFFF, 4095),
    ],
    ids=["EPERM", "EXDEV", "max", "capped-4096", "capped-0xffff"],
)
def test_errno_sets_errno_and_skips(lab: Lab, data: int, expected_errno: int) -> None:
    run = run_filtered_write(lab, [errno_action(data)])
    assert run.exit_code == 0
    assert (run.report["ret"], run.report["errno"]) == (-1, expected_errno)
    assert run.effects == b""


def test_errno_zero_returns_zero_without_running(lab: Lab) -> None:
    run = run_filtered_write(lab, [errno_action(0)])
    assert run.exit_code == 0
    assert (run.report["ret"], run.report["errno"]) == (0, 0)
    assert run.effects == b""


def test_trace_without_tracer_is_enosys(lab: Lab) -> None:
    run = run_filtered_write(lab, [trace_action(0x1234)])
    assert run.exit_code == 0
    assert (run.report["ret"], run.report["errno"]) == (-1, errno.ENOSYS)
    assert run.effects == b""


@pytest.mark.parametrize(
    "action",
    [RET_KILL_PROCESS, RET_KILL_THREAD, 0x10000000],
    ids=["kill_process", "kill_thread", "unknown-action"],
)
def test_kill_actions_single_thread_die_by_sigsys(lab: Lab, action: int) -> None:
    # KILL_THREAD on the last thread and any unknown action kill the process too.
    run = run_filtered_write(lab, [action], undumpable=True)
    assert run.term_sig == signal.SIGSYS
    assert "ret" not in run.report and run.effects == b""


def _run_killed_worker(
    lab: Lab, action: int
) -> tuple[int | None, int | None, dict[str, Any], bytes]:
    """A worker thread makes the killing call; the main thread reports whether
    it survived the worker's death."""
    effects, reporter = lab.pipe(), lab.reporter()

    def worker() -> None:
        reporter.send(worker_reached=True)
        reporter.send(worker=outcome(write_bytes(effects.w, b"x")))

    def child() -> None:
        make_undumpable()
        install_filter([write_rule(effects, action)])
        thread = threading.Thread(target=worker)
        thread.start()
        tid = thread.native_id
        assert tid is not None
        reporter.send(main_survived=thread_gone(tid))

    status = lab.wait_gone(lab.spawn(child))
    return status.exit_code, status.term_sig, reporter.collect(), effects.drain()


def test_kill_thread_kills_only_the_calling_thread(lab: Lab) -> None:
    exit_code, term_sig, report, effects = _run_killed_worker(lab, RET_KILL_THREAD)
    assert (exit_code, term_sig) == (0, None)
    assert report.get("worker_reached") and "worker" not in report
    assert report.get("main_survived") is True
    assert effects == b""


def test_kill_process_kills_every_thread(lab: Lab) -> None:
    _exit_code, term_sig, report, effects = _run_killed_worker(lab, RET_KILL_PROCESS)
    assert term_sig == signal.SIGSYS
    assert report.get("worker_reached") and "worker" not in report
    assert "main_survived" not in report
    assert effects == b""


def test_trap_delivers_sigsys_with_siginfo(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    data = 0x0BAD

    def child() -> None:
        recorder = SigsysRecorder()
        recorder.install()
        install_filter([write_rule(effects, trap_action(data))])
        write_bytes(effects.w, b"x")
        reporter.send(signals=[vars(info) for info in recorder.received])

    status = lab.wait_gone(lab.spawn(child))
    assert status.exit_code == 0, f"child did not survive the trap: {status}"
    signals = reporter.collect()["signals"]
    assert signals == [
        {
            "signo": signal.SIGSYS,
            "errno": data,
            "code": SYS_SECCOMP,
            "syscall": NR.write,
            "arch": ARCH.audit_arch,
        }
    ]
    assert effects.drain() == b""


def test_user_notif_supervisor_answers(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    parent_sock, child_sock = socket.socketpair()
    try:

        def child() -> None:
            listener = install_filter(
                [write_rule(effects, RET_USER_NOTIF)], flags=SECCOMP_FILTER_FLAG_NEW_LISTENER
            )
            socket.send_fds(child_sock, [b"L"], [listener])
            reporter.send(faked=outcome(write_bytes(effects.w, b"1")))
            reporter.send(denied=outcome(write_bytes(effects.w, b"2")))
            reporter.send(continued=outcome(write_bytes(effects.w, b"3")))

        pid = lab.spawn(child)
        # A child that fails before sending would leave recv_fds() waiting for
        # ever: drop our copy of its end (its exit then reads as EOF) and bound
        # the wait (for a child that hangs instead).
        child_sock.close()
        parent_sock.settimeout(DEFAULT_TIMEOUT)
        try:
            _msg, fds, _flags, _addr = socket.recv_fds(parent_sock, 16, 1)
        except TimeoutError:
            raise AssertionError(f"child {pid} sent no listener in {DEFAULT_TIMEOUT} s") from None
        assert fds, f"child {pid} ended without sending its listener: {lab.wait_gone(pid)}"
        listener = fds[0]
        try:
            first = notify.receive(listener)
            assert (first.pid, first.nr, first.arch) == (pid, NR.write, ARCH.audit_arch)
            assert first.args[0] == effects.w and first.args[2] == 1
            notify.respond(listener, first.id, value=42)
            second = notify.receive(listener)
            notify.respond(listener, second.id, error=-errno.EXDEV)
            third = notify.receive(listener)
            notify.respond(listener, third.id, flags=notify.SECCOMP_USER_NOTIF_FLAG_CONTINUE)
        finally:
            os.close(listener)
        status = lab.wait_gone(pid)
    finally:
        parent_sock.close()
        child_sock.close()
    assert status.exit_code == 0
    report = reporter.collect()
    assert report["faked"] == {"ret": 42, "errno": 0}
    assert report["denied"] == {"ret": -1, "errno": errno.EXDEV}
    assert report["continued"] == {"ret": 1, "errno": 0}
    assert effects.drain() == b"3"  # only the CONTINUE'd call really ran


@dataclass(frozen=True)
class Expected:
    errno: int | None = None  # the call failed with this errno
    killed: bool = False  # the process died by SIGSYS


PRECEDENCE_CASES = {
    # oldest filter first; the least permissive action wins whatever the order
    "errno-over-trace": ([errno_action(errno.EXDEV), trace_action(1)], Expected(errno.EXDEV)),
    "trace-then-errno": ([trace_action(1), errno_action(errno.EXDEV)], Expected(errno.EXDEV)),
    "trace-over-log": ([RET_LOG, trace_action(1)], Expected(errno.ENOSYS)),
    "trace-over-allow": ([trace_action(1), RET_ALLOW], Expected(errno.ENOSYS)),
    "kill-over-errno": ([errno_action(errno.EPERM), RET_KILL_PROCESS], Expected(killed=True)),
    "errno-over-user-notif": ([RET_USER_NOTIF, errno_action(errno.EPERM)], Expected(errno.EPERM)),
    # a tie: the newest filter's data
    "tie-newest-data": (
        [errno_action(errno.EPERM), errno_action(errno.EXDEV)],
        Expected(errno.EXDEV),
    ),
    "tie-newest-data-reversed": (
        [errno_action(errno.EXDEV), errno_action(errno.EPERM)],
        Expected(errno.EPERM),
    ),
}


@pytest.mark.parametrize("case", PRECEDENCE_CASES)
def test_stacked_filters_precedence(lab: Lab, case: str) -> None:
    actions, expected = PRECEDENCE_CASES[case]
    run = run_filtered_write(lab, actions, undumpable=expected.killed)
    assert run.effects == b""
    if expected.killed:
        assert run.term_sig == signal.SIGSYS and "ret" not in run.report
    else:
        assert run.exit_code == 0
        assert (run.report["ret"], run.report["errno"]) == (-1, expected.errno)
