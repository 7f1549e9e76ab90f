"""What the kernel's reports on a console say about a guest run.

Part of the one verdict (verdict/cell.py), for a booted cell (`run`, `test`,
`check-series --boot`) and for `test --live` alike: any kernel report anywhere in
the console fails the run, whether a guest test was running, between two of
them, before the first or after the guest said it was done. A panic gives
`kernel_panic`; any other report (oops, BUG, WARNING, sanitizer, lockdep, RCU
stall, hung task, soft or hard lockup) gives `kernel_warning`. A report
printed while a guest test ran also fails that test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.core.status import Status
from harness.core.vocabulary import Outcome
from harness.vm.kernellog import KernelReport, ReportKind
from harness.vm.records import TestResult


@dataclass(frozen=True)
class KernelVerdict:
    status: Status  # KERNEL_PANIC or KERNEL_WARNING
    reason: str  # "kernel panic: TITLE", "kernel KIND: TITLE" or "kernel tainted (flags N)"
    report: KernelReport | None  # the report that decided it; None for a taint alone


def kernel_verdict(
    reports: Sequence[KernelReport], tainted: int | None = None
) -> KernelVerdict | None:
    """The status the kernel's reports give a run, or None for a clean kernel.

    A panic decides over any other report. Without a report we recognise, a
    non-zero taint (/proc/sys/kernel/tainted at the end of the run) is still
    not a clean kernel.
    """
    for report in reports:
        if report.kind is ReportKind.PANIC:
            return KernelVerdict(Status.KERNEL_PANIC, f"kernel panic: {report.title}", report)
    if reports:
        first = reports[0]
        return KernelVerdict(
            Status.KERNEL_WARNING, f"kernel {first.kind.value}: {first.title}", first
        )
    if tainted:
        return KernelVerdict(Status.KERNEL_WARNING, f"kernel tainted (flags {tainted})", None)
    return None


def fail_reported_tests(results: list[TestResult], reports: Sequence[KernelReport]) -> None:
    """A test during which the kernel complained fails, whatever it asserted."""
    by_test: dict[str, KernelReport] = {}
    for report in reports:
        if report.test is not None:
            by_test.setdefault(report.test, report)
    for result in results:
        during = by_test.get(result.nodeid)
        if during is not None and result.outcome is Outcome.PASSED:
            result.outcome = Outcome.FAILED
            result.message = f"kernel {during.kind.value} during this test: {during.title}"
