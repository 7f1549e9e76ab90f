"""The one verdict (harness/verdict/cell.py and verdict/reports.py), pinned where a
mutation check (docs/mutation-testing.md) found the other host tests blind: what
a report or a taint alone decides, which test a report fails, the first of two
equal failures, the stage messages, evidence left at its defaults, a guest that
never booted, a live VM's boot that ended another way (decide_boot), and selftests
cut short.

Consoles are tests/data's recorded pass console with kernel lines composed from
Linux 6.12's format strings added; records are tests/data's or written here.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from harness.core.status import Status
from harness.core.vocabulary import Outcome
from harness.results.model import StageState
from harness.verdict.cell import GuestEvidence, Verdict, decide, decide_boot
from harness.verdict.expectations import NO_EXPECTATIONS
from harness.verdict.judge import Judgement, judge
from harness.verdict.reports import KernelVerdict, fail_reported_tests, kernel_verdict
from harness.vm.boot import BootEnd
from harness.vm.kernellog import KernelReport, find_reports
from harness.vm.records import GuestRun, parse_records
from harness.vm.records import TestResult as Result

DATA = Path(__file__).parent / "data"
PASS_CONSOLE = (DATA / "console-x86_64-pass.log").read_text()
ONE_FAILURE = (DATA / "results-x86_64-one-failure.jsonl").read_text()


def no_expectations(results: list[Result]) -> Judgement:
    return judge(NO_EXPECTATIONS, "x86_64", "patched", results)


def pass_records() -> GuestRun:
    """A fresh copy of a recorded clean run: decide() fails and appends results in place."""
    return parse_records((DATA / "results-x86_64-pass.jsonl").read_text())


def reports(*lines: str) -> list[KernelReport]:
    return find_reports("".join(f"[   9.{n:06d}] {line}\n" for n, line in enumerate(lines)))


def one_test(nodeid: str, *kernel_lines: str) -> tuple[str, GuestRun]:
    """A console in which `nodeid` ran with the kernel printing `kernel_lines`
    meanwhile, and records in which pytest saw it pass."""
    body = "".join(f"[   5.{n:06d}] {line}\n" for n, line in enumerate(kernel_lines, 1))
    console = (
        f"{PASS_CONSOLE}[   5.000000] harness: test-start {nodeid}\n{body}"
        f"[   6.000000] harness: test-end {nodeid} passed\n"
    )
    return console, GuestRun(results=[Result(nodeid, Outcome.PASSED)], exit_status=0)


def completed(console: str, guest: GuestRun, **changes: object) -> GuestEvidence:
    evidence = GuestEvidence(
        end=BootEnd.COMPLETED, guest=guest, console=console, tainted=0,
        booted_version="#7 SMP", built_version="#7 SMP",
    )  # fmt: skip
    return replace(evidence, **changes)  # type: ignore[arg-type]


def result_of(verdict: Verdict, nodeid: str) -> Result:
    return next(r for r in verdict.results if r.nodeid == nodeid)


# -- what the kernel's reports and taint alone decide (verdict/reports.py) -------------


def test_a_clean_kernel_has_no_kernel_verdict() -> None:
    assert kernel_verdict([]) is None
    assert kernel_verdict([], 0) is None  # /proc/sys/kernel/tainted read 0


def test_a_taint_alone_is_a_warning_naming_its_flags() -> None:
    assert kernel_verdict([], 4096) == KernelVerdict(
        Status.KERNEL_WARNING, "kernel tainted (flags 4096)", None
    )


def test_a_panic_decides_over_reports_printed_before_it() -> None:
    found = reports("WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 f+0x1/0x2",
                    "Kernel panic - not syncing: Fatal exception")  # fmt: skip
    assert kernel_verdict(found, 512) == KernelVerdict(
        Status.KERNEL_PANIC, "kernel panic: Fatal exception", found[1]
    )


def test_without_a_panic_the_first_report_decides_over_later_ones_and_the_taint() -> None:
    found = reports("BUG: KASAN: use-after-free in f+0x1/0x2",
                    "WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 f+0x1/0x2")  # fmt: skip
    assert kernel_verdict(found, 512) == KernelVerdict(
        Status.KERNEL_WARNING, "kernel kasan: use-after-free in f+0x1/0x2", found[0]
    )


def test_a_report_fails_the_test_it_was_printed_in_and_only_a_pass() -> None:
    console = "\n".join([
        "[ 1.0] harness: test-start a.py::passed",
        "[ 1.1] WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 first+0x1/0x2",
        "[ 1.2] BUG: KASAN: use-after-free in second+0x1/0x2",
        "[ 1.3] harness: test-end a.py::passed passed",
        "[ 2.0] harness: test-start a.py::skipped",
        "[ 2.1] BUG: KASAN: use-after-free in g+0x1/0x2",
        "[ 2.3] harness: test-end a.py::skipped skipped",
        "[ 3.0] harness: test-start a.py::failed",
        "[ 3.1] BUG: KASAN: use-after-free in h+0x1/0x2",
        "[ 3.3] harness: test-end a.py::failed failed",
        "[ 4.0] BUG: KASAN: use-after-free in outside+0x1/0x2",
    ])  # fmt: skip
    results = [
        Result("a.py::passed", Outcome.PASSED),
        Result("a.py::skipped", Outcome.SKIPPED, message="needs arm64"),
        Result("a.py::failed", Outcome.FAILED, message="assert 1 == 2"),
        Result("a.py::quiet", Outcome.PASSED),
    ]
    fail_reported_tests(results, find_reports(console))
    assert [(r.outcome, r.message) for r in results] == [
        # The first report printed during the test is the one it names.
        (Outcome.FAILED, "kernel warning during this test: CPU: 0 PID: 1 at kernel/fork.c:1 "
                         "first+0x1/0x2"),
        (Outcome.SKIPPED, "needs arm64"),  # a skip stays a skip: nothing it ran passed
        (Outcome.FAILED, "assert 1 == 2"),  # its own failure is the better message
        (Outcome.PASSED, ""),  # the report outside every test blames none
    ]  # fmt: skip


# -- every report class through the verdict: status, exit code, reason, blamed test --

CLASSES = [
    ("BUG: KASAN: slab-use-after-free in seccomp_run_filters+0x2c/0x1c0", "kasan",
     "slab-use-after-free in seccomp_run_filters+0x2c/0x1c0"),
    ("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [python3:142]", "soft_lockup",
     "BUG: soft lockup - CPU#1 stuck for 22s! [python3:142]"),
    ("INFO: task python3:142 blocked for more than 30 seconds.", "hung_task",
     "INFO: task python3:142 blocked for more than 30 seconds."),
    ("BUG: kernel NULL pointer dereference, address: 0000000000000008", "bug",
     "kernel NULL pointer dereference, address: 0000000000000008"),
    ("Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP", "oops",
     "0000000096000006 [#1] PREEMPT SMP"),
    ("rcu: INFO: rcu_preempt self-detected stall on CPU", "rcu_stall",
     "rcu: INFO: rcu_preempt self-detected stall on CPU"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "kind", "title"), CLASSES, ids=[c[1] for c in CLASSES])
def test_a_report_class_during_a_test(line: str, kind: str, title: str) -> None:
    test = "test_seccomp_filters.py::test_filter[kill process]"
    console, guest = one_test(test, line)
    verdict = decide(completed(console, guest), no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.KERNEL_WARNING, 8)
    assert verdict.reason == f"kernel {kind}: {title}"
    blamed = result_of(verdict, test)
    assert (blamed.outcome, blamed.message) == (
        Outcome.FAILED, f"kernel {kind} during this test: {title}"
    )  # fmt: skip
    # The report decides the cell; the test it failed departs too, on the test stage.
    assert verdict.test.message == f"1 test(s) failed: {test} failed (expected passed or skipped)"
    assert [r.kind.value for r in verdict.reports] == [kind]


def test_a_panic_after_a_warning_in_one_test() -> None:
    test = "test_x.py::test_y"
    console, guest = one_test(
        test, "WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 f+0x1/0x2",
        "Kernel panic - not syncing: Fatal exception",
    )  # fmt: skip
    verdict = decide(completed(console, guest), no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.KERNEL_PANIC, 7)
    assert verdict.reason == "test: kernel panic: Fatal exception"
    assert (verdict.boot.state, verdict.test.state) == (StageState.PASS, StageState.FAIL)
    assert verdict.test.message.startswith("kernel panic; ")


# -- evidence at its defaults ---------------------------------------------------------


def test_evidence_with_nothing_optional_reported_passes() -> None:
    # No taint read, no version check asked for, no selftests run.
    evidence = GuestEvidence(end=BootEnd.COMPLETED, guest=pass_records(), console=PASS_CONSOLE)
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (Status.PASS, "")
    assert (verdict.boot.state, verdict.test.state) == (StageState.PASS, StageState.PASS)
    assert (verdict.boot.message, verdict.test.message) == ("", "")
    assert (verdict.reports, verdict.upstream) == ([], [])
    assert verdict.judgement is not None and verdict.judgement.departures == []
    assert len(verdict.results) == 94


def test_a_guest_that_reported_no_kernel_version_is_infra() -> None:
    # The build's version is known, the guest said nothing: not the kernel we built.
    evidence = GuestEvidence(
        end=BootEnd.COMPLETED, guest=pass_records(), console=PASS_CONSOLE,
        built_version="#7 SMP",
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.INFRA, 10)
    assert verdict.reason == "boot: the guest ran another kernel (booted '', built '#7 SMP')"
    assert (verdict.boot.state, verdict.boot.message) == (
        StageState.FAIL, "booted '', built '#7 SMP'"
    )  # fmt: skip


@pytest.mark.parametrize(
    ("end", "status"),
    [
        (BootEnd.TEST_HANG, Status.GUEST_HANG),
        (BootEnd.RUN_TIMEOUT, Status.GUEST_HANG),
        (BootEnd.QEMU_EXITED, Status.INFRA),
        (BootEnd.PANIC, Status.KERNEL_PANIC),
    ],
)
def test_a_run_cut_short_without_the_transports_words(end: BootEnd, status: Status) -> None:
    # The test it stopped in still says how the run ended, by the end's own name.
    guest = GuestRun(results=[Result("a.py::ok", Outcome.PASSED)], running="a.py::stuck")
    verdict = decide(GuestEvidence(end=end, guest=guest, console=PASS_CONSOLE), no_expectations)
    assert verdict.status is status and verdict.reason.startswith("test: ")
    assert result_of(verdict, "a.py::ok").outcome is Outcome.PASSED
    stuck = result_of(verdict, "a.py::stuck")
    assert (stuck.outcome, stuck.message) == (
        Outcome.ERROR, f"no result: the guest stopped during it ({end.value})"
    )  # fmt: skip


def test_a_hang_with_no_test_running_blames_none_and_is_no_empty_run() -> None:
    evidence = GuestEvidence(
        end=BootEnd.RUN_TIMEOUT, guest=GuestRun(), console=PASS_CONSOLE,
        detail="guest still running after 1800 s",
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.GUEST_HANG, "test: guest still running after 1800 s"
    )  # fmt: skip
    # "no guest test ran" is for a run that completed; this one was cut short.
    assert verdict.test.message == "guest still running after 1800 s"
    assert verdict.results == []


def test_a_session_that_never_finished_gives_the_transports_words() -> None:
    guest = GuestRun(results=pass_records().results[:3])
    evidence = completed(PASS_CONSOLE, guest, detail="pytest was killed by SIGKILL")
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.TEST_FAILED, "test: pytest was killed by SIGKILL"
    )  # fmt: skip
    assert verdict.test.message == "pytest was killed by SIGKILL"


def test_an_empty_run_says_so_on_the_test_stage() -> None:
    verdict = decide(completed(PASS_CONSOLE, GuestRun(exit_status=5)), no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.TEST_FAILED, 1)
    assert (verdict.test.state, verdict.test.message) == (StageState.FAIL, "no guest test ran")


# -- a guest that never reached userspace ----------------------------------------------


@pytest.mark.parametrize(
    ("end", "reason"),
    [
        (BootEnd.BOOT_TIMEOUT, "boot: boot_timeout"),
        (BootEnd.NO_OUTPUT, "boot: no_output"),
        (BootEnd.QEMU_EXITED, "boot: qemu_exited"),
    ],
)
def test_a_boot_failure_without_the_transports_words_names_its_end(
    end: BootEnd, reason: str
) -> None:
    evidence = GuestEvidence(
        end=end, guest=GuestRun(), console="[    0.0] Linux version 6.12\n",
        reached_userspace=False,
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (Status.BOOT_TIMEOUT, reason)
    assert (verdict.boot.state, verdict.boot.message) == (StageState.FAIL, end.value)


def test_a_panic_in_the_console_of_a_guest_that_never_booted() -> None:
    # panic=-1 reboots, so QEMU exits; the console says why.
    console = "[    0.0] Linux version 6.12\n[    0.5] Kernel panic - not syncing: No init found\n"
    evidence = GuestEvidence(
        end=BootEnd.QEMU_EXITED, guest=GuestRun(), console=console,
        detail="QEMU exited (status 0, signal None)", reached_userspace=False,
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.KERNEL_PANIC, 7)
    assert verdict.reason == "boot: kernel panic: No init found"
    assert verdict.test.state is StageState.NOT_RUN


def test_a_qemu_that_died_silently_is_infra() -> None:
    evidence = GuestEvidence(
        end=BootEnd.QEMU_EXITED, guest=GuestRun(), console="",
        detail="QEMU exited (status 1, signal None)", reached_userspace=False,
    )  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.status.exit_code) == (Status.INFRA, 10)
    assert verdict.reason == "boot: QEMU exited (status 1, signal None)"


# -- boot --ssh: a live VM that reached userspace (decide_boot) --------------------------

LIVE_UP = (
    "[    0.000000] Linux version 6.12.117 (harness@harness) #7 SMP\n"
    "HARNESS: userspace up: 6.12.117 #7 SMP\n"
)
LKDTM_WARNING = (
    "[    2.417250] WARNING: CPU: 1 PID: 48 at ../../../sources/debian-6.12.117-1~deb12u1/"
    "drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0x8/0xb\n"
)
SYSRQ_PANIC = "[    2.376601] Kernel panic - not syncing: sysrq triggered crash\n"


@pytest.mark.parametrize(
    ("end", "kernel", "detail", "status", "reason", "boot_message"),
    [
        (BootEnd.COMPLETED, "", "", Status.PASS, "", ""),
        (BootEnd.COMPLETED, LKDTM_WARNING, "", Status.KERNEL_WARNING,
         "boot: kernel warning: CPU: 1 PID: 48 at ../../../sources/debian-6.12.117-1~deb12u1/"
         "drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0x8/0xb",
         "kernel warning: CPU: 1 PID: 48 at ../../../sources/debian-6.12.117-1~deb12u1/"
         "drivers/misc/lkdtm/bugs.c:112 lkdtm_WARNING+0x8/0xb"),
        (BootEnd.PANIC, SYSRQ_PANIC, "kernel panic", Status.KERNEL_PANIC,
         "boot: kernel panic: sysrq triggered crash", "kernel panic"),
        (BootEnd.PANIC, "", "kernel panic", Status.KERNEL_PANIC,
         "boot: kernel panic: see console.log", "kernel panic"),
        (BootEnd.QEMU_EXITED, "", "QEMU exited during boot", Status.INFRA,
         "boot: QEMU exited during boot", "QEMU exited during boot"),
        (BootEnd.QEMU_EXITED, "", "", Status.INFRA, "boot: qemu_exited", "qemu_exited"),
        (BootEnd.BOOT_TIMEOUT, "", "no SSH after 60 s", Status.BOOT_TIMEOUT,
         "boot: no SSH after 60 s", "no SSH after 60 s"),
        (BootEnd.BOOT_TIMEOUT, "", "", Status.BOOT_TIMEOUT, "boot: boot_timeout", "boot_timeout"),
    ],
    ids=["up", "warning", "panic", "panic-no-report", "qemu-gone", "qemu-gone-silently",
         "no-ssh", "timeout-silently"],
)  # fmt: skip
def test_a_live_boot_past_userspace_ends_with_its_reason_and_boot_stage(
    end: BootEnd, kernel: str, detail: str, status: Status, reason: str, boot_message: str
) -> None:
    """boot --ssh once the guest's userspace is up: the status, the whole reason and the
    boot stage decide_boot gives each way the boot can still end."""
    evidence = GuestEvidence(
        end=end, guest=GuestRun(), console=LIVE_UP + kernel, detail=detail,
        booted_version="#7 SMP", built_version="#7 SMP",
    )  # fmt: skip
    verdict = decide_boot(evidence)
    assert (verdict.status, verdict.reason) == (status, reason)
    state = StageState.FAIL if boot_message else StageState.PASS
    assert (verdict.boot.state, verdict.boot.message) == (state, boot_message)
    assert verdict.test.state is StageState.NOT_RUN


# -- two failures of one rank, and pytest's exit status ---------------------------------


def test_of_two_failures_of_one_rank_the_first_is_the_reason() -> None:
    # pytest exited 2 (interrupted) and its one failure departs: both are
    # test_failed; the exit status was found first and names the cell, the
    # stage keeps both.
    guest = replace(parse_records(ONE_FAILURE), exit_status=2)
    failed = next(r.nodeid for r in guest.results if r.outcome is Outcome.FAILED)
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.TEST_FAILED, "test: pytest exited with status 2; see console.log"
    )  # fmt: skip
    assert verdict.test.message == (
        "pytest exited with status 2; see console.log; "
        f"1 test(s) failed: {failed} failed (expected passed or skipped)"
    )


def test_a_failure_pytest_reported_explains_its_status_1() -> None:
    guest = parse_records(ONE_FAILURE)
    assert guest.exit_status == 1
    failed = next(r.nodeid for r in guest.results if r.outcome is Outcome.FAILED)
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert verdict.reason == (
        f"test: 1 test(s) failed: {failed} failed (expected passed or skipped)"
    )
    assert "pytest exited" not in verdict.test.message


def test_a_kernel_report_explains_a_failure_after_pytest_exited_0() -> None:
    test = "test_x.py::test_y"
    console, guest = one_test(test, "BUG: KASAN: use-after-free in f+0x1/0x2")
    verdict = decide(completed(console, guest), no_expectations)
    assert verdict.status is Status.KERNEL_WARNING
    assert verdict.test.message == f"1 test(s) failed: {test} failed (expected passed or skipped)"


@pytest.mark.parametrize("exit_status", [4, -1, 137])
def test_any_other_pytest_status_is_a_failure(exit_status: int) -> None:
    # 4: a usage error; -1: the end record had none; 137: killed.
    guest = replace(pass_records(), exit_status=exit_status)
    verdict = decide(completed(PASS_CONSOLE, guest), no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.TEST_FAILED, f"test: pytest exited with status {exit_status}; see console.log"
    )  # fmt: skip


# -- the selftests' TAP -------------------------------------------------------------------

TAP_OF_3 = "TAP version 13\n1..3\nok 1 global.a\nok 2 global.b\nok 3 global.c\n"


def test_selftests_that_reported_their_whole_plan_pass() -> None:
    verdict = decide(completed(PASS_CONSOLE, pass_records(), selftests_tap=TAP_OF_3),
                     no_expectations)  # fmt: skip
    assert (verdict.status, verdict.reason) == (Status.PASS, "")
    assert [r.nodeid for r in verdict.upstream] == [
        "seccomp_bpf::global.a", "seccomp_bpf::global.b", "seccomp_bpf::global.c",
    ]  # fmt: skip


def test_selftests_that_stop_short_of_their_plan_name_how_many_are_missing() -> None:
    tap = "TAP version 13\n1..5\nok 1 global.a\nok 2 global.b\n"
    verdict = decide(completed(PASS_CONSOLE, pass_records(), selftests_tap=tap), no_expectations)
    missing = verdict.upstream[-1]
    assert (missing.nodeid, missing.outcome, missing.message) == (
        "seccomp_bpf::<missing>", Outcome.ERROR, "3 planned test(s) never reported"
    )  # fmt: skip
    assert (verdict.status, verdict.reason) == (
        Status.TEST_FAILED,
        "test: 1 test(s) failed: seccomp_bpf::<missing> error (expected passed or skipped)",
    )


def test_selftests_without_a_plan_are_judged_by_what_they_reported() -> None:
    tap = "ok 1 global.a\nok 2 global.b\n"
    verdict = decide(completed(PASS_CONSOLE, pass_records(), selftests_tap=tap), no_expectations)
    assert verdict.status is Status.PASS and len(verdict.upstream) == 2


def test_selftests_cut_short_by_a_hang_are_no_missing_tests() -> None:
    # The hang is the verdict; the tests it kept from running are no extra failure.
    tap = "TAP version 13\n1..5\nok 1 global.a\n"
    evidence = completed(PASS_CONSOLE, pass_records(), end=BootEnd.RUN_TIMEOUT,
                         detail="guest still running after 1800 s", selftests_tap=tap)  # fmt: skip
    verdict = decide(evidence, no_expectations)
    assert (verdict.status, verdict.reason) == (
        Status.GUEST_HANG, "test: guest still running after 1800 s"
    )  # fmt: skip
    assert [r.nodeid for r in verdict.upstream] == ["seccomp_bpf::global.a"]


def test_guest_and_selftest_failures_are_judged_together() -> None:
    guest = parse_records(ONE_FAILURE)
    failed = next(r.nodeid for r in guest.results if r.outcome is Outcome.FAILED)
    tap = "TAP version 13\n1..2\nok 1 global.a\nnot ok 2 global.b\n"
    verdict = decide(completed(PASS_CONSOLE, guest, selftests_tap=tap), no_expectations)
    assert verdict.judgement is not None
    assert [d.test for d in verdict.judgement.departures] == [failed, "seccomp_bpf::global.b"]
    assert verdict.reason == (
        f"test: 2 test(s) failed: {failed} failed (expected passed or skipped); "
        "seccomp_bpf::global.b failed (expected passed or skipped)"
    )
