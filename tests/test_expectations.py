"""Known outcomes (expectations.toml) judged against recorded guest runs and selftest TAP."""

from __future__ import annotations

import dataclasses
import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ROOT, one_cell_matrix

from harness.cli.main import main
from harness.core.arches import ARCHES
from harness.core.errors import BadInput
from harness.core.kselftests import COLLECTIONS
from harness.core.status import EXIT_BAD_INPUT, Status
from harness.core.vocabulary import Variant
from harness.kernel.selftest_tap import parse_tap, results_of
from harness.results.model import Cell
from harness.results.rundir import read_junit
from harness.run.matrix import Matrix
from harness.run.summary import expectation_facts
from harness.verdict import expectations
from harness.verdict.expectations import UNLISTED, Expectations, load
from harness.verdict.judge import judge, judge_prefix
from harness.vm import records
from harness.vm.boot import BootEnd, BootOutcome
from harness.vm.records import read_records

CHECKED_IN = ROOT / "expectations.toml"


def checked_in_for_old_records() -> Expectations:
    """The checked-in entries without its counts and its `unlisted = "passed"`: the
    recorded one-failure run predates today's suite (94 tests, one of them skipped then)."""
    return dataclasses.replace(load(CHECKED_IN), counts=(), unlisted=UNLISTED)


CPUS_TEST = "test_boot_smoke.py::test_two_cpus_online_for_races"
X7_TEST = "test_ptrace_seccomp.py::test_arm64_x7_at_entry_stop"
X7_BACK_TEST = "test_ptrace_seccomp.py::test_arm64_x7_is_the_tracees_own_after_the_stop"
SELFTEST_FAILING = "seccomp_bpf::global.user_notification_addfd_send_interrupted"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


def entry(arch: str = "*", variant: str = "*", test: str = "*", outcome: str = "passed",
          reason: str = "because") -> str:  # fmt: skip
    return (
        f'[[expect]]\narch = "{arch}"\nvariant = "{variant}"\ntest = "{test}"\n'
        f'outcome = "{outcome}"\nreason = "{reason}"\n\n'
    )


def results(outcomes: dict[str, str]) -> list[records.TestResult]:
    return [records.TestResult(nodeid, outcome) for nodeid, outcome in outcomes.items()]


# -- the checked-in file against real runs ------------------------------------------


def test_checked_in_file_matches_a_real_baseline_run(data_dir: Path) -> None:
    known = load(CHECKED_IN)
    guest = read_records(data_dir / "results-x86_64-baseline.jsonl")
    # 66 PTRACE_SECCOMP tests and the two arm64-only x7 tests
    assert guest.counts()["skipped"] == 68
    judged = judge(known, "x86_64", "baseline", guest.results)
    assert judged.departures == [] and judged.expected_failures == []
    assert judged.stale == []


def test_checked_in_file_matches_a_real_patched_run(data_dir: Path) -> None:
    guest = read_records(data_dir / "results-x86_64-patched.jsonl")
    outputs = parse_tap((data_dir / "seccomp_bpf-x86_64-patched.tap").read_text())
    upstream = results_of(outputs)
    # the two x7 tests (arm64 only)
    assert guest.counts()["skipped"] == 2 and outputs[0].planned == len(upstream) == 107
    judged = judge(load(CHECKED_IN), "x86_64", "patched", [*guest.results, *upstream])
    assert judged.departures == [] and judged.expected_failures == []
    assert judged.stale == []


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
@pytest.mark.parametrize("variant", ["baseline", "patched"])
def test_checked_in_file_matches_the_recorded_ptrace_collection(
    data_dir: Path, arch: str, variant: str
) -> None:
    """The ptrace kselftests as a real patched cell of each arch ran them (the baseline
    cells' TAP differed only in the tree's path in an assertion's message): every case
    counted and decided, the known upstream failures expected, nothing else failing."""
    outputs = parse_tap((data_dir / f"ptrace-{arch}-patched.tap").read_text())
    upstream = results_of(outputs)
    judged = judge(load(CHECKED_IN), arch, variant, upstream, whole_suites=True)
    assert judged.departures == [] and judged.stale == []
    # vmaccess.attach is left out by the collection's table (-T attach): not run at all.
    assert "ptrace::vmaccess.global.attach" not in {r.nodeid for r in upstream}
    failing = {"ptrace::get_set_sud.global.get_set_sud"} if arch == "arm64" else set()
    assert {f.test for f in judged.expected_failures} == failing
    assert {r.nodeid for r in upstream if r.outcome == "passed"} | failing == {
        "ptrace::get_set_sud.global.get_set_sud",
        "ptrace::get_syscall_info.global.get_syscall_info",
        "ptrace::peeksiginfo",
        "ptrace::vmaccess.global.vmaccess",
    }


def test_checked_in_file_catches_a_patched_kernel_that_skips_its_tests(data_dir: Path) -> None:
    """The same records as a patched cell: the series' tests skipped is a departure each."""
    guest = read_records(data_dir / "results-x86_64-baseline.jsonl")
    judged = judge(load(CHECKED_IN), "x86_64", "patched", guest.results)
    assert len(judged.departures) == 66  # every PTRACE_SECCOMP test but the arm64-only ones
    assert {d.expected for d in judged.departures} == {"passed"}
    assert {d.actual for d in judged.departures} == {"skipped"}
    assert X7_TEST not in {d.test for d in judged.departures}
    assert X7_BACK_TEST not in {d.test for d in judged.departures}


def test_checked_in_file_on_arm64_patched_wants_the_x7_test_to_pass() -> None:
    judged = judge(load(CHECKED_IN), "arm64", "patched", results({X7_TEST: "skipped"}))
    assert [(d.test, d.expected, d.actual) for d in judged.departures] == [
        (X7_TEST, "passed", "skipped")
    ]


def test_checked_in_file_holds_for_repeated_race_tests() -> None:
    """--repeat gives race tests [repN] ids: the patched cell still wants each to pass."""
    detach = "test_detach_kill.py::test_detach_thread_at_stop_kills_whole_process"
    earlier = "test_detach_kill.py::test_detach_from_earlier_stop_only_disarms"
    outcomes = {f"{detach}[rep0]": "passed", f"{detach}[rep1]": "skipped",
                f"{earlier}[rep0]": "skipped"}  # fmt: skip
    judged = judge(load(CHECKED_IN), "x86_64", "patched", results(outcomes))
    assert [(d.test, d.expected) for d in judged.departures] == [
        (f"{detach}[rep1]", "passed"), (f"{earlier}[rep0]", "passed"),
    ]  # fmt: skip
    skipped = results(dict.fromkeys(outcomes, "skipped"))
    assert judge(load(CHECKED_IN), "x86_64", "baseline", skipped).departures == []


@pytest.mark.parametrize(
    ("nodeid", "bare"),
    [
        ("t.py::test_y[rep2]", "t.py::test_y"),
        ("t.py::test_y[rep2-SIGUSR1]", "t.py::test_y[SIGUSR1]"),
        ("t.py::test_y[rep10-no-exitkill]", "t.py::test_y[no-exitkill]"),
        ("t.py::test_y[SIGUSR1-rep2]", "t.py::test_y[SIGUSR1]"),
        ("t.py::test_y[representative]", "t.py::test_y[representative]"),
        ("t.py::test_y[x-rep1-y]", "t.py::test_y[x-rep1-y]"),
        ("t.py::test_y", "t.py::test_y"),
    ],
)
def test_without_repeat_drops_only_the_repeat_parameter(nodeid: str, bare: str) -> None:
    assert expectations.without_repeat(nodeid) == bare


def test_entries_naming_exact_ids_decide_their_repetitions(tmp_path: Path) -> None:
    """--repeat 2 ids as guest-tests/conftest.py makes them ([repN] first):
    entries that name the tests exactly, without a trailing *, still decide."""
    plain = "d.py::test_detach_from_earlier_stop_only_disarms"
    param = "d.py::test_tracer_death_at_stop_kills"
    path = write(tmp_path, entry(test=plain, outcome="skipped", reason="none")
                 + entry(test=f"{param}[exit]", outcome="skipped", reason="none"))  # fmt: skip
    outcomes = {f"{plain}[rep0]": "skipped", f"{plain}[rep1]": "skipped",
                f"{param}[rep0-exit]": "skipped", f"{param}[rep1-exit]": "passed",
                f"{param}[rep0-killed]": "passed"}  # fmt: skip
    judged = judge(load(path), "x86_64", "baseline", results(outcomes))
    assert [(d.test, d.expected, d.actual, d.entry) for d in judged.departures] == [
        (f"{param}[rep1-exit]", "skipped", "passed", 2)
    ]
    assert judged.stale == []


# -- the semantics ---------------------------------------------------------------


def test_unlisted_tests_must_pass_or_skip(tmp_path: Path) -> None:
    outcomes = {"a::x": "passed", "a::y": "skipped", "a::z": "failed", "a::w": "error"}
    judged = judge(load(write(tmp_path, "")), "x86_64", "baseline", results(outcomes))
    assert [(d.test, d.expected, d.actual) for d in judged.departures] == [
        ("a::z", "passed or skipped", "failed"),
        ("a::w", "passed or skipped", "error"),
    ]
    assert judged.summary() == (
        "2 test(s) departed from expectations.toml: a::z failed (expected passed or skipped); "
        "a::w error (expected passed or skipped)"
    )


def test_expected_failure_is_not_a_departure_but_an_unexpected_pass_is(tmp_path: Path) -> None:
    path = write(tmp_path, entry(test="a::broken", outcome="failed", reason="known bug 42")
                 + entry(test="a::fixed", outcome="failed", reason="was broken"))  # fmt: skip
    judged = judge(
        load(path), "arm64", "patched", results({"a::broken": "failed", "a::fixed": "passed"})
    )
    assert [(f.test, f.reason) for f in judged.expected_failures] == [("a::broken", "known bug 42")]
    assert judged.expected_failure_reasons() == {"a::broken": "expected failure: known bug 42"}
    assert [(d.test, d.expected, d.actual, d.reason, d.entry) for d in judged.departures] == [
        ("a::fixed", "failed", "passed", "was broken", 2)
    ]


def test_the_last_matching_entry_decides_and_arch_variant_select(tmp_path: Path) -> None:
    path = write(tmp_path, entry(test="t.py::*", outcome="passed")
                 + entry(arch="arm64", test="t.py::only_x86", outcome="skipped"))  # fmt: skip
    known = load(path)
    arm64 = judge(
        known, "arm64", "baseline", results({"t.py::a": "passed", "t.py::only_x86": "skipped"})
    )
    assert arm64.departures == []
    x86 = judge(
        known, "x86_64", "baseline", results({"t.py::a": "passed", "t.py::only_x86": "skipped"})
    )
    assert [(d.test, d.expected) for d in x86.departures] == [("t.py::only_x86", "passed")]


def test_brackets_in_globs_are_literal() -> None:
    pattern = expectations.glob_pattern("test_d.py::test_kill[*]")
    assert pattern.fullmatch("test_d.py::test_kill[SIGUSR1]")
    assert not pattern.fullmatch("test_d.py::test_killer")
    assert expectations.glob_pattern("a::t?st").fullmatch("a::test")
    assert not expectations.glob_pattern("a::test").fullmatch("a::test_more")


def test_stale_entries_are_warnings_only_for_suites_that_ran(tmp_path: Path) -> None:
    path = write(tmp_path, entry(test="gone.py::*", outcome="skipped", reason="old")
                 + entry(test="seccomp_bpf::global.x", outcome="failed")
                 + entry(variant="patched", test="other.py::*"))  # fmt: skip
    judged = judge(load(path), "x86_64", "baseline", results({"a.py::t": "passed"}))
    assert judged.departures == []
    assert [(s.entry, s.line, s.test) for s in judged.stale] == [(1, 1, "gone.py::*")]
    assert judged.stale_lines() == [
        "expectations.toml entry 1 (line 1) matched no test: gone.py::*"
    ]
    both_suites = results({"a.py::t": "passed", "seccomp_bpf::global.y": "passed"})
    with_selftests = judge(load(path), "x86_64", "baseline", both_suites)
    assert [s.test for s in with_selftests.stale] == ["gone.py::*", "seccomp_bpf::global.x"]


def test_entries_cover_the_upstream_selftests(tmp_path: Path, data_dir: Path) -> None:
    upstream = results_of(parse_tap((data_dir / "seccomp_bpf-one-failure.tap").read_text()))
    assert judge(load(write(tmp_path, "")), "x86_64", "patched", upstream).departures
    path = write(tmp_path, entry(test=SELFTEST_FAILING, outcome="failed", reason="racy on TCG"))
    judged = judge(load(path), "x86_64", "patched", upstream)
    assert judged.departures == []
    assert [f.test for f in judged.expected_failures] == [SELFTEST_FAILING]


# -- malformed files ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[expect]]\narch = "x86_64"\nvariant = \n', "not valid TOML (Invalid value (at line 3"),
        ("[expected]\n", "unknown key 'expected'; the file holds unlisted, [[expect]] and "
         "[[count]] entries"),
        ("expect = 3\n", "'expect' must be a list of tables"),
        (entry() + entry(arch="sparc"),
         "entry 2 (line 8): arch 'sparc' is unknown; use one of x86_64, arm64 or *"),
        (entry(variant="nightly"), "entry 1 (line 1): variant 'nightly' is unknown"),
        (entry(outcome="xfail"),
         "entry 1 (line 1): outcome 'xfail' is unknown; use one of passed, failed, skipped, error"),
        (entry(reason=" "), "entry 1 (line 1): 'reason' must be a non-empty string"),
        ('[[expect]]\narch = "*"\nvariant = "*"\ntest = "*"\noutcome = "passed"\n',
         "entry 1 (line 1): no 'reason'; every entry needs arch, variant, test, outcome, reason"),
        (entry().replace("reason", "why"), "entry 1 (line 1): unknown key 'why'"),
        (entry().replace('test = "*"', "test = []"),
         "entry 1 (line 1): 'test' must be a glob over node ids, or a list of them"),
    ],
)  # fmt: skip
def test_malformed_file_is_bad_input_naming_file_and_entry(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as error:
        load(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


@pytest.fixture
def isolated(tmp_path: Path) -> list[str]:
    return ["--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results")]


def test_cli_refuses_a_bad_or_missing_expectations_file_before_any_work(
    tmp_path: Path, isolated: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.toml"
    assert main(["test", "--arch", "x86_64", "--expectations", str(missing), *isolated]) == 2
    err = capsys.readouterr().err
    assert f"{missing}: cannot read the expectations file" in err and len(err.splitlines()) == 1
    bad = write(tmp_path, entry(outcome="flaky"))
    code = main(["run", "--arch", "x86_64", "--expectations", str(bad), *isolated])
    assert code == EXIT_BAD_INPUT
    assert "entry 1 (line 1): outcome 'flaky' is unknown" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "results").exists()


# -- in a cell: the verdict, JUnit, summary.json -------------------------------------


def recorded_matrix(tmp_path: Path, known: Expectations) -> Matrix:
    return one_cell_matrix(tmp_path, expectations=known)


def record_cell(data_dir: Path, tmp_path: Path, known: Expectations) -> tuple[Cell, Path]:
    """A baseline cell classified from a recorded guest run with one failing test and one
    failing selftest, as boot_and_test does once QEMU has stopped."""
    cell_dir = tmp_path / "x86_64-baseline"
    cell_dir.mkdir()
    shutil.copy(data_dir / "console-x86_64-pass.log", cell_dir / "console.log")
    shutil.copy(data_dir / "seccomp_bpf-one-failure.tap", cell_dir / "selftests.tap")
    guest = read_records(data_dir / "results-x86_64-one-failure.jsonl")
    outcome = BootOutcome(
        BootEnd.COMPLETED, guest, boot_seconds=4.0, total_seconds=30.0,
        kernel_release="6.12.117", kernel_version="#4 SMP", tainted=0,
    )  # fmt: skip
    cell = Cell(ARCHES["x86_64"], Variant.BASELINE)
    recorded_matrix(tmp_path, known).tester.record_outcome(cell, outcome, cell_dir, 30.0, True)
    return cell, cell_dir


def test_departures_fail_the_cell_naming_tests_and_file(data_dir: Path, tmp_path: Path) -> None:
    cell, cell_dir = record_cell(data_dir, tmp_path, checked_in_for_old_records())
    assert cell.status is Status.TEST_FAILED
    assert cell.reason == (
        f"test: 2 test(s) departed from expectations.toml: {CPUS_TEST} failed (expected passed "
        f"or skipped); {SELFTEST_FAILING} failed (expected passed or skipped)"
    )
    assert cell.stages["test"].message == cell.reason.removeprefix("test: ")
    judged = cell.facts["expectations"]
    assert [d["test"] for d in judged["departures"]] == [CPUS_TEST, SELFTEST_FAILING]
    assert judged["departures"][0]["cell"] == "x86_64/baseline"
    suites = ET.parse(cell_dir / "junit.xml").getroot().findall("testsuite")
    assert [s.get("failures") for s in suites] == ["1", "1"]


PTRACE_TAP = "\n".join([
    "# harness-selftest: ptrace/get_syscall_info", "TAP version 13", "1..1",
    "ok 1 global.get_syscall_info", "# harness-selftest-exit: 0",
    "# harness-selftest: ptrace/peeksiginfo", "PASS", "# harness-selftest-exit: 0",
    "# harness-selftest: ptrace/vmaccess", "TAP version 13", "1..2", "ok 1 global.vmaccess",
    "not ok 2 global.attach", "# harness-selftest-exit: 1",
]) + "\n"  # fmt: skip


def test_each_collection_is_a_junit_suite_counted_and_judged_apart(
    data_dir: Path, tmp_path: Path
) -> None:
    text = (
        entry(test="ptrace::vmaccess.global.attach", outcome="failed", reason="deadlocks")
        + '[[count]]\narch = "*"\nvariant = "*"\nsuite = "ptrace"\ntests = 6\n'
        'reason = "four binaries"\n'
    )
    known = load(write(tmp_path, text))
    cell_dir = tmp_path / "x86_64-baseline"
    cell_dir.mkdir()
    shutil.copy(data_dir / "console-x86_64-pass.log", cell_dir / "console.log")
    tap = "# harness-selftest: seccomp/seccomp_bpf\n"
    tap += (data_dir / "seccomp_bpf-x86_64-patched.tap").read_text()
    (cell_dir / "selftests.tap").write_text(PTRACE_TAP + tap)  # as the guest runs them
    guest = read_records(data_dir / "results-x86_64-pass.jsonl")
    outcome = BootOutcome(
        BootEnd.COMPLETED, guest, boot_seconds=4.0, total_seconds=30.0,
        kernel_release="6.12.117", kernel_version="#4 SMP", tainted=0,
    )  # fmt: skip
    cell = Cell(ARCHES["x86_64"], Variant.BASELINE)
    given = ["seccomp/seccomp_bpf", *(f"ptrace/{name}" for name in COLLECTIONS["ptrace"].binaries)]
    cell.facts["selftest_binaries"] = given  # as boot_and_test records them
    recorded_matrix(tmp_path, known).tester.record_outcome(cell, outcome, cell_dir, 30.0, True)
    # get_set_sud never reported: an error of its own; the ptrace suite's 5 cases are
    # not the 6 its [[count]] says; the attach failure is expected.
    judged = cell.facts["expectations"]
    assert [(d["test"], d["expected"], d["actual"]) for d in judged["departures"]] == [
        ("ptrace::get_set_sud.<missing>", "passed or skipped", "error"),
        ("ptrace suite", "6 tests", "5 tests"),
    ]
    assert [f["test"] for f in judged["expected_failures"]] == ["ptrace::vmaccess.global.attach"]
    # The suites in the table's order, whatever order the guest ran them in.
    suites = ET.parse(cell_dir / "junit.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("tests")) for s in suites] == [
        ("x86_64.baseline", str(guest.counts()["total"])),
        ("x86_64.baseline.seccomp_bpf", "107"),
        ("x86_64.baseline.ptrace", "5"),
    ]
    ptrace = cell.facts["selftest_suites"]["ptrace"]
    assert ptrace == {"own": {"passed": 3, "failed": 1, "skipped": 0, "error": 1, "total": 5}}
    assert cell.facts["selftests"]["total"] == 112  # both suites' own cases
    read_back = read_junit(cell_dir / "junit.xml", "x86_64.baseline")
    assert {t.suite for t in read_back} == {"guest", "seccomp_bpf", "ptrace"}
    assert {t.nodeid for t in read_back if t.suite == "ptrace"} == {
        "ptrace::get_syscall_info.global.get_syscall_info", "ptrace::peeksiginfo",
        "ptrace::vmaccess.global.vmaccess", "ptrace::vmaccess.global.attach",
        "ptrace::get_set_sud.<missing>",
    }  # fmt: skip
    assert [t.suite for t in cell.results][-5:] == ["ptrace"] * 5


def test_expected_failures_pass_the_cell_and_read_back_from_junit(
    data_dir: Path, tmp_path: Path
) -> None:
    text = CHECKED_IN.read_text() + entry(
        variant="baseline", test=CPUS_TEST, outcome="failed", reason="one vCPU on this runner"
    ) + entry(test=SELFTEST_FAILING, outcome="failed", reason="racy under TCG")  # fmt: skip
    known = dataclasses.replace(load(write(tmp_path, text)), counts=(), unlisted=UNLISTED)
    cell, cell_dir = record_cell(data_dir, tmp_path, known)
    assert cell.status is Status.PASS, cell.reason
    assert cell.tests["failed"] == 1  # the outcome itself is kept
    assert [f["reason"] for f in cell.facts["expectations"]["expected_failures"]] == [
        "one vCPU on this runner", "racy under TCG"
    ]  # fmt: skip
    suites = ET.parse(cell_dir / "junit.xml").getroot().findall("testsuite")
    assert [(s.get("failures"), s.get("skipped")) for s in suites] == [("0", "43"), ("0", "1")]
    tests = {t.nodeid: t for t in read_junit(cell_dir / "junit.xml", "x86_64.baseline")}
    assert tests[CPUS_TEST].outcome == "failed"
    assert tests[CPUS_TEST].expected == "expected failure: one vCPU on this runner"
    assert "AssertionError" in tests[CPUS_TEST].message
    assert tests[SELFTEST_FAILING].outcome == "failed"
    assert tests[SELFTEST_FAILING].expected == "expected failure: racy under TCG"


def test_summary_lists_every_departure_and_stale_entry(data_dir: Path, tmp_path: Path) -> None:
    text = entry(test="gone.py::*", outcome="skipped", reason="removed long ago")
    known = load(write(tmp_path, text))
    cell, _ = record_cell(data_dir, tmp_path, known)
    facts = expectation_facts(known, [cell])
    assert facts["expectations"] == str(tmp_path / "expectations.toml")
    departures = facts["departures"]
    assert isinstance(departures, list) and len(departures) == 2
    assert set(departures[0]) == {"test", "cell", "expected", "actual", "reason", "entry"}
    assert facts["stale_expectations"] == [
        {"entry": 1, "line": 1, "test": "gone.py::*", "reason": "removed long ago",
         "cell": "x86_64/baseline"}
    ]  # fmt: skip
    json.dumps(facts)  # summary.json can hold it


def test_a_prefix_may_stand_where_baseline_or_the_series_does_but_not_fail(
    data_dir: Path,
) -> None:
    """check-series --boot: a skip of a series test is fine for a prefix (the request
    may not exist yet), a failure is not (v1's patch 3 had the request fail open)."""
    known = load(CHECKED_IN)
    guest = read_records(data_dir / "results-x86_64-patched.jsonl")
    detach = "test_detach_kill.py::test_detach_at_stop_kills[nosig]"
    outcomes = {r.nodeid: r.outcome for r in guest.results}
    assert outcomes[detach] == "passed"
    assert judge_prefix(known, "x86_64", guest.results).departures == []
    for outcome, departs in (("skipped", False), ("failed", True), ("error", True)):
        results = [replace(r, outcome=outcome) if r.nodeid == detach else r for r in guest.results]
        departures = [d.test for d in judge_prefix(known, "x86_64", results).departures]
        assert departures == ([detach] if departs else []), outcome
