"""How a cell's console is judged: every kernel report, wherever it is, fails the cell,
in a booted run and in `test --live` alike; report classes; attribution to a guest test;
userspace output is never a kernel report.

The consoles in tests/data are recorded or composed from the 6.12 kernel's format strings
(each says which in its first lines); the records are recorded or written here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from conftest import one_cell_matrix
from test_boot import run_fake
from test_live_vm import live_run

from harness import livetest, records
from harness.boot import BootEnd, BootOutcome
from harness.model import Cell
from harness.records import GuestRun, parse_records
from harness.status import Status

_STARTS = re.compile(r"harness: test-start (.+)$", re.MULTILINE)


def classify(tmp_path: Path, console: Path, outcome: BootOutcome) -> Cell:
    """The cell Matrix.classify makes of a finished guest run and its console."""
    cell = Cell("arm64" if "arm64" in console.name else "x86_64", "baseline")
    log = tmp_path / "console.log"
    if console != log:
        shutil.copy(console, log)
    one_cell_matrix(tmp_path).classify(cell, outcome, log, 30.0)
    return cell


def completed(guest: GuestRun) -> BootOutcome:
    return BootOutcome(
        BootEnd.COMPLETED, guest, boot_seconds=3.0, total_seconds=30.0,
        kernel_release="6.12.117", kernel_version="#7 SMP", tainted=0,
    )  # fmt: skip


def all_passed(console: Path) -> GuestRun:
    """Records in which every test the console shows starting passed."""
    nodeids = _STARTS.findall(console.read_text())
    return GuestRun(results=[records.TestResult(n, "passed", 0.1) for n in nodeids], exit_status=0)


# -- 1. a report after the guest was done ------------------------------------------


def test_a_panic_after_the_guest_was_done_fails_the_cell(tmp_path: Path, data_dir: Path) -> None:
    console = data_dir / "console-x86_64-panic-after-done.log"
    outcome = run_fake(tmp_path, "replay", console, data_dir / "results-x86_64-pass.jsonl")
    assert outcome.end is BootEnd.COMPLETED  # "HARNESS: guest done" came first
    cell = classify(tmp_path, tmp_path / "console.log", outcome)
    assert [r["kind"] for r in cell.kernel_reports] == ["panic"]
    assert cell.kernel_reports[0]["test"] is None  # no test was running
    assert cell.status is Status.KERNEL_PANIC and cell.status.exit_code == 7
    assert cell.reason == "test: kernel panic: Attempted to kill init! exitcode=0x00000100"
    assert cell.tests["passed"] == 53 and cell.tests["failed"] == 0


def test_a_panic_after_the_live_session_ended_fails_the_live_run(
    tmp_path: Path, data_dir: Path
) -> None:
    guest = parse_records((data_dir / "results-x86_64-pass.jsonl").read_text())
    assert guest.finished
    outcome = livetest.LiveOutcome(guest=guest)
    console = (data_dir / "console-x86_64-panic-after-done.log").read_text()
    livetest.classify(live_run(tmp_path), outcome, console)
    assert outcome.status is Status.KERNEL_PANIC and outcome.status.exit_code == 7
    assert outcome.reason == "test: kernel panic: Attempted to kill init! exitcode=0x00000100"


def test_a_warning_after_the_live_session_ended_fails_the_live_run(
    tmp_path: Path, data_dir: Path
) -> None:
    guest = parse_records((data_dir / "results-x86_64-pass.jsonl").read_text())
    outcome = livetest.LiveOutcome(guest=guest)
    console = (data_dir / "console-x86_64-pass.log").read_text() + (
        "[    9.100000] INFO: task kworker/0:1:12 blocked for more than 120 seconds.\n"
    )
    livetest.classify(live_run(tmp_path), outcome, console)
    assert outcome.status is Status.KERNEL_WARNING
    assert outcome.reason.startswith("kernel hung_task: INFO: task kworker/0:1:12 blocked")
