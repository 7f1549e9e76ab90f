"""The one verdict (harness/verdict/cell.py), without a Matrix, a QEMU or a live VM:
every console in tests/data, every way a guest run ends, taint, a foreign kernel, the
selftests' TAP and pytest's own exit status, each with its status, exit code,
reason and the test it blames.

Consoles and records are the ones in tests/data (recorded, or composed from the
6.12 kernel's format strings: a composed file says so in its first lines, and
tests/data/README.md lists which is which).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from harness.core.status import Status
from harness.results.model import StageState
from harness.verdict.cell import GuestEvidence, Verdict, decide
from harness.verdict.expectations import NO_EXPECTATIONS
from harness.verdict.judge import Judgement, judge
from harness.vm.boot import BootEnd
from harness.vm.kernellog import ReportKind
from harness.vm.records import GuestRun, parse_records
from harness.vm.records import TestResult as Result

DATA = Path(__file__).parent / "data"
_STARTS = re.compile(r"harness: test-start (.+)$", re.MULTILINE)


def no_expectations(results: list[Result]) -> Judgement:
    return judge(NO_EXPECTATIONS, "x86_64", "patched", results)


def all_passed(console: str) -> GuestRun:
    """Finished records in which every test the console shows starting passed."""
    nodeids = dict.fromkeys(_STARTS.findall(console))
    return GuestRun(results=[Result(n, "passed", 0.1) for n in nodeids], exit_status=0)


def completed(console: str, guest: GuestRun | None = None, **changes: object) -> GuestEvidence:
    evidence = GuestEvidence(
        end=BootEnd.COMPLETED, guest=guest or all_passed(console), console=console,
        tainted=0, booted_version="#7 SMP", built_version="#7 SMP",
    )  # fmt: skip
    return replace(evidence, **changes)  # type: ignore[arg-type]


def outcome_of(verdict: Verdict, nodeid: str) -> str:
    return next(r.outcome for r in verdict.results if r.nodeid == nodeid)


# -- every console in tests/data ----------------------------------------------------

W, P, OK = Status.KERNEL_WARNING, Status.KERNEL_PANIC, Status.PASS

# console file -> (status, the kind of every report found in it, reason, the test it blames)
# tests/data/README.md says which consoles were recorded and which composed.
CONSOLES: dict[str, tuple[Status, list[ReportKind], str, str | None]] = {
    "console-arm64-hard-lockup.log": (
        W, [ReportKind.HARD_LOCKUP],
        "kernel hard_lockup: Watchdog detected hard LOCKUP on cpu 1",
        "test_detach_kill.py::test_event_tracer_exit[exitkill]",
    ),
    "console-arm64-kasan-use-after-free.log": (
        W, [ReportKind.KASAN],
        "kernel kasan: slab-use-after-free in __seccomp_filter_orphan+0x5c/0x130",
        "test_return_values.py::test_user_notif_supervisor_answers",
    ),
    "console-arm64-null-deref.log": (
        W, [ReportKind.OOPS],
        "kernel oops: Unable to handle kernel NULL pointer dereference at virtual address "
        "0000000000000008",
        "test_trace_event.py::test_suspend_seccomp_bypasses_filters",
    ),
    "console-arm64-paging-request.log": (
        W, [ReportKind.OOPS],
        "kernel oops: Unable to handle kernel paging request at virtual address "
        "dead000000000108",
        "test_return_values.py::test_kill_process_kills_every_thread",
    ),
    "console-arm64-rcu-preempt-expedited-stall.log": (
        W, [ReportKind.RCU_STALL],
        "kernel rcu_stall: rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks: "
        "{ P173 } 5251 jiffies s: 189 root: 0x0/T",
        None,  # printed after the guest was done: the cell fails, no test does
    ),
    "console-x86_64-general-protection-fault.log": (
        W, [ReportKind.OOPS],
        "kernel oops: general protection fault, probably for non-canonical address "
        "0xdead000000000122: 0000 [#1] SMP NOPTI",
        "test_detach_kill.py::test_event_tracer_exit[exitkill]",
    ),
    "console-x86_64-inconsistent-lock-state.log": (
        W, [ReportKind.LOCKDEP],
        "kernel lockdep: inconsistent lock state",
        "test_ptrace_seccomp.py::test_kill_at_seccomp_stop",
    ),
    "console-x86_64-kcsan-race.log": (
        W, [ReportKind.KCSAN],
        "kernel kcsan: data-race in __seccomp_filter / ptrace_resume",
        "test_ptrace_seccomp.py::test_resume_with_seccomp_stays_armed[rep1]",
    ),
    "console-x86_64-kernel-bug.log": (
        W, [ReportKind.BUG],
        "kernel bug: kernel BUG at ../../../sources/debian-6.12.117-1~deb12u1/kernel/"
        "seccomp.c:1245!",
        "test_ptrace_seccomp.py::test_detach_at_seccomp_stop",
    ),
    "console-x86_64-lkdtm-hung-task.log": (
        W, [ReportKind.HUNG_TASK],
        "kernel hung_task: INFO: task python3:58 blocked for more than 1 seconds.",
        "test_faults.py::test_lkdtm_hung_task",
    ),
    "console-x86_64-lkdtm-softlockup.log": (
        W, [ReportKind.SOFT_LOCKUP],
        "kernel soft_lockup: BUG: soft lockup - CPU#1 stuck for 4s! [python3:57]",
        "test_faults.py::test_lkdtm_softlockup",
    ),
    "console-x86_64-lkdtm-bug.log": (
        W, [ReportKind.BUG],  # die()'s "Oops: invalid opcode" is part of the BUG
        "kernel bug: kernel BUG at drivers/misc/lkdtm/bugs.c:105!",
        "test_faults.py::test_lkdtm_bug",
    ),
    "console-x86_64-lkdtm-warning.log": (
        W, [ReportKind.WARNING],
        "kernel warning: CPU: 1 PID: 48 at ../../../sources/debian-6.12.117-1~deb12u1/"
        "drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0x8/0xb",
        "test_faults.py::test_lkdtm_warning",
    ),
    "console-x86_64-panic-after-done.log": (
        P, [ReportKind.PANIC],
        "test: kernel panic: Attempted to kill init! exitcode=0x00000100",
        None,
    ),
    "console-x86_64-pass.log": (OK, [], "", None),
    "console-x86_64-rcu-expedited-stall.log": (
        W, [ReportKind.RCU_STALL],
        "kernel rcu_stall: rcu: INFO: rcu_sched detected expedited stalls on CPUs/tasks: "
        "{ 1-.... } 21003 jiffies s: 373 root: 0x2/.",
        "test_ptrace_seccomp.py::test_detach_at_seccomp_stop",
    ),
    "console-x86_64-rcu-stall.log": (
        W, [ReportKind.RCU_STALL],
        "kernel rcu_stall: rcu: INFO: rcu_sched detected stalls on CPUs/tasks:",
        "test_return_values.py::test_kill_process_kills_every_thread",
    ),
    "console-x86_64-suspicious-rcu-usage.log": (
        W, [ReportKind.LOCKDEP],
        "kernel lockdep: suspicious RCU usage",
        "test_trace_event.py::test_suspend_seccomp_bypasses_filters",
    ),
    "console-x86_64-sysrq-panic.log": (
        P, [ReportKind.PANIC],
        "test: kernel panic: sysrq triggered crash",
        "test_faults.py::test_sysrq_crash_panics_the_kernel",
    ),
    "console-x86_64-test-id-with-space.log": (
        W, [ReportKind.WARNING],
        "kernel warning: CPU: 1 PID: 142 at ../../../sources/debian-6.12.117-1~deb12u1/"
        "kernel/seccomp.c:1060 __seccomp_filter+0x2b7/0x3d0",
        "test_params.py::test_filter_action[kill process]",
    ),
    "console-x86_64-ubsan.log": (
        W, [ReportKind.UBSAN],
        "kernel ubsan: array-index-out-of-bounds in ../../../sources/debian-6.12.117-1~deb12u1/"
        "kernel/seccomp.c:412:23",
        "test_seccomp_filters.py::test_filter_with_max_instructions",
    ),
    "console-x86_64-userspace-lookalikes.log": (OK, [], "", None),
}  # fmt: skip


def test_the_table_names_every_console() -> None:
    assert sorted(CONSOLES) == sorted(p.name for p in DATA.glob("console-*.log"))


def test_every_report_kind_has_a_console() -> None:
    assert {kind for _, kinds, _, _ in CONSOLES.values() for kind in kinds} == set(ReportKind)


def test_the_readme_names_every_console() -> None:
    readme = (DATA / "README.md").read_text()
    assert sorted(CONSOLES) == sorted(set(re.findall(r"`(console-[\w.-]+\.log)`", readme)))


@pytest.mark.parametrize("name", sorted(CONSOLES))
def test_every_console(name: str) -> None:
    status, kinds, reason, blamed = CONSOLES[name]
    console = (DATA / name).read_text(errors="replace")
    verdict = decide(completed(console), no_expectations)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert [report.kind for report in verdict.reports] == kinds
    assert verdict.status.exit_code == {OK: 0, W: 8, P: 7}[status]
    failed = [r.nodeid for r in verdict.results if r.outcome != "passed"]
    assert failed == ([blamed] if blamed else [])
    if blamed:
        assert outcome_of(verdict, blamed) == "failed"
        assert "during this test" in next(r.message for r in verdict.results if r.nodeid == blamed)


# -- every way a guest run ends -----------------------------------------------------

PASS_CONSOLE = (DATA / "console-x86_64-pass.log").read_text()
RECORDS = parse_records((DATA / "results-x86_64-pass.jsonl").read_text())


def cut_short(end: BootEnd, detail: str, running: str = "test_x.py::test_stuck") -> GuestEvidence:
    guest = GuestRun(results=[Result("test_x.py::test_ok", "passed")], running=running)
    return GuestEvidence(end=end, guest=guest, console=PASS_CONSOLE, detail=detail)


@pytest.mark.parametrize(
    ("end", "detail", "status", "reason"),
    [
        (BootEnd.TEST_HANG, "test_x.py::test_stuck ran past 180 s", Status.GUEST_HANG,
         "test: test_x.py::test_stuck ran past 180 s"),
        (BootEnd.RUN_TIMEOUT, "guest still running after 1800 s", Status.GUEST_HANG,
         "test: guest still running after 1800 s"),
        (BootEnd.QEMU_EXITED, "QEMU exited (status 1, signal None)", Status.INFRA,
         "test: QEMU exited (status 1, signal None)"),
        (BootEnd.TRANSPORT_LOST, "the SSH session ended before pytest did", Status.INFRA,
         "test: the SSH session ended before pytest did"),
        (BootEnd.PANIC, "kernel panic", Status.KERNEL_PANIC,
         "test: kernel panic: see console.log"),
    ],
)  # fmt: skip
def test_a_run_cut_short_during_a_test(
    end: BootEnd, detail: str, status: Status, reason: str
) -> None:
    verdict = decide(cut_short(end, detail), no_expectations)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert verdict.test.state is StageState.FAIL and verdict.boot.state is StageState.PASS
    # The test it stopped in is blamed, the one before it keeps its pass.
    assert outcome_of(verdict, "test_x.py::test_stuck") == "error"
    assert outcome_of(verdict, "test_x.py::test_ok") == "passed"


@pytest.mark.parametrize(
    ("end", "console", "status", "reason"),
    [
        (BootEnd.BOOT_TIMEOUT, "[    0.0] Linux version 6.12\n", Status.BOOT_TIMEOUT,
         "boot: no userspace after 120 s"),
        (BootEnd.QEMU_EXITED, "", Status.INFRA, "boot: no userspace after 120 s"),
        (BootEnd.QEMU_EXITED, "[    0.0] Linux version 6.12\n", Status.BOOT_TIMEOUT,
         "boot: no userspace after 120 s"),
        (BootEnd.PANIC, "[    0.5] Kernel panic - not syncing: VFS: Unable to mount root fs\n",
         Status.KERNEL_PANIC, "boot: kernel panic: VFS: Unable to mount root fs"),
    ],
)  # fmt: skip
def test_a_guest_that_never_reached_userspace(
    end: BootEnd, console: str, status: Status, reason: str
) -> None:
    evidence = GuestEvidence(
        end=end, guest=GuestRun(), console=console, detail="no userspace after 120 s",
        reached_userspace=False,
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert verdict.boot.state is StageState.FAIL and verdict.test.state is StageState.NOT_RUN


def test_a_clean_run_passes() -> None:
    verdict = decide(completed(PASS_CONSOLE, RECORDS), no_expectations)
    assert (verdict.status, verdict.reason) == (Status.PASS, "")
    assert verdict.boot.state is verdict.test.state is StageState.PASS


def test_a_tainted_kernel_without_a_report_is_a_warning() -> None:
    verdict = decide(completed(PASS_CONSOLE, RECORDS, tainted=512), no_expectations)
    assert (verdict.status, verdict.reason) == (Status.KERNEL_WARNING, "kernel tainted (flags 512)")
    assert verdict.status.exit_code == 8


def test_a_guest_that_ran_another_kernel_is_infra() -> None:
    verdict = decide(completed(PASS_CONSOLE, RECORDS, booted_version="#6 SMP"), no_expectations)
    assert verdict.status is Status.INFRA and verdict.status.exit_code == 10
    assert verdict.reason == (
        "boot: the guest ran another kernel (booted '#6 SMP', built '#7 SMP')"
    )


def test_no_guest_test_is_a_failure() -> None:
    evidence = completed(PASS_CONSOLE, GuestRun(exit_status=5))
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (Status.TEST_FAILED, "test: no guest test ran")


def test_a_session_that_never_finished_is_a_failure() -> None:
    # Records that stop without pytest's end: pytest died between two tests.
    guest = GuestRun(results=list(RECORDS.results[:5]))
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert verdict.status is Status.TEST_FAILED and verdict.status.exit_code == 1
    assert verdict.reason == "test: the guest test session never finished"


@pytest.mark.parametrize(
    ("exit_status", "reason"),
    [
        (2, "test: pytest exited with status 2; see console.log"),
        (3, "test: pytest exited with status 3; see console.log"),
        (1, "test: pytest exited with status 1 but reported no failed test; see console.log"),
    ],
)
def test_a_pytest_status_its_results_do_not_explain_is_a_failure(
    exit_status: int, reason: str
) -> None:
    # e.g. 2: a module that failed to import was never run; 3: an internal error.
    guest = replace(RECORDS, exit_status=exit_status)
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert (verdict.status, verdict.reason) == (Status.TEST_FAILED, reason)


def test_a_failed_test_departs_and_names_itself() -> None:
    guest = parse_records((DATA / "results-x86_64-one-failure.jsonl").read_text())
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert verdict.status is Status.TEST_FAILED
    failed = [r.nodeid for r in verdict.results if r.outcome == "failed"]
    assert len(failed) == 1 and failed[0] in verdict.reason


# -- the selftests' TAP -------------------------------------------------------------

SELFTESTS = (DATA / "seccomp_bpf-x86_64-patched.tap").read_text()


def test_selftests_all_reported_pass() -> None:
    verdict = decide(completed(PASS_CONSOLE, RECORDS, selftests_tap=SELFTESTS), no_expectations)
    assert verdict.status is Status.PASS and len(verdict.upstream) == 107


def test_empty_selftest_results_fail() -> None:
    verdict = decide(completed(PASS_CONSOLE, RECORDS, selftests_tap=""), no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.TEST_FAILED, "test: the upstream selftests reported nothing"
    )  # fmt: skip


def test_selftests_that_stop_before_their_plan_fail() -> None:
    cut = "\n".join(SELFTESTS.splitlines()[:40])
    verdict = decide(completed(PASS_CONSOLE, RECORDS, selftests_tap=cut), no_expectations)
    assert verdict.status is Status.TEST_FAILED
    assert verdict.upstream[-1].nodeid == "seccomp_bpf::<missing>"
    assert "planned test(s) never reported" in verdict.upstream[-1].message


def test_each_binary_that_stops_before_its_plan_gets_its_own_missing_error() -> None:
    """A ptrace binary cut short fails on its own, after the others' complete results."""
    tap = "\n".join([
        "# harness-selftest: ptrace/get_syscall_info", "1..1", "ok 1 global.get_syscall_info",
        "# harness-selftest-exit: 0",
        "# harness-selftest: ptrace/vmaccess", "1..2", "ok 1 global.vmaccess",
        "# harness-selftest-exit: 137",
        "# harness-selftest: seccomp/seccomp_bpf", "1..1", "ok 1 global.kcmp",
        "# harness-selftest-exit: 0",
    ])  # fmt: skip
    verdict = decide(completed(PASS_CONSOLE, RECORDS, selftests_tap=tap), no_expectations)
    assert verdict.status is Status.TEST_FAILED
    assert [(r.nodeid, r.outcome) for r in verdict.upstream] == [
        ("ptrace::get_syscall_info.global.get_syscall_info", "passed"),
        ("ptrace::vmaccess.global.vmaccess", "passed"),
        ("seccomp_bpf::global.kcmp", "passed"),
        ("ptrace::vmaccess.<missing>", "error"),
    ]
    assert verdict.upstream[-1].message == "1 planned test(s) never reported"


def test_a_binary_that_prints_no_tap_fails_by_its_exit_status() -> None:
    tap = "# harness-selftest: ptrace/peeksiginfo\nOnly 3 signals were read\n"
    verdict = decide(
        completed(PASS_CONSOLE, RECORDS, selftests_tap=tap + "# harness-selftest-exit: 1\n"),
        no_expectations,
    )
    assert verdict.status is Status.TEST_FAILED and "ptrace::peeksiginfo" in verdict.reason
    passed = decide(
        completed(PASS_CONSOLE, RECORDS, selftests_tap=tap + "# harness-selftest-exit: 0\n"),
        no_expectations,
    )
    assert passed.status is Status.PASS
    assert [(r.nodeid, r.outcome) for r in passed.upstream] == [("ptrace::peeksiginfo", "passed")]


def test_a_binary_the_guest_was_given_that_never_reported_fails() -> None:
    """A whole collection that never ran (not in the initramfs, the init's loop broken)
    would otherwise pass unseen: [[count]] judges only suites that reported."""
    tap = "# harness-selftest: ptrace/peeksiginfo\nPASS\n# harness-selftest-exit: 0\n"
    given = ("ptrace/peeksiginfo", "ptrace/vmaccess", "seccomp/series/seccomp_bpf")
    evidence = completed(PASS_CONSOLE, RECORDS, selftests_tap=tap, selftest_binaries=given)
    verdict = decide(evidence, no_expectations)
    assert verdict.status is Status.TEST_FAILED
    assert [(r.nodeid, r.outcome) for r in verdict.upstream] == [
        ("ptrace::peeksiginfo", "passed"),
        ("ptrace::vmaccess.<missing>", "error"),
        ("seccomp_bpf::series:<missing>", "error"),
    ]
    assert verdict.upstream[-1].message.startswith("never ran: nothing of it reached")
    cut_short = replace(evidence, end=BootEnd.TEST_HANG, detail="hung")  # judged otherwise
    assert [r.nodeid for r in decide(cut_short, no_expectations).upstream] == [
        "ptrace::peeksiginfo"
    ]


def test_a_failed_selftest_departs() -> None:
    tap = (DATA / "seccomp_bpf-one-failure.tap").read_text()
    verdict = decide(completed(PASS_CONSOLE, RECORDS, selftests_tap=tap), no_expectations)
    assert verdict.status is Status.TEST_FAILED
    assert "seccomp_bpf::" in verdict.reason


# -- precedence ---------------------------------------------------------------------


def test_a_panic_outranks_a_hang_and_a_warning() -> None:
    console = (DATA / "console-x86_64-sysrq-panic.log").read_text()
    warning = (DATA / "console-x86_64-lkdtm-warning.log").read_text()
    evidence = replace(cut_short(BootEnd.TEST_HANG, "hung"), console=warning + console)
    verdict = decide(evidence, no_expectations)
    assert verdict.status is Status.KERNEL_PANIC
    assert verdict.reason == "test: kernel panic: sysrq triggered crash"
