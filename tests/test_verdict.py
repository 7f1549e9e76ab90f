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

import pytest
from conftest import one_cell_matrix
from test_boot import run_fake
from test_live_vm import live_run

from harness.core.arches import ARCHES
from harness.core.status import Status
from harness.core.vocabulary import Variant
from harness.live import session as livetest
from harness.results.model import Cell
from harness.vm import records
from harness.vm.boot import BootEnd, BootOutcome
from harness.vm.kernellog import find_reports
from harness.vm.records import GuestRun, parse_records

_STARTS = re.compile(r"harness: test-start (.+)$", re.MULTILINE)


def classify(tmp_path: Path, console: Path, outcome: BootOutcome) -> Cell:
    """The cell the matrix makes of a finished guest run and its console."""
    cell = Cell(ARCHES["arm64" if "arm64" in console.name else "x86_64"], Variant.BASELINE)
    log = tmp_path / "console.log"
    if console != log:
        shutil.copy(console, log)
    one_cell_matrix(tmp_path).tester.record_outcome(cell, outcome, tmp_path, 30.0, False)
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


# -- 2. report classes ------------------------------------------------------------

CLASSES = [
    # console, kind, title, the test it is attributed to
    ("console-arm64-hard-lockup.log", "hard_lockup",
     "Watchdog detected hard LOCKUP on cpu 1",
     "test_detach_kill.py::test_event_tracer_exit[exitkill]"),
    ("console-x86_64-rcu-expedited-stall.log", "rcu_stall",
     "rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: { 1-.... } 21003 jiffies "
     "s: 373 root: 0x2/.",
     "test_ptrace_seccomp.py::test_detach_at_seccomp_stop"),
    ("console-x86_64-ubsan.log", "ubsan",
     "array-index-out-of-bounds in ../../../sources/debian-6.12.117-1~deb12u1/kernel/seccomp.c"
     ":412:23",
     "test_seccomp_filters.py::test_filter_with_max_instructions"),
    ("console-x86_64-kernel-bug.log", "bug",
     "kernel BUG at ../../../sources/debian-6.12.117-1~deb12u1/kernel/seccomp.c:1245!",
     "test_ptrace_seccomp.py::test_detach_at_seccomp_stop"),
    ("console-arm64-null-deref.log", "oops",
     "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008",
     "test_trace_event.py::test_suspend_seccomp_bypasses_filters"),
    ("console-x86_64-general-protection-fault.log", "oops",
     "general protection fault, probably for non-canonical address 0xdead000000000122: 0000 "
     "[#1] SMP NOPTI",
     "test_detach_kill.py::test_event_tracer_exit[exitkill]"),
    ("console-x86_64-inconsistent-lock-state.log", "lockdep",
     "inconsistent lock state", "test_ptrace_seccomp.py::test_kill_at_seccomp_stop"),
    ("console-x86_64-suspicious-rcu-usage.log", "lockdep",
     "suspicious RCU usage", "test_trace_event.py::test_suspend_seccomp_bypasses_filters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "kind", "title", "test"), CLASSES, ids=[c[0].split("-", 2)[2][:-4] for c in CLASSES]
)
def test_a_report_class_fails_its_test_and_the_cell(
    tmp_path: Path, data_dir: Path, name: str, kind: str, title: str, test: str
) -> None:
    console = data_dir / name
    reports = find_reports(console.read_text())
    # One report per event: the oops header that follows a BUG or a fault is part of it.
    assert [(r.kind.value, r.title, r.test) for r in reports] == [(kind, title, test)]
    assert "harness: test-" not in reports[0].excerpt  # it ends when its test does
    cell = classify(tmp_path, console, completed(all_passed(console)))
    assert cell.status is Status.KERNEL_WARNING and cell.status.exit_code == 8
    assert cell.reason == f"kernel {kind}: {title}"
    assert [n for n, o in cell.outcomes.items() if o != "passed"] == [test]
    failed = next(r for r in cell.kernel_reports if r["test"] == test)
    assert failed["kind"] == kind


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("watchdog: Watchdog detected hard LOCKUP on cpu 0", "hard_lockup"),
        ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 1", "hard_lockup"),
        ("rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: { 1-...D } 5252 "
         "jiffies s: 521 root: 0x2/.", "rcu_stall"),
        ("rcu: INFO: rcu_preempt detected expedited stalls, but suppressed full report due to "
         "a stuck CSD-lock.", "rcu_stall"),
        ("rcu: INFO: rcu_sched self-detected stall on CPU", "rcu_stall"),
        ("UBSAN: shift-out-of-bounds in kernel/seccomp.c:12:3", "ubsan"),
        ("Kernel BUG at __seccomp_filter+0x3c9/0x3d0 [verbose debug info unavailable]",
         "bug"),
        ("Oops: segment-related general protection fault: 0018 [#1] SMP NOPTI", "oops"),
        ("Unable to handle kernel paging request at virtual address dead000000000108",
         "oops"),
        ("WARNING: possible circular locking dependency detected", "lockdep"),
        ("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected", "lockdep"),
        ("WARNING: bad unlock balance detected!", "lockdep"),
        ("WARNING: CPU: 0 PID: 1 at kernel/locking/lockdep.c:10 lockdep_init+0x1/0x2",
         "warning"),
        ("WARNING: CPU: 0 PID: 1 at fs/possible.c:10 f+0x1/0x2", "warning"),
    ],
)  # fmt: skip
def test_report_headers_of_6_12(line: str, kind: str) -> None:
    [report] = find_reports(f"[   12.345678] {line}\n")
    assert report.kind.value == kind


def test_an_oops_after_a_bug_is_one_report_and_a_panic_after_it_another() -> None:
    console = (
        "[    5.000000] kernel BUG at kernel/seccomp.c:12!\n"
        "[    5.000001] Oops: invalid opcode: 0000 [#1] SMP NOPTI\n"
        "[    5.000002] ---[ end trace 0000000000000000 ]---\n"
        "[    5.000003] Kernel panic - not syncing: Fatal exception\n"
        "[    6.000000] Oops: general protection fault: 0000 [#2] SMP NOPTI\n"
    )
    assert [r.kind.value for r in find_reports(console)] == [
        "bug", "panic", "oops",
    ]  # fmt: skip


# -- 3. attribution by the test boundaries; kernel lines only ------------------------


def test_a_report_during_a_test_whose_id_holds_a_space_fails_that_test(
    tmp_path: Path, data_dir: Path
) -> None:
    console = data_dir / "console-x86_64-test-id-with-space.log"
    [report] = find_reports(console.read_text())
    assert report.test == "test_params.py::test_filter_action[kill process]"
    cell = classify(tmp_path, console, completed(all_passed(console)))
    assert cell.status is Status.KERNEL_WARNING
    assert cell.outcomes == {
        "test_params.py::test_filter_action[kill process]": "failed",
        "test_params.py::test_filter_action[kill thread]": "passed",
    }


def test_guest_output_that_looks_like_a_report_is_not_one(tmp_path: Path, data_dir: Path) -> None:
    console = data_dir / "console-x86_64-userspace-lookalikes.log"
    records = data_dir / "results-x86_64-userspace-lookalikes.jsonl"
    assert find_reports(console.read_text()) == []
    # Its "Kernel panic - not syncing" line does not stop the guest either.
    outcome = run_fake(tmp_path, "replay", console, records)
    assert outcome.end is BootEnd.COMPLETED
    cell = classify(tmp_path, tmp_path / "console.log", outcome)
    assert (cell.status, cell.kernel_reports) == (Status.PASS, [])
    assert set(cell.outcomes.values()) == {"passed"}
