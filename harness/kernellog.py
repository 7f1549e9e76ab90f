"""Find kernel reports (panic, oops, BUG, WARNING, ...) in a console log.

The guest's results plugin writes `harness: test-start NODEID` and
`harness: test-end NODEID OUTCOME` to /dev/kmsg, so each report is
attributed to the test that was running when the kernel printed it.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

# A kernel message starts a console line, or follows its printk timestamp in
# the middle of one when it interleaves with userspace output.
_PREFIX = r"(?:^|\[\s*\d+\.\d+\]\s*)(?:\[\s*[CT]\d+\]\s*)?"


class ReportKind(enum.Enum):
    PANIC = "panic"
    OOPS = "oops"
    BUG = "bug"
    WARNING = "warning"
    KASAN = "kasan"
    KCSAN = "kcsan"
    LOCKDEP = "lockdep"
    RCU_STALL = "rcu_stall"
    HUNG_TASK = "hung_task"
    SOFT_LOCKUP = "soft_lockup"


_PATTERNS: list[tuple[ReportKind, re.Pattern[str]]] = [
    (ReportKind.PANIC, re.compile(_PREFIX + r"Kernel panic - not syncing: (?P<title>.*)")),
    (ReportKind.KASAN, re.compile(_PREFIX + r"BUG: KASAN: (?P<title>.*)")),
    (ReportKind.KCSAN, re.compile(_PREFIX + r"BUG: KCSAN: (?P<title>.*)")),
    # kernel/watchdog.c prints it behind its "watchdog: " prefix.
    (ReportKind.SOFT_LOCKUP, re.compile(
        _PREFIX + r"watchdog: (?P<title>BUG: soft lockup - CPU#\d+ stuck for .*)")),
    (ReportKind.BUG, re.compile(_PREFIX + r"(?:kernel )?BUG(?: at|:) (?P<title>.*)")),
    (ReportKind.OOPS, re.compile(_PREFIX + r"(?:Internal error: )?Oops(?P<title>.*)")),
    (ReportKind.WARNING, re.compile(_PREFIX + r"WARNING: (?P<title>(?!.*possible).*)")),
    (ReportKind.LOCKDEP, re.compile(
        _PREFIX + r"WARNING: (?P<title>possible (?:circular|recursive) locking.*|.*lock.*)")),
    (ReportKind.RCU_STALL, re.compile(
        _PREFIX + r"(?P<title>rcu: INFO: rcu_\w+ (?:self-)?detected stalls?.*)")),
    (ReportKind.HUNG_TASK, re.compile(
        _PREFIX + r"(?P<title>INFO: task .* blocked for more than \d+ seconds\.)")),
]  # fmt: skip
_TEST_START = re.compile(_PREFIX + r"harness: test-start (?P<nodeid>\S+)")
_TEST_END = re.compile(_PREFIX + r"harness: test-end (?P<nodeid>\S+)")
# A sanitizer report (KASAN, KCSAN) is framed by two lines of "=" signs.
_END_OF_TRACE = re.compile(_PREFIX + r"(?:---\[ end trace|---\[ end Kernel panic|={40,}\s*$)")


@dataclass(frozen=True)
class KernelReport:
    kind: ReportKind
    title: str
    test: str | None  # the guest test running when the kernel printed it
    excerpt: str  # the report's lines, up to its end-of-trace marker
    line: int  # 1-based line number in the console log


def find_reports(console: str, max_excerpt_lines: int = 60) -> list[KernelReport]:
    lines = console.splitlines()
    reports: list[KernelReport] = []
    running: str | None = None
    index = 0
    while index < len(lines):
        line = lines[index].rstrip("\r")
        if match := _TEST_START.search(line):
            running = match["nodeid"]
        elif _TEST_END.search(line):
            running = None
        else:
            for kind, pattern in _PATTERNS:
                if match := pattern.search(line):
                    end = index + 1
                    while end < len(lines) and end - index < max_excerpt_lines:
                        if _END_OF_TRACE.search(lines[end]):
                            end += 1
                            break
                        end += 1
                    excerpt = "\n".join(entry.rstrip("\r") for entry in lines[index:end])
                    reports.append(
                        KernelReport(kind, match["title"].strip(), running, excerpt, index + 1)
                    )
                    break
        index += 1
    return reports
