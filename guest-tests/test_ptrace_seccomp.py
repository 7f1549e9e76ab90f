"""PTRACE_SECCOMP (the patch): the request's return value, its
syscall-entry stop, the requests that do not resume it (they leave it armed
and unacknowledged), and how each resume request -- with a signal, by a
single step or by SYSEMU too -- arms or disarms the tracee (per thread).
All skipped on kernels whose probe says the request is unknown. Its answers
that mainline gives anyway (ESRCH, EIO) are in test_mainline_behaviour.py."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from seccomplib.bpf import ArgEq, Rule, trace_action
from seccomplib.child import (
    MAGIC_TRACE,
    TRACE_DATA,
    X7_MARKER,
    getppid_marked_x7,
    outcome,
    write_bytes,
)
from seccomplib.proc import Lab, Pipe, Reporter
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_DETACH,
    PTRACE_EVENT_STOP,
    PTRACE_EVENTMSG_SYSCALL_ENTRY,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_O_EXITKILL,
    PTRACE_O_SUSPEND_SECCOMP,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SECCOMP,
    PTRACE_SETOPTIONS,
    PTRACE_SINGLESTEP,
    PTRACE_SYSEMU,
    SYSCALL_INFO_ENTRY,
    SYSCALL_INFO_NONE,
    event_msg,
    get_pc,
    get_syscall_nr,
    get_x7,
    ptrace,
    ptrace_errno,
    resume,
    rewrite_regs,
    seize_and_interrupt,
    set_return_value,
    set_x7,
    syscall_info,
    syscall_walk_to_entry,
    syscall_walk_to_exit,
    wait_stop,
)
from seccomplib.scenario import (
    Tracee,
    expect_syscall_entry_stop,
    spawn_tracee,
    spawn_two_writer_threads,
    traced_write_rule,
)
from seccomplib.syscalls import ARCH, IS_ARM64, NR
from seccomplib.twowrites import CODE, two_writes
from seccomplib.x7call import x7_syscall

pytestmark = pytest.mark.ptrace_seccomp

SYSGOOD = PTRACE_O_TRACESYSGOOD


def assert_write_entry(pid: int, effects: Pipe) -> None:
    """The stopped tracee is at the entry of write(effects, b"?", 1), not yet run."""
    info = syscall_info(pid)
    assert (info.op, info.arch, info.nr) == (SYSCALL_INFO_ENTRY, ARCH.audit_arch, NR.write)
    assert info.args[0] == effects.w and info.args[2] == 1
    assert get_syscall_nr(pid) == NR.write


# ----------------------------------------------------- the request itself


def test_request_returns_zero_and_resumes(lab: Lab) -> None:
    effects, plain, reporter = lab.pipe(), lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(plain.w, b"a"))),
        rules=[traced_write_rule(effects)],
        options=SYSGOOD,
    )
    assert ptrace(PTRACE_SECCOMP, tracee.pid, 0, 0) == 0
    tracee.go()
    # An allowed syscall runs with no stop at all: the next event is the exit.
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": 1, "errno": 0}
    assert plain.drain() == b"a"


# ------------------------------------------------------------ the stop


@pytest.mark.parametrize("sysgood", [True, False], ids=["tracesysgood", "plain-sigtrap"])
def test_entry_stop(lab: Lab, sysgood: bool) -> None:
    effects, plain, reporter = lab.pipe(), lab.pipe(), lab.reporter()

    def body() -> None:
        reporter.send(allowed=outcome(write_bytes(plain.w, b"a")))
        reporter.send(traced=outcome(write_bytes(effects.w, b"x")))

    tracee = spawn_tracee(
        lab,
        body,
        rules=[traced_write_rule(effects)],
        options=SYSGOOD if sysgood else 0,
        resume_with=PTRACE_SECCOMP,
    )
    expect_syscall_entry_stop(tracee.pid, sysgood)
    assert plain.drain() == b"a", "the allowed write should have run without a stop"
    assert effects.drain() == b"", "the traced write ran before the tracer resumed it"
    info = syscall_info(tracee.pid)
    if sysgood:
        assert_write_entry(tracee.pid, effects)
    else:
        assert info.op == SYSCALL_INFO_NONE  # as at a PTRACE_SYSCALL stop without SYSGOOD
        assert get_syscall_nr(tracee.pid) == NR.write
    # What a PTRACE_SYSCALL entry stop reports, never the filter's RET_DATA.
    assert event_msg(tracee.pid) == PTRACE_EVENTMSG_SYSCALL_ENTRY
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0  # no exit stop, no other stop
    assert reporter.collect()["traced"] == {"ret": 1, "errno": 0}
    assert effects.drain() == b"x"


@pytest.mark.skipif(not IS_ARM64, reason="the x7 syscall-stop convention is arm64's")
def test_arm64_x7_at_entry_stop(lab: Lab) -> None:
    reporter = lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_marked_x7(MAGIC_TRACE, X7_MARKER))),
        rules=[Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),))],
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
    )
    expect_syscall_entry_stop(tracee.pid)
    assert get_x7(tracee.pid) == 0  # PTRACE_SYSCALL_ENTER, like a PTRACE_SYSCALL entry stop
    exit_info = syscall_walk_to_exit(tracee.pid)
    assert exit_info.rval == os.getpid()
    assert get_x7(tracee.pid) == 1  # PTRACE_SYSCALL_EXIT
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": os.getpid(), "errno": 0}


@pytest.mark.skipif(not IS_ARM64, reason="the x7 syscall-stop convention is arm64's")
def test_arm64_x7_is_the_tracees_own_after_the_stop(lab: Lab) -> None:
    """The stop borrows x7 and gives it back: the tracer's write to it is
    dropped, and the tracee finds its own value there after the syscall."""
    reporter = lab.reporter()

    def body() -> None:
        ret, x7 = x7_syscall(NR.getppid, 0, MAGIC_TRACE, X7_MARKER)
        reporter.send(ret=ret, x7=x7)

    tracee = spawn_tracee(
        lab,
        body,
        rules=[Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),))],
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
    )
    expect_syscall_entry_stop(tracee.pid)
    assert get_x7(tracee.pid) == 0
    set_x7(tracee.pid, 0xBAD)
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": os.getpid(), "x7": X7_MARKER}


@dataclass(frozen=True)
class AtStop:
    """A request that does not resume, issued at the armed stop; it checks
    its own answer. The cover letter: such requests leave the armed state
    alone, and only a resume request acknowledges the stop."""

    issue: Callable[[int], object]
    trap_pending: bool = False  # a PTRACE_EVENT_STOP follows the syscall


def listen_eio(pid: int) -> None:
    # EIO, as on mainline at any stop but a PTRACE_EVENT_STOP.
    assert ptrace_errno(PTRACE_LISTEN, pid) == errno.EIO


def interrupt(pid: int) -> None:
    # Already stopped: 0, and a PTRACE_EVENT_STOP trap waits for the next exit to user mode.
    assert ptrace(PTRACE_INTERRUPT, pid) == 0


def set_other_options(pid: int) -> None:
    # Rewrites every option bit of ->ptrace (the armed bit sits above them).
    assert ptrace(PTRACE_SETOPTIONS, pid, 0, SYSGOOD | PTRACE_O_EXITKILL) == 0


NON_RESUME_REQUESTS = {
    "listen": AtStop(listen_eio),
    "interrupt": AtStop(interrupt, trap_pending=True),
    "setoptions": AtStop(set_other_options),
    "regset": AtStop(rewrite_regs),  # GETREGSET then SETREGSET of NT_PRSTATUS
}


@pytest.mark.parametrize(
    ("name", "then"),
    [(name, then) for name in NON_RESUME_REQUESTS for then in ("seccomp", "detach")],
    ids=lambda value: value,
)
def test_non_resume_request_at_stop_leaves_it_armed(lab: Lab, name: str, then: str) -> None:
    """LISTEN, INTERRUPT, SETOPTIONS and register access are no resume
    requests. At the armed stop they must leave the stop and its fail-closed
    decision alone: a later PTRACE_SECCOMP runs the syscall and the tracee
    lives, stopping again at its next traced write; a detach instead still
    kills before the syscall. A request that acknowledged the stop fails the
    detach case; one that dropped the stop's state fails the seccomp case
    (the resume then acknowledges nothing and the tracee kills itself). The
    armed bit itself cannot show here: the tracee runs again only through a
    resume request or a detach, and each of them rewrites it."""
    at_stop = NON_RESUME_REQUESTS[name]
    tracee, effects, reporter = armed_for_two_writes(lab)
    expect_syscall_entry_stop(tracee.pid)
    at_stop.issue(tracee.pid)
    assert_write_entry(tracee.pid, effects)  # still in that stop, the syscall unchanged
    if then == "detach":
        ptrace(PTRACE_DETACH, tracee.pid)
        status = lab.wait_gone(tracee.pid)
        assert status.term_sig == signal.SIGKILL, f"expected death by SIGKILL: {status}"
        assert "first" not in reporter.collect() and effects.drain() == b""
        return
    resume(tracee.pid, PTRACE_SECCOMP)
    written = b""
    if at_stop.trap_pending:
        status = wait_stop(tracee.pid)  # INTERRUPT's trap, once the first write has run
        assert status.is_event(PTRACE_EVENT_STOP), f"expected the interrupt stop: {status}"
        written = effects.drain()
        assert written == b"1"
        resume(tracee.pid, PTRACE_SECCOMP)
    expect_syscall_entry_stop(tracee.pid)  # the second write, armed by that resume
    assert written + effects.drain() == b"1"
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"first": {"ret": 1, "errno": 0}, "second": {"ret": 1, "errno": 0}}
    assert effects.drain() == b"2"


def test_armed_takes_precedence_over_tracesecomp(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=SYSGOOD | PTRACE_O_TRACESECCOMP,
        resume_with=PTRACE_SECCOMP,
    )
    expect_syscall_entry_stop(tracee.pid)  # not PTRACE_EVENT_SECCOMP
    assert_write_entry(tracee.pid, effects)
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert effects.drain() == b"x"


def test_suspend_seccomp_no_stop(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    # kernel-configs/seccomp.config sets CHECKPOINT_RESTORE, which the option
    # needs: an EINVAL here is a departure, not a reason to skip.
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=SYSGOOD | PTRACE_O_SUSPEND_SECCOMP,
        resume_with=PTRACE_SECCOMP,
    )
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": 1, "errno": 0}
    assert effects.drain() == b"x"


# ------------------------------------------- changing the syscall at the stop


# ------------------------------------------------ resuming from the stop


def armed_for_two_writes(lab: Lab) -> tuple[Tracee, Pipe, Reporter]:
    """A tracee armed with PTRACE_SECCOMP that makes two traced writes, 1 then 2."""
    effects, reporter = lab.pipe(), lab.reporter()

    def two_traced_writes() -> None:
        reporter.send(first=outcome(write_bytes(effects.w, b"1")))
        reporter.send(second=outcome(write_bytes(effects.w, b"2")))

    tracee = spawn_tracee(
        lab,
        two_traced_writes,
        rules=[traced_write_rule(effects)],
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
    )
    return tracee, effects, reporter


@pytest.mark.race
def test_resume_with_seccomp_stays_armed(lab: Lab) -> None:
    tracee, effects, reporter = armed_for_two_writes(lab)
    expect_syscall_entry_stop(tracee.pid)
    assert_write_entry(tracee.pid, effects)
    resume(tracee.pid, PTRACE_SECCOMP)
    expect_syscall_entry_stop(tracee.pid)  # the second write's entry, no exit stop between
    assert_write_entry(tracee.pid, effects)
    assert effects.drain() == b"1"
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"first": {"ret": 1, "errno": 0}, "second": {"ret": 1, "errno": 0}}
    assert effects.drain() == b"2"


@pytest.mark.race
def test_resume_with_syscall_gives_exit_stop_and_disarms(lab: Lab) -> None:
    tracee, effects, reporter = armed_for_two_writes(lab)
    expect_syscall_entry_stop(tracee.pid)
    exit_info = syscall_walk_to_exit(tracee.pid)
    assert (exit_info.rval, exit_info.is_error) == (1, False)
    assert effects.drain() == b"1"
    # Now a plain PTRACE_SYSCALL tracer: the second write's ptrace entry stop,
    # then (not armed, no TRACESECCOMP) the filter's TRACE is ENOSYS.
    syscall_walk_to_entry(tracee.pid, NR.write, 0, effects.w)
    exit_info = syscall_walk_to_exit(tracee.pid)
    assert exit_info.rval == -errno.ENOSYS
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect()["second"] == {"ret": -1, "errno": errno.ENOSYS}
    assert effects.drain() == b""


@pytest.mark.race
def test_resume_with_cont_disarms(lab: Lab) -> None:
    tracee, effects, reporter = armed_for_two_writes(lab)
    expect_syscall_entry_stop(tracee.pid)
    resume(tracee.pid, PTRACE_CONT)
    assert lab.wait_gone(tracee.pid).exit_code == 0  # no second stop
    assert reporter.collect() == {
        "first": {"ret": 1, "errno": 0},
        "second": {"ret": -1, "errno": errno.ENOSYS},
    }
    assert effects.drain() == b"1"


@pytest.mark.race
def test_second_entry_stop_after_ptrace_syscall_stop(lab: Lab) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=SYSGOOD,
    )
    tracee.go()
    syscall_walk_to_entry(tracee.pid, NR.write, 0, effects.w)  # PTRACE_SYSCALL's stop
    resume(tracee.pid, PTRACE_SECCOMP)
    expect_syscall_entry_stop(tracee.pid)  # the filter's stop for the same syscall
    assert_write_entry(tracee.pid, effects)
    assert effects.drain() == b""
    resume(tracee.pid, PTRACE_SECCOMP)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    assert reporter.collect() == {"ret": 1, "errno": 0}
    assert effects.drain() == b"x"


@pytest.mark.race
def test_resume_with_signal_runs_syscall_once_then_handler(lab: Lab) -> None:
    """PTRACE_SECCOMP from the stop with a signal (SIGUSR1, which the tracee
    handles) resumes like PTRACE_SYSCALL from an entry stop: the syscall runs,
    once, then the signal is reported in its signal-delivery stop; delivered
    from there, the handler runs once. No kill, and the tracee stays armed."""
    effects, reporter = lab.pipe(), lab.reporter()
    handler_runs: list[int] = []

    def handler(signum: int, frame: object) -> None:
        handler_runs.append(signum)
        reporter.send(handler_runs=handler_runs)

    def install_handler() -> None:
        signal.signal(signal.SIGUSR1, handler)

    def body() -> None:
        reporter.send(first=outcome(write_bytes(effects.w, b"1")))
        reporter.send(second=outcome(write_bytes(effects.w, b"2")))

    tracee = spawn_tracee(
        lab,
        body,
        rules=[traced_write_rule(effects)],
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
        prepare=install_handler,
    )
    expect_syscall_entry_stop(tracee.pid)
    resume(tracee.pid, PTRACE_SECCOMP, signal.SIGUSR1)
    status = wait_stop(tracee.pid)
    assert (status.stop_sig, status.event) == (signal.SIGUSR1, 0), (
        f"expected SIGUSR1's signal-delivery stop: {status}"
    )
    assert effects.drain() == b"1", "the syscall should have run before the signal's stop"
    resume(tracee.pid, PTRACE_SECCOMP, signal.SIGUSR1)  # deliver it
    expect_syscall_entry_stop(tracee.pid)  # the second write: still armed
    assert_write_entry(tracee.pid, effects)
    resume(tracee.pid, PTRACE_SECCOMP)
    status = lab.wait_gone(tracee.pid)
    assert status.exit_code == 0, f"expected a normal exit: {status}"
    assert reporter.collect() == {
        "first": {"ret": 1, "errno": 0},
        "handler_runs": [signal.SIGUSR1],
        "second": {"ret": 1, "errno": 0},
    }
    assert effects.drain() == b"2"


# ----------------------------------- stepping or emulating from the stop
#
# A thread resumed from the stop with PTRACE_SINGLESTEP or PTRACE_SYSEMU stops
# again before it can run far: after one instruction, or at the next
# syscall's entry. So these tests make their two traced writes in a few
# instructions of machine code (seccomplib.twowrites), and the tracer reaches
# the second write from the first with no other request in between.


def armed_at_first_of_two_writes(lab: Lab) -> tuple[Tracee, Pipe, Reporter]:
    """A tracee armed with PTRACE_SECCOMP, stopped at the first of the two
    writes of two_writes() (1 then 2), which reports their raw results."""
    code = two_writes()  # mapped here, before the fork: the tracee has it too
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(results=code(effects.w, b"1", b"2", NR.write)),
        rules=[traced_write_rule(effects)],
        options=SYSGOOD,
        resume_with=PTRACE_SECCOMP,
    )
    expect_syscall_entry_stop(tracee.pid)
    assert_write_entry(tracee.pid, effects)
    assert get_pc(tracee.pid) == code.address(CODE.after_first)
    return tracee, effects, reporter


def single_step_until(pid: int, target: int, max_steps: int = 32) -> list[int]:
    """PTRACE_SINGLESTEP the stopped tracee until it stops at `target`; every
    stop must be a step's plain SIGTRAP. The addresses of the stops."""
    stops: list[int] = []
    for _ in range(max_steps):
        resume(pid, PTRACE_SINGLESTEP)
        status = wait_stop(pid)
        if status.is_syscall_stop:
            raise AssertionError(
                f"a syscall stop while single-stepping (after stops at {list(map(hex, stops))}): "
                "the step left the thread armed for PTRACE_SECCOMP"
            )
        assert (status.stop_sig, status.event) == (signal.SIGTRAP, 0), (
            f"expected a single-step SIGTRAP: {status}"
        )
        stops.append(get_pc(pid))
        if stops[-1] == target:
            return stops
    raise AssertionError(f"not at {target:#x} after {max_steps} steps: {list(map(hex, stops))}")


@pytest.mark.race
def test_singlestep_from_stop_acknowledges_and_disarms(lab: Lab) -> None:
    """PTRACE_SINGLESTEP is a resume request: from the armed stop it runs the
    syscall and disarms. Stepped on to the second write, with no other
    request, that write's TRACE takes the mainline path (not armed, no
    PTRACE_O_TRACESECCOMP): no stop, -ENOSYS, not run."""
    tracee, effects, reporter = armed_at_first_of_two_writes(lab)
    code = two_writes()
    stops = single_step_until(tracee.pid, code.address(CODE.last))
    assert stops[0] == code.address(CODE.after_first), "the first step ends the first write"
    assert code.address(CODE.after_second) in stops, "a step over the second write"
    resume(tracee.pid, PTRACE_CONT)
    status = lab.wait_gone(tracee.pid)
    assert status.exit_code == 0, f"expected a normal exit: {status}"
    assert reporter.collect() == {"results": [1, -errno.ENOSYS]}
    assert effects.drain() == b"1"


EMULATED = 0x5EC  # what the tracer makes the emulated write return


@pytest.mark.race
@pytest.mark.parametrize("then", ["cont", "detach"])
def test_sysemu_from_stop_acknowledges_and_emulates_the_next(lab: Lab, then: str) -> None:
    """PTRACE_SYSEMU is a resume request: from the armed stop it runs the
    syscall (no exit stop, as SYSEMU gives none) and disarms. The second
    write, a TRACE one, then stops in SYSEMU's own entry stop before any
    filter runs and is not run, whatever the tracer does next; it returns
    what the tracer set. That stop is mainline's, not a PTRACE_SECCOMP stop:
    a detach there does not kill. (Under SYSEMU the filter never runs, so the
    armed state itself cannot show here; the acknowledgment and SYSEMU's path
    can.)"""
    tracee, effects, reporter = armed_at_first_of_two_writes(lab)
    resume(tracee.pid, PTRACE_SYSEMU)
    expect_syscall_entry_stop(tracee.pid)  # SYSEMU's, at the second write
    assert_write_entry(tracee.pid, effects)
    assert get_pc(tracee.pid) == two_writes().address(CODE.after_second)
    assert effects.drain() == b"1"
    set_return_value(tracee.pid, EMULATED)
    if then == "detach":
        ptrace(PTRACE_DETACH, tracee.pid)
    else:
        resume(tracee.pid, PTRACE_CONT)
    status = lab.wait_gone(tracee.pid)
    assert status.exit_code == 0, f"expected a normal exit: {status}"
    assert reporter.collect() == {"results": [1, EMULATED]}
    assert effects.drain() == b""


# ------------------------------------------------------- per-thread arming


@pytest.mark.race
@pytest.mark.parametrize("armed", ["main", "worker"])
def test_arming_is_per_thread(lab: Lab, armed: str) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    threads = spawn_two_writer_threads(lab, effects, reporter)
    pid, tid = threads.pid, threads.tid
    seize_and_interrupt(pid, SYSGOOD)
    seize_and_interrupt(tid, SYSGOOD)
    requests = {"main": PTRACE_CONT, "worker": PTRACE_CONT}
    requests[armed] = PTRACE_SECCOMP
    resume(pid, requests["main"])
    resume(tid, requests["worker"])

    gates = {"worker": threads.worker_gate, "main": threads.main_gate}
    for name, task in (("worker", tid), ("main", pid)):
        gates[name].open()
        if name == armed:
            expect_syscall_entry_stop(task)
            assert_write_entry(task, effects)
            resume(task, PTRACE_SECCOMP)
            assert reporter.wait_for(name) == {"ret": 1, "errno": 0}
        else:
            assert reporter.wait_for(name) == {"ret": -1, "errno": errno.ENOSYS}

    assert lab.wait_gone(tid).exit_code == 0  # the worker thread's own exit
    assert lab.wait_gone(pid).exit_code == 0
    assert effects.drain() == (b"m" if armed == "main" else b"w")
