"""Building blocks shared by the tests: seized tracees, remote tracers and
ways to start a new task (fork, vfork, thread) inside a child."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .bpf import ArgEq, Rule, install_filter, trace_action
from .child import TRACE_DATA, outcome, write_bytes
from .libc import check, syscall
from .proc import Gate, Lab, Pipe, Reporter, run_child_body
from .ptrace import (
    DEFAULT_TIMEOUT,
    PTRACE_CONT,
    PTRACE_EVENT_SECCOMP,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SECCOMP,
    SYSGOOD_TRAP,
    WaitStatus,
    resume,
    seize_and_interrupt,
    wait_stop,
)
from .syscalls import NR

CLONE_VFORK = 0x4000

NEW_TASK_KINDS = ("fork", "vfork", "thread")


@dataclass(frozen=True)
class Tracee:
    pid: int
    gate: Gate

    def go(self) -> None:
        self.gate.open()


def spawn_tracee(
    lab: Lab,
    body: Callable[[], int | None],
    *,
    rules: Sequence[Rule] = (),
    options: int = 0,
    resume_with: int | None = None,
    prepare: Callable[[], None] | None = None,
) -> Tracee:
    """Fork a child that installs `rules`, then waits at a gate before `body`.

    The test seizes it with `options` and brings it to the interrupt stop.
    With `resume_with`, it is resumed with that request and the gate opened;
    without, it is left at the interrupt stop for the test to drive.
    """
    gate = lab.gate()

    def child() -> int | None:
        if prepare is not None:
            prepare()
        if rules:
            install_filter(rules)
        gate.wait()
        return body()

    pid = lab.spawn(child)
    seize_and_interrupt(pid, options)
    tracee = Tracee(pid, gate)
    if resume_with is not None:
        resume(pid, resume_with)
        tracee.go()
    return tracee


def traced_write_rule(effects: Pipe) -> Rule:
    """SECCOMP_RET_TRACE for write() to the test's effects pipe, and only that."""
    return Rule(NR.write, trace_action(TRACE_DATA), (ArgEq(0, effects.w),))


def expect_seccomp_event(pid: int) -> None:
    """Wait for mainline's PTRACE_EVENT_SECCOMP stop."""
    status = wait_stop(pid)
    assert status.is_event(PTRACE_EVENT_SECCOMP), f"expected the seccomp event stop: {status}"
    assert status.stop_sig == signal.SIGTRAP


def expect_syscall_entry_stop(
    pid: int, sysgood: bool = True, timeout: float = DEFAULT_TIMEOUT
) -> WaitStatus:
    """Wait for a syscall-entry-style stop: SIGTRAP|0x80 (TRACESYSGOOD) or SIGTRAP."""
    status = wait_stop(pid, timeout)
    expected = SYSGOOD_TRAP if sysgood else signal.SIGTRAP
    assert status.event == 0 and status.stop_sig == expected, (
        f"expected a syscall stop (sig {expected:#x}), got: {status}"
    )
    return status


def spawn_remote_tracer(
    lab: Lab,
    tracee: int,
    gate: Gate,
    reporter: Reporter,
    *,
    options: int,
    resume_with: int,
    then: str,
) -> int:
    """Fork a tracer (not the test process) for `tracee`: it seizes it, resumes
    it with `resume_with`, opens its gate, waits for the next stop, reports
    it as `stop_status`, then ends as `then` says: "exit" returns at once,
    "wait" sleeps until the test kills it."""

    def tracer() -> int:
        try:
            seize_and_interrupt(tracee, options)
            resume(tracee, resume_with)
            gate.open()
            status = wait_stop(tracee)
        except Exception as exc:
            reporter.send(child_error=f"remote tracer: {exc!r}")
            raise
        reporter.send(stop_status=status.status)
        if then == "wait":
            time.sleep(DEFAULT_TIMEOUT * 2)
            return 1
        return 0

    return lab.spawn(tracer)


def run_in_new_task(kind: str, task: Callable[[], None]) -> None:
    """In a child: run `task` in a new task made by `kind` and wait for it.

    fork: os.fork(); vfork: raw clone(CLONE_VFORK | SIGCHLD) without CLONE_VM,
    so the new process has its own memory (safe for Python) while the kernel
    treats it as a vfork (the parent sleeps until it exits, PTRACE_EVENT_VFORK);
    thread: a Python thread (clone with CLONE_THREAD).
    """
    if kind == "fork":
        pid = os.fork()
        if pid == 0:
            run_child_body(task)
        os.waitpid(pid, 0)
    elif kind == "vfork":
        pid = check(syscall(NR.clone, CLONE_VFORK | signal.SIGCHLD, 0, 0, 0, 0), "clone(VFORK)")
        if pid == 0:
            run_child_body(task)
        os.waitpid(pid, 0)
    elif kind == "thread":
        thread = threading.Thread(target=task)
        thread.start()
        thread.join()
    else:
        raise ValueError(f"unknown task kind {kind!r}")


@dataclass(frozen=True)
class StopKind:
    """A way for a tracer to be asked about a SECCOMP_RET_TRACE syscall."""

    name: str
    options: int  # ptrace options set at seize
    resume_request: int  # what arms the tracee, and resumes it from the stop
    expect_stop: Callable[[int], object]


# Mainline: PTRACE_O_TRACESECCOMP and its event stop.
EVENT_STOP = StopKind("event", PTRACE_O_TRACESECCOMP, PTRACE_CONT, expect_seccomp_event)
# The patch: PTRACE_SECCOMP and its syscall-entry stop.
PTRACE_SECCOMP_STOP = StopKind(
    "ptrace_seccomp", PTRACE_O_TRACESYSGOOD, PTRACE_SECCOMP, expect_syscall_entry_stop
)


@dataclass(frozen=True)
class TwoWriterThreads:
    """A child of two threads, each making one traced write once its gate opens:
    the main thread (`pid`) writes b"m" and reports it as "main", the worker
    (`tid`) writes b"w" and reports it as "worker"."""

    pid: int
    tid: int
    main_gate: Gate
    worker_gate: Gate


def spawn_two_writer_threads(lab: Lab, effects: Pipe, reporter: Reporter) -> TwoWriterThreads:
    main_gate, worker_gate = lab.gate(), lab.gate()

    def worker() -> None:
        reporter.send(worker_tid=threading.get_native_id())
        worker_gate.wait()
        reporter.send(worker=outcome(write_bytes(effects.w, b"w")))

    def child() -> None:
        install_filter([traced_write_rule(effects)])
        thread = threading.Thread(target=worker)
        thread.start()
        main_gate.wait()
        reporter.send(main=outcome(write_bytes(effects.w, b"m")))
        thread.join()

    pid = lab.spawn(child)
    tid = reporter.wait_for("worker_tid")
    lab.track(tid)
    return TwoWriterThreads(pid, tid, main_gate, worker_gate)
