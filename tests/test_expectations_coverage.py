"""Every guest test covered: with `unlisted = "passed"` a test that skips where it
should pass departs, and [[count]] entries catch a test that disappears (or one
that appears unlisted). Counts apply only to a whole-suite run."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import BadInput
from harness.verdict.expectations import load
from harness.verdict.judge import judge
from harness.vm.records import TestResult as Result

HEADER = 'unlisted = "passed"\n'
SKIPS = (
    '[[expect]]\narch = "*"\nvariant = "baseline"\ntest = "t.py::test_new*"\n'
    'outcome = "skipped"\nreason = "needs the series"\n'
)
COUNT = (
    '[[count]]\narch = "*"\nvariant = "*"\nsuite = "guest"\ntests = 3\n'
    'reason = "guest-tests/ holds three tests"\n'
)


def results(*outcomes: tuple[str, str]) -> list[Result]:
    return [Result(nodeid, outcome) for nodeid, outcome in outcomes]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


def test_a_skip_no_entry_allows_departs_when_unlisted_tests_must_pass(tmp_path: Path) -> None:
    known = load(write(tmp_path, HEADER + SKIPS))
    ran = results(("t.py::test_old", "skipped"), ("t.py::test_new_a", "skipped"))
    departures = judge(known, "x86_64", "baseline", ran).departures
    assert [d.describe() for d in departures] == ["t.py::test_old skipped (expected passed)"]
    # Without the key, a skip is still allowed (the default, as before).
    lenient = load(write(tmp_path, SKIPS))
    assert judge(lenient, "x86_64", "baseline", ran).departures == []


def test_a_test_that_disappears_departs(tmp_path: Path) -> None:
    known = load(write(tmp_path, HEADER + SKIPS + COUNT))
    full = results(("t.py::test_old", "passed"), ("t.py::test_new_a", "passed"),
                   ("t.py::test_new_b", "passed"))  # fmt: skip
    assert judge(known, "x86_64", "patched", full, whole_suites=True).departures == []
    gone = full[:2]
    [departure] = judge(known, "x86_64", "patched", gone, whole_suites=True).departures
    assert departure.describe() == "guest suite 2 tests (expected 3 tests)"
    assert departure.count and departure.reason == "guest-tests/ holds three tests"
    # A selection (-k, node ids) is not a whole suite: no count is judged.
    assert judge(known, "x86_64", "patched", gone).departures == []


def test_repetitions_count_once(tmp_path: Path) -> None:
    known = load(write(tmp_path, HEADER + COUNT))
    repeated = results(*((f"t.py::test_r[rep{n}]", "passed") for n in range(5)),
                       ("t.py::test_a", "passed"), ("t.py::test_b", "passed"))  # fmt: skip
    assert judge(known, "x86_64", "patched", repeated, whole_suites=True).departures == []


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('unlisted = "skipped"\n', "unlisted = 'skipped'; use one of"),
        (COUNT.replace("tests = 3", "tests = -1"), "count 1: 'tests' must be a whole number"),
        (COUNT.replace('suite = "guest"', 'suite = "ltp"'), "count 1: suite 'ltp' is unknown"),
        (COUNT.replace("tests = 3\n", ""), "count 1: a count has exactly"),
    ],
)
def test_a_bad_count_or_unlisted_is_bad_input(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(BadInput, match=needle.replace("[", r"\[")):
        load(write(tmp_path, text))
