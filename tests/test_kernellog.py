from __future__ import annotations

from pathlib import Path

from harness.kernellog import ReportKind, find_reports


def test_clean_run_has_no_reports(data_dir: Path) -> None:
    assert find_reports((data_dir / "console-x86_64-pass.log").read_text()) == []


def test_sysrq_panic_is_found_and_attributed(data_dir: Path) -> None:
    reports = find_reports((data_dir / "console-x86_64-sysrq-panic.log").read_text())
    assert [r.kind for r in reports] == [ReportKind.PANIC]
    panic = reports[0]
    assert panic.title == "sysrq triggered crash"
    assert panic.test == "test_faults.py::test_sysrq_crash_panics_the_kernel"
    # panic=-1 reboots at once: the excerpt runs to the end of the log, trace included.
    assert "sysrq_handle_crash" in panic.excerpt


def test_lkdtm_warning_is_attributed_to_its_test_only(data_dir: Path) -> None:
    reports = find_reports((data_dir / "console-x86_64-lkdtm-warning.log").read_text())
    assert [r.kind for r in reports] == [ReportKind.WARNING]
    warning = reports[0]
    assert warning.test == "test_faults.py::test_lkdtm_warning"
    assert "lkdtm_WARNING" in warning.title
    assert warning.excerpt.splitlines()[-1].rstrip().endswith("]---")


def test_kernel_message_in_the_middle_of_a_userspace_line() -> None:
    console = (
        "test_x.py [    2.405583] harness: test-start test_x.py::test_a\n"
        "[    2.500000] BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "[    2.600000] harness: test-end test_x.py::test_a failed\n"
        "[    2.700000] INFO: task python3:48 blocked for more than 120 seconds.\n"
    )
    reports = find_reports(console)
    assert [(r.kind, r.test) for r in reports] == [
        (ReportKind.BUG, "test_x.py::test_a"),
        (ReportKind.HUNG_TASK, None),
    ]
