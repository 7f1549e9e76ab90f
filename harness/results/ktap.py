"""results.ktap: a run as KTAP version 1 (Documentation/dev-tools/ktap.rst), for kernel CI tools.

The top level plans one test per cell ("x86_64.baseline", named like the
cell's JUnit suite); each cell is a subtest whose own tests are its guest
tests, then one subtest per upstream suite it ran ("seccomp_bpf", "ptrace"),
whose tests are that suite's cases ("seccomp_bpf::global.kcmp"). A suite's
subtest is "ok" when none of its cases is "not ok". A test is
"ok" (`# SKIP reason` when skipped, `# XFAIL reason` when the expectations
allowed its failure) or "not ok" (`# ERROR` when it did not finish), its
failure text going before it as "#" diagnostic lines. A cell is "ok" only
when its status is pass; otherwise a diagnostic line gives status and reason.
A cell that ran no test (it failed to build, say) is a plain result line.

Everything comes from the run directory, so `harness report --ktap RUN_DIR`
writes the same file for a run made without --ktap.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.vocabulary import Outcome
from harness.results.model import GUEST_SUITE, Cell, TestOutcome
from harness.results.rundir import RunRecord, load_run

KTAP_NAME = "results.ktap"
VERSION_LINE = "KTAP version 1"
INDENT = "  "  # one nesting level, as ktap.rst says
DIAGNOSTIC_LINES = 20  # failure text kept per test, its last lines
SKIP_PREFIXES = ("Skipped: ", "SKIP: ")  # how pytest and parse_tap word a skip's reason


def description(name: str) -> str:
    """A test's name as KTAP allows it: no '#' (it starts the directive), one line."""
    return " ".join(name.replace("#", "%23").split())


def one_line(text: str) -> str:
    return " ".join(text.split())


def diagnostics(text: str, indent: str) -> list[str]:
    lines = text.rstrip().splitlines()[-DIAGNOSTIC_LINES:]
    return [f"{indent}# {line}".rstrip() for line in lines]


def case_lines(number: int, test: TestOutcome, indent: str) -> list[str]:
    name = description(test.nodeid)
    if test.expected:
        reason = test.expected.removeprefix("expected failure: ")
        return [f"{indent}ok {number} {name} # XFAIL {one_line(reason)}"]
    if test.outcome is Outcome.PASSED:
        return [f"{indent}ok {number} {name}"]
    if test.outcome is Outcome.SKIPPED:
        reason = test.message
        for prefix in SKIP_PREFIXES:
            reason = reason.removeprefix(prefix)
        return [f"{indent}ok {number} {name} # SKIP {one_line(reason)}".rstrip()]
    result = f"{indent}not ok {number} {name}"
    if test.outcome is Outcome.ERROR:
        last = test.message.strip().splitlines()[-1:] or ["no result"]
        result += f" # ERROR {one_line(last[0])}"
    return [*diagnostics(test.message, indent), result]


def subtest_lines(name: str, tests: list[TestOutcome], indent: str) -> list[str]:
    """A subtest's header and plan, then its tests' lines, each level `indent` deeper."""
    lines = [f"{indent}{VERSION_LINE}", f"{indent}# Subtest: {name}", f"{indent}1..{len(tests)}"]
    for index, test in enumerate(tests, 1):
        lines += case_lines(index, test, indent)
    return lines


def cell_lines(number: int, cell: Cell) -> list[str]:
    name = description(cell.key.suite_name)
    lines: list[str] = []
    if cell.results:
        guest = [test for test in cell.results if test.suite == GUEST_SUITE]
        upstream: dict[str, list[TestOutcome]] = {}
        for test in cell.results:
            if test.suite != GUEST_SUITE:
                upstream.setdefault(test.suite, []).append(test)
        nested = INDENT
        lines += [
            f"{nested}{VERSION_LINE}",
            f"{nested}# Subtest: {name}",
            f"{nested}1..{len(guest) + len(upstream)}",
        ]
        for index, test in enumerate(guest, 1):
            lines += case_lines(index, test, nested)
        for index, (suite, tests) in enumerate(upstream.items(), len(guest) + 1):
            lines += subtest_lines(description(suite), tests, nested + INDENT)
            failing = any(test.outcome.failing and not test.expected for test in tests)
            lines.append(f"{nested}{'not ok' if failing else 'ok'} {index} {description(suite)}")
    if cell.passed:
        directive = "" if cell.results else " # SKIP no tests ran"
        return [*lines, f"ok {number} {name}{directive}"]
    reason = cell.reason
    lines.append(f"# {name}: {cell.status_label}" + (f": {one_line(reason)}" if reason else ""))
    return [*lines, f"not ok {number} {name}"]


def ktap_lines(run: RunRecord) -> list[str]:
    lines = [VERSION_LINE, f"1..{len(run.cells)}"]
    for number, cell in enumerate(run.cells, 1):
        lines += cell_lines(number, cell)
    return lines


def write_ktap(run_dir: Path) -> Path:
    """Write results.ktap into the run directory (whole, or not at all); its path."""
    text = "\n".join(ktap_lines(load_run(run_dir))) + "\n"
    path = run_dir / KTAP_NAME
    partial = path.with_name(KTAP_NAME + ".partial")
    partial.write_text(text)
    partial.replace(path)
    return path
