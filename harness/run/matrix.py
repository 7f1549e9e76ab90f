"""The matrix: every arch x toolchain x variant cell built, booted and tested, scheduled.

Builds run one after another in the calling thread (kbuild already uses every
core it is given); each built cell is booted by a worker while the next one
builds, up to `guest_slots` guests at once. A failing cell records its status
and the run goes on with the next; the worst cell decides the run's exit code.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from harness.core.errors import StageFailure
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.toolchains import Platform
from harness.core.vocabulary import Variant
from harness.results.model import Cell
from harness.run.cellbuild import BuiltCell, CellBuilder, write_cell
from harness.run.celltest import CellTester
from harness.run.config import Prepared, RunConfig

# CPUs one guest keeps busy under TCG: its tests run one at a time, so of
# its two vCPUs one is mostly idle.
GUEST_CPUS = 1


def guest_slots(jobs: int) -> int:
    """How many guests may run at once within the CPU budget `jobs` (-j)."""
    return max(1, jobs // GUEST_CPUS)


class Matrix:
    def __init__(self, config: RunConfig, prepared: Prepared, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.builder = CellBuilder(config, prepared, progress)
        self.tester = CellTester(config, progress, self.builder)
        self.finished: dict[int, Cell] = {}  # by index in the plan: decided and written

    @property
    def cancel(self) -> threading.Event:
        return self.tester.cancel

    def run_cell(self, platform: Platform, variant: Variant, run_dir: Path) -> Cell:
        """Build and then test one cell, in this thread."""
        built = self.builder.build_cell(platform, variant, run_dir)
        return built if isinstance(built, Cell) else self.test_cell(built)

    def test_cell(self, built: BuiltCell) -> Cell:
        """Boot and test a built cell; safe to run beside other cells' builds and boots."""
        cell = built.cell
        try:
            self.tester.boot_and_test(
                cell, built.arch, built.image, built.cell_dir, built.selftests
            )
            self.tester.decode_reports(cell, built.arch, built.tree, built.build_dir / "vmlinux")
        except StageFailure:
            pass
        except OSError as error:
            cell.fail(Status.INFRA, f"host error: {error}")
        write_cell(cell, built.cell_dir, self.progress)
        return cell

    def unfinished(self) -> list[tuple[Cell, Path]]:
        """The cells begun but not decided (an interrupted run), with their dirs."""
        done = {id(cell) for cell in self.finished.values()}
        return [(cell, where) for cell, where in self.builder.opened if id(cell) not in done]

    def run_cells(self, plan: list[tuple[Platform, Variant]], run_dir: Path) -> list[Cell]:
        """Every cell of `plan`, builds one after another, boots overlapped.

        Builds run in this thread, in order; each built cell is booted and
        tested by a worker while the next one builds, and up to `guest_slots`
        guests run side by side (a no-op run boots its cells in parallel).
        """
        slots = guest_slots(self.config.jobs)
        finished = self.finished
        pending: dict[int, Future[Cell]] = {}
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="guest")
        try:
            for index, (platform, variant) in enumerate(plan):
                built = self.builder.build_cell(platform, variant, run_dir)
                if isinstance(built, Cell):
                    finished[index] = built
                else:
                    pending[index] = pool.submit(self.test_cell, built)
            for index, future in pending.items():
                finished[index] = future.result()
        except BaseException:
            # Ctrl-C or SIGTERM: running guests see the event within a second
            # and stop their QEMU; guests not started yet never start.
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return [finished[index] for index in range(len(plan))]
