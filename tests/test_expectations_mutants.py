"""Expectations (harness/verdict/expectations.py), pinned where a mutation check
(docs/mutation-testing.md) found the other host tests blind: the default file,
suites and globs, entry lines, unlisted tests, [[count]] entries and their
departures, and what a judgement says (summary, stale warnings, JSON).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import BadInput
from harness.core.vocabulary import Outcome
from harness.verdict import expectations
from harness.verdict.expectations import NO_EXPECTATIONS, Count, load, load_default
from harness.verdict.judge import (
    Departure,
    ExpectedFailure,
    Judgement,
    StaleEntry,
    judge,
    judge_prefix,  # fmt: skip
)
from harness.vm.records import TestResult as Result


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


def entry(test: str = "*", outcome: str = "passed", reason: str = "because",
          arch: str = "*", variant: str = "*") -> str:  # fmt: skip
    return (
        f'[[expect]]\narch = "{arch}"\nvariant = "{variant}"\ntest = "{test}"\n'
        f'outcome = "{outcome}"\nreason = "{reason}"\n\n'
    )


def count(tests: int, suite: str = "guest", arch: str = "*", variant: str = "*",
          reason: str = "what the suite holds") -> str:  # fmt: skip
    return (
        f'[[count]]\narch = "{arch}"\nvariant = "{variant}"\nsuite = "{suite}"\n'
        f'tests = {tests}\nreason = "{reason}"\n\n'
    )


def results(**outcomes: str) -> list[Result]:
    """Guest results named a.py::<key>."""
    return [Result(f"a.py::{name}", outcome) for name, outcome in outcomes.items()]


# -- the file and its entries ---------------------------------------------------------


def test_the_checkouts_file_is_read_when_there_is_one(tmp_path: Path) -> None:
    path = write(tmp_path, entry(test="a.py::x", outcome="skipped"))
    known = load_default(tmp_path)
    assert (known.path, known.label) == (path, "expectations.toml")
    assert [(e.tests, e.outcome) for e in known.entries] == [(("a.py::x",), "skipped")]


def test_without_a_file_nothing_is_expected(tmp_path: Path) -> None:
    assert load_default(tmp_path) is NO_EXPECTATIONS
    (tmp_path / "expectations.toml").mkdir()  # a directory of that name is no file
    assert load_default(tmp_path) is NO_EXPECTATIONS
    assert (NO_EXPECTATIONS.label, NO_EXPECTATIONS.unlisted) == ("", "passed or skipped")


def test_entries_know_their_header_lines_and_normalise_their_reasons(tmp_path: Path) -> None:
    text = (
        "# known outcomes\n\n"
        '[[expect]]\narch = "x86_64"\nvariant = "baseline"\ntest = ["a.py::x", "a.py::y"]\n'
        'outcome = "failed"\nreason = """racy\n   under   TCG"""\n\n'
        '  [[ expect ]]\narch = "*"\nvariant = "*"\ntest = "a.py::z"\noutcome = "error"\n'
        'reason = "r"\n'
    )
    first, second = load(write(tmp_path, text)).entries
    assert (first.index, first.line, first.tests, first.reason) == (
        1, 3, ("a.py::x", "a.py::y"), "racy under TCG"
    )  # fmt: skip
    assert (second.index, second.line, second.outcome) == (2, 11, "error")
    assert (first.where, second.where) == ("entry 1 (line 3)", "entry 2 (line 11)")


def test_entries_without_their_own_header_have_no_line(tmp_path: Path) -> None:
    # An inline array of tables has no [[expect]] line to point at: entry number only.
    text = 'expect = [{arch = "*", variant = "*", test = "a", outcome = "passed", reason = "r"}]\n'
    [only] = load(write(tmp_path, text)).entries
    assert (only.index, only.line) == (1, 0)
    bad = text.replace('arch = "*"', 'arch = "sparc"')
    with pytest.raises(BadInput) as error:
        load(write(tmp_path, bad))
    assert str(error.value) == (
        f"{tmp_path / 'expectations.toml'}: entry 1: arch 'sparc' is unknown; "
        "use one of x86_64, arm64 or *"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('unlisted = "always"\n',
         "unlisted = 'always'; use one of 'passed or skipped', 'passed'"),
        ("count = 3\n", "'count' must be a list of tables; write each as [[count]]"),
        (count(3).replace('reason = "what the suite holds"\n', 'reason = "r"\nextra = 1\n'),
         "count 1: a count has exactly arch, variant, suite, tests, reason"),
        (count(3).replace("tests = 3", "tests = true"),
         "count 1: 'tests' must be a whole number of tests, 0 or more"),
        (count(3).replace("tests = 3", 'tests = "3"'),
         "count 1: 'tests' must be a whole number of tests, 0 or more"),
        (count(3, reason=" "), "count 1: 'reason' must be a non-empty string"),
        (count(3, suite=""), "count 1: 'suite' must be a non-empty string"),
        (count(3, arch="sparc"), "count 1: arch 'sparc' is unknown"),
        (count(3, variant="nightly"), "count 1: variant 'nightly' is unknown"),
        (count(3, suite="ltp"), "count 1: suite 'ltp' is unknown; use guest, seccomp_bpf, ptrace"),
        (count(3) + count(3, arch="riscv"), "count 2: arch 'riscv' is unknown"),
        (entry(arch=""), "entry 1 (line 1): 'arch' must be a non-empty string"),
        (entry(variant="nightly"),
         "entry 1 (line 1): variant 'nightly' is unknown; use one of baseline, patched or *"),
        (entry(outcome="flaky"),
         "entry 1 (line 1): outcome 'flaky' is unknown; use one of passed, failed, skipped, "
         "error"),
        (entry().replace('test = "*"', 'test = ["a", " "]'),
         "entry 1 (line 1): 'test' must be a glob over node ids, or a list of them"),
        (entry().replace('test = "*"', "test = 3"),
         "entry 1 (line 1): 'test' must be a glob over node ids, or a list of them"),
        (entry().replace('reason = "because"', "reason = 3"),
         "entry 1 (line 1): 'reason' must be a non-empty string"),
        (entry().replace('outcome = "passed"\n', ""),
         "entry 1 (line 1): no 'outcome'; every entry needs arch, variant, test, outcome, "
         "reason"),
        (entry() + "[[expect]]\nwhy = 1\n",
         "entry 2 (line 8): unknown key 'why'; an entry has arch, variant, test, outcome, "
         "reason"),
    ],
)  # fmt: skip
def test_a_bad_entry_is_one_line_naming_the_file_the_entry_and_the_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as error:
        load(path)
    assert str(error.value) == f"{path}: {message}"


def test_a_file_that_cannot_be_read_names_what_it_is_and_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(BadInput) as error:
        load(missing)
    assert str(error.value) == (
        f"{missing}: cannot read the expectations file (No such file or directory); "
        "give an existing file with --expectations"
    )


# -- suites and globs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodeid", "suite"),
    [
        ("test_x.py::test_y", "guest"),
        ("seccomp_bpf::global.kcmp", "seccomp_bpf"),
        ("seccomp_bpf::*", "seccomp_bpf"),
        ("seccomp_bpf_other::x", "guest"),
        ("*", "guest"),
    ],
)
def test_the_suite_of_a_node_id_or_glob(nodeid: str, suite: str) -> None:
    assert expectations.suite_of(nodeid) == suite


def test_globs_have_only_two_wildcards() -> None:
    glob = expectations.glob_pattern
    assert glob("a.py::t*").fullmatch("a.py::t")  # * may match nothing
    assert glob("*::t").fullmatch("dir/a.py::t")
    assert not glob("a.py::t?").fullmatch("a.py::t")  # ? is exactly one character
    assert not glob("a.py::t.x").fullmatch("a.py::t_x")  # a dot is a dot
    assert glob("a.py::t[a+b]").fullmatch("a.py::t[a+b]")  # no regex inside


def test_an_entry_for_the_bare_id_decides_every_repetition(tmp_path: Path) -> None:
    known = load(write(tmp_path, entry(test="a.py::r", outcome="skipped")))
    judged = judge(known, "x86_64", "baseline", results(**{"r[rep0]": "skipped", "r": "skipped",
                                                           "r[rep1]": "failed"}))  # fmt: skip
    assert [(d.test, d.expected, d.entry) for d in judged.departures] == [
        ("a.py::r[rep1]", "skipped", 1)
    ]


def test_only_the_repetition_is_dropped_from_a_node_id() -> None:
    # --repeat's parameter comes first; a parameter of the test's own that looks
    # like one (here the last) is part of the test's id and stays.
    assert expectations.without_repeat("t.py::test_y[rep3-x-rep1]") == "t.py::test_y[x-rep1]"


# -- unlisted tests -------------------------------------------------------------------


def test_by_default_an_unlisted_test_may_skip_but_not_fail(tmp_path: Path) -> None:
    known = load(write(tmp_path, ""))
    judged = judge(known, "x86_64", "patched", results(s="skipped", f="failed", e="error"))
    assert [d.to_json() for d in judged.departures] == [
        {"test": f"a.py::{name}", "cell": "x86_64/patched", "expected": "passed or skipped",
         "actual": name_outcome, "entry": None,
         "reason": "no entry lists it, so it must be passed or skipped"}
        for name, name_outcome in (("f", "failed"), ("e", "error"))
    ]  # fmt: skip


def test_when_unlisted_tests_must_pass_a_skip_departs(tmp_path: Path) -> None:
    known = load(write(tmp_path, 'unlisted = "passed"\n' + entry("a.py::listed", "skipped")))
    assert known.unlisted == "passed"
    judged = judge(known, "arm64", "baseline",
                   results(listed="skipped", s="skipped", p="passed"))  # fmt: skip
    assert [d.to_json() for d in judged.departures] == [{
        "test": "a.py::s", "cell": "arm64/baseline", "expected": "passed", "actual": "skipped",
        "reason": "no entry lists it, so it must be passed", "entry": None,
    }]  # fmt: skip


# -- [[count]] entries --------------------------------------------------------------------


def test_counts_are_read_with_their_fields(tmp_path: Path) -> None:
    text = count(0, arch="arm64", reason="none   here  yet")
    known = load(write(tmp_path, text + count(107, suite="seccomp_bpf", variant="patched")))
    assert known.counts == (
        Count("arm64", "*", "guest", 0, "none here yet"),
        Count("*", "patched", "seccomp_bpf", 107, "what the suite holds"),
    )


def test_a_suite_that_ran_another_number_of_tests_departs(tmp_path: Path) -> None:
    text = count(9, reason="overridden") + count(2) + count(1, suite="seccomp_bpf")
    text += count(5, arch="arm64") + count(5, variant="baseline")  # not this cell's
    known = load(write(tmp_path, text))
    ran = [*results(x="passed", y="skipped", z="failed"), Result("seccomp_bpf::a", "passed")]
    judged = judge(known, "x86_64", "patched", ran, whole_suites=True)
    [departs_3, departs_count] = judged.departures  # a.py::z failed, then the count
    assert departs_3.test == "a.py::z"
    # The last count that applies decides (2, not 9); the selftests ran their 1.
    assert departs_count == Departure(
        "guest suite", "x86_64/patched", "2 tests", "3 tests", "what the suite holds",
        entry=None, count=True,
    )  # fmt: skip
    assert departs_count.describe() == "guest suite 3 tests (expected 2 tests)"


def test_a_suite_the_cell_did_not_run_is_not_counted(tmp_path: Path) -> None:
    # --no-selftests leaves seccomp_bpf out on purpose; one that should have run and
    # reported nothing fails by the verdict's own rule, not by its count.
    known = load(write(tmp_path, count(107, suite="seccomp_bpf")))
    assert (
        judge(known, "x86_64", "patched", results(x="passed"), whole_suites=True).departures == []
    )
    ran = [Result("seccomp_bpf::global.kcmp", "passed")]
    [short] = judge(known, "x86_64", "patched", ran, whole_suites=True).departures
    assert (short.test, short.expected, short.actual) == (
        "seccomp_bpf suite",
        "107 tests",
        "1 tests",
    )


def test_a_prefix_departs_from_a_count_only_where_both_variants_count_so(
    tmp_path: Path,
) -> None:
    # A prefix is judged as a whole suite by default (check-series --boot runs them whole).
    both = load(write(tmp_path, count(2)))
    [short] = judge_prefix(both, "x86_64", results(x="passed")).departures
    assert (short.test, short.count) == ("guest suite", True)
    assert judge_prefix(both, "x86_64", results(x="passed"), whole_suites=False).departures == []
    # The baseline holds one test fewer: a prefix that stands where the baseline does is fine.
    one_less = load(write(tmp_path, count(2) + count(1, variant="baseline")))
    assert judge_prefix(one_less, "x86_64", results(x="passed")).departures == []


# -- what a judgement says ---------------------------------------------------------------


def departure(n: int) -> Departure:
    return Departure(f"a.py::t{n}", "x86_64/patched", "passed", "failed", "r", n)


@pytest.mark.parametrize(
    ("file", "shown", "count", "summary"),
    [
        ("expectations.toml", 3, 3, "3 test(s) departed from expectations.toml: "
         "a.py::t0 failed (expected passed); a.py::t1 failed (expected passed); "
         "a.py::t2 failed (expected passed)"),
        ("expectations.toml", 3, 5, "5 test(s) departed from expectations.toml: "
         "a.py::t0 failed (expected passed); a.py::t1 failed (expected passed); "
         "a.py::t2 failed (expected passed); and 2 more"),
        ("", 1, 2, "2 test(s) failed: a.py::t0 failed (expected passed); and 1 more"),
    ],
)  # fmt: skip
def test_the_summary_names_the_first_departures(
    file: str, shown: int, count: int, summary: str
) -> None:
    judgement = Judgement(file, departures=[departure(n) for n in range(count)])
    assert judgement.summary(shown) == summary


def test_the_default_summary_shows_three() -> None:
    judgement = Judgement("", departures=[departure(n) for n in range(4)])
    assert judgement.summary().endswith("a.py::t2 failed (expected passed); and 1 more")


def test_stale_warnings_group_an_entrys_globs() -> None:
    judgement = Judgement("x.toml", stale=[
        StaleEntry(1, 3, "a.py::gone", "r"), StaleEntry(2, 9, "b.py::*", "s"),
        StaleEntry(1, 3, "c.py::gone", "r"),
    ])  # fmt: skip
    assert judgement.stale_lines() == [
        "x.toml entry 1 (line 3) matched no test: a.py::gone, c.py::gone",
        "x.toml entry 2 (line 9) matched no test: b.py::*",
    ]


def test_a_judgement_as_summary_json_holds_it(tmp_path: Path) -> None:
    text = entry("a.py::bad", "error", "known  bug") + entry("a.py::gone", "skipped", "old")
    judged = judge(load(write(tmp_path, text)), "x86_64", "baseline",
                   results(bad="error", new="failed"))  # fmt: skip
    assert judged.expected_failures == [ExpectedFailure("a.py::bad", Outcome.ERROR, "known bug", 1)]
    assert judged.expected_failure_reasons() == {"a.py::bad": "expected failure: known bug"}
    assert judged.to_json() == {
        "file": "expectations.toml",
        "departures": [{
            "test": "a.py::new", "cell": "x86_64/baseline", "expected": "passed or skipped",
            "actual": "failed", "reason": "no entry lists it, so it must be passed or skipped",
            "entry": None,
        }],
        "expected_failures": [
            {"test": "a.py::bad", "outcome": "error", "reason": "known bug", "entry": 1},
        ],
        "stale": [{"entry": 2, "line": 8, "test": "a.py::gone", "reason": "old"}],
    }  # fmt: skip


def test_an_entry_for_another_cell_is_never_stale(tmp_path: Path) -> None:
    text = entry("a.py::gone", "skipped", arch="arm64")
    text += entry("a.py::gone", "skipped", variant="patched")
    judged = judge(load(write(tmp_path, text)), "x86_64", "baseline", results(x="passed"))
    assert judged.stale == []
    # ... and does not keep the entries after it from being found stale.
    text += entry("a.py::also_gone", "skipped", reason="later")
    judged = judge(load(write(tmp_path, text)), "x86_64", "baseline", results(x="passed"))
    assert judged.stale == [StaleEntry(3, 15, "a.py::also_gone", "later")]


def test_a_prefix_has_no_stale_entries(tmp_path: Path) -> None:
    known = load(write(tmp_path, entry("a.py::gone", "skipped")))
    assert judge(known, "x86_64", "patched", results(x="passed")).stale != []
    assert judge_prefix(known, "x86_64", results(x="passed")).stale == []
