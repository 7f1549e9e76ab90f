"""The PTRACE_SECCOMP probe itself, on both variants, and its classification.

The probe decides whether ~50 tests run, skip or error, so it is held to
exactly two right answers: 0 (the series is in) or EIO (mainline's answer to
an unknown request). The classification tests use crafted probe results and
need no kernel support; they run on the host too (plain pytest).
"""

from __future__ import annotations

import errno

import pytest

from seccomplib import probe
from seccomplib.probe import ABSENT, BROKEN, SUPPORTED, ProbeResult, Verdict


def test_request_answers_exactly_zero_or_eio() -> None:
    """Runs on both variants: 0 where the series is applied, EIO where not.
    The expectations pin which ptrace_seccomp tests must then pass or skip."""
    result = probe.probe()
    verdict = probe.classify(result)
    assert verdict.kind in (SUPPORTED, ABSENT), verdict.message
    assert (result.request_errno, result.request_ret) in ((0, 0), (errno.EIO, None)), (
        result.describe()
    )


CRAFTED = {
    "zero": (ProbeResult(0, 0), SUPPORTED),
    "eio": (ProbeResult(errno.EIO), ABSENT),
    "eperm": (ProbeResult(errno.EPERM), BROKEN),
    "esrch": (ProbeResult(errno.ESRCH), BROKEN),
    "einval": (ProbeResult(errno.EINVAL), BROKEN),
    "nonzero-return": (ProbeResult(0, 1), BROKEN),
    "unexpected-stop": (ProbeResult(problem="expected the tracee's SIGSTOP stop, got: x"), BROKEN),
    "no-stop-at-all": (ProbeResult(problem="pid 9: no state change within 5.0 s"), BROKEN),
    "tracee-killed-after-zero": (
        ProbeResult(0, 0, "then expected the tracee to exit 0, got: pid 9 killed by SIGKILL"),
        BROKEN,
    ),
    "eio-with-problem": (ProbeResult(errno.EIO, None, "something else"), BROKEN),
}


@pytest.mark.parametrize("case", CRAFTED)
def test_classify(case: str) -> None:
    result, kind = CRAFTED[case]
    verdict = probe.classify(result)
    assert verdict.kind == kind
    if kind == BROKEN:
        # The error names what the kernel answered, so a report says why.
        assert result.describe() in verdict.message


def test_broken_probe_errors_the_dependent_test() -> None:
    with pytest.raises(pytest.fail.Exception, match="ptrace\\(0x4213\\) -> -1 EPERM"):
        probe.gate(probe.classify(ProbeResult(errno.EPERM)))


def test_absent_request_skips_the_dependent_test() -> None:
    with pytest.raises(pytest.skip.Exception, match="0x4213 -> EIO"):
        probe.gate(Verdict(ABSENT, "kernel has no PTRACE_SECCOMP (0x4213 -> EIO)"))


def test_supported_request_runs_the_dependent_test() -> None:
    probe.gate(Verdict(SUPPORTED, ""))  # neither skips nor fails
