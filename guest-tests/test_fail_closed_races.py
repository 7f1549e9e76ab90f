"""Races around the fail-closed decision of a PTRACE_SECCOMP stop.

The series promises one thing: a SECCOMP_RET_TRACE syscall stopped for a
PTRACE_SECCOMP tracer runs only if a resume request acknowledged the stop;
if the tracer goes away without one, the tracee dies by SIGKILL and the
syscall never runs. The tests in test_detach_kill.py wait politely for each
stop before acting. These do not: the tracer exits right after resuming,
dies at a random point around the stop, or a second tracer attaches while
the first one leaves. Tracer and tracee share a CPU with the tracer
SCHED_FIFO in the rounds that must land before the tracee runs on, and
every round records which path it took, so a run shows the window was
reached (the tally is in the failure text and on the console).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seccomplib import kmsg
from seccomplib.bpf import install_filter
from seccomplib.child import write_bytes
from seccomplib.proc import Gate, Lab, Pipe, Reporter
from seccomplib.ptrace import (
    DEFAULT_TIMEOUT,
    PTRACE_CONT,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SECCOMP,
    PTRACE_SEIZE,
    WALL,
    WaitStatus,
    ptrace_errno,
    resume,
    seize_and_interrupt,
    wait_status,
    wait_stop,
)
from seccomplib.race import Tally, become_fifo, online_cpus, pin_to_cpu, spin_for
from seccomplib.scenario import traced_write_rule

pytestmark = [pytest.mark.race, pytest.mark.ptrace_seccomp]

# Rounds per test run; --repeat N runs each test N times over (the nightly
# race cell: 50). In every cell they are a smoke of the window, not its
# stress: v1's acknowledged-then-exit kill took every one of 200 rounds, and
# these counts still took each death path on both arches (see the tallies).
ACK_ROUNDS = 25
DEATH_ROUNDS = 30
REATTACH_ROUNDS = 20
EXITKILL_ROUNDS = 12


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """A tally of the test's rounds, written to the console when it ends."""
    record = Tally()
    yield record
    with contextlib.suppress(OSError), open("/dev/kmsg", "w") as kmsg:
        kmsg.write(f"harness: race-tally {request.node.nodeid}: {record.summary()}\n")


def wait_for_effect(effects: Pipe, pid: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus | None:
    """Wait until `effects` is readable or `pid` (our child) ends; the status
    if it ended first, None if the effect came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([effects.r], [], [], 0.005)
        if readable:
            return None
        got, status = os.waitpid(pid, os.WNOHANG | WALL)
        if got:
            return WaitStatus(got, status)
    raise TimeoutError(f"tracee {pid}: neither the syscall's effect nor its end within {timeout} s")


def spawn_tracer(lab: Lab, errors: Reporter, body: Callable[[], None]) -> int:
    """A tracer process: `body` runs in it; an exception is reported, not lost."""

    def tracer() -> int:
        try:
            body()
        except Exception as exc:
            errors.send(child_error=f"tracer: {exc!r}")
            return 1
        return 0

    return lab.spawn(tracer)


def tracer_done(lab: Lab, pid: int, errors: Reporter) -> WaitStatus:
    status = lab.wait_gone(pid)
    problem = errors.collect().get("child_error")
    assert not problem, problem
    return status


# ------------------------------------------ acknowledged, then gone at once


def _ack_tracee(lab: Lab, effects: Pipe, cpu: int) -> tuple[int, Gate]:
    """A tracee on `cpu` that makes one traced write per opening of its gate."""
    gate = lab.gate()

    def body() -> None:
        pin_to_cpu(cpu)
        install_filter([traced_write_rule(effects)])
        while True:
            gate.wait()
            if write_bytes(effects.w, b"x").value != 1:
                return

    return lab.spawn(body), gate


def _ack_round(lab: Lab, errors: Reporter, tracee: int, cpu: int, gate: Gate, request: int) -> None:
    """One tracer: arm, see the stop, resume it with `request`, _exit at once."""

    def trace_once() -> None:
        pin_to_cpu(cpu)
        become_fifo()
        seize_and_interrupt(tracee, PTRACE_O_TRACESYSGOOD)
        resume(tracee, PTRACE_SECCOMP)
        gate.open()
        stop = wait_stop(tracee)
        if not stop.is_syscall_stop:
            raise AssertionError(f"expected the entry stop, got {stop}")
        resume(tracee, request)
        os._exit(0)  # at once: before the tracee, on this CPU, runs on

    tracer_done(lab, spawn_tracer(lab, errors, trace_once), errors)


@pytest.mark.parametrize("request_", [PTRACE_SECCOMP, PTRACE_CONT], ids=["seccomp", "cont"])
def test_acknowledged_resume_then_tracer_exit(lab: Lab, tally: Tally, request_: int) -> None:
    """The tracer resumes the stop and _exits at once, on the tracee's CPU and
    SCHED_FIFO, so its exit (and the unlink) comes before the tracee runs on.
    The resume acknowledged the stop: the syscall runs, the tracee lives."""
    cpus = online_cpus()
    effects, errors = lab.pipe(), lab.reporter()
    cpu = cpus[0]
    tracee, gate = _ack_tracee(lab, effects, cpu)
    for round_ in range(ACK_ROUNDS):
        if not tracee:
            cpu = cpus[round_ % len(cpus)]
            tracee, gate = _ack_tracee(lab, effects, cpu)
        _ack_round(lab, errors, tracee, cpu, gate, request_)
        ended = wait_for_effect(effects, tracee)
        if ended is None:
            effects.drain()
            tally.record("ran")
            continue
        tally.record("killed", f"acknowledged with {request_:#x}, then the tracee: {ended}")
        tracee = 0  # the next round needs a new one
    assert not tally.bad, tally.report()
    assert tally.paths["ran"] == ACK_ROUNDS


# ---------------------------------------- tracer death anywhere near the stop


def stopped_within(pid: int, seconds: float, *, block: bool) -> bool:
    """Whether `pid` reported a stop within `seconds`. Blocking lets a tracee
    on this CPU run (and the SIGCHLD of its stop wake us at once); polling
    keeps this CPU busy, for a tracee on another one."""
    if block:
        try:
            wait_stop(pid, seconds)
        except TimeoutError:
            return False
        return True
    deadline = time.monotonic() + seconds
    while True:
        got, status = os.waitpid(pid, os.WNOHANG | WALL)
        if got:
            if not os.WIFSTOPPED(status):
                raise AssertionError(f"the tracee ended instead of stopping: {status:#x}")
            return True
        if time.monotonic() >= deadline:
            return False


def _die(how: str) -> None:
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(0)


@dataclass(frozen=True)
class DeathRound:
    how: str  # "exit" or "sigkill"
    delay: float  # seconds the tracer lives after opening the gate
    tracee_cpu: int
    same_cpu: bool  # tracer pinned beside the tracee, SCHED_FIFO

    def __str__(self) -> str:
        where = "same CPU, FIFO" if self.same_cpu else "any CPU"
        return f"{self.how} after {self.delay * 1000:.2f} ms, {where}"


def _death_round(lab: Lab, plan: DeathRound) -> tuple[str, str | None]:
    effects, results, acks, errors, gate = Pipe(), Reporter(), Reporter(), Reporter(), Gate()
    try:

        def tracee_body() -> None:
            pin_to_cpu(plan.tracee_cpu)
            install_filter([traced_write_rule(effects)])
            gate.wait()
            result = write_bytes(effects.w, b"x")
            results.send(ret=result.value, errno=result.errno)

        tracee = lab.spawn(tracee_body)

        def trace_and_die() -> None:
            if plan.same_cpu:
                pin_to_cpu(plan.tracee_cpu)
                become_fifo()
            seize_and_interrupt(tracee, PTRACE_O_TRACESYSGOOD)
            resume(tracee, PTRACE_SECCOMP)
            gate.open()
            if stopped_within(tracee, plan.delay, block=plan.same_cpu):
                # Said first, so that nothing comes between the resume
                # and the death: on one CPU with SCHED_FIFO, the death
                # then lands before the tracee runs on.
                acks.send(acked=True)
                resume(tracee, PTRACE_SECCOMP)
            _die(plan.how)

        lab.wait_gone(spawn_tracer(lab, errors, trace_and_die))
        ended = lab.wait_gone(tracee)
        problem = errors.collect().get("child_error")
        assert not problem, problem
        acked = bool(acks.collect().get("acked"))
        result = results.collect()
        wrote = effects.drain()
    finally:
        for pipe in (effects, results, acks, errors, gate):
            pipe.close()
    if acked and ended.exit_code == 0 and result.get("ret") == 1 and wrote == b"x":
        return "ran after acknowledgement", None
    if not acked and ended.term_sig == signal.SIGKILL and wrote == b"":
        return "killed, syscall not run", None
    if not acked and ended.exit_code == 0 and result.get("errno") == errno.ENOSYS:
        return "disarmed before the stop (ENOSYS)", None
    said = "acknowledged" if acked else "not acknowledged"
    return f"{said}, wrong end", f"{plan}: {said}, then {ended}, {result}, wrote {wrote!r}"


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_tracer_death_around_the_stop(
    lab: Lab, tally: Tally, how: str, request: pytest.FixtureRequest
) -> None:
    """The tracer resumes the tracee armed, opens its gate and dies 0-2 ms later;
    if it sees the stop first it acknowledges it and dies at once (in half
    the rounds on the tracee's CPU with SCHED_FIFO, so the death lands before
    the tracee runs on). Each round must end one of three ways: the syscall ran
    after an acknowledgement; the tracee was killed and the syscall did not
    run; or the tracer was gone before the stop, so the tracee was no longer
    armed and got mainline's -ENOSYS. Never: the syscall ran without an
    acknowledgement, or the tracee died after one."""
    cpus = online_cpus()
    rng = random.Random(request.node.nodeid)  # the same rounds each run, other ones per repeat
    for _ in range(DEATH_ROUNDS):
        plan = DeathRound(how, rng.uniform(0.0, 0.002), rng.choice(cpus), rng.random() < 0.5)
        tally.record(*_death_round(lab, plan))
    assert not tally.bad, tally.report()


# ---------------------------------------- a second tracer attaches meanwhile


@dataclass(frozen=True)
class ReattachRound:
    delay: float  # seconds tracer A stays after the stop
    tracee_cpu: int
    b_cpu: int


def _reattach_round(lab: Lab, plan: ReattachRound) -> tuple[str, str | None]:
    effects, b_view, errors, gate, b_gate = Pipe(), Reporter(), Reporter(), Gate(), Gate()
    try:

        def tracee_body() -> None:
            pin_to_cpu(plan.tracee_cpu)
            install_filter([traced_write_rule(effects)])
            gate.wait()
            write_bytes(effects.w, b"x")

        tracee = lab.spawn(tracee_body)

        def tracer_a() -> None:
            seize_and_interrupt(tracee, PTRACE_O_TRACESYSGOOD)
            resume(tracee, PTRACE_SECCOMP)
            gate.open()
            stop = wait_stop(tracee)
            if not stop.is_syscall_stop:
                raise AssertionError(f"A expected the entry stop, got {stop}")
            b_gate.open()
            spin_for(plan.delay)
            os._exit(0)

        def tracer_b() -> None:
            pin_to_cpu(plan.b_cpu)
            b_gate.wait()
            deadline = time.monotonic() + 0.05
            result = errno.EPERM
            while time.monotonic() < deadline:
                result = ptrace_errno(PTRACE_SEIZE, tracee, 0, PTRACE_O_TRACESYSGOOD)
                if result != errno.EPERM:
                    break
            view = str(wait_status(tracee)) if result == 0 else "no attach"
            b_view.send(seize=errno.errorcode.get(result, "ok"), view=view)

        a = spawn_tracer(lab, errors, tracer_a)
        b = spawn_tracer(lab, errors, tracer_b)
        tracer_done(lab, a, errors)
        tracer_done(lab, b, errors)
        ended = lab.wait_gone(tracee)
        seen = b_view.collect()
        wrote = effects.drain()
    finally:
        for pipe in (effects, b_view, errors, gate, b_gate):
            pipe.close()
    path = f"B {seen.get('seize')}"
    if ended.term_sig != signal.SIGKILL or wrote:
        return path, f"abandoned stop, yet the tracee {ended}, wrote {wrote!r}"
    if seen.get("seize") not in ("ok", "EPERM", "ESRCH"):
        return path, f"B's PTRACE_SEIZE gave {seen.get('seize')}"
    if seen.get("seize") == "ok" and "killed by SIGKILL" not in seen.get("view", ""):
        return path, f"B attached and saw {seen.get('view')}, not the tracee's death"
    if Path(f"/proc/{tracee}").exists():
        return path, f"tracee {tracee} still listed in /proc after it was reaped"
    return path, None


def test_reattach_while_the_tracer_leaves_the_stop(
    lab: Lab, tally: Tally, request: pytest.FixtureRequest
) -> None:
    """Tracer A leaves the tracee at its stop (exits 0-1 ms after it) while
    tracer B loops PTRACE_SEIZE on the tracee. The stop was abandoned, so the
    tracee dies by SIGKILL without running the syscall; B gets EPERM (A is
    still there, or the tracee is a zombie), ESRCH or a working attach, and
    once attached sees the tracee's death and no stop it never asked for.
    B exits after each round: a task left on its ptrace list would crash the
    kernel there (and show on the console)."""
    cpus = online_cpus()
    rng = random.Random(request.node.nodeid)
    for _ in range(REATTACH_ROUNDS):
        plan = ReattachRound(rng.uniform(0.0, 0.001), rng.choice(cpus), rng.choice(cpus))
        tally.record(*_reattach_round(lab, plan))
    assert not tally.bad, tally.report()


# ------------------------------ a PTRACE_O_EXITKILL tracer leaves its stops


@dataclass(frozen=True)
class ExitkillRound:
    threads: int  # threads of the tracee process, each left at a stop
    tracee_cpu: int
    tracer_cpu: int

    def __str__(self) -> str:
        return f"{self.threads} thread(s) on CPU {self.tracee_cpu}, tracer on CPU {self.tracer_cpu}"


def _exitkill_round(lab: Lab, plan: ExitkillRound) -> tuple[str, str | None]:
    effects, tids, errors, gate = Pipe(), Reporter(), Reporter(), Gate()
    try:

        def tracee_body() -> None:
            pin_to_cpu(plan.tracee_cpu)
            install_filter([traced_write_rule(effects)])

            def writer(index: int) -> None:
                tids.send(**{f"task{index}": threading.get_native_id()})
                gate.wait()
                write_bytes(effects.w, b"x")

            workers = [
                threading.Thread(target=writer, args=(index,)) for index in range(1, plan.threads)
            ]
            for worker in workers:
                worker.start()
            writer(0)
            for worker in workers:
                worker.join()

        with kmsg.watching() as cursor:
            tracee = lab.spawn(tracee_body)
            tasks = [tids.wait_for(f"task{index}") for index in range(plan.threads)]

            def leave_every_stop() -> None:
                pin_to_cpu(plan.tracer_cpu)
                for task in tasks:
                    seize_and_interrupt(task, PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL)
                    resume(task, PTRACE_SECCOMP)
                gate.open(len(tasks))
                for task in tasks:
                    stop = wait_stop(task)
                    if not stop.is_syscall_stop:
                        raise AssertionError(f"task {task}: expected the entry stop, got {stop}")
                os._exit(0)  # every stop unanswered: EXITKILL's SIGKILL, then the unlinks

            tracer_done(lab, spawn_tracer(lab, errors, leave_every_stop), errors)
            ended = lab.wait_gone(tracee)
            # Each stop the tracer left logs its own kill; a missing one
            # shows within milliseconds, so a short wait is enough.
            records = cursor.wait_for_count(kmsg.seccomp_kill_of(tracee), plan.threads, 2.0)
        wrote = effects.drain()
    finally:
        for pipe in (effects, tids, errors, gate):
            pipe.close()
    path = f"{len(records)} of {plan.threads} stops logged"
    if ended.term_sig != signal.SIGKILL or wrote:
        return path, f"{plan}: the tracee {ended}, wrote {wrote!r}"
    if len(records) != plan.threads:
        return path, f"{plan}: {len(records)} kill records for {plan.threads} abandoned stops"
    return path, None


def test_exitkill_tracer_exit_logs_every_abandoned_stop(
    lab: Lab, tally: Tally, request: pytest.FixtureRequest
) -> None:
    """A PTRACE_O_EXITKILL tracer exits with one to three threads of a tracee
    left at their PTRACE_SECCOMP stops, on the other CPU where there is one.
    Its exit sends EXITKILL's SIGKILL, which wakes every thread of the
    tracee, before it unlinks them one by one. A thread that gets to its
    fail-closed decision before its own unlink must still find the stop
    abandoned: the process dies without the write and every stop logs a
    kill record (the cover letter: "also when PTRACE_O_EXITKILL's SIGKILL
    got there first"). v2 marked a stop abandoned only at its unlink; the
    woken thread wins that race rarely here (the 2 ms mutant
    exitkill-window-widened makes it win every round), and once in CI."""
    assert kmsg.have_audit(), "kernel without CONFIG_AUDIT: seccomp logs nothing"
    cpus = online_cpus()
    rng = random.Random(request.node.nodeid)
    for _ in range(EXITKILL_ROUNDS):
        tracee_cpu = rng.choice(cpus)
        others = [cpu for cpu in cpus if cpu != tracee_cpu] or cpus
        plan = ExitkillRound(rng.randint(1, 3), tracee_cpu, rng.choice(others))
        tally.record(*_exitkill_round(lab, plan))
    assert not tally.bad, tally.report()
