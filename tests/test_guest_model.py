"""The guest model's predictions for new tasks, new programs and PTRACE_SYSEMU
(guest-tests/seccomplib/model.py), pinned on the host: what the cover letter
and mainline say, as the model says it. The guest's test_model.py checks the
same predictions against real kernels."""

from __future__ import annotations

import signal

import pytest
from conftest import load_guest_module

m = load_guest_module("seccomplib/model.py", "guest_model")
Req, Plan, Options = m.Req, m.Plan, m.Options
ATTACH_STOP = "stop sig=0x5 event=128 none"
ENTRY_STOP = "stop sig=0x5 event=0 entry"


def idle_tracee(armed: bool = True, patched: bool = True, **options: bool) -> object:
    """Seized with `options`, resumed from the interrupt stop: idle, armed or not."""
    model = m.TraceeModel(patched=patched)
    model.seized(Options(**options))
    model.resume(Req.SECCOMP if armed else Req.CONT)
    assert model.idle and model.armed == (armed and patched)
    return model


@pytest.mark.parametrize("kind", ["fork", "thread"])
def test_untraced_new_task_of_an_armed_tracee_gets_enosys(kind: str) -> None:
    model = idle_tracee(traceseccomp=True)  # no TRACEFORK: the new task is not traced
    spawned = model.spawn(kind, Plan(Req.SECCOMP, Req.SECCOMP))
    report = {
        "fork": "child: getppid failed ENOSYS, exited 0",
        "thread": "thread: getppid failed ENOSYS",
    }
    assert spawned.parent == m.Outcome(None, report[kind])
    assert spawned.child is None and spawned.after == m.QUIET
    assert model.idle and model.armed  # the tracee's own state is left alone


@pytest.mark.parametrize(
    ("first", "traceseccomp", "seen_at_call", "result"),
    [
        (Req.SECCOMP, False, ENTRY_STOP, "getppid ran"),  # armed by its first resume
        (Req.CONT, True, "stop sig=0x5 event=7 seccomp", "getppid ran"),  # option inherited
        (Req.CONT, False, None, "getppid failed ENOSYS"),  # neither: mainline
    ],
)
def test_auto_attached_child_is_armed_only_by_its_first_resume(
    first: object, traceseccomp: bool, seen_at_call: str | None, result: str
) -> None:
    model = idle_tracee(tracefork=True, traceseccomp=traceseccomp)  # the tracee is armed
    spawned = model.spawn("fork", Plan(first, Req.SECCOMP))
    assert spawned.parent == m.Outcome(None, "stop sig=0x5 event=1 none")
    answered = [seen_at_call, "PTRACE_SECCOMP -> 0"] if seen_at_call else []
    expected = [ATTACH_STOP, f"{first.value} -> 0", *answered, "exited 0"]
    assert spawned.child == ", ".join(expected)
    assert model.stop is m.Stop.EVENT_FORK
    assert model.resume(Req.SECCOMP) == m.Outcome(0, f"child: {result}, exited 0")


def test_fail_closed_kill_of_a_thread_takes_the_process() -> None:
    model = idle_tracee(tracefork=True)
    spawned = model.spawn("thread", Plan(Req.SECCOMP, None))  # detach at its seccomp stop
    assert spawned.parent == m.Outcome(None, "stop sig=0x5 event=3 none")
    assert spawned.child == f"{ATTACH_STOP}, PTRACE_SECCOMP -> 0, {ENTRY_STOP}, PTRACE_DETACH -> 0"
    assert spawned.after == m.KILLED_LOGGED and not model.alive


def test_fail_closed_kill_of_a_child_takes_only_the_child() -> None:
    model = idle_tracee(tracefork=True)
    spawned = model.spawn("fork", Plan(Req.SECCOMP, None))
    assert spawned.after == m.QUIET and model.stop is m.Stop.EVENT_FORK
    assert model.resume(Req.CONT) == m.Outcome(0, "child: killed by SIGKILL, logged")


def test_child_resumed_with_ptrace_seccomp_on_baseline_is_detached() -> None:
    model = idle_tracee(armed=False, patched=False, tracefork=True)
    spawned = model.spawn("fork", Plan(Req.SECCOMP, Req.SECCOMP))
    assert spawned.child == f"{ATTACH_STOP}, PTRACE_SECCOMP -> EIO, PTRACE_DETACH -> 0"
    assert model.resume(Req.CONT) == m.Outcome(0, "child: getppid failed ENOSYS, exited 0")


def test_interrupt_at_a_fork_stop_is_taken_by_the_fork_s_exit_stop_under_syscall() -> None:
    model = idle_tracee(tracefork=True)
    model.spawn("fork", Plan(Req.CONT, Req.CONT))
    assert model.interrupt() == m.Outcome(0, m.QUIET)
    # The fork's own exit stop (which the tracer steps over) clears the trap.
    assert model.resume(Req.SYSCALL) == m.Outcome(0, "child: getppid failed ENOSYS, exited 0")


def test_execve_keeps_the_filter_and_the_armed_state() -> None:
    model = idle_tracee(sysgood=True)
    assert model.exec_shell() == m.Outcome(None, m.EXECED)
    assert model.syscall(traced=True) == m.Outcome(None, "stop sig=0x85 event=0 entry")
    assert model.resume(Req.SECCOMP) == m.Outcome(0, "kill ran")
    assert model.syscall(traced=True).seen == "stop sig=0x85 event=0 entry"  # still armed


def test_execve_drops_the_handler() -> None:
    model = idle_tracee()
    model.exec_shell()
    model.syscall(traced=True)
    sigusr1 = signal.SIGUSR1  # sent at the syscall stop, shown at a signal-delivery stop
    stop = f"stop sig={sigusr1:#x} event=0 signal code=128"
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, stop)
    assert model.resume(Req.CONT, sigusr1) == m.Outcome(0, "killed by SIGUSR1")


def test_sysemu_from_the_seccomp_stop_acknowledges_disarms_and_emulates_the_next() -> None:
    model = idle_tracee()
    assert model.syscall(traced=True).seen == ENTRY_STOP
    assert model.resume(Req.SYSEMU) == m.Outcome(0, "getppid ran")  # acknowledged
    assert not model.armed and model.emu_mode
    assert model.syscall(traced=True).seen == ENTRY_STOP  # SYSEMU's own stop
    assert model.stop is m.Stop.EMU_ENTRY
    # The filter never sees it, so nothing fails closed; x86 presets -ENOSYS.
    assert model.detach() == m.Outcome(0, "getppid failed ENOSYS")
    assert model.alive


def test_sysemu_then_gone_at_once_is_an_acknowledgment() -> None:
    model = idle_tracee()
    model.syscall(traced=True)
    assert model.resume_then_gone(Req.SYSEMU) == m.Outcome(0, "getppid ran")


@pytest.mark.parametrize(
    ("acknowledged", "death"),
    [(False, "killed by SIGKILL, logged"), (True, "killed by SIGKILL")],
)
def test_only_the_fail_closed_kill_is_logged(acknowledged: bool, death: str) -> None:
    """With PTRACE_O_EXITKILL a tracer that leaves kills the tracee anyway;
    at an unanswered seccomp stop the fail-closed kill comes too and is
    logged "also when the SIGKILL of PTRACE_O_EXITKILL is already pending".
    A stop answered before the tracer left has nothing to fail closed."""
    model = idle_tracee(exitkill=True)
    model.syscall(traced=True)
    if acknowledged:
        assert model.resume_then_gone(Req.SECCOMP) == m.Outcome(0, death)
    else:
        assert model.tracer_gone() == m.Outcome(None, death)


def test_sysemu_is_data_per_machine() -> None:
    assert m.SYSEMU_RESULT == {"x86_64": m.ENOSYS_R, "aarch64": None}


STEP_TRAP = "stop sig=0x5 event=0 signal code=1"  # x86_64's step trap at a syscall's end


@pytest.mark.parametrize(
    ("traceseccomp", "second"),
    [
        # disarmed, no option: mainline's ENOSYS, then its step trap at the second's end
        (False, f"{STEP_TRAP} after pair call 2"),
        (True, "stop sig=0x5 event=7 seccomp"),  # disarmed, the option: mainline's event
    ],
)
def test_a_single_step_into_a_pairs_second_call_finds_it_disarmed(
    traceseccomp: bool, second: str
) -> None:
    """SINGLESTEP is a resume request: from the armed stop of the first call it
    disarms, so the second call a few instructions on, stepped into without a
    stop between (the tracer steps on by itself), takes mainline's path."""
    model = idle_tracee(traceseccomp=traceseccomp)
    assert model.syscall_pair() == m.Outcome(None, ENTRY_STOP)  # the first call, armed
    assert model.resume(Req.SINGLESTEP) == m.Outcome(0, second)
    assert not model.armed
    # Both results come with the last one, when the tracee writes them.
    result = "getppid ran" if traceseccomp else "getppid failed ENOSYS"
    assert model.resume(Req.CONT) == m.Outcome(0, f"getppid ran, {result}")
    assert model.idle and model.then_calls == 0 and model.earlier == []


def test_a_pair_resumed_with_seccomp_stops_at_both_calls() -> None:
    model = idle_tracee()
    assert model.syscall_pair() == m.Outcome(None, ENTRY_STOP)
    assert model.resume(Req.SECCOMP) == m.Outcome(0, ENTRY_STOP)  # the second, still armed
    assert model.resume(Req.SECCOMP) == m.Outcome(0, "getppid ran, getppid ran")


def test_a_pair_whose_tracer_leaves_right_after_a_single_step() -> None:
    """A tracer gone right after its SINGLESTEP of the first call leaves
    single-stepping on (only a detach turns it off): the step trap at the
    call's end has nobody to stop for, and SIGTRAP kills."""
    model = idle_tracee()
    model.syscall_pair()
    assert model.resume_then_gone(Req.SINGLESTEP) == m.Outcome(0, "killed by SIGTRAP")
    assert not model.alive and model.earlier == []


def test_a_pair_interrupted_at_its_first_call_shows_the_step_trap() -> None:
    """A PTRACE_INTERRUPT at the first call's stop is taken before the step
    trap; the tracer's next request is no SINGLESTEP, so the trap shows."""
    model = idle_tracee()
    model.syscall_pair()
    model.interrupt()
    assert model.resume(Req.SINGLESTEP) == m.Outcome(0, ATTACH_STOP)
    assert model.resume(Req.CONT) == m.Outcome(0, f"{STEP_TRAP} after pair call 1")
    assert model.resume(Req.CONT) == m.Outcome(0, "getppid ran, getppid failed ENOSYS")


def test_a_signal_stop_says_which_of_a_pairs_calls_it_follows() -> None:
    """The world reports where a signal-delivery stop found the tracee when
    that is a pair's call's end; so does the model, and only in a pair."""
    model = idle_tracee()
    model.syscall_pair()
    sigusr1 = signal.SIGUSR1
    first = f"stop sig={sigusr1:#x} event=0 signal code=128 after pair call 1"
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, first)
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, ENTRY_STOP)  # the second
    second = f"stop sig={sigusr1:#x} event=0 signal code=128 after pair call 2"
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, second)
    handled = "SIGUSR1 handled, getppid ran, getppid ran"
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, handled)
    assert model.syscall(traced=True).seen == ENTRY_STOP  # one call, no pair
    assert model.resume(Req.SECCOMP, sigusr1) == m.Outcome(0, second.split(" after")[0])


def test_the_first_calls_results_wait_for_the_second() -> None:
    """Killed at the second call's seccomp stop (its tracer gone without an
    answer), the pair reports nothing of the first call: the tracee writes
    both results only after both calls."""
    model = idle_tracee()
    model.syscall_pair()
    assert model.resume(Req.SECCOMP) == m.Outcome(0, ENTRY_STOP)
    assert model.tracer_gone() == m.Outcome(None, "killed by SIGKILL, logged")
