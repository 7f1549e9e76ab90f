"""The run report: report.html (self-contained, no network, no JavaScript) and report.md.

Everything comes from the run directory (summary.json and each cell's
cell.json, junit.xml and console.log), so `harness report RUN_DIR` can render
a run copied from anywhere. The HTML has a stable structure for tools and
tests: `table#matrix` has one `tr.cell` per cell with `data-cell` and
`data-status`, `table#tests` one `tr.test` per test with `data-differs`,
`table#departures` one `tr.departure` per test that departed from the
expectations, `ul#expected-failures` and `ul#stale-expectations` one `li`
per expected failure and stale entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from harness.core.status import Status
from harness.core.vocabulary import Outcome, Variant
from harness.results.chart import TimingBar, format_seconds, timing_bar, timing_chart_svg
from harness.results.differences import NOT_RUN, differing
from harness.results.excerpts import Excerpt, cell_excerpts
from harness.results.model import GUEST_SUITE, STAGES, Cell, StageResult
from harness.results.rundir import RunRecord, load_run

HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
SHORT_HASH = 12

# The files each cell row links to: (label, key in the cell's "files", usual name).
CELL_LINKS = (
    ("console", "console_log", "console.log"),
    ("build log", "build_log", "build.log"),
    ("junit", "junit", "junit.xml"),
    ("qemu.sh", "reproducer", "qemu.sh"),
)
# A cell status's colour class; test failures and kernel warnings are amber, the rest red.
WARNING_STATUSES = (Status.TEST_FAILED.label, Status.KERNEL_WARNING.label)


@dataclass(frozen=True)
class StageView:
    name: str
    state: str  # pass, fail, not_run, reused
    seconds: float
    message: str


@dataclass(frozen=True)
class Link:
    label: str
    href: str  # relative to the run directory
    present: bool


@dataclass
class CellView:
    key: str  # the cell's directory name, "x86_64-patched", "x86_64-clang-patched"
    name: str
    arch: str  # the platform: the arch, and the toolchain unless it is gcc ("x86_64-clang")
    variant: str
    status: str
    reason: str
    stages: list[StageView]
    kernel_version: str
    series_hash: str
    config_hash: str
    accel: str
    guest_counts: dict[str, int]
    upstream_counts: list[tuple[str, dict[str, int]]]  # per upstream suite, its own tree's
    links: list[Link]

    @property
    def status_class(self) -> str:
        return status_class(self.status)


@dataclass
class TestRow:
    nodeid: str
    suite: str
    outcomes: list[str]  # one per cell, in the report's cell order: an Outcome, or NOT_RUN
    differs_on: list[str] = field(default_factory=list)  # arches whose variants disagree
    expected: list[str] = field(default_factory=list)  # per cell: "expected failure: ..." or ""

    @property
    def differs(self) -> bool:
        return bool(self.differs_on)


@dataclass(frozen=True)
class Departure:
    cell: str
    test: str
    expected: str
    actual: str
    reason: str


@dataclass(frozen=True)
class ExpectationNote:
    """An expected failure or a stale entry: a line of the expectations section."""

    cell: str
    test: str  # the test, or the stale entry's glob
    text: str  # "expected failure: <reason>", or "entry 3 (line 20) matched no test (<reason>)"


@dataclass
class Expectations:
    file: str  # the file's path as the run recorded it, "" when the run had none
    departures: list[Departure]
    expected_failures: list[ExpectationNote]
    stale: list[ExpectationNote]

    @property
    def anything(self) -> bool:
        return bool(self.file or self.departures or self.expected_failures or self.stale)


@dataclass
class Report:
    run_id: str
    status: str
    exit_code: int | str
    kernel_version: str
    package_version: str
    harness_version: str
    series: dict[str, Any] | None
    cells: list[CellView]
    suites: list[tuple[str, list[TestRow]]]
    excerpts: list[Excerpt]
    timings: list[TimingBar]
    notes: list[str]
    expectations: Expectations

    @property
    def status_class(self) -> str:
        return status_class(self.status)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return STAGES

    @property
    def differing_rows(self) -> int:
        return sum(row.differs for _, rows in self.suites for row in rows)

    @property
    def test_count(self) -> int:
        return sum(len(rows) for _, rows in self.suites)

    @property
    def chart_svg(self) -> Markup:
        return Markup(timing_chart_svg(self.timings))


def status_class(status: str) -> str:
    if status == Status.PASS.label:
        return "ok"
    return "warn" if status in WARNING_STATUSES else "bad"


def short_hash(value: object) -> str:
    return str(value)[:SHORT_HASH] if value else "-"


# -- building the report's model ------------------------------------------------


def build_report(run: RunRecord) -> Report:
    summary = run.summary
    source = summary.get("source") or {}
    first = run.cells[0].facts if run.cells else {}
    cells = [cell_view(run.directory, cell) for cell in run.cells]
    return Report(
        run_id=run.run_id,
        status=run.status,
        exit_code=summary.get("exit_code", "?"),
        kernel_version=str(source.get("kernel_version") or first.get("kernel_version") or "?"),
        package_version=str(source.get("package_version") or first.get("package_version") or ""),
        harness_version=str(summary.get("harness_version", "")),
        series=summary.get("series"),
        cells=cells,
        suites=outcome_rows(run),
        excerpts=[excerpt for cell in run.cells for excerpt in cell_excerpts(run.directory, cell)],
        timings=[timing_bar(cell) for cell in run.cells],
        notes=[f"{cell.name}: {cell.junit_problem}" for cell in run.cells if cell.junit_problem],
        expectations=expectations_view(run),
    )


def expectations_view(run: RunRecord) -> Expectations:
    """Departures, expected failures and stale entries, from each cell's own record."""
    view = Expectations(str(run.summary.get("expectations") or ""), [], [], [])
    for cell in run.cells:
        judged = cell.facts.get("expectations") or {}
        view.file = view.file or str(judged.get("file") or "")
        for entry in judged.get("departures") or []:
            view.departures.append(
                Departure(
                    cell.name,
                    str(entry.get("test")),
                    str(entry.get("expected")),
                    str(entry.get("actual")),
                    str(entry.get("reason", "")),
                )
            )
        for entry in judged.get("expected_failures") or []:
            text = f"expected failure: {entry.get('reason', '')}"
            view.expected_failures.append(ExpectationNote(cell.name, str(entry.get("test")), text))
        for entry in judged.get("stale") or []:
            where = f"entry {entry.get('entry')} (line {entry.get('line')})"
            text = f"{where} matched no test ({entry.get('reason', '')})"
            view.stale.append(ExpectationNote(cell.name, str(entry.get("test")), text))
    return view


def cell_view(run_dir: Path, cell: Cell) -> CellView:
    facts = cell.facts
    return CellView(
        key=cell.directory_name,
        name=cell.name,
        arch=cell.platform.name,
        variant=str(cell.variant),
        status=cell.status_label,
        reason=cell.reason,
        stages=[stage_view(name, cell.stage(name)) for name in STAGES],
        kernel_version=str(facts.get("kernel_release") or facts.get("kernel_version") or "-"),
        series_hash=short_hash(facts.get("series_hash")),
        config_hash=short_hash(facts.get("config_hash")),
        accel=str(facts.get("accel") or "-"),
        guest_counts=dict(cell.tests),
        upstream_counts=upstream_counts(facts),
        links=cell_links(run_dir, cell),
    )


def upstream_counts(facts: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """Per upstream suite, the outcomes of the cell's own tree's binaries; a run from
    before there were several collections counted seccomp_bpf's alone."""
    suites = facts.get("selftest_suites")
    if isinstance(suites, dict):
        return [(suite, dict(counts.get("own") or {})) for suite, counts in suites.items()]
    total = facts.get("selftests")
    return [("seccomp_bpf", dict(total))] if total else []


def stage_view(name: str, stage: StageResult) -> StageView:
    return StageView(
        name=name, state=stage.state.value, seconds=stage.seconds, message=stage.message
    )


def cell_links(run_dir: Path, cell: Cell) -> list[Link]:
    links = []
    for label, key, usual in CELL_LINKS:
        href = f"{cell.directory_name}/{cell.files.get(key, usual)}"
        links.append(Link(label, href, (run_dir / href).is_file()))
    return links


def outcome_rows(run: RunRecord) -> list[tuple[str, list[TestRow]]]:
    """Every test of every cell, grouped by suite (guest tests first), in first-seen order."""
    outcomes = [cell.outcomes for cell in run.cells]
    expected = [{t.nodeid: t.expected for t in cell.results if t.expected} for cell in run.cells]
    suites: dict[str, dict[str, TestRow]] = {GUEST_SUITE: {}}
    for cell in run.cells:
        for test in cell.results:
            rows = suites.setdefault(test.suite, {})
            if test.nodeid not in rows:
                per_cell = [shown(by_cell.get(test.nodeid)) for by_cell in outcomes]
                notes = [by_cell.get(test.nodeid, "") for by_cell in expected]
                rows[test.nodeid] = TestRow(test.nodeid, test.suite, per_cell, expected=notes)
    differing = differing_tests(run)
    for rows in suites.values():
        for nodeid, row in rows.items():
            row.differs_on = sorted(differing.get(nodeid, ()))
    return [(suite, list(rows.values())) for suite, rows in suites.items() if rows]


def shown(outcome: Outcome | None) -> str:
    """A test's outcome in a cell as the report names it; NOT_RUN when the cell has none."""
    return NOT_RUN if outcome is None else str(outcome)


def differing_tests(run: RunRecord) -> dict[str, set[str]]:
    """nodeid -> the platforms ("x86_64", "x86_64-clang") whose baseline and patched
    outcomes differ.

    From the cells' own results, joined with summary.json's `differences`
    (which a run without junit files still has).
    """
    found: dict[str, set[str]] = {}
    for arch, entries in (run.summary.get("differences") or {}).items():
        for entry in entries:
            found.setdefault(str(entry.get("test")), set()).add(arch)
    for baseline in run.cells:
        patched = run.cell(baseline.key.with_variant(Variant.PATCHED))
        if baseline.variant is not Variant.BASELINE or patched is None:
            continue
        for entry in differing(baseline.outcomes, patched.outcomes):
            found.setdefault(entry["test"], set()).add(baseline.platform.name)
    return found


# -- rendering ------------------------------------------------------------------------


def markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def code_fence(text: str) -> str:
    """A backtick fence longer than any backtick run in `text`."""
    longest, run = 0, 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def _environment(autoescape: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.results", "templates"),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(
        md=markdown_cell, fence=code_fence, seconds=format_seconds, short=short_hash
    )
    return environment


def render_html(report: Report) -> str:
    return _environment(autoescape=True).get_template("report.html.j2").render(report=report)


def render_markdown(report: Report) -> str:
    return _environment(autoescape=False).get_template("report.md.j2").render(report=report)


def write_reports(run_dir: Path) -> list[Path]:
    """Render report.html and report.md into the run directory; the paths written."""
    report = build_report(load_run(run_dir))
    written = []
    for name, text in ((HTML_NAME, render_html(report)), (MARKDOWN_NAME, render_markdown(report))):
        path = run_dir / name
        partial = path.with_name(name + ".partial")
        partial.write_text(text)
        partial.replace(path)
        written.append(path)
    return written
