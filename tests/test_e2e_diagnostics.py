"""The summary a CI log ends with when an e2e cell did not pass (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import error_line, not_passing_cells


def write_cell(run: Path, name: str, status: str, reason: str, results: list[dict]) -> None:
    cell_dir = run / name
    cell_dir.mkdir(parents=True)
    cell = {"status": status, "reason": reason, "accel": "kvm"}
    (cell_dir / "cell.json").write_text(json.dumps(cell))
    (cell_dir / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))


def result(nodeid: str, outcome: str, message: str = "") -> dict:
    return {"type": "result", "nodeid": nodeid, "outcome": outcome, "message": message}


def test_names_each_cell_that_did_not_pass_and_its_failed_tests(tmp_path: Path) -> None:
    run = tmp_path / "e2e"
    write_cell(run, "arm64-baseline", "pass", "", [result("test_a.py::ok", "passed")])
    failed = [
        result(f"test_b.py::t{i}", "failed", f"    x = {i}\n>   f(x)\nE   assert {i}\nE   more")
        for i in range(7)
    ]
    write_cell(run, "x86_64-patched", "fail", "7 guest tests failed", [
        result("test_a.py::ok", "passed"), *failed, result("test_c.py::e", "error", "boom\nline"),
    ])  # fmt: skip
    lines = not_passing_cells(run)
    assert lines == [
        "e2e/x86_64-patched: fail (kvm): 7 guest tests failed",
        *(f"  failed test_b.py::t{i}: assert {i}" for i in range(5)),
        f"  ... and 3 more (see {run / 'x86_64-patched' / 'results.jsonl'})",
    ]


def test_a_cut_last_record_does_not_hide_the_others(tmp_path: Path) -> None:
    run = tmp_path / "e2e"
    write_cell(run, "x86_64-patched", "panic", "kernel panic", [result("t.py::a", "failed", "E x")])
    with (run / "x86_64-patched" / "results.jsonl").open("a") as results:
        results.write('{"type": "result", "nodeid": "t.py::b", "outc')
    assert not_passing_cells(run) == [
        "e2e/x86_64-patched: panic (kvm): kernel panic",
        "  failed t.py::a: x",
    ]


def test_a_cell_without_results_is_named_alone(tmp_path: Path) -> None:
    run = tmp_path / "e2e"
    (run / "x86_64-baseline").mkdir(parents=True)
    (run / "x86_64-baseline" / "cell.json").write_text(
        json.dumps({"status": "build", "reason": "build: make exited 2"})
    )
    assert not_passing_cells(run) == ["e2e/x86_64-baseline: build: build: make exited 2"]
    assert not_passing_cells(tmp_path / "missing") == []


def test_the_error_line_is_the_first_e_line_else_the_first_line() -> None:
    assert error_line(result("t", "failed", "  src\n>  call\nE   ValueError: x\nE   y")) == (
        "ValueError: x"
    )
    assert error_line(result("t", "error", "TEST_HANG: ran past 60 s\nmore")) == (
        "TEST_HANG: ran past 60 s"
    )
    assert error_line({"type": "result"}) == ""
