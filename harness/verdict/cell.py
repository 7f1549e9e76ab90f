"""A guest run's verdict, decided in one place.

Every status a booted or live cell gets after its build is decided here, by
`decide`, from what the run left behind (`GuestEvidence`: how it ended, the
guest's result records, the console, the taint, the selftests' TAP) and the
cell's expectations. The matrix (`run`, `test`), `check-series --boot` and
`test --live` all call it and only copy its answer onto their own records;
earlier stages (patch, config, build) fail where they run, with the status
their `StageFailure` carries.

The rules, in the order they are applied (the worst status wins, see
core/status.py for the ranking):
- every kernel report in the console counts, wherever it is: before the first
  test, during one (that test fails too), between two, after the guest said
  it was done (verdict/reports.py);
- a guest that never reached userspace: `kernel_panic` if it panicked,
  `infra` if QEMU died before the kernel's banner, else `boot_timeout`;
- the guest ran a kernel other than the one built: `infra`;
- a panic: `kernel_panic`; a hang or the run's timeout: `guest_hang`; QEMU
  gone or the live session's transport lost: `infra`;
- pytest's session that never finished, or ended with a status its results
  do not explain: `test_failed`;
- any other kernel report, or a taint: `kernel_warning`;
- no guest test, or no selftest result, or fewer selftests than planned, or a
  selftest binary the guest was given that never reported: `test_failed`;
- a test outcome the expectations do not allow: `test_failed`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from harness.core.status import Status
from harness.core.vocabulary import Outcome
from harness.kernel import selftest_tap
from harness.results.model import StageState
from harness.verdict.judge import Judgement
from harness.verdict.reports import KernelVerdict, fail_reported_tests, kernel_verdict
from harness.vm.boot import KERNEL_BANNER, BootEnd
from harness.vm.kernellog import KernelReport, find_reports
from harness.vm.records import GuestRun, TestResult

# pytest's exit statuses that its results account for: all passed (or
# skipped), some failed (judged by the expectations), nothing collected
# (the "no guest test ran" rule).
EXPLAINED_EXIT = frozenset({0, 1, 5})


@dataclass(frozen=True)
class GuestEvidence:
    """What a finished guest run left behind: all the verdict looks at."""

    end: BootEnd
    guest: GuestRun
    console: str
    detail: str = ""  # the transport's words for how it ended
    reached_userspace: bool = True
    tainted: int | None = None  # /proc/sys/kernel/tainted at the end, when reported
    booted_version: str = ""  # `uname -v` the guest reported
    built_version: str | None = None  # the build's UTS version; None: not checked
    selftests_tap: str | None = None  # the upstream selftests' TAP; None: none ran
    # The selftest binaries the guest was given (their /selftests paths); each must report.
    selftest_binaries: tuple[str, ...] = ()


@dataclass
class StageVerdict:
    state: StageState = StageState.NOT_RUN
    message: str = ""

    def fail(self, message: str) -> None:
        self.state = StageState.FAIL
        self.message = f"{self.message}; {message}" if self.message else message


@dataclass
class Verdict:
    status: Status = Status.PASS
    reason: str = ""
    boot: StageVerdict = field(default_factory=StageVerdict)
    test: StageVerdict = field(default_factory=StageVerdict)
    reports: list[KernelReport] = field(default_factory=list)
    results: list[TestResult] = field(default_factory=list)  # the guest tests'
    upstream: list[TestResult] = field(default_factory=list)  # the selftests'
    judgement: Judgement | None = None

    def fail(self, status: Status, reason: str) -> None:
        """Record a failure; the worst one decides (the first of equal rank)."""
        if status.outranks(self.status):
            self.status, self.reason = status, reason


Judge = Callable[[list[TestResult]], Judgement]


def decide(evidence: GuestEvidence, judge: Judge) -> Verdict:
    """The verdict of one guest run; `judge` applies the cell's expectations."""
    guest = evidence.guest
    verdict = Verdict(reports=find_reports(evidence.console), results=guest.results)
    fail_reported_tests(guest.results, verdict.reports)
    if guest.running:
        guest.results.append(
            GuestRun.unfinished(guest.running, evidence.detail or evidence.end.value)
        )
    kernel, panicked, panic_reason = _kernel_reports(evidence, verdict)
    if not evidence.reached_userspace:
        _never_booted(evidence, verdict, panicked, panic_reason)
    else:
        verdict.boot.state = StageState.PASS
        _ran(evidence, verdict, panicked, panic_reason)
        if kernel is not None and kernel.status is not Status.KERNEL_PANIC:
            verdict.fail(kernel.status, kernel.reason)
        if evidence.selftests_tap is not None:
            verdict.upstream = _selftest_results(evidence, verdict)
        if not guest.results and evidence.end is BootEnd.COMPLETED:
            verdict.test.fail("no guest test ran")
            verdict.fail(Status.TEST_FAILED, "test: no guest test ran")
    verdict.judgement = judge([*verdict.results, *verdict.upstream])
    if verdict.judgement.departures:
        summary = verdict.judgement.summary()
        verdict.test.fail(summary)
        verdict.fail(Status.TEST_FAILED, f"test: {summary}")
    return verdict


def decide_boot(evidence: GuestEvidence) -> Verdict:
    """The verdict of a boot that ended before any test ran: `boot --ssh` while its
    live VM comes up. The rules are decide's for a guest that never reached
    userspace, ran another kernel, panicked or timed out."""
    verdict = Verdict(reports=find_reports(evidence.console))
    kernel, panicked, panic_reason = _kernel_reports(evidence, verdict)
    if not evidence.reached_userspace:
        _never_booted(evidence, verdict, panicked, panic_reason)
        return verdict
    verdict.boot.state = StageState.PASS
    _check_kernel(evidence, verdict)
    # test --live judges only the console of its own run: a report printed while
    # the live VM came up is judged here, or nowhere.
    if kernel is not None and kernel.status is not Status.KERNEL_PANIC:
        verdict.boot.fail(kernel.reason)
        verdict.fail(kernel.status, f"boot: {kernel.reason}")
    if panicked:
        verdict.boot.fail("kernel panic")
        verdict.fail(Status.KERNEL_PANIC, f"boot: {panic_reason}")
    elif evidence.end is BootEnd.QEMU_EXITED:
        verdict.boot.fail(evidence.detail or evidence.end.value)
        verdict.fail(Status.INFRA, f"boot: {verdict.boot.message}")
    elif evidence.end is BootEnd.BOOT_TIMEOUT:
        verdict.boot.fail(evidence.detail or evidence.end.value)
        verdict.fail(Status.BOOT_TIMEOUT, f"boot: {verdict.boot.message}")
    return verdict


def _kernel_reports(
    evidence: GuestEvidence, verdict: Verdict
) -> tuple[KernelVerdict | None, bool, str]:
    """What the console's reports and the taint make of a run, whether it panicked, and
    the panic's reason."""
    kernel = kernel_verdict(verdict.reports, evidence.tainted)
    panicked = evidence.end is BootEnd.PANIC or (
        kernel is not None and kernel.status is Status.KERNEL_PANIC
    )
    panic_reason = kernel.reason if panicked and kernel else "kernel panic: see console.log"
    return kernel, panicked, panic_reason


def _never_booted(
    evidence: GuestEvidence, verdict: Verdict, panicked: bool, panic_reason: str
) -> None:
    verdict.boot.fail(evidence.detail or evidence.end.value)
    if panicked:
        verdict.fail(Status.KERNEL_PANIC, f"boot: {panic_reason}")
    elif evidence.end is BootEnd.QEMU_EXITED and not KERNEL_BANNER.search(evidence.console):
        # QEMU died before the kernel printed its banner: what the console holds, if
        # anything, is QEMU's own complaint (its stderr shares the pty), not the kernel's.
        verdict.fail(Status.INFRA, f"boot: {evidence.detail}")
    else:
        verdict.fail(Status.BOOT_TIMEOUT, f"boot: {verdict.boot.message}")


def _ran(evidence: GuestEvidence, verdict: Verdict, panicked: bool, panic_reason: str) -> None:
    """How the run went once the guest was up: which kernel, how it ended."""
    _check_kernel(evidence, verdict)
    verdict.test.state = StageState.PASS
    end, guest = evidence.end, evidence.guest
    if panicked:
        verdict.test.fail("kernel panic")
        verdict.fail(Status.KERNEL_PANIC, f"test: {panic_reason}")
    elif end in (BootEnd.TEST_HANG, BootEnd.RUN_TIMEOUT):
        verdict.test.fail(evidence.detail)
        verdict.fail(Status.GUEST_HANG, f"test: {evidence.detail}")
    elif end in (BootEnd.QEMU_EXITED, BootEnd.TRANSPORT_LOST):
        verdict.test.fail(evidence.detail)
        verdict.fail(Status.INFRA, f"test: {evidence.detail}")
    elif end is BootEnd.COMPLETED and not guest.finished:
        # The records stop without pytest's end: it died, or was killed, mid-session.
        why = evidence.detail or "the guest test session never finished"
        verdict.test.fail(why)
        verdict.fail(Status.TEST_FAILED, f"test: {why}")
    elif end is BootEnd.COMPLETED and guest.exit_status is not None:
        unexplained = _unexplained_exit(guest)
        if unexplained:
            verdict.test.fail(unexplained)
            verdict.fail(Status.TEST_FAILED, f"test: {unexplained}")


def _check_kernel(evidence: GuestEvidence, verdict: Verdict) -> None:
    """A guest that booted a kernel other than the one built tested nothing of ours."""
    built = evidence.built_version
    if built and evidence.booted_version != built:
        verdict.boot.fail(f"booted '{evidence.booted_version}', built '{built}'")
        verdict.fail(Status.INFRA, f"boot: the guest ran another kernel ({verdict.boot.message})")


def _unexplained_exit(guest: GuestRun) -> str:
    """pytest's exit status where its results do not account for it (an internal
    error, an interruption, a failure outside every test)."""
    status = guest.exit_status
    failing = any(result.outcome.failing for result in guest.results)
    if status == 0 and failing:
        return ""  # a kernel report failed a test pytest saw pass
    if status == 1 and not failing:
        return "pytest exited with status 1 but reported no failed test; see console.log"
    if status not in EXPLAINED_EXIT:
        return f"pytest exited with status {status}; see console.log"
    return ""


def _selftest_results(evidence: GuestEvidence, verdict: Verdict) -> list[TestResult]:
    """The upstream suites' results; missing ones fail the run (failed ones are
    judged with the guest tests, by the expectations). A binary that stopped before
    its plan's end gets one error for its missing cases."""
    assert evidence.selftests_tap is not None
    outputs = selftest_tap.parse_tap(evidence.selftests_tap)
    results = selftest_tap.results_of(outputs)
    completed = evidence.end is BootEnd.COMPLETED
    for output in outputs:
        if output.missing() and completed:
            results.append(
                TestResult(
                    output.binary.nodeid(selftest_tap.MISSING_CASE),
                    Outcome.ERROR,
                    message=f"{output.missing()} planned test(s) never reported",
                )
            )
    reported = {output.binary.guest_path for output in outputs}
    for path in evidence.selftest_binaries:
        if path not in reported and completed:
            binary = selftest_tap.SelftestBinary.from_mark(path)
            message = "never ran: nothing of it reached the TAP port (see console.log)"
            results.append(
                TestResult(binary.nodeid(selftest_tap.MISSING_CASE), Outcome.ERROR, message=message)
            )
    if not results and completed:
        verdict.fail(Status.TEST_FAILED, "test: the upstream selftests reported nothing")
    return results
