"""results.ktap from recorded runs: KTAP version 1 structure, checked line by line."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import ROOT
from run_samples import CELLS, copy_sample_run, fail_stage, set_test_outcome, update_cell

from harness.cli.main import main
from harness.results import ktap

TESTS_PER_CELL = 193  # 94 guest tests and 99 upstream selftests in the sample run
GUEST_TESTS = 94
SKIPPED = {"x86_64-baseline": 41, "x86_64-patched": 1, "arm64-baseline": 41, "arm64-patched": 0}
RESULT = re.compile(r"^(?P<indent> *)(?P<result>ok|not ok) (?P<number>\d+) (?P<name>[^#]*?)"
                    r"(?: # (?P<directive>\S+)(?: (?P<reason>.*))?)?$")  # fmt: skip


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return copy_sample_run(tmp_path / "run")


def ktap_text(run_dir: Path) -> list[str]:
    return ktap.write_ktap(run_dir).read_text().splitlines()


def parse_results(lines: list[str], position: int, indent: str, tests: list[dict[str, Any]]) -> int:
    """The result lines of one subtest at `indent` (its header already read), each with the
    diagnostics before it; an upstream suite is a subtest of its own one level deeper,
    whose cases go into `tests` too. The position after them."""
    pending: list[str] = []
    number = 0
    while lines[position].startswith(indent):
        line = lines[position]
        if line == f"{indent}  KTAP version 1":
            assert lines[position + 1].startswith(f"{indent}  # Subtest: ")
            planned = int(lines[position + 2].removeprefix(f"{indent}  1.."))
            cases: list[dict[str, Any]] = []
            position = parse_results(lines, position + 3, indent + "  ", cases)
            assert len(cases) == planned
            match = RESULT.match(lines[position])
            assert match and match["indent"] == indent, lines[position]
            number += 1
            assert int(match["number"]) == number, lines[position]
            tests += [{**case, "suite": match["name"], "suite_result": match["result"]}
                      for case in cases]  # fmt: skip
            position += 1
            continue
        position += 1
        if line.startswith(f"{indent}# ") or line == f"{indent}#":
            pending.append(line)
            continue
        match = RESULT.match(line)
        assert match and match["indent"] == indent, line
        number += 1
        assert int(match["number"]) == number, line
        tests.append({**match.groupdict(), "diagnostics": pending, "suite": None})
        pending = []
    assert not pending
    return position


def parse_strictly(lines: list[str]) -> list[dict[str, Any]]:
    """Check the structure line by line: the run, its cells, their guest tests and one
    subtest per upstream suite; each cell with every test's result (a suite's cases
    named by their suite)."""
    assert lines[:2] == ["KTAP version 1", f"1..{len(CELLS)}"]
    cells: list[dict[str, Any]] = []
    position = 2
    while position < len(lines):
        cell: dict[str, Any] = {"tests": [], "diagnostics": []}
        if lines[position] == "  KTAP version 1":
            assert lines[position + 1].startswith("  # Subtest: ")
            cell["planned"] = int(lines[position + 2].removeprefix("  1.."))
            position = parse_results(lines, position + 3, "  ", cell["tests"])
            guest = [t for t in cell["tests"] if t["suite"] is None]
            suites = {t["suite"] for t in cell["tests"] if t["suite"]}
            assert len(guest) + len(suites) == cell["planned"]
        while lines[position].startswith("# "):
            cell["diagnostics"].append(lines[position])
            position += 1
        match = RESULT.match(lines[position])
        assert match and match["indent"] == "", lines[position]
        assert int(match["number"]) == len(cells) + 1
        cell.update(result=match["result"], name=match["name"], directive=match["directive"])
        cells.append(cell)
        position += 1
    assert len(cells) == len(CELLS)
    return cells


def test_a_passing_run_is_four_cells_of_their_tests(run_dir: Path) -> None:
    lines = ktap_text(run_dir)
    cells = parse_strictly(lines)
    assert [c["name"] for c in cells] == [name.replace("-", ".") for name in CELLS]
    for cell, key in zip(cells, CELLS, strict=True):
        assert cell["result"] == "ok" and cell["directive"] is None and not cell["diagnostics"]
        assert len(cell["tests"]) == TESTS_PER_CELL
        assert {t["result"] for t in cell["tests"]} == {"ok"}
        skips = [t for t in cell["tests"] if t["directive"] == "SKIP"]
        assert len(skips) == SKIPPED[key]
    baseline_skips = {t["reason"] for t in cells[0]["tests"] if t["directive"] == "SKIP"}
    assert baseline_skips == {"kernel has no PTRACE_SECCOMP (0x4213 -> EIO)",
                              "the x7 syscall-stop convention is arm64's"}  # fmt: skip
    names = [t["name"] for t in cells[0]["tests"]]
    assert names[0] == "test_boot_smoke.py::test_runs_on_a_supported_arch"
    assert names[-1] == "seccomp_bpf::O_SUSPEND_SECCOMP.seize"
    # The upstream selftests are a subtest of their own, after the guest tests.
    assert cells[0]["planned"] == 95 and cells[0]["tests"][-1]["suite"] == "seccomp_bpf"
    assert lines[-1] == "ok 4 arm64.patched" and lines[-2] == "  ok 95 seccomp_bpf"


def test_failures_have_diagnostics_and_fail_their_cell(run_dir: Path) -> None:
    name = "test_detach_at_stop_kills[SIGUSR1]"
    failure = "def test_x():\n>       assert status == 9\nE       AssertionError: #9"
    set_test_outcome(run_dir, "x86_64-patched", name, "failed", failure)
    set_test_outcome(run_dir, "x86_64-patched", "global.kcmp", "error", "no result: guest hang")
    fail_stage(run_dir, "x86_64-patched", "test", "test_failed", "2 test(s) departed")
    update_cell(run_dir, "arm64-baseline", status="build_failed", reason="build: make failed",
                tests={})  # fmt: skip
    (run_dir / "arm64-baseline" / "junit.xml").unlink()
    lines = ktap_text(run_dir)
    cells = parse_strictly(lines)
    patched = cells[1]
    failed = [t for t in patched["tests"] if t["result"] == "not ok"]
    assert [(t["name"], t["directive"]) for t in failed] == [
        (f"test_detach_kill.py::{name}", None),
        ("seccomp_bpf::global.kcmp", "ERROR"),
    ]
    assert failed[0]["diagnostics"] == [
        "  # def test_x():", "  # >       assert status == 9", "  # E       AssertionError: #9"
    ]  # fmt: skip
    assert failed[1]["reason"] == "no result: guest hang"
    assert failed[1]["suite_result"] == "not ok"  # its suite's subtest fails with it
    assert patched["result"] == "not ok"
    assert patched["diagnostics"] == ["# x86_64.patched: test_failed: test: 2 test(s) departed"]
    build_failed = cells[2]
    assert build_failed["tests"] == [] and build_failed["result"] == "not ok"
    assert build_failed["diagnostics"] == ["# arm64.baseline: build_failed: build: make failed"]
    # No nested block for the cell that ran no test: its diagnostic follows the last cell.
    after_patched = lines[lines.index("not ok 2 x86_64.patched") + 1 :]
    assert after_patched[:2] == [build_failed["diagnostics"][0], "not ok 3 arm64.baseline"]


def test_an_expected_failure_is_ok_with_xfail(run_dir: Path) -> None:
    set_test_outcome(run_dir, "arm64-patched", "global.kcmp", "skipped")
    junit = run_dir / "arm64-patched" / "junit.xml"
    junit.write_text(junit.read_text().replace(
        '<skipped message="" />',
        '<skipped type="xfail" message="expected failure: known bug #12">kcmp failed</skipped>',
    ))  # fmt: skip
    cells = parse_strictly(ktap_text(run_dir))
    kcmp = next(t for t in cells[3]["tests"] if t["name"] == "seccomp_bpf::global.kcmp")
    assert (kcmp["result"], kcmp["directive"], kcmp["reason"]) == ("ok", "XFAIL", "known bug #12")
    assert kcmp["suite_result"] == "ok" and cells[3]["result"] == "ok"


def test_names_lose_their_hash_and_line_breaks() -> None:
    assert ktap.description("a.py::t[x#1]") == "a.py::t[x%231]"
    assert ktap.description("two\nlines") == "two lines"


def test_cli_report_writes_ktap_for_an_existing_run(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--ktap", str(run_dir)]) == 0
    assert str(run_dir / ktap.KTAP_NAME) in capsys.readouterr().out.splitlines()
    assert not list(run_dir.glob("*.partial"))
    parse_strictly((run_dir / ktap.KTAP_NAME).read_text().splitlines())


# -- the kernel's own KTAP parser ----------------------------------------------------------


def kunit_tool_dirs() -> Iterator[Path]:
    work_dirs = [Path(os.environ["HARNESS_WORK_DIR"])] if "HARNESS_WORK_DIR" in os.environ else []
    for work in [*work_dirs, ROOT / ".work"]:
        yield from sorted(work.glob("sources/*/tools/testing/kunit"))


@pytest.fixture
def kunit_parser() -> Iterator[ModuleType]:
    tool = next((d for d in kunit_tool_dirs() if (d / "kunit_parser.py").is_file()), None)
    if tool is None:
        pytest.skip("no unpacked kernel tree with tools/testing/kunit (set HARNESS_WORK_DIR)")
    sys.path.insert(0, str(tool))
    try:
        import kunit_parser

        yield kunit_parser
    finally:
        sys.path.remove(str(tool))
        for name in ("kunit_parser", "kunit_printer"):
            sys.modules.pop(name, None)


def parse_with_kunit(kunit_parser: ModuleType, lines: list[str]) -> Any:
    import kunit_printer

    kunit_printer.stdout._output = io.StringIO()  # its progress lines, not the test's output
    with contextlib.redirect_stdout(io.StringIO()):
        return kunit_parser.parse_run_tests(lines)


def test_the_kernels_kunit_parser_reads_the_same_counts(
    run_dir: Path, kunit_parser: ModuleType
) -> None:
    set_test_outcome(run_dir, "x86_64-patched", "global.kcmp", "failed", "kcmp: 0 != 1")
    fail_stage(run_dir, "x86_64-patched", "test", "test_failed", "1 test(s) departed")
    parsed = parse_with_kunit(kunit_parser, ktap_text(run_dir))
    status = kunit_parser.TestStatus
    assert parsed.counts.errors == 0  # no parse errors
    assert [sub.name for sub in parsed.subtests] == [name.replace("-", ".") for name in CELLS]
    assert [sub.status for sub in parsed.subtests] == [
        status.SUCCESS, status.FAILURE, status.SUCCESS, status.SUCCESS
    ]  # fmt: skip
    for sub, key in zip(parsed.subtests, CELLS, strict=True):
        # The guest tests, and seccomp_bpf as one subtest of its cases.
        assert len(sub.subtests) == GUEST_TESTS + 1
        assert [t.name for t in sub.subtests[-1:]] == ["seccomp_bpf"]
        assert len(sub.subtests[-1].subtests) == TESTS_PER_CELL - GUEST_TESTS
        assert sub.counts.skipped == SKIPPED[key]
        failed = 1 if key == "x86_64-patched" else 0
        assert sub.counts.failed == failed
        assert sub.counts.passed == TESTS_PER_CELL - SKIPPED[key] - failed
    assert parsed.counts.total() == 4 * TESTS_PER_CELL
