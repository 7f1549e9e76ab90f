"""The run report: report.html and report.md from a run directory (no QEMU)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from run_samples import CELLS, copy_sample_run, fail_stage, set_test_outcome, update_cell

from harness.cli.main import main
from harness.core.arches import ARCHES, get_arch
from harness.core.progress import Progress
from harness.core.status import EXIT_BAD_INPUT, Status
from harness.core.vocabulary import Variant
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.source import KernelSource
from harness.results.model import Cell, StageState
from harness.results.report import HTML_NAME, MARKDOWN_NAME, write_reports
from harness.results.rundir import load_run, read_junit
from harness.run import summary as summary_module
from harness.run.cellbuild import CellBuilder
from harness.run.config import Prepared, RunConfig
from harness.run.summary import run_matrix

GUEST_TESTS, UPSTREAM_TESTS, DIFFERING_TESTS = 94, 99, 41


class Elements(HTMLParser):
    """Every start tag of a document, with its attributes, in order."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))

    def select(self, tag: str, **wanted: str) -> list[dict[str, str]]:
        """Elements of `tag` whose attributes include `wanted` (class matches one class)."""
        matches = []
        for found_tag, attrs in self.found:
            if found_tag != tag:
                continue
            if all(_attr_matches(attrs, name, value) for name, value in wanted.items()):
                matches.append(attrs)
        return matches


def _attr_matches(attrs: dict[str, str], name: str, value: str) -> bool:
    name = name.rstrip("_").replace("_", "-")
    if name == "class":
        return value in attrs.get("class", "").split()
    return attrs.get(name) == value


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return copy_sample_run(tmp_path / "run")


def render(run_dir: Path) -> tuple[str, str]:
    write_reports(run_dir)
    return (run_dir / HTML_NAME).read_text(), (run_dir / MARKDOWN_NAME).read_text()


def test_matrix_has_one_row_per_cell_with_its_status_and_stages(run_dir: Path) -> None:
    html, _ = render(run_dir)
    page = Elements(html)
    assert len(page.select("table", id="matrix")) == 1
    rows = page.select("tr", class_="cell")
    assert [row["data-cell"] for row in rows] == list(CELLS)
    assert {row["data-status"] for row in rows} == {"pass"}
    stages = page.select("td", class_="stage")
    assert len(stages) == 4 * 5
    assert {s["data-stage"] for s in stages} == {"patch", "config", "build", "boot", "test"}
    assert {s["data-stage-status"] for s in stages} == {"pass"}


def test_matrix_shows_durations_versions_short_hashes_and_accelerator(run_dir: Path) -> None:
    html, markdown = render(run_dir)
    assert "3.4 min" in html  # x86_64/patched's 206.6 s build
    assert "10.7 s" in html  # arm64/patched's test stage
    assert "6.12.117" in html and "tcg" in html
    assert ">7c31b9646e0e<" in html and ">9209773a1758<" in html  # series, config
    assert "7c31b9646e0e55f2912bf3cf9e5230f357652924e56ccc4d4228019a36d79b55" not in markdown


def test_every_test_is_a_row_and_differing_outcomes_are_highlighted(run_dir: Path) -> None:
    page = Elements(render(run_dir)[0])
    rows = page.select("tr", class_="test")
    assert len(rows) == GUEST_TESTS + UPSTREAM_TESTS
    assert len(page.select("tr", data_suite="seccomp_bpf", class_="test")) == UPSTREAM_TESTS
    differing = page.select("tr", class_="differs")
    assert len(differing) == len(page.select("tr", data_differs="true")) == DIFFERING_TESTS
    arm64_only = "test_ptrace_seccomp.py::test_arm64_x7_at_entry_stop"
    assert page.select("tr", data_test=arm64_only, data_differs="true")
    outcomes = page.select("td", data_cell="x86_64-baseline", data_outcome="skipped")
    assert len(outcomes) == 41


def test_junit_node_ids_match_the_summarys_differences(run_dir: Path) -> None:
    run = load_run(run_dir)
    known = {test.nodeid for cell in run.cells for test in cell.results}
    listed = {entry["test"] for entries in run.summary["differences"].values() for entry in entries}
    assert listed and listed <= known
    assert "seccomp_bpf::global.kcmp" in known


def test_links_are_relative_and_the_page_loads_nothing_from_outside(run_dir: Path) -> None:
    html, _ = render(run_dir)
    page = Elements(html)
    hrefs = [a["href"] for a in page.select("a")]
    for cell in CELLS:
        for name in ("console.log", "build.log", "junit.xml", "qemu.sh"):
            assert f"{cell}/{name}" in hrefs
    assert all((run_dir / href).is_file() for href in hrefs)
    assert not page.select("script") and not page.select("link") and not page.select("img")
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "url(" not in html and "@import" not in html


def test_missing_log_is_shown_without_a_link(run_dir: Path) -> None:
    (run_dir / "arm64-patched" / "qemu.sh").unlink()
    hrefs = [a["href"] for a in Elements(render(run_dir)[0]).select("a")]
    assert "arm64-patched/qemu.sh" not in hrefs and "arm64-baseline/qemu.sh" in hrefs


def test_failed_test_and_kernel_report_have_excerpts(run_dir: Path) -> None:
    set_test_outcome(
        run_dir, "x86_64-patched", "test_detach_at_stop_kills[SIGUSR1]", "failed",
        "def test_x():\n>       assert status == 9\nE       AssertionError: tracee <survived>",
    )  # fmt: skip
    report = {
        "kind": "warning", "title": "WARNING: CPU: 1 PID: 93 at kernel/seccomp.c:1234",
        "test": "test_detach_kill.py::test_detach_at_stop_kills[SIGUSR1]", "line": 412,
        "excerpt": "raw trace line", "decoded": "seccomp_run_filters+0x4c (kernel/seccomp.c:1234)",
    }  # fmt: skip
    update_cell(run_dir, "x86_64-patched", kernel_reports=[report])
    fail_stage(run_dir, "x86_64-patched", "test", "kernel_warning", "1 guest test(s) failed")
    html, markdown = render(run_dir)
    page = Elements(html)
    assert page.select("tr", data_cell="x86_64-patched", data_status="kernel_warning")
    assert page.select("td", data_cell="x86_64-patched", data_outcome="failed")
    excerpts = page.select("div", class_="excerpt", data_cell="x86_64/patched")
    assert {e["data-kind"] for e in excerpts} == {"test failed", "kernel warning"}
    assert "AssertionError: tracee &lt;survived&gt;" in html  # escaped, not markup
    assert "kernel/seccomp.c:1234)" in html and "raw trace line" not in html
    assert "AssertionError: tracee <survived>" in markdown
    assert 'id="no-excerpts"' not in html


def test_a_cell_that_did_not_boot_shows_the_console_tail(run_dir: Path) -> None:
    fail_stage(run_dir, "arm64-baseline", "boot", "boot_timeout", "no userspace after 60 s")
    page = Elements(render(run_dir)[0])
    assert page.select("tr", data_cell="arm64-baseline", data_status="boot_timeout")
    assert page.select("td", data_stage="boot", data_stage_status="fail")
    assert page.select("div", data_cell="arm64/baseline", data_kind="console tail")


def test_build_failure_excerpt_and_not_run_stages(run_dir: Path) -> None:
    update_cell(
        run_dir, "x86_64-baseline", excerpts={"build": "kernel/seccomp.c:12: error: oops"},
        tests={}, selftests={},
    )  # fmt: skip
    fail_stage(run_dir, "x86_64-baseline", "build", "build_failed", "make failed (exit 2)")
    (run_dir / "x86_64-baseline" / "junit.xml").unlink()
    html, markdown = render(run_dir)
    page = Elements(html)
    assert page.select("div", data_cell="x86_64/baseline", data_kind="build stage")
    assert "kernel/seccomp.c:12: error: oops" in html and "build_failed" in markdown
    assert page.select("td", data_cell="x86_64-baseline", data_outcome="not run")


def test_timing_chart_is_inline_svg_with_a_bar_per_cell_and_stage(run_dir: Path) -> None:
    page = Elements(render(run_dir)[0])
    assert len(page.select("svg", id="timing-chart")) == 1
    bars = page.select("rect", class_="bar")
    assert len(bars) == len(CELLS) * 3
    widths = {(b["data-cell"], b["data-stage"]): float(b["width"]) for b in bars}
    # Each stage has its own scale: the longest of each reaches the same length.
    assert widths[("x86_64/baseline", "build")] == widths[("arm64/patched", "test")]


def test_markdown_has_the_matrix_and_bold_differences(run_dir: Path) -> None:
    _, markdown = render(run_dir)
    assert markdown.startswith("# Run e2e: pass (exit 0)")
    matrix_rows = [line for line in markdown.splitlines() if line.startswith("| x86_64/")]
    assert any("**pass**" in row and "[console](x86_64-patched/console.log)" in row
               for row in matrix_rows)  # fmt: skip
    bold = [line for line in markdown.splitlines() if line.startswith("| **test_")]
    assert len(bold) == DIFFERING_TESTS
    assert "| seccomp_bpf::global.kcmp | passed | passed | passed | passed | |" in markdown


def test_cli_report_rerenders_and_bad_dir_is_bad_input(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(run_dir)]) == 0
    assert str(run_dir / HTML_NAME) in capsys.readouterr().out
    assert (run_dir / MARKDOWN_NAME).is_file()
    assert main(["report", str(tmp_path / "nowhere")]) == EXIT_BAD_INPUT
    assert "no such run directory" in capsys.readouterr().err


def test_run_without_summary_renders_from_cell_files(run_dir: Path) -> None:
    (run_dir / "summary.json").unlink()
    page = Elements(render(run_dir)[0])
    assert len(page.select("tr", class_="cell")) == 4


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"arch": "riscv64"}, "cell riscv64/patched: unknown arch 'riscv64'"),
        ({"format": 3}, "cell arm64/patched: format 3 is newer than this harness reads (2)"),
    ],
)
def test_a_cell_this_harness_cannot_read_is_refused_naming_its_file(
    run_dir: Path, capsys: pytest.CaptureFixture[str], changes: dict[str, object], named: str
) -> None:
    update_cell(run_dir, "arm64-patched", **changes)
    (run_dir / "summary.json").unlink()  # the cells' own files: the one named is cell.json
    assert main(["report", str(run_dir)]) == EXIT_BAD_INPUT
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"harness: error: {run_dir / 'arm64-patched' / 'cell.json'}: ")
    assert named in line and "a newer harness wrote it" in line
    assert not (run_dir / HTML_NAME).exists()


# -- rendering at the end of a run ---------------------------------------------------


@pytest.fixture
def one_cell_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunConfig:
    """A run of one cell whose build stage is faked: it writes cell.json and a junit
    file and returns the finished cell, so nothing is booted."""
    sample = copy_sample_run(tmp_path / "sample")

    def fake_build_cell(self: CellBuilder, arch: object, variant: str, run_dir: Path) -> Cell:
        cell = Cell(ARCHES["x86_64"], variant, status=Status.TEST_FAILED, reason="test: 1 failed")
        for stage in cell.stages.values():
            stage.state, stage.seconds = StageState.PASS, 1.0
        cell.files["junit"] = "junit.xml"
        cell_dir = run_dir / f"x86_64-{variant}"
        cell_dir.mkdir(parents=True)
        shutil.copy(sample / f"x86_64-{variant}" / "junit.xml", cell_dir)
        cell.results = read_junit(cell_dir / "junit.xml", f"x86_64.{variant}")
        (cell_dir / "cell.json").write_text(json.dumps(cell.to_json()))
        return cell

    monkeypatch.setattr(CellBuilder, "build_cell", fake_build_cell)
    return RunConfig(
        arches=[get_arch("x86_64")], variants=["baseline"], series_dir=tmp_path / "series",
        config_dir=tmp_path / "configs", guest_tests=tmp_path / "guest-tests",
        work=WorkDir(tmp_path / "work"), results_dir=tmp_path / "results",
    )  # fmt: skip


def _prepared(tmp_path: Path) -> Prepared:
    return Prepared(
        source=KernelSource(tmp_path / "linux", "6.12.117", "directory"),
        series=None,
        merged={"x86_64": kconfig.MergedConfig()},
        index=kconfig.KconfigIndex(tmp_path),
    )


def test_every_run_ends_with_a_report(one_cell_matrix: RunConfig, tmp_path: Path) -> None:
    stream = io.StringIO()
    summary = run_matrix(one_cell_matrix, _prepared(tmp_path), "r1", Progress(stream, live=False))
    assert summary.status() is Status.TEST_FAILED
    html = (tmp_path / "results" / HTML_NAME).read_text()
    assert 'data-cell="x86_64-baseline"' in html and 'data-status="test_failed"' in html
    assert (tmp_path / "results" / MARKDOWN_NAME).is_file()
    assert "warning" not in stream.getvalue()


def test_a_run_with_ktap_writes_results_ktap(one_cell_matrix: RunConfig, tmp_path: Path) -> None:
    config = dataclasses.replace(one_cell_matrix, ktap=True)
    stream = io.StringIO()
    run_matrix(config, _prepared(tmp_path), "r1", Progress(stream, live=False))
    lines = (tmp_path / "results" / "results.ktap").read_text().splitlines()
    assert lines[:5] == [
        "KTAP version 1",
        "1..1",
        "  KTAP version 1",
        "  # Subtest: x86_64.baseline",
        "  1..95",
    ]  # fmt: skip  (94 guest tests and the seccomp_bpf suite, a subtest of its 99 cases)
    assert lines[-2:] == ["# x86_64.baseline: test_failed: test: 1 failed",
                          "not ok 1 x86_64.baseline"]  # fmt: skip
    assert f"KTAP: {tmp_path / 'results' / 'results.ktap'}" in stream.getvalue()


def test_a_report_that_fails_to_render_only_warns(
    one_cell_matrix: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(run_dir: Path) -> list[Path]:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(summary_module, "write_reports", broken)
    stream = io.StringIO()
    summary = run_matrix(one_cell_matrix, _prepared(tmp_path), "r1", Progress(stream, live=False))
    assert summary.status() is Status.TEST_FAILED  # the run's verdict is untouched
    assert (tmp_path / "results" / "summary.json").is_file()
    warnings = [line for line in stream.getvalue().splitlines() if "warning" in line]
    assert len(warnings) == 1 and "template exploded" in warnings[0]


# -- a real browser ----------------------------------------------------------------


def chromium_command(user_data: Path, *args: str) -> list[str]:
    return [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={user_data}", *args,
    ]  # fmt: skip


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_opens_in_headless_chromium(run_dir: Path, tmp_path: Path) -> None:
    fail_stage(run_dir, "arm64-patched", "test", "test_failed", "1 guest test(s) failed")
    html_path = write_reports(run_dir)[0]
    completed = subprocess.run(
        chromium_command(tmp_path / "chromium-profile", "--dump-dom", html_path.as_uri()),
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    dom = Elements(completed.stdout)
    assert len(dom.select("table", id="matrix")) == 1
    rows = dom.select("tr", class_="cell")
    assert {row["data-cell"]: row["data-status"] for row in rows} == {
        "x86_64-baseline": "pass",
        "x86_64-patched": "pass",
        "arm64-baseline": "pass",
        "arm64-patched": "test_failed",
    }
    assert len(dom.select("tr", class_="test")) == GUEST_TESTS + UPSTREAM_TESTS
    assert dom.select("svg", id="timing-chart")


# -- expectations ---------------------------------------------------------------------


def test_departures_expected_failures_and_stale_entries_are_listed(run_dir: Path) -> None:
    departure = {
        "test": "test_detach_kill.py::test_detach_at_stop_kills[nosig]", "cell": "arm64/patched",
        "expected": "passed", "actual": "skipped", "reason": "the series adds PTRACE_SECCOMP",
        "entry": 2,
    }  # fmt: skip
    xfail = "seccomp_bpf::global.kcmp"
    update_cell(run_dir, "arm64-patched", expectations={
        "file": "expectations.toml", "departures": [departure], "stale": [],
        "expected_failures": [],
    })  # fmt: skip
    update_cell(run_dir, "x86_64-baseline", expectations={
        "file": "expectations.toml", "departures": [],
        "expected_failures": [{"test": xfail, "outcome": "failed", "reason": "known bug",
                               "entry": 4}],
        "stale": [{"entry": 3, "line": 48, "test": "gone.py::*", "reason": "removed"}],
    })  # fmt: skip
    set_test_outcome(run_dir, "x86_64-baseline", "global.kcmp", "skipped")
    junit = run_dir / "x86_64-baseline" / "junit.xml"
    junit.write_text(
        junit.read_text().replace(
            '<skipped message="" />',
            '<skipped type="xfail" message="expected failure: known bug">'
            "kcmp: Expected 0 (0) == 1 (1)</skipped>",
        )
    )  # fmt: skip
    html, markdown = render(run_dir)
    page = Elements(html)
    rows = page.select("tr", class_="departure")
    assert [(r["data-cell"], r["data-test"]) for r in rows] == [
        ("arm64/patched", departure["test"])
    ]
    assert page.select("ul", id="expected-failures")
    assert page.select("ul", id="stale-expectations")
    assert page.select("li", data_cell="x86_64/baseline", data_test="gone.py::*")
    assert "expected failure: known bug" in html and "entry 3 (line 48) matched no test" in html
    outcome = page.select("td", data_cell="x86_64-baseline", data_outcome="failed")
    assert len(outcome) == 1 and outcome[0]["data-expected"] == "true"
    excerpt = page.select("div", class_="excerpt", data_kind="expected failure")
    assert excerpt and excerpt[0]["data-test"] == xfail
    assert (
        "| test_detach_kill.py::test_detach_at_stop_kills[nosig] | arm64/patched | passed | "
        "**skipped** | the series adds PTRACE_SECCOMP |"
    ) in markdown
    assert f"- {xfail} · x86_64/baseline · expected failure: known bug" in markdown
    # Its outcome differs from x86_64/patched's, so the row is bold.
    assert f"| **{xfail}** | **failed** (expected) | **passed** | **passed** |" in markdown


def test_a_run_without_expectations_has_no_such_section(run_dir: Path) -> None:
    html, markdown = render(run_dir)
    assert 'id="expectations-section"' not in html and "## Expectations" not in markdown


def test_cell_json_holds_every_test_and_is_read_without_junit(tmp_path: Path) -> None:
    from harness.results.model import TestOutcome
    from harness.results.rundir import load_run

    cell = Cell(ARCHES["x86_64"], Variant.PATCHED)
    cell.results = [
        TestOutcome("test_a.py::test_one", "guest", "passed", duration=0.25),
        TestOutcome("test_a.py::test_two", "guest", "failed", "boom", "expected failure: known"),
        TestOutcome("seccomp_bpf::global.kcmp", "seccomp_bpf", "skipped", "SKIP: no kcmp"),
    ]
    (tmp_path / "x86_64-patched").mkdir()
    (tmp_path / "x86_64-patched" / "cell.json").write_text(json.dumps(cell.to_json()))
    # No junit.xml: the JSON alone carries the outcomes (format 2).
    [read] = load_run(tmp_path).cells
    assert read.results == cell.results
    assert [str(t.outcome) for t in read.results] == ["passed", "failed", "skipped"]


def test_the_upstream_column_counts_each_suite(run_dir: Path) -> None:
    """A run from before there were several collections counted seccomp_bpf alone; a cell
    with several suites shows each one's own tree's outcomes."""
    _, markdown = render(run_dir)
    assert "| seccomp_bpf: 99 passed |" in markdown
    suites = {
        "seccomp_bpf": {"own": {"passed": 99, "total": 99}},
        "ptrace": {"own": {"passed": 4, "failed": 1, "total": 5},
                   "series": {"passed": 5, "total": 5}},
    }  # fmt: skip
    update_cell(run_dir, "x86_64-baseline", selftest_suites=suites)
    html, markdown = render(run_dir)
    assert "| seccomp_bpf: 99 passed; ptrace: 4 passed, 1 failed |" in markdown
    assert "seccomp_bpf: 99 passed; ptrace: 4 passed, 1 failed</td>" in html
