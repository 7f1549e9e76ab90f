"""Detaching from, killing, or losing the tracer of a tracee stopped for a
SECCOMP_RET_TRACE syscall. Mainline fails open at its event stop (the syscall
runs after a detach); the patch's stop fails closed (SIGKILL, syscall absent)."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from seccomplib import kmsg
from seccomplib.bpf import install_filter
from seccomplib.child import outcome, write_bytes
from seccomplib.proc import Gate, Lab, Pipe, Reporter
from seccomplib.ptrace import (
    DEFAULT_TIMEOUT,
    PTRACE_CONT,
    PTRACE_DETACH,
    PTRACE_EVENT_SECCOMP,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_KILL,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SECCOMP,
    WaitStatus,
    ptrace,
    resume,
    seize_and_interrupt,
    wait_stop,
)
from seccomplib.scenario import (
    EVENT_STOP,
    PTRACE_SECCOMP_STOP,
    StopKind,
    expect_syscall_entry_stop,
    spawn_remote_tracer,
    spawn_tracee,
    spawn_two_writer_threads,
    traced_write_rule,
)
from seccomplib.syscalls import NR

pytestmark = pytest.mark.race

SYSGOOD = PTRACE_O_TRACESYSGOOD


def assert_killed_before_syscall(status: WaitStatus, report: dict[str, Any], effects: Pipe) -> None:
    assert status.term_sig == signal.SIGKILL, f"expected death by SIGKILL: {status}"
    assert report.get("reached") and "ret" not in report
    assert effects.drain() == b"", "the pending syscall ran"


def assert_syscall_ran(status: WaitStatus, report: dict[str, Any], effects: Pipe) -> None:
    assert status.exit_code == 0, f"expected a normal exit: {status}"
    assert report.get("ret") == 1
    assert effects.drain() == b"x"


def reach_and_write(effects: Pipe, reporter: Reporter) -> None:
    reporter.send(reached=True)
    reporter.send(**outcome(write_bytes(effects.w, b"x")))


def kill_at_stop(pid: int, how: str) -> None:
    if how == "ptrace_kill":
        ptrace(PTRACE_KILL, pid)
    else:
        os.kill(pid, signal.SIGKILL)


def at_stop(lab: Lab, effects: Pipe, reporter: Reporter, stop: StopKind) -> int:
    """A tracee stopped, by `stop`, before its traced write to `effects`."""
    tracee = spawn_tracee(
        lab,
        lambda: reach_and_write(effects, reporter),
        rules=[traced_write_rule(effects)],
        options=stop.options,
        resume_with=stop.resume_request,
    )
    stop.expect_stop(tracee.pid)
    return tracee.pid


def spawn_gated_writer(lab: Lab, effects: Pipe, reporter: Reporter) -> tuple[int, Gate]:
    """A child, not yet traced, with the traced-write filter: once its gate
    opens it reaches and makes its write to `effects`."""
    gate = lab.gate()

    def body() -> None:
        install_filter([traced_write_rule(effects)])
        gate.wait()
        reach_and_write(effects, reporter)

    return lab.spawn(body), gate


# ------------------------------------------------ mainline (event stop)


def test_event_detach_lets_syscall_run(lab: Lab) -> None:
    """Mainline's open point: a detach at PTRACE_EVENT_SECCOMP runs the syscall."""
    effects, reporter = lab.pipe(), lab.reporter()
    pid = at_stop(lab, effects, reporter, EVENT_STOP)
    ptrace(PTRACE_DETACH, pid)
    status = lab.wait_gone(pid)
    assert_syscall_ran(status, reporter.collect(), effects)


@pytest.mark.parametrize("exitkill", [False, True], ids=["no-exitkill", "exitkill"])
def test_event_tracer_exit(lab: Lab, exitkill: bool) -> None:
    """The tracer exits at PTRACE_EVENT_SECCOMP: the syscall runs, unless
    PTRACE_O_EXITKILL kills the tracee."""
    effects, reporter, tracer_reports = lab.pipe(), lab.reporter(), lab.reporter()
    tracee, gate = spawn_gated_writer(lab, effects, reporter)
    options = PTRACE_O_TRACESECCOMP | (PTRACE_O_EXITKILL if exitkill else 0)
    tracer = spawn_remote_tracer(
        lab, tracee, gate, tracer_reports, options=options, resume_with=PTRACE_CONT, then="exit"
    )
    assert lab.wait_gone(tracer).exit_code == 0
    stop = WaitStatus(tracee, tracer_reports.collect()["stop_status"])
    assert stop.is_event(PTRACE_EVENT_SECCOMP)
    status = lab.wait_gone(tracee)
    if exitkill:
        assert_killed_before_syscall(status, reporter.collect(), effects)
    else:
        assert_syscall_ran(status, reporter.collect(), effects)


@pytest.mark.parametrize("how", ["ptrace_kill", "sigkill"])
def test_event_kill_at_stop_skips_syscall(lab: Lab, how: str) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    pid = at_stop(lab, effects, reporter, EVENT_STOP)
    kill_at_stop(pid, how)
    assert_killed_before_syscall(lab.wait_gone(pid), reporter.collect(), effects)


# ------------------------------------------- PTRACE_SECCOMP (fails closed)


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize(
    "sig", [0, signal.SIGUSR1, signal.SIGCHLD], ids=["nosig", "SIGUSR1", "SIGCHLD"]
)
def test_detach_at_stop_kills(lab: Lab, sig: int) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    pid = at_stop(lab, effects, reporter, PTRACE_SECCOMP_STOP)
    assert ptrace(PTRACE_DETACH, pid, 0, sig) == 0
    assert_killed_before_syscall(lab.wait_gone(pid), reporter.collect(), effects)


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("how", ["ptrace_kill", "sigkill"])
def test_kill_at_stop_skips_syscall(lab: Lab, how: str) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    pid = at_stop(lab, effects, reporter, PTRACE_SECCOMP_STOP)
    kill_at_stop(pid, how)
    assert_killed_before_syscall(lab.wait_gone(pid), reporter.collect(), effects)


@pytest.mark.ptrace_seccomp
def test_detach_thread_at_stop_kills_whole_process(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    worker_gate = lab.gate()

    def worker() -> None:
        reporter.send(worker_tid=threading.get_native_id())
        worker_gate.wait()
        reach_and_write(effects, reporter)

    def child() -> None:
        install_filter([traced_write_rule(effects)])
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        reporter.send(main_done=True)

    pid = lab.spawn(child)  # the main thread stays untraced
    tid = reporter.wait_for("worker_tid")
    seize_and_interrupt(tid, SYSGOOD)
    lab.track(tid)
    resume(tid, PTRACE_SECCOMP)
    worker_gate.open()
    expect_syscall_entry_stop(tid)
    ptrace(PTRACE_DETACH, tid)
    status = lab.wait_gone(pid)
    report = reporter.collect()
    assert_killed_before_syscall(status, report, effects)
    assert "main_done" not in report


@pytest.mark.ptrace_seccomp
def test_detach_one_of_two_traced_threads_kills_both(lab: Lab) -> None:
    """Both threads traced and armed: the main thread held at its own stop, the
    worker's stop detached. The whole process dies by SIGKILL, the held thread
    with it, and neither write runs."""
    effects, reporter = lab.pipe(), lab.reporter()
    threads = spawn_two_writer_threads(lab, effects, reporter)
    pid, tid = threads.pid, threads.tid
    for task in (pid, tid):
        seize_and_interrupt(task, SYSGOOD)
        resume(task, PTRACE_SECCOMP)
    threads.main_gate.open()
    expect_syscall_entry_stop(pid)  # held there
    threads.worker_gate.open()
    expect_syscall_entry_stop(tid)
    ptrace(PTRACE_DETACH, tid)
    status = lab.wait_gone(pid)
    assert status.term_sig == signal.SIGKILL, f"expected death by SIGKILL: {status}"
    report = reporter.collect()
    assert "main" not in report and "worker" not in report, report
    assert effects.drain() == b"", "a held or detached write ran"


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("then", ["exit", "killed"])
def test_tracer_death_at_stop_kills(lab: Lab, then: str) -> None:
    effects, reporter, tracer_reports = lab.pipe(), lab.reporter(), lab.reporter()
    tracee, gate = spawn_gated_writer(lab, effects, reporter)
    tracer = spawn_remote_tracer(
        lab,
        tracee,
        gate,
        tracer_reports,
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
        then="exit" if then == "exit" else "wait",
    )
    stop = WaitStatus(tracee, tracer_reports.wait_for("stop_status"))
    assert stop.is_syscall_stop, f"the remote tracer saw: {stop}"
    if then == "killed":
        os.kill(tracer, signal.SIGKILL)
        assert lab.wait_gone(tracer).term_sig == signal.SIGKILL
    else:
        assert lab.wait_gone(tracer).exit_code == 0
    assert_killed_before_syscall(lab.wait_gone(tracee), reporter.collect(), effects)


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("acknowledged", [False, True], ids=["at-stop", "after-resume"])
def test_tracing_thread_exit_while_its_process_lives(lab: Lab, acknowledged: bool) -> None:
    """The tracer is the thread that attached, not its process: when that
    thread exits at the stop the tracee dies, though the tracer's process
    lives on; a thread that resumed the stop first acknowledged it."""
    effects, reporter, tracer_reports = lab.pipe(), lab.reporter(), lab.reporter()
    tracee, gate = spawn_gated_writer(lab, effects, reporter)

    def tracing_thread() -> None:
        try:
            seize_and_interrupt(tracee, SYSGOOD)
            resume(tracee, PTRACE_SECCOMP)
            gate.open()
            status = wait_stop(tracee)
            if acknowledged:
                resume(tracee, PTRACE_SECCOMP)
        except Exception as exc:
            tracer_reports.send(child_error=f"tracing thread: {exc!r}")
            raise
        tracer_reports.send(stop_status=status.status)

    def tracer_process() -> int:
        thread = threading.Thread(target=tracing_thread)
        thread.start()
        thread.join()
        time.sleep(DEFAULT_TIMEOUT * 2)  # lives on until the test kills it
        return 1

    tracer = lab.spawn(tracer_process)
    stop = WaitStatus(tracee, tracer_reports.wait_for("stop_status"))
    assert stop.is_syscall_stop, f"the tracing thread saw: {stop}"
    status = lab.wait_gone(tracee)
    assert os.waitpid(tracer, os.WNOHANG) == (0, 0), "the tracer process should still live"
    if acknowledged:
        assert_syscall_ran(status, reporter.collect(), effects)
    else:
        assert_killed_before_syscall(status, reporter.collect(), effects)


def kill_record_of(pid: int) -> Callable[[str], bool]:
    """seccomp_log()'s record of a SECCOMP_RET_KILL_PROCESS of `pid`'s write."""
    record = kmsg.seccomp_record_of(pid, NR.write)
    killed = (" sig=9 ", " code=0x80000000")
    return lambda message: record(message) and all(part in message for part in killed)


@pytest.mark.ptrace_seccomp
@pytest.mark.parametrize("leaves", ["detach", "exitkill"])
def test_fail_closed_kill_is_logged(lab: Lab, leaves: str) -> None:
    """The cover letter: the kill is logged like SECCOMP_RET_KILL_PROCESS,
    also when PTRACE_O_EXITKILL's SIGKILL got there first."""
    assert kmsg.have_audit(), "kernel without CONFIG_AUDIT: seccomp logs nothing"
    effects, reporter = lab.pipe(), lab.reporter()
    with kmsg.watching() as cursor:
        if leaves == "detach":
            pid = at_stop(lab, effects, reporter, PTRACE_SECCOMP_STOP)
            ptrace(PTRACE_DETACH, pid)
        else:
            tracer_reports = lab.reporter()
            pid, gate = spawn_gated_writer(lab, effects, reporter)
            tracer = spawn_remote_tracer(
                lab,
                pid,
                gate,
                tracer_reports,
                options=SYSGOOD | PTRACE_O_EXITKILL,
                resume_with=PTRACE_SECCOMP,
                then="exit",
            )
            assert WaitStatus(pid, tracer_reports.wait_for("stop_status")).is_syscall_stop
            assert lab.wait_gone(tracer).exit_code == 0
        status = lab.wait_gone(pid)
        record = cursor.wait_for(kill_record_of(pid))
    assert_killed_before_syscall(status, reporter.collect(), effects)
    assert record, f"no kill record for pid {pid}: {cursor.seen[-5:]}"


@pytest.mark.ptrace_seccomp
def test_detach_from_earlier_stop_only_disarms(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    second_gate = lab.gate()

    def body() -> None:
        reporter.send(first=outcome(write_bytes(effects.w, b"1")))
        second_gate.wait()
        reporter.send(second=outcome(write_bytes(effects.w, b"2")))

    tracee = spawn_tracee(
        lab, body, rules=[traced_write_rule(effects)], options=SYSGOOD, resume_with=PTRACE_SECCOMP
    )
    expect_syscall_entry_stop(tracee.pid)
    resume(tracee.pid, PTRACE_SECCOMP)  # acknowledged: runs, stays armed
    assert reporter.wait_for("first") == {"ret": 1, "errno": 0}
    ptrace(PTRACE_INTERRUPT, tracee.pid)  # an unrelated stop, while waiting at the gate
    assert wait_stop(tracee.pid).is_event(PTRACE_EVENT_STOP)
    ptrace(PTRACE_DETACH, tracee.pid)
    second_gate.open()
    status = lab.wait_gone(tracee.pid)
    assert status.exit_code == 0, f"the detached tracee should live: {status}"
    assert reporter.collect()["second"] == {"ret": -1, "errno": errno.ENOSYS}
    assert effects.drain() == b"1"
