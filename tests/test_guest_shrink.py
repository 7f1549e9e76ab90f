"""The pass that removes operations from the model's failing sequences
(guest-tests/seccomplib/shrink.py), on stand-in replays: what it keeps is
what the failure needs, and it stops on time."""

from __future__ import annotations

from conftest import load_guest_module

shrink = load_guest_module("seccomplib/shrink.py", "guest_shrink")


def seccomp_stop_then_exit(ops: list[str]) -> str | None:
    """A stand-in kernel: the tracee dies when it is at a stop (a traced
    syscall after a resume) and the tracer resumes and exits at once. Like
    the real replay, an operation whose state does not fit is skipped."""
    resumed = stopped = False
    for number, op in enumerate(ops, 1):
        if op == "resume":
            resumed, stopped = True, False
        elif op == "traced" and resumed:
            stopped = True
        elif op == "resume+exit" and stopped:
            return f"killed at step {number}"
    return None


def test_keeps_exactly_what_the_failure_needs() -> None:
    ops = ["seize", "resume", "fork", "plain", "traced", "fork", "exec", "resume+exit", "exit"]
    shrunk = shrink.remove_operations(ops, "killed at step 8", seccomp_stop_then_exit, 60.0)
    assert shrunk.operations == ["resume", "traced", "resume+exit"]
    assert shrunk.found == "killed at step 3"  # the finding of what was kept
    assert shrunk.complete
    # One-minimal: no single operation can go.
    for index in range(len(shrunk.operations)):
        fewer = shrunk.operations[:index] + shrunk.operations[index + 1 :]
        assert seccomp_stop_then_exit(fewer) is None


def test_a_sequence_that_is_already_minimal_stays() -> None:
    ops = ["resume", "traced", "resume+exit"]
    shrunk = shrink.remove_operations(ops, "killed at step 3", seccomp_stop_then_exit, 60.0)
    assert shrunk.operations == ops and shrunk.complete
    assert shrunk.replays == 3  # each single removal tried once, none kept


def test_the_empty_sequence_is_never_replayed() -> None:
    replayed: list[list[str]] = []

    def fails_always(ops: list[str]) -> str:
        replayed.append(ops)
        return "fails"

    shrunk = shrink.remove_operations(["a", "b", "c", "d"], "fails", fails_always, 60.0)
    assert len(shrunk.operations) == 1
    assert [] not in replayed


def test_stops_when_its_time_is_up_with_the_shortest_so_far() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def slow_replay(ops: list[str]) -> str | None:
        now[0] += 10.0  # each replay takes 10 s of a 25 s budget
        return seccomp_stop_then_exit(ops)

    ops = ["fork", "plain", "fork", "exec", "resume", "traced", "plain", "resume+exit"]
    shrunk = shrink.remove_operations(ops, "killed at step 8", slow_replay, 25.0, clock=clock)
    assert not shrunk.complete
    assert shrunk.replays == 3
    assert seccomp_stop_then_exit(shrunk.operations) == shrunk.found
    assert len(shrunk.operations) < len(ops)
