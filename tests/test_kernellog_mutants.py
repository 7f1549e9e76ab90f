"""Kernel report parsing (harness/vm/kernellog.py), pinned where a mutation check
(docs/mutation-testing.md) found the other host tests blind: every header pattern
with its title, the printk prefix in both of its forms, the panic line the boot
watcher uses, the report's excerpt and line, attribution at the test boundaries,
and die()'s Oops header folded into the fault before it.

The kernel lines here are composed from the format strings of Linux 6.12
(kernel/locking/lockdep.c, kernel/watchdog.c, kernel/rcu/tree_stall.h,
kernel/hung_task.c, lib/bug.c, lib/ubsan.c, mm/kasan/report.c,
arch/x86/kernel/dumpstack.c, arch/arm64/kernel/traps.c), not recorded from a boot.
"""

from __future__ import annotations

import pytest

from harness.vm.kernellog import PANIC_LINE, ReportKind, find_reports

TS = "[   12.345678] "  # a printk timestamp (CONFIG_PRINTK_TIME)


# -- every header, its kind and its title -------------------------------------------

HEADERS: list[tuple[str, ReportKind, str]] = [
    ("Kernel panic - not syncing: Fatal exception in interrupt", ReportKind.PANIC,
     "Fatal exception in interrupt"),
    ("BUG: KASAN: slab-out-of-bounds in seccomp_check_filter+0x1a/0x2b0", ReportKind.KASAN,
     "slab-out-of-bounds in seccomp_check_filter+0x1a/0x2b0"),
    ("BUG: KCSAN: data-race in do_seccomp / seccomp_run_filters", ReportKind.KCSAN,
     "data-race in do_seccomp / seccomp_run_filters"),
    ("UBSAN: shift-out-of-bounds in kernel/seccomp.c:240:12", ReportKind.UBSAN,
     "shift-out-of-bounds in kernel/seccomp.c:240:12"),
    ("watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [python3:142]", ReportKind.SOFT_LOCKUP,
     "BUG: soft lockup - CPU#0 stuck for 26s! [python3:142]"),
    ("watchdog: Watchdog detected hard LOCKUP on cpu 3", ReportKind.HARD_LOCKUP,
     "Watchdog detected hard LOCKUP on cpu 3"),
    ("NMI watchdog: Watchdog detected hard LOCKUP on cpu 0", ReportKind.HARD_LOCKUP,
     "Watchdog detected hard LOCKUP on cpu 0"),
    ("kernel BUG at kernel/seccomp.c:1245!", ReportKind.BUG,
     "kernel BUG at kernel/seccomp.c:1245!"),
    ("BUG: unable to handle page fault for address: ffffffffffffffe8", ReportKind.BUG,
     "unable to handle page fault for address: ffffffffffffffe8"),
    ("Unable to handle kernel paging request at virtual address 0000000000001000",
     ReportKind.OOPS, "Unable to handle kernel paging request at virtual address 0000000000001000"),
    ("Oops: general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP",
     ReportKind.OOPS,
     "general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP"),
    # Before "Oops: " was added to x86's die header the fault's name began the line.
    ("general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP",
     ReportKind.OOPS,
     "general protection fault, probably for non-canonical address 0xdead: 0000 [#1] SMP"),
    ("segment-related general protection fault: 0018 [#1] SMP", ReportKind.OOPS,
     "segment-related general protection fault: 0018 [#1] SMP"),
    ("Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP", ReportKind.OOPS,
     "0000000096000006 [#1] PREEMPT SMP"),
    ("Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI", ReportKind.OOPS,
     "invalid opcode: 0000 [#1] PREEMPT SMP NOPTI"),
    ("WARNING: CPU: 1 PID: 142 at kernel/seccomp.c:1060 __seccomp_filter+0x2b7/0x3d0",
     ReportKind.WARNING, "CPU: 1 PID: 142 at kernel/seccomp.c:1060 __seccomp_filter+0x2b7/0x3d0"),
    ("rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:", ReportKind.RCU_STALL,
     "rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", ReportKind.RCU_STALL,
     "rcu: INFO: rcu_sched self-detected stall on CPU"),
    ("INFO: task python3:142 blocked for more than 30 seconds.", ReportKind.HUNG_TASK,
     "INFO: task python3:142 blocked for more than 30 seconds."),
]  # fmt: skip


@pytest.mark.parametrize(("line", "kind", "title"), HEADERS, ids=[h[2][:40] for h in HEADERS])
def test_every_header_gives_its_kind_and_title(line: str, kind: ReportKind, title: str) -> None:
    [report] = find_reports(TS + line + "\n")
    assert (report.kind, report.title) == (kind, title)


def test_a_title_loses_the_blanks_around_it() -> None:
    # Trailing blanks (a serial console pads some lines) are not part of the title.
    [report] = find_reports(TS + "Kernel panic - not syncing: Fatal exception   \n")
    assert report.title == "Fatal exception"


# Lockdep's reports (kernel/locking/lockdep.c) all begin "WARNING: ", like WARN();
# each of its titles is its own class, told from a WARN() by the whole line.
LOCKDEP = [
    "possible circular locking dependency detected",
    "possible recursive locking detected",
    "inconsistent lock state",
    "possible irq lock inversion dependency detected",
    "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
    "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected",
    "suspicious RCU usage",
    "bad unlock balance detected!",
    "held lock freed!",
    "python3/142 still has locks held!",
    "lock held when returning to user space!",
    "Nested lock was not taken",
    "bad contention detected!",
    "chain_key collision",
]


@pytest.mark.parametrize("title", LOCKDEP)
def test_every_lockdep_title_is_lockdep(title: str) -> None:
    [report] = find_reports(f"{TS}WARNING: {title}\n")
    assert (report.kind, report.title) == (ReportKind.LOCKDEP, title)
    # pr_warn may leave blanks at the line's end: still lockdep, title trimmed.
    [padded] = find_reports(f"{TS}WARNING: {title}  \n")
    assert (padded.kind, padded.title) == (ReportKind.LOCKDEP, title)


def test_a_warning_that_only_begins_like_a_lockdep_title_is_a_warning() -> None:
    # A lockdep title is the whole line; a WARN() message that starts with the same
    # words (a driver's own text) is a plain warning.
    line = "inconsistent lock state in my_driver"
    [report] = find_reports(f"{TS}WARNING: {line}\n")
    assert (report.kind, report.title) == (ReportKind.WARNING, line)


def test_report_kinds_are_named_as_the_results_record_them() -> None:
    # The values are what summary.json, the cell's reason and the report page show.
    assert {kind.name: kind.value for kind in ReportKind} == {
        "PANIC": "panic", "OOPS": "oops", "BUG": "bug", "WARNING": "warning",
        "KASAN": "kasan", "KCSAN": "kcsan", "UBSAN": "ubsan", "LOCKDEP": "lockdep",
        "RCU_STALL": "rcu_stall", "HUNG_TASK": "hung_task", "SOFT_LOCKUP": "soft_lockup",
        "HARD_LOCKUP": "hard_lockup",
    }  # fmt: skip


# -- the printk prefix ---------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    ["[    0.000000] ", "[12345.678901]", "[    3.100000] [    T1] ", "[    3.100000][  C0] "],
    ids=["padded", "wide-no-blank", "caller-thread", "caller-cpu"],
)
def test_a_report_behind_either_form_of_the_printk_prefix(prefix: str) -> None:
    # CONFIG_PRINTK_CALLER adds "[  T<pid>]" or "[  C<cpu>]" after the timestamp.
    [report] = find_reports(f"{prefix}BUG: KASAN: double-free in f+0x1/0x2\n")
    assert (report.kind, report.title) == (ReportKind.KASAN, "double-free in f+0x1/0x2")


@pytest.mark.parametrize(
    "line",
    [
        "BUG: KASAN: double-free in f+0x1/0x2",  # no timestamp: a test printed it
        "[12.5 BUG: KASAN: double-free in f+0x1/0x2",  # not a whole timestamp
        "[    3.1] [    X1] BUG: KASAN: double-free",  # no caller id either
    ],
)
def test_a_line_without_the_printk_prefix_is_no_report(line: str) -> None:
    assert find_reports(line + "\n") == []


def test_the_boot_watchers_panic_line_is_a_kernel_line_only() -> None:
    # boot.py stops the guest on this pattern: it must see the kernel's panic,
    # with or without a caller id, and never a test echoing the words.
    assert PANIC_LINE.search("[    2.5] Kernel panic - not syncing: sysrq triggered crash")
    assert PANIC_LINE.search("x [ 2.5] [  C1] Kernel panic - not syncing: Fatal exception")
    assert not PANIC_LINE.search("Kernel panic - not syncing: sysrq triggered crash")
    assert not PANIC_LINE.search("[    2.5] Kernel panic - syncing")


# -- the excerpt and the line --------------------------------------------------------


def trace(count: int, start: float = 7.0) -> list[str]:
    """`count` lines of a call trace with timestamps, none ending the report."""
    return [f"[{start + i / 1000:12.6f}]  frame_{i}+0x1/0x2" for i in range(count)]


@pytest.mark.parametrize(
    "closing",
    [
        "[    7.9] ---[ end trace 0000000000000000 ]---",
        "[    7.9] ---[ end Kernel panic - not syncing: Fatal exception ]---",
        "[    7.9] " + "=" * 40,
        "[    7.9] " + "=" * 66 + "  ",
    ],
    ids=["end-trace", "end-panic", "rule-40", "rule-66-padded"],
)
def test_the_excerpt_runs_to_its_end_of_trace_marker(closing: str) -> None:
    header = "[    7.0] WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 f+0x1/0x2"
    lines = [*[f"[    6.{i}] before" for i in range(3)], header, *trace(4), closing, *trace(3, 8.0)]
    [report] = find_reports("\n".join(lines) + "\n")
    assert report.excerpt.splitlines() == [header, *trace(4), closing]
    assert report.line == 4  # 1-based: three lines come before it


def test_a_short_rule_does_not_end_the_excerpt() -> None:
    # KASAN and KCSAN frame their reports with 66 "="; a shorter rule is just text.
    lines = ["[ 7.0] BUG: KASAN: use-after-free in f", "[ 7.1] " + "=" * 39, *trace(2)]
    [report] = find_reports("\n".join(lines))
    assert report.excerpt.splitlines() == lines


def test_the_excerpt_stops_at_its_limit() -> None:
    lines = ["[ 7.0] WARNING: CPU: 0 PID: 1 at f.c:1 f", *trace(100)]
    [report] = find_reports("\n".join(lines))
    assert report.excerpt.splitlines() == lines[:60]  # the default limit
    [short] = find_reports("\n".join(lines), max_excerpt_lines=5)
    assert short.excerpt.splitlines() == lines[:5]


def test_the_excerpt_of_the_last_line_is_that_line() -> None:
    [report] = find_reports("[ 1.0] before\n[ 7.0] BUG: KASAN: use-after-free in f")
    assert (report.excerpt, report.line) == ("[ 7.0] BUG: KASAN: use-after-free in f", 2)


def test_a_report_whose_test_ends_on_the_next_line_is_one_line() -> None:
    lines = [
        "[ 6.0] harness: test-start test_a.py::t",
        "[ 7.0] BUG: KASAN: use-after-free in f+0x1/0x2",
        "[ 7.1] harness: test-end test_a.py::t failed",
        "[ 7.2] harness: test-start test_a.py::u",
        "[ 7.3] WARNING: CPU: 0 PID: 1 at f.c:1 f",
        "[ 7.4] ---[ end trace 0000000000000000 ]---",
        "[ 7.5] after the trace",
    ]
    first, second = find_reports("\n".join(lines))
    assert (first.excerpt, first.test) == (lines[1], "test_a.py::t")
    assert (second.excerpt.splitlines(), second.test) == (lines[4:6], "test_a.py::u")


@pytest.mark.parametrize("boundary", ["test-end test_a.py::t passed", "test-start test_a.py::u"])
def test_the_excerpt_ends_where_the_test_does(boundary: str) -> None:
    lines = [
        "[ 6.0] harness: test-start test_a.py::t",
        "[ 7.0] WARNING: CPU: 0 PID: 1 at f.c:1 f",
        *trace(2),
        f"[ 7.5] harness: {boundary}",
        *trace(2, 8.0),
    ]
    [report] = find_reports("\n".join(lines))
    assert report.excerpt.splitlines() == lines[1:4]
    assert (report.test, report.line) == ("test_a.py::t", 2)


# -- attribution ---------------------------------------------------------------------


def test_reports_are_attributed_by_the_test_boundaries() -> None:
    console = "\n".join([
        "[ 1.0] BUG: KASAN: before any test",
        "[ 2.0] harness: test-start test_a.py::test_x[a b] \r",
        "[ 2.1] BUG: KASAN: during x",
        "[ 2.2] harness: test-end test_a.py::test_x[a b] failed",
        "[ 3.0] BUG: KASAN: between two tests",
        "[ 4.0] [    T9] harness: test-start test_b.py::test_y",
        "[ 4.1] BUG: KASAN: during y",
        "[ 4.2] harness: test-end test_b.py::test_y passed  ",
        "[ 5.0] BUG: KASAN: after the last test",
    ])  # fmt: skip
    assert [(r.title, r.test, r.line) for r in find_reports(console)] == [
        ("before any test", None, 1),
        ("during x", "test_a.py::test_x[a b]", 3),  # the id keeps its space, not its padding
        ("between two tests", None, 5),
        ("during y", "test_b.py::test_y", 7),
        ("after the last test", None, 9),
    ]


def test_a_node_id_keeps_the_characters_it_ends_with() -> None:
    # Only the line's end is cut from a node id: a report in test_..._TX is that test's.
    console = "[ 2.0] harness: test-start test_a.py::test_rx_and_TX\n[ 2.1] BUG: KASAN: in it\n"
    assert [r.test for r in find_reports(console)] == ["test_a.py::test_rx_and_TX"]


def test_a_boundary_a_test_printed_moves_no_attribution() -> None:
    # Only the kernel's copy (from /dev/kmsg, timestamped) marks a test's start.
    console = "harness: test-start test_fake.py::t\n[ 2.0] BUG: KASAN: x\n"
    assert [r.test for r in find_reports(console)] == [None]


# -- die()'s Oops header belongs to the fault just reported ----------------------------


def test_an_oops_on_the_first_line_is_a_report() -> None:
    # Nothing came before it, so it is no fault's header.
    [report] = find_reports("[ 5.0] Internal error: Oops: 96000004 [#1] SMP\n")
    assert (report.kind, report.title, report.line) == (ReportKind.OOPS, "96000004 [#1] SMP", 1)


def test_an_oops_after_the_faults_report_ended_is_a_new_fault() -> None:
    console = "\n".join([
        "[ 5.0] BUG: kernel NULL pointer dereference, address: 0000000000000008",
        "[ 5.1] Oops: 0000 [#1] PREEMPT SMP NOPTI",  # die()'s header: the same fault
        "[ 5.2] ---[ end trace 0000000000000000 ]---",
        "[ 6.0] Oops: 0002 [#2] PREEMPT SMP NOPTI",  # a second fault, right after
    ])  # fmt: skip
    assert [(r.kind, r.line) for r in find_reports(console)] == [
        (ReportKind.BUG, 1), (ReportKind.OOPS, 4),
    ]  # fmt: skip


def test_an_oops_after_an_unable_to_handle_is_the_same_fault() -> None:
    # arm64: do_kernel_fault prints "Unable to handle ...", then die() "Internal error: Oops".
    console = "\n".join([
        "[ 5.0] Unable to handle kernel NULL pointer dereference at virtual address 0000000008",
        "[ 5.1] Mem abort info:",
        "[ 5.2] Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP",
    ])  # fmt: skip
    assert [(r.kind, r.line) for r in find_reports(console)] == [(ReportKind.OOPS, 1)]


def test_an_oops_after_a_warning_is_its_own_report() -> None:
    # A WARN() is no fault: an Oops printed inside its excerpt is a new report.
    console = "\n".join([
        "[ 5.0] WARNING: CPU: 0 PID: 1 at kernel/fork.c:1 f+0x1/0x2",
        "[ 5.1] Oops: 0000 [#1] PREEMPT SMP NOPTI",
    ])  # fmt: skip
    assert [(r.kind, r.line) for r in find_reports(console)] == [
        (ReportKind.WARNING, 1), (ReportKind.OOPS, 2),
    ]  # fmt: skip
