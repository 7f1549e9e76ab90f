from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.core.arches import ARCHES
from harness.core.vocabulary import Variant
from harness.results.junit import Suite, write_junit
from harness.vm.records import parse_records, read_records


def test_recorded_guest_run_counts(data_dir: Path) -> None:
    run = read_records(data_dir / "results-x86_64-one-failure.jsonl")
    assert run.finished and run.exit_status == 1
    assert run.counts() == {"passed": 51, "failed": 1, "error": 0, "skipped": 42, "total": 94}
    assert run.session["machine"] == "x86_64"
    failed = [r for r in run.results if r.outcome == "failed"]
    assert failed[0].nodeid == "test_boot_smoke.py::test_two_cpus_online_for_races"
    assert "AssertionError" in failed[0].message


def test_torn_line_and_unfinished_test_are_kept_apart() -> None:
    text = (
        '{"type": "start", "nodeid": "t.py::a"}\n'
        '{"type": "result", "nodeid": "t.py::a", "outcome": "passed", "duration": 0.5}\n'
        '{"type": "start", "nodeid": "t.py::b"}\n'
        '{"type": "resu'
    )
    run = parse_records(text)
    assert [r.nodeid for r in run.results] == ["t.py::a"]
    assert run.running == "t.py::b"
    assert run.garbage_lines == 1
    assert not run.finished


def test_junit_has_properties_and_outcomes(tmp_path: Path, data_dir: Path) -> None:
    run = read_records(data_dir / "results-x86_64-one-failure.jsonl")
    path = tmp_path / "junit.xml"
    properties = {"arch": "x86_64", "variant": "baseline"}
    write_junit(path, [Suite("x86_64.baseline", run.results, properties)])
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("94", "1", "42")
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties == {"arch": "x86_64", "variant": "baseline"}
    failure = next(case for case in suite.iter("testcase") if case.find("failure") is not None)
    assert failure.get("name") == "test_two_cpus_online_for_races"
    assert failure.get("classname") == "x86_64.baseline.test_boot_smoke"


def test_differences_list_only_tests_whose_outcome_changed() -> None:
    from harness.results.model import Cell
    from harness.run.summary import outcome_differences

    baseline = Cell(
        ARCHES["x86_64"], Variant.BASELINE, outcomes={"a": "passed", "b": "skipped", "c": "passed"}
    )
    patched = Cell(
        ARCHES["x86_64"], Variant.PATCHED, outcomes={"a": "passed", "b": "passed", "d": "failed"}
    )
    lonely = Cell(ARCHES["arm64"], Variant.BASELINE, outcomes={"a": "passed"})
    assert outcome_differences([baseline, patched, lonely]) == {
        "x86_64": [
            {"test": "b", "baseline": "skipped", "patched": "passed"},
            {"test": "c", "baseline": "passed", "patched": "not run"},
            {"test": "d", "baseline": "not run", "patched": "failed"},
        ]
    }


def test_guest_time_of_a_finished_session() -> None:
    run = parse_records(
        '{"type": "session", "time": 100.0}\n{"type": "end", "exitstatus": 0, "time": 104.5}\n'
    )
    assert run.finished and run.seconds == 4.5


def test_junit_with_control_characters_in_test_output_stays_valid_xml(tmp_path: Path) -> None:
    from harness.results.rundir import read_junit
    from harness.vm.records import TestResult

    dirty = "AssertionError: \x1b[31mred\x1b[0m\x00 nul\x07\x0bbell\ud800 and \ufffe; tab\tok"
    results = [
        TestResult("test_tty.py::test_colour", "failed", 0.1, dirty),
        TestResult("test_tty.py::test_error", "error", 0.1, "\x1b[1mboom\x1b[0m"),
        TestResult("test_tty.py::test_skip\x1b", "skipped", 0.0, "skipped: \x00"),
        TestResult("test_tty.py::test_xfail", "failed", 0.0, "\x01known\x02"),
    ]
    path = tmp_path / "junit.xml"
    write_junit(path, [Suite("x86_64.patched", results, {"cmdline": "console=\x1b"},
                             {"test_tty.py::test_xfail": "flaky \x1b"})])  # fmt: skip
    root = ET.parse(path).getroot()  # no ParseError: every character is one XML 1.0 allows
    failure = root.find(".//failure")
    assert failure is not None and failure.text is not None
    assert failure.text == (
        "AssertionError: \\x1b[31mred\\x1b[0m\\x00 nul\\x07\\x0bbell\\ud800 and \\ufffe; tab\tok"
    )
    assert failure.get("message") == "bell\\ud800 and \\ufffe; tab\tok"  # \x0b ends a line too
    tests = {t.nodeid: t for t in read_junit(path, "x86_64.patched")}
    assert tests["test_tty.py::test_skip\\x1b"].outcome == "skipped"
    assert tests["test_tty.py::test_error"].message == "\\x1b[1mboom\\x1b[0m"
    assert tests["test_tty.py::test_xfail"].outcome == "failed"
    assert tests["test_tty.py::test_xfail"].expected == "flaky \\x1b"
