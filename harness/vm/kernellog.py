"""Find kernel reports (panic, oops, BUG, WARNING, ...) in a console log.

Only kernel lines count: a report header must follow the printk timestamp
(`[    1.234567] `, CONFIG_PRINTK_TIME, set by base.config), at the start of a
console line or in the middle of one when it interleaves with userspace
output. What a guest test prints on the console has no timestamp, so a test
writing `WARNING: ...` or pytest showing it is never taken for the kernel.

The guest's results plugin writes `harness: test-start NODEID` and
`harness: test-end NODEID OUTCOME` to /dev/kmsg, so each report is
attributed to the test that was running when the kernel printed it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# The printk timestamp (and the caller id of CONFIG_PRINTK_CALLER) before a kernel message.
_PREFIX = r"\[\s*\d+\.\d+\]\s*(?:\[\s*[CT]\d+\]\s*)?"
# The panic line, as boot_and_test watches the console for it.
PANIC_LINE = re.compile(_PREFIX + r"Kernel panic - not syncing")


class ReportKind(enum.Enum):
    PANIC = "panic"
    OOPS = "oops"
    BUG = "bug"
    WARNING = "warning"
    KASAN = "kasan"
    KCSAN = "kcsan"
    UBSAN = "ubsan"
    LOCKDEP = "lockdep"
    RCU_STALL = "rcu_stall"
    HUNG_TASK = "hung_task"
    SOFT_LOCKUP = "soft_lockup"
    HARD_LOCKUP = "hard_lockup"


# Lockdep's own reports (kernel/locking/lockdep.c) all start with "WARNING: ".
_LOCKDEP_TITLES = (
    r"possible circular locking dependency detected",
    r"possible recursive locking detected",
    r"inconsistent lock state",
    r"possible irq lock inversion dependency detected",
    r"\S+-safe -> \S+-unsafe lock order detected",
    r"suspicious RCU usage",
    r"bad unlock balance detected!",
    r"held lock freed!",
    r"\S+/\d+ still has locks held!",
    r"lock held when returning to user space!",
    r"Nested lock was not taken",
    r"bad contention detected!",
    r"chain_key collision",
)

# The first pattern that matches a line decides its kind. Formats are those of Linux 6.12.
_PATTERNS: list[tuple[ReportKind, re.Pattern[str]]] = [
    (ReportKind.PANIC, re.compile(_PREFIX + r"Kernel panic - not syncing: (?P<title>.*)")),
    (ReportKind.KASAN, re.compile(_PREFIX + r"BUG: KASAN: (?P<title>.*)")),
    (ReportKind.KCSAN, re.compile(_PREFIX + r"BUG: KCSAN: (?P<title>.*)")),
    # lib/ubsan.c: "UBSAN: %s in %s:%d:%d".
    (ReportKind.UBSAN, re.compile(_PREFIX + r"UBSAN: (?P<title>.*)")),
    # kernel/watchdog.c prints both behind its "watchdog: " prefix (older perf
    # detectors behind "NMI watchdog: ").
    (
        ReportKind.SOFT_LOCKUP,
        re.compile(_PREFIX + r"watchdog: (?P<title>BUG: soft lockup - CPU#\d+ stuck for .*)"),
    ),
    (
        ReportKind.HARD_LOCKUP,
        re.compile(
            _PREFIX + r"(?:NMI )?watchdog: (?P<title>Watchdog detected hard LOCKUP on cpu \d+.*)"
        ),
    ),
    # lib/bug.c: "kernel BUG at %s:%u!", or "Kernel BUG at %pB [verbose debug info unavailable]".
    (ReportKind.BUG, re.compile(_PREFIX + r"(?P<title>[Kk]ernel BUG at .*)")),
    (ReportKind.BUG, re.compile(_PREFIX + r"BUG: (?P<title>.*)")),
    # arch/arm64/mm/fault.c: "Unable to handle kernel %s at virtual address %016lx".
    (ReportKind.OOPS, re.compile(_PREFIX + r"(?P<title>Unable to handle kernel .*)")),
    # arch/x86/kernel/traps.c through __die_header: "Oops: general protection fault, ...".
    (
        ReportKind.OOPS,
        re.compile(
            _PREFIX + r"(?:Oops: )?(?P<title>(?:segment-related )?general protection fault.*)"
        ),
    ),
    (ReportKind.OOPS, re.compile(_PREFIX + r"(?:Internal error: )?Oops(?::\s*)?(?P<title>.*)")),
    (
        ReportKind.LOCKDEP,
        re.compile(_PREFIX + r"WARNING: (?P<title>(?:" + "|".join(_LOCKDEP_TITLES) + r")\s*)$"),
    ),
    (ReportKind.WARNING, re.compile(_PREFIX + r"WARNING: (?P<title>.*)")),
    # kernel/rcu/tree_stall.h and tree_exp.h, behind the "rcu: " prefix.
    (
        ReportKind.RCU_STALL,
        re.compile(
            _PREFIX + r"(?P<title>rcu: INFO: \w+ (?:self-)?detected (?:expedited )?stalls?.*)"
        ),
    ),
    (
        ReportKind.HUNG_TASK,
        re.compile(_PREFIX + r"(?P<title>INFO: task .* blocked for more than \d+ seconds\.)"),
    ),
]
# The node id runs to the end of the line: a parametrized id may hold spaces.
_TEST_START = re.compile(_PREFIX + r"harness: test-start (?P<nodeid>.+?)\s*$")
_TEST_END = re.compile(_PREFIX + r"harness: test-end (?P<nodeid>.+) \S+\s*$")
# The header die() prints for a fault or BUG just reported: part of that report.
_DIE_HEADER = re.compile(_PREFIX + r"(?:Internal error: )?Oops\b")
# A sanitizer report (KASAN, KCSAN) is framed by two lines of "=" signs.
_END_OF_TRACE = re.compile(_PREFIX + r"(?:---\[ end trace|---\[ end Kernel panic|={40,}\s*$)")


@dataclass(frozen=True)
class KernelReport:
    kind: ReportKind
    title: str
    test: str | None  # the guest test running when the kernel printed it
    excerpt: str  # the report's lines, up to its end-of-trace marker
    line: int  # 1-based line number in the console log


def _match(line: str) -> tuple[ReportKind, str] | None:
    for kind, pattern in _PATTERNS:
        if match := pattern.search(line):
            return kind, match["title"].strip()
    return None


def find_reports(console: str, max_excerpt_lines: int = 60) -> list[KernelReport]:
    lines = console.splitlines()
    reports: list[KernelReport] = []
    running: str | None = None
    fault_until = -1  # the end of the excerpt of the last BUG or oops
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r")
        if match := _TEST_START.search(line):
            running = match["nodeid"]
            continue
        if _TEST_END.search(line):
            running = None
            continue
        found = _match(line)
        if found is None:
            continue
        kind, title = found
        if kind is ReportKind.OOPS and index < fault_until and _DIE_HEADER.search(line):
            continue  # die()'s "Oops: ..." for the BUG or fault reported just before
        end = index + 1
        while end < len(lines) and end - index < max_excerpt_lines:
            if _TEST_START.search(lines[end]) or _TEST_END.search(lines[end]):
                break  # the report is over when the test is
            end += 1
            if _END_OF_TRACE.search(lines[end - 1]):
                break
        excerpt = "\n".join(entry.rstrip("\r") for entry in lines[index:end])
        reports.append(KernelReport(kind, title, running, excerpt, index + 1))
        if kind in (ReportKind.BUG, ReportKind.OOPS):
            fault_until = end
    return reports
