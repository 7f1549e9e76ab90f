"""A tracer changing or skipping the syscall at its stop, the same way at
mainline's PTRACE_EVENT_SECCOMP stop and at the patch's PTRACE_SECCOMP stop:
a skip returns the tracer's value, a redirect runs the new syscall, and the
filters judge the new syscall again (SECCOMP_RET_TRACE then means allow)."""

from __future__ import annotations

import errno

import pytest

from seccomplib.bpf import ArgEq, Rule, errno_action, trace_action
from seccomplib.child import (
    MAGIC_DENY,
    MAGIC_PLAIN,
    MAGIC_TRACE,
    TRACE_DATA,
    getppid_as_write,
    getppid_marked,
    outcome,
    write_bytes,
)
from seccomplib.proc import Lab
from seccomplib.ptrace import resume, set_syscall_nr, skip_syscall, syscall_info
from seccomplib.scenario import (
    EVENT_STOP,
    PTRACE_SECCOMP_STOP,
    StopKind,
    spawn_tracee,
    traced_write_rule,
)
from seccomplib.syscalls import NR

STOP_KINDS = [
    pytest.param(EVENT_STOP, id=EVENT_STOP.name),
    pytest.param(
        PTRACE_SECCOMP_STOP, id=PTRACE_SECCOMP_STOP.name, marks=pytest.mark.ptrace_seccomp
    ),
]


@pytest.mark.parametrize("stop", STOP_KINDS)
@pytest.mark.parametrize("fake", [7, -errno.EXDEV], ids=["value", "error"])
def test_skip_with_faked_return(lab: Lab, stop: StopKind, fake: int) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(write_bytes(effects.w, b"x"))),
        rules=[traced_write_rule(effects)],
        options=stop.options,
        resume_with=stop.resume_request,
    )
    stop.expect_stop(tracee.pid)
    skip_syscall(tracee.pid, fake)
    resume(tracee.pid, stop.resume_request)
    assert lab.wait_gone(tracee.pid).exit_code == 0
    expected = {"ret": fake, "errno": 0} if fake >= 0 else {"ret": -1, "errno": -fake}
    assert reporter.collect() == expected
    assert effects.drain() == b"", "the skipped write ran"


@pytest.mark.parametrize("stop", STOP_KINDS)
def test_redirect_to_write_runs_it(lab: Lab, stop: StopKind) -> None:
    effects, reporter = lab.pipe(), lab.reporter()
    keep: list[object] = []
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_as_write(effects.w, b"r", keep))),
        rules=[Rule(NR.getppid, trace_action(TRACE_DATA))],
        options=stop.options,
        resume_with=stop.resume_request,
    )
    stop.expect_stop(tracee.pid)
    set_syscall_nr(tracee.pid, NR.write)
    resume(tracee.pid, stop.resume_request)
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
    # name: (marker in args[1], redirect target, errno the re-check returns)
    "allowed": (MAGIC_PLAIN, "getpid", None),
    "denied-on-recheck": (MAGIC_DENY, "getpid", errno.EXDEV),
    "trace-on-recheck-allows": (MAGIC_TRACE, "gettid", None),
}


@pytest.mark.parametrize("stop", STOP_KINDS)
@pytest.mark.parametrize("case", RECHECK_CASES)
def test_redirect_is_rechecked(lab: Lab, stop: StopKind, case: str) -> None:
    marker, target, denied_errno = RECHECK_CASES[case]
    reporter = lab.reporter()
    tracee = spawn_tracee(
        lab,
        lambda: reporter.send(**outcome(getppid_marked(marker))),
        rules=recheck_rules(),
        options=stop.options,
        resume_with=stop.resume_request,
    )
    stop.expect_stop(tracee.pid)
    assert syscall_info(tracee.pid).args[1] == marker
    set_syscall_nr(tracee.pid, getattr(NR, target))
    resume(tracee.pid, stop.resume_request)
    # lab.wait_gone fails on any stop: a TRACE on the re-check must not stop again.
    assert lab.wait_gone(tracee.pid).exit_code == 0
    # getpid/gettid of a single-threaded child are its pid.
    expected = (
        {"ret": -1, "errno": denied_errno} if denied_errno else {"ret": tracee.pid, "errno": 0}
    )
    assert reporter.collect() == expected
