"""A built cell's guest side: its initramfs, QEMU under the accelerator that
works, the watched boot, and the verdict (verdict/cell.py) copied onto the cell
with its JUnit file."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from harness.core.arches import ArchSpec
from harness.core.errors import StageFailure
from harness.core.kselftests import SUITES
from harness.core.progress import Progress
from harness.core.vocabulary import Accel
from harness.kernel.selftest_tap import is_series_case
from harness.results.junit import Suite, write_junit
from harness.results.model import GUEST_SUITE, Cell, TestOutcome
from harness.run.cellbuild import CellBuilder
from harness.run.config import RunConfig
from harness.verdict.cell import GuestEvidence, Verdict, decide
from harness.verdict.expectations import suite_of
from harness.verdict.judge import Judgement, judge
from harness.vm import compat, initramfs, qemu
from harness.vm.boot import ACCEL_TIME_FACTOR, BootEnd, BootOutcome, boot_and_test
from harness.vm.decode import decode_stacktrace
from harness.vm.initramfs import GuestBinary
from harness.vm.records import TestResult, count_outcomes


class CellTester:
    """Boots built cells and decides them; guests of several cells may run at once."""

    def __init__(self, config: RunConfig, progress: Progress, builder: CellBuilder) -> None:
        self.config = config
        self.progress = progress
        self.builder = builder  # the guest userspace of each arch comes from it
        self.verdicts = qemu.AccelVerdicts(config.work.verdicts)
        self.cancel = threading.Event()  # set on Ctrl-C: running guests stop

    def boot_and_test(
        self,
        cell: Cell,
        arch: ArchSpec,
        image: Path,
        cell_dir: Path,
        selftest_binaries: list[GuestBinary],
    ) -> None:
        try:
            self._boot_and_test(cell, arch, image, cell_dir, selftest_binaries)
        except StageFailure as failure:
            # Its callers go on to the next cell: the cell must not stay undecided,
            # which would read as a pass.
            cell.fail(failure.status, str(failure))
            raise

    def _boot_and_test(
        self,
        cell: Cell,
        arch: ArchSpec,
        image: Path,
        cell_dir: Path,
        selftest_binaries: list[GuestBinary],
    ) -> None:
        initramfs_log = cell_dir / "initramfs.log"
        started = time.monotonic()
        base = self.builder.base_for(arch, initramfs_log)
        programs = compat.programs_layer(
            arch, self.config.guest_tests, self.config.work.initramfs, initramfs_log
        )
        # One initrd per cell: cells of one arch may boot side by side.
        initrd = self.config.work.initramfs / f"initrd-{cell.directory_name}.cpio"
        initramfs.assemble(
            base,
            self.config.guest_tests,
            self.config.pytest_args,
            initrd,
            selftest_binaries,
            layers=(programs,),
        )
        cell.facts["initramfs"] = {
            "base_key": base.key,
            "bytes": initrd.stat().st_size,
            "seconds": round(time.monotonic() - started, 3),
        }
        console_log = cell_dir / "console.log"
        results_path = cell_dir / "results.jsonl"
        tap_path = cell_dir / "selftests.tap"
        cell.files.update(console_log=console_log.name, results=results_path.name)
        if selftest_binaries:
            cell.files["selftests_tap"] = tap_path.name
            cell.facts["selftest_binaries"] = [binary.guest_path for binary in selftest_binaries]
        outcome: BootOutcome | None = None
        boot_started = time.monotonic()
        for accel in qemu.accel_candidates(self.config.accel, arch, self.verdicts):
            setup = qemu.QemuSetup(
                arch=arch,
                kernel=image,
                initrd=initrd,
                results=results_path,
                selftests=tap_path,
                accel=accel,
                cmdline_extra=[*self.config.cmdline, self.guest_timeout_factor()],
                qemu_extra=self.config.qemu_args,
            )
            command = qemu.qemu_command(setup)
            qemu.write_reproducer(command, cell_dir / "qemu.sh")
            cell.files["reproducer"] = "qemu.sh"
            probing = accel is Accel.KVM and self.config.accel is Accel.AUTO
            with self.progress.stage(cell.name, f"boot+test ({accel})") as meter:
                factor = ACCEL_TIME_FACTOR[accel] * self.config.timeout_factor
                outcome = boot_and_test(
                    command,
                    console_log,
                    results_path,
                    self.config.timeouts.scaled(factor),
                    require_banner=probing,
                    extra_outputs=(tap_path,),
                    cancel=self.cancel,
                    on_progress=lambda run: meter.report(run.progress()),
                )
            if probing:
                broken = outcome.end is BootEnd.NO_OUTPUT
                self.verdicts.record(arch, "broken" if broken else "works")
                if broken:
                    self.progress.line(f"{cell.name}: KVM guest printed nothing; using TCG")
                    continue
            cell.facts["accel"] = accel
            break
        assert outcome is not None
        seconds = time.monotonic() - boot_started
        self.record_outcome(cell, outcome, cell_dir, seconds, bool(selftest_binaries))

    def guest_timeout_factor(self) -> str:
        """The kernel parameter that stretches the guest tests' own waits (their 5 s per
        wait, seccomplib/ptrace.py) by --timeout-factor, as the host's are."""
        return f"harness.timeout_factor={self.config.timeout_factor:g}"

    def record_outcome(
        self, cell: Cell, outcome: BootOutcome, cell_dir: Path, seconds: float, selftests_ran: bool
    ) -> None:
        """Decide a finished guest run from its files in `cell_dir` (verdict/cell.py),
        copy the verdict onto the cell, write JUnit."""
        console = (cell_dir / "console.log").read_text(errors="replace")
        tap = (cell_dir / "selftests.tap").read_text(errors="replace") if selftests_ran else None
        evidence = GuestEvidence(
            end=outcome.end,
            guest=outcome.guest,
            console=console,
            detail=outcome.detail,
            reached_userspace=outcome.boot_seconds is not None,
            tainted=outcome.tainted,
            booted_version=outcome.kernel_version,
            built_version=cell.facts.get("built_uts_version"),
            selftests_tap=tap,
            selftest_binaries=tuple(cell.facts.get("selftest_binaries") or ()),
        )
        verdict = decide(evidence, lambda results: self.judgement_of(cell, results))
        self.copy_verdict(cell, outcome, verdict, seconds, selftests_ran)
        judgement = verdict.judgement
        assert judgement is not None
        junit = cell_dir / "junit.xml"
        properties = {
            "arch": cell.arch.name,
            "toolchain": cell.toolchain.name,
            "compiler": str(cell.facts.get("compiler")),
            "variant": cell.variant,
            "kernel_release": outcome.kernel_release,
            "kernel_version": outcome.kernel_version,
            "series_hash": str(cell.facts.get("series_hash")),
            "config_hash": str(cell.facts.get("config_hash")),
        }
        expected = judgement.expected_failure_reasons()
        suites = [Suite(cell.key.suite_name, verdict.results, properties, expected)]
        for suite, results in upstream_suites(verdict.upstream).items():
            name = f"{cell.key.suite_name}.{suite}"
            suites.append(Suite(name, results, properties, expected))
        write_junit(junit, suites)
        cell.files["junit"] = junit.name

    def copy_verdict(
        self,
        cell: Cell,
        outcome: BootOutcome,
        verdict: Verdict,
        seconds: float,
        selftests_ran: bool,
    ) -> None:
        """The verdict and the run's facts onto the cell: it decides nothing itself."""
        boot, test = cell.stages["boot"], cell.stages["test"]
        boot.state, boot.message = verdict.boot.state, verdict.boot.message
        test.state, test.message = verdict.test.state, verdict.test.message
        boot.seconds = outcome.boot_seconds or seconds
        test.seconds = max(0.0, seconds - (outcome.boot_seconds or seconds))
        cell.fail(verdict.status, verdict.reason)
        cell.kernel_reports = [
            {
                "kind": r.kind.value,
                "title": r.title,
                "test": r.test,
                "line": r.line,
                "excerpt": r.excerpt,
            }
            for r in verdict.reports
        ]
        cell.facts.update(
            kernel_release=outcome.kernel_release, booted_kernel_version=outcome.kernel_version
        )
        guest = outcome.guest
        cell.tests = guest.counts()
        cell.outcomes = {result.nodeid: result.outcome for result in verdict.results}
        if outcome.boot_seconds is not None:
            cell.facts["tainted"] = outcome.tainted
        if guest.seconds is not None:
            cell.facts["guest_tests_seconds"] = round(guest.seconds, 3)
        if outcome.first_test_seconds is not None:
            cell.facts["first_test_seconds"] = round(outcome.first_test_seconds, 3)
        if selftests_ran:
            cell.facts.update(selftest_counts(verdict.upstream))
            cell.outcomes.update((r.nodeid, r.outcome) for r in verdict.upstream)
        assert verdict.judgement is not None
        expected = verdict.judgement.expected_failure_reasons()
        cell.results = [
            TestOutcome(
                r.nodeid, suite, r.outcome, r.message, expected.get(r.nodeid, ""), r.duration
            )
            for suite, results in [
                (GUEST_SUITE, verdict.results),
                *upstream_suites(verdict.upstream).items(),
            ]
            for r in results
        ]
        cell.facts["expectations"] = verdict.judgement.to_json()
        for warning in verdict.judgement.stale_lines():
            self.progress.line(f"{cell.name}: warning: {warning}")

    def decode_reports(self, cell: Cell, arch: ArchSpec, tree: Path, vmlinux: Path) -> None:
        for report in cell.kernel_reports:
            decoded = decode_stacktrace(arch, tree, vmlinux, report["excerpt"])
            if decoded is not None:
                report["decoded"] = decoded

    def judgement_of(self, cell: Cell, results: list[TestResult]) -> Judgement:
        """How the expectations judge this cell's results (check-series judges prefixes
        its own way). A selection (-k, -m, node ids) leaves most entries nothing to
        decide: none is reported stale."""
        whole = not selects_tests(self.config.pytest_args)
        judgement = judge(self.config.expectations, cell.arch.name, cell.variant, results, whole)
        if not whole:
            judgement.stale = []
        return judgement


def upstream_suites(results: list[TestResult]) -> dict[str, list[TestResult]]:
    """The upstream selftests' results per suite, the suites in the table's order
    (seccomp_bpf, ptrace; the guest runs them alphabetically), each suite's results in
    the order the guest ran them."""
    suites: dict[str, list[TestResult]] = {}
    for result in results:
        suites.setdefault(suite_of(result.nodeid), []).append(result)
    ranked = sorted(suites, key=lambda s: SUITES.index(s) if s in SUITES else len(SUITES))
    return {suite: suites[suite] for suite in ranked}


def selftest_counts(results: list[TestResult]) -> dict[str, Any]:
    """The cell's upstream selftest counts: `selftests` (the cell's own tree's binaries,
    every suite), `selftests_series` (the series tree's, when the baseline ran them) and
    `selftest_suites` (both, per suite)."""

    def split(found: list[TestResult]) -> dict[str, dict[str, int]]:
        own = [r for r in found if not is_series_case(r.nodeid)]
        series = [r for r in found if is_series_case(r.nodeid)]
        return {"own": count_outcomes(own)} | ({"series": count_outcomes(series)} if series else {})

    whole = split(results)
    counts: dict[str, Any] = {"selftests": whole["own"]}
    if "series" in whole:
        counts["selftests_series"] = whole["series"]
    counts["selftest_suites"] = {
        suite: split(found) for suite, found in upstream_suites(results).items()
    }
    return counts


def selects_tests(pytest_args: list[str]) -> bool:
    """Whether pytest's arguments run a selection of the guest tests, not all of them."""
    return any(
        arg in ("-k", "-m") or arg.startswith(("-k", "-m")) or "::" in arg or arg.endswith(".py")
        for arg in pytest_args
    )
