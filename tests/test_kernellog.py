from __future__ import annotations

from pathlib import Path

from harness.vm.kernellog import ReportKind, find_reports


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


def test_kcsan_data_race_is_its_own_kind_attributed_to_its_repetition(data_dir: Path) -> None:
    # The recorded console's report is modelled on the format in the kernel's
    # Documentation/dev-tools/kcsan.rst (and kernel/kcsan/report.c of 6.12).
    reports = find_reports((data_dir / "console-x86_64-kcsan-race.log").read_text())
    assert [r.kind for r in reports] == [ReportKind.KCSAN]
    race = reports[0]
    assert race.title == "data-race in __seccomp_filter / ptrace_resume"
    assert race.test == "test_ptrace_seccomp.py::test_resume_with_seccomp_stays_armed[rep1]"
    # The excerpt is the framed report: both accesses, up to the closing rule.
    lines = race.excerpt.splitlines()
    assert "ptrace_resume+0x1a6/0x2f0" in race.excerpt and "__seccomp_filter+0x3c9" in race.excerpt
    assert "Reported by Kernel Concurrency Sanitizer on:" in lines[-4]
    assert lines[-1].endswith("=" * 66)


def test_kasan_report_excerpt_ends_at_its_closing_rule() -> None:
    console = (
        "[ 5.0] ==================================================================\n"
        "[ 5.1] BUG: KASAN: slab-use-after-free in seccomp_run_filters+0x2c/0x1c0\n"
        "[ 5.2] Read of size 8 at addr ffff000004a1c6a8 by task python3/142\n"
        "[ 5.3] ==================================================================\n"
        "[ 5.4] Disabling lock debugging due to kernel taint\n"
    )
    [report] = find_reports(console)
    assert report.kind is ReportKind.KASAN
    assert report.title == "slab-use-after-free in seccomp_run_filters+0x2c/0x1c0"
    assert report.excerpt.splitlines()[-1] == "[ 5.3] " + "=" * 66


def test_soft_lockup_behind_the_watchdog_prefix_is_found() -> None:
    test = "test_detach_kill.py::test_detach_at_stop_kills[exitkill-rep7]"
    console = (
        f"[ 30.0] harness: test-start {test}\n"
        "[ 52.1] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [python3:142]\n"
    )
    [report] = find_reports(console)
    assert report.kind is ReportKind.SOFT_LOCKUP
    assert report.title == "BUG: soft lockup - CPU#1 stuck for 22s! [python3:142]"
    assert report.test == test
