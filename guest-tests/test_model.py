"""The PTRACE_SECCOMP state machine, checked against a model with Hypothesis.

Hand-written tests check the sequences someone thought of; here Hypothesis
generates sequences of real operations (the tracee's syscalls, the tracer's
requests, its exit right after a resume, a second tracer...) and runs each
against the kernel and against seccomplib.model side by side, comparing
every request's errno and everything seen after it: the stop, the syscall's
result, the tracee's death. A mismatch fails with a numbered script of the
operations, what the kernel did and what the model predicted, shrunk by
Hypothesis to a short one.

The same model serves the unpatched kernel: the probe says whether
PTRACE_SECCOMP exists, and the model then predicts EIO for it.

Budget: a fixed seed and few examples by default (--model-examples N for an
exploratory run). Sequences that once found a bug are replayed first, every
run (REGRESSIONS).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conftest import ptrace_seccomp_skip_reason
from seccomplib.model import QUIET, Options, Outcome, Req, TraceeModel
from seccomplib.modelworld import World, options_bits
from seccomplib.ptrace import (
    PTRACE_CONT,
    PTRACE_SECCOMP,
    PTRACE_SEIZE,
    PTRACE_SYSCALL,
    ptrace_errno,
)
from seccomplib.race import online_cpus

pytestmark = pytest.mark.model

REQUESTS = {Req.SECCOMP: PTRACE_SECCOMP, Req.CONT: PTRACE_CONT, Req.SYSCALL: PTRACE_SYSCALL}

# The draws lean towards what the series is about: PTRACE_SECCOMP resumes,
# traced syscalls, and tracers that leave right after a resume. EXITKILL is
# rare: it kills on every tracer exit and so hides the other paths.
options_strategy = st.builds(
    Options,
    sysgood=st.booleans(),
    traceseccomp=st.booleans(),
    exitkill=st.sampled_from([False, False, False, True]),
)
request_strategy = st.sampled_from([Req.SECCOMP, Req.SECCOMP, Req.CONT, Req.SYSCALL])
then_strategy = st.sampled_from(["stay", "stay", "exit", "kill"])


def errno_text(err: int | None) -> str:
    if err is None:
        return "-"
    return errno.errorcode.get(err, str(err)) if err else "0"


@dataclass
class Step:
    what: str
    kernel: str
    model: str

    @property
    def agrees(self) -> bool:
        return self.kernel == self.model


class PtraceSeccompMachine(RuleBasedStateMachine):
    """One tracee, at most one tracer at a time, and the model beside them."""

    patched = True  # set by the test from the probe

    def __init__(self) -> None:
        super().__init__()
        self.world = World(online_cpus()[0])
        self.model = TraceeModel(patched=self.patched)
        self.steps: list[Step] = []

    # ------------------------------------------------------------- checking

    def check(
        self, what: str, predicted: Outcome, err: int | None, expect_seen: bool = True
    ) -> None:
        """Compare what the kernel did with the model's prediction; fail with
        the script so far if they differ."""
        seen = self.world.observe(predicted.seen if expect_seen else QUIET)
        kernel = str(Outcome(err, seen))
        self.steps.append(Step(what, kernel, str(predicted)))
        if kernel != str(predicted):
            raise AssertionError(self.script())

    def script(self) -> str:
        variant = "patched" if self.patched else "baseline (no PTRACE_SECCOMP)"
        lines = [f"model vs kernel, {variant}; the first disagreement ends the script:"]
        for number, step in enumerate(self.steps, 1):
            lines.append(f"{number:2}. {step.what}")
            if step.agrees:
                lines.append(f"      kernel = model: {step.kernel}")
            else:
                lines.append(f"      kernel: {step.kernel}")
                lines.append(f"      model:  {step.model}   <-- differs")
        return "\n".join(lines)

    def stray(self) -> None:
        """Anything the kernel did that the model did not predict since the last step."""
        seen = self.world.observe(QUIET)
        if seen != QUIET:
            self.steps.append(Step("(between steps)", seen, QUIET))
            raise AssertionError(self.script())

    # ---------------------------------------------------------------- rules

    @initialize(options=options_strategy, first=st.sampled_from([None, *Req]))
    def start(self, options: Options, first: Req | None) -> None:
        self.world.start_tracee()
        self._seize(options)
        if first is not None:
            self.resume(first, "stay")

    def _seize(self, options: Options) -> None:
        err = self.world.start_tracer(
            options_bits(options.sysgood, options.traceseccomp, options.exitkill)
        )
        predicted = self.model.seized(options)
        self.check(f"tracer seizes (options {options}) and interrupts", predicted, err)

    @precondition(lambda self: self.model.idle)
    @rule(traced=st.sampled_from([True, True, True, False]))
    def syscall(self, traced: bool) -> None:
        self.stray()
        self.world.tracee_syscall(traced)
        what = "tracee: getppid() " + ("the filter traces" if traced else "the filter allows")
        self.check(what, self.model.syscall(traced), None)

    @precondition(lambda self: self.model.stopped and self.model.attached)
    @rule(req=request_strategy, then=then_strategy)
    def resume(self, req: Req, then: str) -> None:
        self.stray()
        if req is Req.SYSCALL and not self.model.options.sysgood:
            # Leaving at once is a race here, not a prediction: a tracee that
            # is on its way into a syscall stop when the tracer goes gets the
            # stop's code, SIGTRAP, sent to itself by ptrace_report_syscall()
            # (ptrace_stop() returns it when there is no tracer any more);
            # with TRACESYSGOOD, SIGTRAP|0x80 is no signal and nothing happens.
            then = "stay"
        err = self.world.command(op="resume", req=REQUESTS[req], then=then)
        if then == "stay":
            self.check(f"tracer: {req.value}", self.model.resume(req), err)
            return
        self.world.tracer_gone()
        how = "exits" if then == "exit" else "is SIGKILLed"
        what = f"tracer: {req.value}, and {how} at once (same CPU, SCHED_FIFO)"
        self.check(what, self.model.resume_then_gone(req), err)

    @precondition(lambda self: self.model.alive and self.model.attached)
    @rule(how=st.sampled_from(["detach", "exit", "kill"]))
    def leave(self, how: str) -> None:
        self.stray()
        # Only a stopped tracee can be detached; an idle one under PTRACE_SYSCALL
        # may be at one of the stops the tracer steps over, so no ESRCH case.
        if how == "detach" and self.model.stopped:
            err = self.world.command(op="detach")
            predicted = self.model.detach()
            if not err:
                self.world.command(op="exit")  # a detached tracer has nothing left to do
            self.check("tracer: PTRACE_DETACH", predicted, err)
            return
        if self.model.idle and self.model.syscall_mode:
            self.world.settle()
        if how == "exit":
            self.world.command(op="exit")
        else:
            self.world.kill_tracer()
        self.check(
            f"tracer {'exits' if how == 'exit' else 'is SIGKILLed'}", self.model.tracer_gone(), None
        )

    @precondition(lambda self: self.model.stopped and self.model.attached)
    @rule(options=options_strategy)
    def set_options(self, options: Options) -> None:
        self.stray()
        bits = options_bits(options.sysgood, options.traceseccomp, options.exitkill)
        err = self.world.command(op="setoptions", bits=bits)
        self.check(f"tracer: PTRACE_SETOPTIONS {options}", self.model.set_options(options), err)

    @precondition(lambda self: self.model.idle and self.model.attached)
    @rule(kind=st.sampled_from(["interrupt", "second seize"]))
    def poke(self, kind: str) -> None:
        self.stray()
        # Under PTRACE_SYSCALL, any trap satisfies an INTERRUPT ("any trap
        # clears pending STOP trap"): the exit stop of the tracee's blocking
        # read, which the tracer steps over. Not a PTRACE_SECCOMP question.
        if kind == "interrupt" and not self.model.syscall_mode:
            err = self.world.command(op="interrupt")
            self.check("tracer: PTRACE_INTERRUPT", self.model.interrupt(), err)
            return
        assert self.world.tracee is not None
        err = ptrace_errno(PTRACE_SEIZE, self.world.tracee.pid)
        self.check("another process: PTRACE_SEIZE", self.model.second_seize(), err)

    @precondition(lambda self: self.model.idle and not self.model.attached)
    @rule(options=options_strategy)
    def new_tracer(self, options: Options) -> None:
        self.stray()
        self._seize(options)

    @precondition(lambda self: not self.model.alive)
    @rule(options=options_strategy)
    def new_tracee(self, options: Options) -> None:
        self.world.close()
        self.model = TraceeModel(patched=self.patched)
        self.steps.append(Step("(a new tracee)", QUIET, QUIET))
        self.world.start_tracee()
        self._seize(options)

    def teardown(self) -> None:
        try:
            if self.model.alive:
                self.stray()
        finally:
            self.world.close()


# ------------------------------------------------------------- the tests

DEFAULT_EXAMPLES = 25
STEPS_PER_EXAMPLE = 10


def machine_for_kernel() -> type[PtraceSeccompMachine]:
    class Machine(PtraceSeccompMachine):
        patched = ptrace_seccomp_skip_reason() == ""

    return Machine


def test_model_generated(request: pytest.FixtureRequest) -> None:
    """Generated sequences, the model against the kernel."""
    examples = int(request.config.getoption("model_examples") or DEFAULT_EXAMPLES)
    run_state_machine_as_test(
        machine_for_kernel(),
        settings=settings(
            max_examples=examples,
            stateful_step_count=STEPS_PER_EXAMPLE,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        ),
    )


# Sequences that found a bug once, replayed by name: (rule, arguments) after
# the start. Each was a minimal failing sequence on the kernel named.
Replay = list[tuple[str, dict[str, Any]]]
REGRESSIONS: dict[str, tuple[dict[str, Any], Replay]] = {}


@pytest.mark.parametrize("name", sorted(REGRESSIONS))
def test_model_regression(name: str) -> None:
    start, steps = REGRESSIONS[name]
    machine = machine_for_kernel()()
    try:
        machine.start(**start)
        for rule_name, arguments in steps:
            method: Callable[..., None] = getattr(machine, rule_name)
            method(**arguments)
    finally:
        machine.teardown()
