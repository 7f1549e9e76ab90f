"""`harness check-series --boot`: boot every prefix's kernel and judge its guest tests.

check-series reuses one build dir per arch prefix after prefix, so a prefix is
booted right after its build, before the next patch is applied. It is booted
and tested exactly as the matrix boots and tests a cell (`CellTester.boot_and_test`:
the same initramfs, QEMU command, console and record classification and the
same judgement by the expectations), as a cell of its own: the base is judged
by the `baseline` expectations; a prefix of the series by both, a test
departing only where its outcome is neither the one `baseline` nor the one
`patched` expects (`expectations.judge_prefix`): a patch need not have made a
test pass yet, but must not make one fail.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.checks.seriesreport import BootVerdict
from harness.core.errors import StageFailure
from harness.core.jsonfile import write_json
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.toolchains import Platform
from harness.core.vocabulary import Variant
from harness.kernel import build
from harness.results.model import Cell, StageState
from harness.run.cellbuild import CellBuilder
from harness.run.celltest import CellTester, selects_tests
from harness.run.config import Prepared, RunConfig
from harness.verdict.judge import Judgement, judge_prefix
from harness.vm.records import TestResult

BOOTS = "boots"  # under the results dir: one directory per prefix and arch


@dataclass
class PrefixCell(Cell):
    """A matrix cell standing for one prefix: named after it in progress lines."""

    label: str = ""

    @property
    def name(self) -> str:
        return self.label or super().name


def departures_of(cell: Cell) -> list[str]:
    """What departed, worst first: the kernel's report classes, then the tests the
    expectations did not allow; else, for a cell failed before any test was judged
    (boot timeout, hang), its reason."""
    kinds = [f"kernel {report['kind']}" for report in cell.kernel_reports]
    judged = cell.facts.get("expectations") or {}
    tests = [departure["test"] for departure in judged.get("departures", [])]
    found = list(dict.fromkeys(kinds + tests))
    if not found and cell.status is not Status.PASS:
        found = [cell.reason or cell.status.label]
    return found


def verdict_of(cell: Cell, directory: str) -> BootVerdict:
    """The prefix's verdict from its cell, once the matrix has classified and judged it."""
    booted = cell.stages["boot"].state is not StageState.NOT_RUN
    return BootVerdict(
        judged_as=cell.variant,
        booted=booted,
        status=cell.status,
        reason=cell.reason,
        departures=departures_of(cell) if booted else [],
        directory=directory,
    )


def not_booted(number: int, reason: str) -> BootVerdict:
    return BootVerdict(judged_as=variant_for(number), booted=False, reason=reason)


def variant_for(number: int) -> Variant:
    """The expectations a prefix is judged by: the base's are baseline's."""
    return Variant.BASELINE if number == 0 else Variant.PATCHED


class PrefixTester(CellTester):
    """The matrix's boot and verdict, with a prefix's own judgement."""

    def judgement_of(self, cell: Cell, results: list[TestResult]) -> Judgement:
        if cell.variant == Variant.BASELINE:
            return super().judgement_of(cell, results)
        whole = not selects_tests(self.config.pytest_args)
        return judge_prefix(self.config.expectations, cell.arch.name, results, whole)


class PrefixBooter:
    """Boots the kernel each prefix built, with the matrix's own boot and judgement."""

    def __init__(self, config: RunConfig, prepared: Prepared, progress: Progress) -> None:
        self.config = config
        self.builder = CellBuilder(config, prepared, progress)
        self.tester = PrefixTester(config, progress, self.builder)

    def reset(self) -> None:
        """No boot of an earlier run into these results may pass for one of this run."""
        shutil.rmtree(self.config.results_dir / BOOTS, ignore_errors=True)

    def boot(
        self, platform: Platform, number: int, label: str, tree: Path, build_dir: Path
    ) -> BootVerdict:
        """Boot and test the kernel in `build_dir`, built from `tree` as it is now."""
        cell, relative = self.boot_cell(platform, number, label, tree, build_dir)
        return verdict_of(cell, relative)

    def boot_cell(
        self, platform: Platform, number: int, label: str, tree: Path, build_dir: Path
    ) -> tuple[Cell, str]:
        """The booted prefix's cell, decided and judged, and its directory (relative to the
        results dir), which holds its console.log, results.jsonl and cell.json."""
        arch = platform.arch
        relative = f"{BOOTS}/{number:02d}-{platform.name}"
        cell_dir = self.config.results_dir / relative
        cell_dir.mkdir(parents=True, exist_ok=True)
        cell = PrefixCell(arch, variant_for(number), toolchain=platform.toolchain, label=label)
        cell.facts.update(prefix=number, built_uts_version=build.built_uts_version(build_dir))
        build_log = cell_dir / "selftests-build.log"
        try:
            selftests = self.builder.selftests_for(cell, arch, tree, build_dir, build_log)
            image = build_dir / arch.image_path
            self.tester.boot_and_test(cell, arch, image, cell_dir, selftests)
            self.tester.decode_reports(cell, arch, tree, build_dir / "vmlinux")
        except StageFailure:
            pass  # recorded on the cell
        except OSError as error:
            cell.fail(Status.INFRA, f"host error: {error}")
        write_json(cell_dir / "cell.json", cell.to_json())
        return cell, relative
