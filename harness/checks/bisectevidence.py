"""What a bisect step's cell says: its departures named by class, and, for the answer,
the failure text and console excerpts at the first bad and the last good prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.checks.bisectreport import Departure, Evidence
from harness.core.status import Status
from harness.results.excerpts import CONSOLE_TAIL_LINES, EXCERPT_LINES, clip_lines
from harness.results.model import Cell

CONSOLE = "console.log"
REPORT_CONTEXT = 12  # console lines shown before a kernel report that hit no test


def departures_of(cell: Cell, kernel_only: bool = False) -> list[Departure]:
    """Kernel reports by kind (and the test they hit), then each test that departed from
    its expectations with its expected and actual outcome; for a cell that failed with
    neither (a boot that timed out, a build), its status. `kernel_only`: the boot
    predicate, for which a test's departure is no departure."""
    found: list[Departure] = []
    for report in cell.kernel_reports:
        kind = f"kernel {report.get('kind', 'report')}"
        test = str(report.get("test") or "")
        found.append(Departure(kind, f"{kind} (during {test})" if test else kind, test))
    judged: dict[str, Any] = cell.facts.get("expectations") or {}
    if not kernel_only:
        for item in judged.get("departures", []):
            test = str(item.get("test", ""))
            text = f"{test} ({item.get('expected', '?')} → {item.get('actual', '?')})"
            found.append(Departure("test", text, test))
    if not found and cell.status not in (Status.PASS, Status.TEST_FAILED):
        found.append(Departure(cell.status.label, f"{cell.status.label}: {cell.reason}"))
    unique: dict[str, Departure] = {}
    for departure in found:
        unique.setdefault(departure.text, departure)
    return list(unique.values())


def test_window(console: str, nodeid: str) -> str:
    """The console lines from the test's `harness: test-start` to its `test-end`; "" when
    the console never names it."""
    lines = console.splitlines()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if line.rstrip().endswith(f"harness: test-start {nodeid}")
        ),
        None,
    )
    if start is None:
        return ""
    end = next(
        (i for i in range(start, len(lines)) if f"harness: test-end {nodeid} " in lines[i]),
        len(lines) - 1,
    )
    return clip_lines("\n".join(lines[start : end + 1]), EXCERPT_LINES)


def _read_console(results_dir: Path, boot_dir: str) -> str:
    if not boot_dir:
        return ""
    path = results_dir / boot_dir / CONSOLE
    return path.read_text(errors="replace") if path.is_file() else ""


def _around(console: str, line: int) -> str:
    lines = console.splitlines()
    first = max(0, line - 1 - REPORT_CONTEXT)
    return clip_lines("\n".join(lines[first : line - 1 + EXCERPT_LINES]), EXCERPT_LINES)


def _tail(console: str) -> str:
    return clip_lines(console, CONSOLE_TAIL_LINES, from_end=True) if console.strip() else ""


def gather(
    results_dir: Path,
    bad: Cell | None,
    bad_dir: str,
    good_dir: str,
    build_failure: str = "",
) -> Evidence:
    """The first bad prefix's failure (its kernel report, else its first departing test's
    failure text, else its compiler error) and the console at both ends: the test's own
    lines when a test is to blame, else the report's neighbourhood, else the tail."""
    evidence = Evidence()
    if bad is None:  # not booted: a build (or patch) failure
        evidence.failure_title = "first error at first bad"
        evidence.failure = clip_lines(build_failure, EXCERPT_LINES, from_end=True)
        return evidence
    console_bad = _read_console(results_dir, bad_dir)
    console_good = _read_console(results_dir, good_dir)
    departures = departures_of(bad)
    test = next((d.test for d in departures if d.test), "")
    if bad.kernel_reports:
        report = bad.kernel_reports[0]
        evidence.failure_title = f"kernel {report.get('kind', 'report')}: {report.get('title', '')}"
        evidence.failure = clip_lines(str(report.get("decoded") or report.get("excerpt", "")))
    elif test:
        result = next((r for r in bad.results if r.nodeid == test), None)
        evidence.failure_title = f"{test} at first bad"
        evidence.failure = clip_lines(
            result.message if result and result.message else "(no failure text)"
        )
    if test and (window := test_window(console_bad, test)):
        evidence.console_title = f"during {test}"
        evidence.console_bad = window
        evidence.console_good = test_window(console_good, test) or "(the test is not on it)"
    elif bad.kernel_reports and bad.kernel_reports[0].get("line"):
        evidence.console_title = "before the kernel report, and the last good console's end"
        evidence.console_bad = _around(console_bad, int(bad.kernel_reports[0]["line"]))
        evidence.console_good = _tail(console_good)
    else:
        evidence.console_title = "its last lines"
        evidence.console_bad, evidence.console_good = _tail(console_bad), _tail(console_good)
    return evidence
