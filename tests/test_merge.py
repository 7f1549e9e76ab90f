"""`harness report --merge`: cells run apart (a CI job each) as one run (no QEMU).

tests/data/run-sample is one real run of the four cells. Split into four one-cell run
directories, as four CI jobs write them, and merged back, it must give the original
run's summary, differences, verdict, report and KTAP; a failing cell in one of the
parts must decide the merged run as it would have decided the one run.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from run_samples import CELLS, SAMPLE_RUN, set_test_outcome, update_cell, update_summary

from harness.cli import settings
from harness.cli.main import main
from harness.core.status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Status
from harness.results import compare
from harness.results.ktap import KTAP_NAME, ktap_lines
from harness.results.merge import merge_runs
from harness.results.model import Cell
from harness.results.model import TestOutcome as Result  # not collected as a test class
from harness.results.report import HTML_NAME, MARKDOWN_NAME, build_report
from harness.results.rundir import load_run

ROOT = Path(__file__).resolve().parent.parent
# Written by a merge, never by the run itself (a run of this sample's age had no
# expectations keys; a merge writes what a run writes today).
MERGE_ONLY_KEYS = {"merged_from", "expectations", "departures", "stale_expectations"}
# A cell's JSON gains them when merged: every test's outcome (format 2), read from the
# sample's junit.xml.
FORMAT_2_KEYS = {"format", "results"}


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


def split_run(run_dir: Path, destination: Path) -> dict[str, Path]:
    """One run directory per cell, as a run of that cell alone writes it: its summary.json
    holds that cell only, the cell's status and no differences (it has one variant)."""
    summary = read_json(run_dir / "summary.json")
    parts = {}
    for cell in summary["cells"]:
        name = f"{cell['arch']}-{cell['variant']}"
        part = destination / f"run-{name}"
        shutil.copytree(run_dir / name, part / name)
        alone = {
            **summary, "run_id": f"run-{name}", "status": cell["status"],
            "exit_code": cell["exit_code"], "differences": {}, "arches": [cell["arch"]],
            "variants": [cell["variant"]], "cells": [cell],
        }  # fmt: skip
        (part / "summary.json").write_text(json.dumps(alone, indent=2))
        parts[name] = part
    return parts


@pytest.fixture
def parts(tmp_path: Path) -> dict[str, Path]:
    return split_run(SAMPLE_RUN, tmp_path / "jobs")


def merge(parts: list[Path], destination: Path) -> int:
    return main(["report", "--merge", *map(str, parts), "--results", str(destination)])


def test_the_split_run_merged_is_the_original_run(parts: dict[str, Path], tmp_path: Path) -> None:
    merged = tmp_path / "merged"
    # In the order a CI download may give them, not the matrix's.
    assert merge([parts[name] for name in sorted(CELLS)], merged) == 0
    original, result = read_json(SAMPLE_RUN / "summary.json"), read_json(merged / "summary.json")
    # The sample was recorded before the toolchain axis: its cells were gcc's.
    assert set(result) - set(original) == MERGE_ONLY_KEYS | {"toolchains"}
    assert result["toolchains"] == ["gcc"]
    assert {cell["toolchain"] for cell in result["cells"]} == {"gcc"}
    for key in set(original) - {"run_id", "cells"}:
        assert result[key] == original[key], key
    assert result["differences"]["x86_64"] and result["differences"]["arm64"]
    assert (result["status"], result["exit_code"]) == ("pass", 0)
    assert (result["departures"], result["stale_expectations"]) == ([], [])
    assert result["run_id"] == "merged"
    assert [(c["arch"], c["variant"]) for c in result["cells"]] == [
        tuple(name.split("-")) for name in CELLS
    ]
    tests = {cell.directory_name: cell.results for cell in load_run(SAMPLE_RUN).cells}
    for before, after in zip(original["cells"], result["cells"], strict=True):
        # Read back as a run writes it now: the old "toolchain" fact (gcc's --version)
        # is the "compiler" fact, and "toolchain" names the cell's toolchain.
        upgraded = {**before, "toolchain": "gcc", "compiler": before["toolchain"]}
        assert {key: value for key, value in after.items() if key not in FORMAT_2_KEYS} == upgraded
        name = f"{after['arch']}-{after['variant']}"
        assert after["results"] == [test.to_json() for test in tests[name]]
        # Each cell.json as a run writes it: the summary's entry for the cell.
        assert read_json(merged / name / "cell.json") == after
    assert [entry["cells"] for entry in result["merged_from"]] == [
        [name.replace("-", "/")] for name in sorted(CELLS)
    ]


def test_harness_compare_finds_nothing_between_the_original_and_the_merge(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    assert merge(list(parts.values()), tmp_path / "merged") == 0
    comparison = compare.compare_runs(SAMPLE_RUN, tmp_path / "merged")
    assert (comparison.regressions, comparison.fixes, comparison.others) == ([], [], [])


def test_the_merged_report_and_ktap_are_the_original_runs(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    assert merge(list(parts.values()), tmp_path / "merged") == 0
    original = build_report(load_run(SAMPLE_RUN))
    merged = build_report(load_run(tmp_path / "merged"))
    assert merged.test_count == original.test_count and merged.differing_rows > 0
    # Everything but the run's id, links to the cells' files included (they are copied).
    assert dataclasses.replace(merged, run_id=original.run_id) == original
    for name in (HTML_NAME, MARKDOWN_NAME):
        assert (tmp_path / "merged" / name).is_file()
    ktap = (tmp_path / "merged" / KTAP_NAME).read_text()
    assert ktap == "\n".join(ktap_lines(load_run(SAMPLE_RUN))) + "\n"


def test_the_merged_run_does_not_depend_on_the_order_of_its_parts(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    forward = merge_runs(list(parts.values()), tmp_path / "forward").summary.to_json()
    backward = merge_runs(list(parts.values())[::-1], tmp_path / "backward").summary.to_json()
    for summary in (forward, backward):
        del summary["run_id"], summary["merged_from"]
    assert forward == backward


DEPARTING = "test_detach_kill.py::test_detach_at_stop_kills[nosig]"


def test_a_departure_in_one_part_decides_the_merged_run(
    parts: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    departure = {
        "test": DEPARTING, "cell": "arm64/patched", "expected": "passed", "actual": "failed",
        "reason": "the series adds PTRACE_SECCOMP", "entry": 2,
    }  # fmt: skip
    stale = {"entry": 3, "line": 48, "test": "gone.py::*", "reason": "removed"}
    judged = {"file": "expectations.toml", "departures": [], "expected_failures": [],
              "stale": []}  # fmt: skip
    set_test_outcome(parts["arm64-patched"], "arm64-patched", "test_detach_at_stop_kills[nosig]",
                     "failed", "AssertionError: tracee survived")  # fmt: skip
    update_cell(parts["arm64-patched"], "arm64-patched", status="test_failed", exit_code=1,
                reason=f"1 test(s) departed from expectations.toml: {DEPARTING} failed",
                expectations={**judged, "departures": [departure]})  # fmt: skip
    update_summary(parts["arm64-patched"], status="test_failed", exit_code=1)
    update_cell(parts["x86_64-baseline"], "x86_64-baseline",
                expectations={**judged, "stale": [stale]})  # fmt: skip
    capsys.readouterr()
    assert merge(list(parts.values()), tmp_path / "merged") == Status.TEST_FAILED.exit_code
    summary = read_json(tmp_path / "merged" / "summary.json")
    assert (summary["status"], summary["exit_code"]) == ("test_failed", 1)
    assert summary["departures"] == [departure]
    assert summary["stale_expectations"] == [{**stale, "cell": "x86_64/baseline"}]
    # The differences come from the cells' outcomes: the patched side is now a failure.
    [difference] = [d for d in summary["differences"]["arm64"] if d["test"] == DEPARTING]
    assert difference == {"test": DEPARTING, "baseline": "skipped", "patched": "failed"}
    html = (tmp_path / "merged" / HTML_NAME).read_text()
    assert f'data-test="{DEPARTING}"' in html and 'data-status="test_failed"' in html
    assert "not ok 4 arm64.patched" in (tmp_path / "merged" / KTAP_NAME).read_text()
    output = capsys.readouterr().out
    assert "arm64/patched: test_failed -- 1 test(s) departed" in output
    assert output.rstrip().endswith(
        "1 departure(s), 1 stale expectation(s); run test_failed (exit 1)"
    )


def test_the_worst_cell_decides_the_exit_code_as_in_one_run(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    update_cell(parts["arm64-patched"], "arm64-patched", status="test_failed", exit_code=1)
    update_cell(parts["x86_64-baseline"], "x86_64-baseline", status="kernel_panic", exit_code=7)
    update_cell(parts["x86_64-patched"], "x86_64-patched", status="guest_hang", exit_code=9)
    assert merge(list(parts.values()), tmp_path / "merged") == Status.KERNEL_PANIC.exit_code
    assert read_json(tmp_path / "merged" / "summary.json")["status"] == "kernel_panic"


def test_an_interrupted_part_makes_an_interrupted_run(
    parts: dict[str, Path], tmp_path: Path
) -> None:
    update_cell(parts["arm64-patched"], "arm64-patched", status="interrupted", exit_code=130)
    update_summary(parts["arm64-patched"], status="interrupted", exit_code=130)
    assert merge(list(parts.values()), tmp_path / "merged") == EXIT_INTERRUPTED
    summary = read_json(tmp_path / "merged" / "summary.json")
    assert (summary["status"], summary["exit_code"]) == ("interrupted", EXIT_INTERRUPTED)
    assert [c["status"] for c in summary["cells"]] == ["pass", "pass", "pass", "interrupted"]


def test_without_results_the_merge_gets_a_run_directory_of_its_own(
    parts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "results_root", lambda: tmp_path / "results")
    assert main(["report", "--merge", *map(str, parts.values())]) == 0
    [run_dir] = (tmp_path / "results").iterdir()
    assert read_json(run_dir / "summary.json")["run_id"] == run_dir.name
    assert {path.name for path in run_dir.iterdir()} >= {*CELLS, "summary.json", HTML_NAME}


def test_a_cell_read_back_from_its_json_writes_the_same_json() -> None:
    cell = Cell.from_json(read_json(SAMPLE_RUN / "x86_64-patched" / "cell.json"))
    cell.results.append(Result("test_a.py::test_b", "guest", "failed", "boom", "expected"))
    written = cell.to_json()
    again = Cell.from_json(json.loads(json.dumps(written)))
    assert again.to_json() == written
    assert again.outcomes["test_a.py::test_b"] == "failed"
    assert again.status is Status.PASS and not again.interrupted
    with pytest.raises(ValueError, match="unknown status 'exploded'"):
        Cell.from_json({**written, "status": "exploded"})


# -- refused through the real command: one line, exit 2, nothing written -------------------


def _other_series(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    summary = read_json(parts["x86_64-patched"] / "summary.json")
    update_summary(parts["x86_64-patched"], series={**summary["series"], "hash": "0" * 64})
    return [str(parts["x86_64-baseline"]), str(parts["x86_64-patched"])]


def _other_source(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    summary = read_json(parts["arm64-baseline"] / "summary.json")
    source = {**summary["source"], "kernel_version": "6.12.118"}
    update_summary(parts["arm64-baseline"], source=source)
    return [str(parts["x86_64-baseline"]), str(parts["arm64-baseline"])]


def _other_harness(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    update_summary(parts["arm64-patched"], harness_version="0.0.9")
    return [str(parts["x86_64-baseline"]), str(parts["arm64-patched"])]


def _one_cell_twice(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    again = shutil.copytree(parts["arm64-patched"], tmp_path / "rerun")
    return [str(parts["arm64-patched"]), str(parts["x86_64-patched"]), str(again)]


def _one_run_twice(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    return [str(parts["arm64-patched"]), str(parts["arm64-patched"])]


def _not_a_run(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    (tmp_path / "empty").mkdir()
    return [str(parts["arm64-patched"]), str(tmp_path / "empty")]


def _no_summary(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    (parts["x86_64-patched"] / "summary.json").unlink()  # cell.json alone: a report, not a merge
    return [str(parts["x86_64-baseline"]), str(parts["x86_64-patched"])]


def _unknown_status(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    update_cell(parts["x86_64-patched"], "x86_64-patched", status="melted")
    return [str(parts["x86_64-baseline"]), str(parts["x86_64-patched"])]


def _unknown_arch(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    update_cell(parts["x86_64-patched"], "x86_64-patched", arch="riscv64")
    return [str(parts["x86_64-baseline"]), str(parts["x86_64-patched"])]


def _results_not_empty(parts: dict[str, Path], tmp_path: Path) -> list[str]:
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "notes.txt").write_text("mine\n")
    return [str(parts["x86_64-baseline"]), str(parts["x86_64-patched"])]


@pytest.mark.parametrize(
    ("make_arguments", "named"),
    [
        (_other_series, "differ in series hash (000000000000 vs 7c31b9646e0e)"),
        (_other_source, "differ in source (debian-package 6.12.118 (6.12.117-1~deb12u1) vs "
                        "debian-package 6.12.117 (6.12.117-1~deb12u1))"),
        (_other_harness, "differ in harness version (0.0.9 vs 0.1.0)"),
        (_one_cell_twice, "cell arm64/patched is in both"),
        (_one_run_twice, "is given twice"),
        (_not_a_run, "not a run directory"),
        (_no_summary, "has no summary.json listing its cells"),
        (_unknown_status, "cell x86_64/patched: unknown status 'melted'"),
        (_unknown_arch, "cell riscv64/patched: unknown arch 'riscv64'"),
        (_results_not_empty, "not empty"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)  # fmt: skip
def test_refused_with_one_line_and_nothing_written(
    parts: dict[str, Path], tmp_path: Path, make_arguments: Any, named: str
) -> None:
    arguments = make_arguments(parts, tmp_path)
    before = sorted(path for path in tmp_path.rglob("*"))
    completed = subprocess.run(
        [sys.executable, "-m", "harness", "report", "--merge", *arguments,
         "--results", str(tmp_path / "merged")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == EXIT_BAD_INPUT, completed.stderr
    [line] = completed.stderr.splitlines()
    assert line.startswith("harness: error: ") and named in line, line
    assert completed.stdout == ""
    assert sorted(path for path in tmp_path.rglob("*")) == before


def test_several_runs_without_merge_are_refused(parts: dict[str, Path]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "harness", "report", *map(str, parts.values())],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == EXIT_BAD_INPUT
    [line] = completed.stderr.splitlines()
    assert "several RUN_DIRs and --results go with --merge" in line
    assert not any((part / HTML_NAME).exists() for part in parts.values())
