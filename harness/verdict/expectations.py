"""Known outcomes per arch and variant (expectations.toml), and a cell's results judged by them.

A test whose outcome is what its entry expects is fine, an expected failure
too; a test no entry matches is expected to pass or skip; anything else is a
departure, which fails the cell. When several entries match a test, the last
one in the file decides, so a general entry comes first and its exceptions
after it. An entry that decided no test of a cell it applies to is stale: a
warning, not a failure.

`unlisted = "passed"` at the top of the file makes a test no entry matches
expected to pass (a skip there departs too: a test that quietly stopped
running is caught). `[[count]]` entries give how many tests a suite runs in a
cell (arch, variant, suite, tests, reason): a test that disappears, or one
nobody listed that appears, departs. Counts are judged only for a run of the
whole suite (no -k, -m or node ids), with --repeat's repetitions counted once.

Test globs match the whole node id. Only `*` (any run of characters) and `?`
(one character) are special: brackets are literal, since pytest's
parametrized ids use them (`test_x.py::test_y[SIGUSR1]`). The repN parameter
that --repeat adds is ignored: `test_x.py::test_y[rep3-SIGUSR1]` is decided
by an entry for `test_x.py::test_y[SIGUSR1]`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.arches import ARCHES
from harness.core.errors import BadInput
from harness.core.tomlfile import read_toml
from harness.core.vocabulary import Outcome, Variant
from harness.kernel.selftests import SUITE_NAME
from harness.results.model import VARIANTS
from harness.vm.records import TestResult

DEFAULT_NAME = "expectations.toml"
OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.ERROR)  # as documented
FAILING = (Outcome.FAILED, Outcome.ERROR)
UNLISTED = "passed or skipped"  # what a test that no entry matches is expected to do, by default
UNLISTED_CHOICES = (UNLISTED, "passed")
ANY = "*"
ENTRY_KEYS = ("arch", "variant", "test", "outcome", "reason")
COUNT_KEYS = ("arch", "variant", "suite", "tests", "reason")
GUEST_SUITE = "guest"
UPSTREAM_SUITES = (SUITE_NAME,)
_ENTRY_HEADER = re.compile(r"^\s*\[\[\s*expect\s*\]\]")


@dataclass(frozen=True)
class Count:
    """How many tests (repetitions counted once) a suite runs in the cells it applies to."""

    arch: str
    variant: str
    suite: str  # GUEST_SUITE or an upstream suite's name
    tests: int
    reason: str

    def applies_to(self, arch: str, variant: str) -> bool:
        return self.arch in (ANY, arch) and self.variant in (ANY, variant)


def glob_pattern(glob: str) -> re.Pattern[str]:
    """`*` and `?` as wildcards, everything else (brackets included) literal."""
    parts = ("." if char == "?" else ".*" if char == "*" else re.escape(char) for char in glob)
    return re.compile("".join(parts), re.DOTALL)


# --repeat N (guest-tests/conftest.py) parametrizes each race test once more,
# with ids rep0..repN-1 that pytest puts first in the brackets: t[rep2] or
# t[rep2-SIGUSR1] (last, t[SIGUSR1-rep2], is taken too). An entry naming the
# test without them decides every repetition.
_REPEAT_ID = re.compile(r"\[rep\d+\]$|(?<=\[)rep\d+-(?=.*\]$)|-rep\d+(?=\]$)")


def without_repeat(nodeid: str) -> str:
    """The node id without the repN parameter --repeat added (unchanged if none)."""
    return _REPEAT_ID.sub("", nodeid, count=1)


def suite_of(nodeid_or_glob: str) -> str:
    """'seccomp_bpf' for an upstream selftest's node id (or a glob over them), else 'guest'."""
    prefix = nodeid_or_glob.partition("::")[0]
    return prefix if prefix in UPSTREAM_SUITES else GUEST_SUITE


@dataclass(frozen=True)
class Expectation:
    index: int  # 1-based, in file order
    line: int  # the line of its [[expect]] header
    arch: str  # an arch's name or "*"
    variant: str  # a variant or "*"
    tests: tuple[str, ...]  # globs over node ids
    outcome: str  # one of OUTCOMES
    reason: str
    patterns: tuple[re.Pattern[str], ...] = field(compare=False, repr=False, default=())

    @property
    def where(self) -> str:
        return f"entry {self.index} (line {self.line})"

    def applies_to(self, arch: str, variant: str) -> bool:
        return self.arch in (ANY, arch) and self.variant in (ANY, variant)

    def glob_matching(self, nodeid: str) -> str | None:
        bare = without_repeat(nodeid)
        for glob, pattern in zip(self.tests, self.patterns, strict=True):
            if pattern.fullmatch(nodeid) or (bare != nodeid and pattern.fullmatch(bare)):
                return glob
        return None


@dataclass(frozen=True)
class Expectations:
    path: Path | None  # None: no file, every test is expected to pass or skip
    entries: tuple[Expectation, ...] = ()
    unlisted: str = UNLISTED  # what a test no entry matches must do
    counts: tuple[Count, ...] = ()

    @property
    def label(self) -> str:
        return self.path.name if self.path else ""

    def deciding(self, arch: str, variant: str, nodeid: str) -> tuple[Expectation, str] | None:
        """The entry (and its glob) that decides `nodeid` in this cell: the last that matches."""
        for entry in reversed(self.entries):
            if entry.applies_to(arch, variant) and (glob := entry.glob_matching(nodeid)):
                return entry, glob
        return None


NO_EXPECTATIONS = Expectations(None)


# -- reading the file -------------------------------------------------------------


def load(path: Path) -> Expectations:
    """Read and check an expectations file; BadInput naming the file, entry and fix."""
    text, data = read_toml(path, "expectations file", "--expectations")
    unknown = sorted(set(data) - {"expect", "count", "unlisted"})
    if unknown:
        raise BadInput(
            f"{path}: unknown key '{unknown[0]}'; the file holds unlisted, [[expect]] and "
            "[[count]] entries"
        )
    unlisted = data.get("unlisted", UNLISTED)
    if unlisted not in UNLISTED_CHOICES:
        raise BadInput(
            f"{path}: unlisted = {unlisted!r}; use one of "
            f"{', '.join(repr(choice) for choice in UNLISTED_CHOICES)}"
        )
    raw_counts = data.get("count", [])
    if not isinstance(raw_counts, list) or not all(isinstance(c, dict) for c in raw_counts):
        raise BadInput(f"{path}: 'count' must be a list of tables; write each as [[count]]")
    counts = tuple(_count(path, index, item) for index, item in enumerate(raw_counts, 1))
    raw = data.get("expect", [])
    if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
        raise BadInput(f"{path}: 'expect' must be a list of tables; write each as [[expect]]")
    lines = [n for n, line in enumerate(text.splitlines(), 1) if _ENTRY_HEADER.match(line)]
    entries = []
    for index, entry in enumerate(raw, 1):
        line = lines[index - 1] if len(lines) == len(raw) else 0
        entries.append(_entry(path, index, line, entry))
    return Expectations(path, tuple(entries), unlisted, counts)


def _count(path: Path, index: int, data: dict[str, Any]) -> Count:
    where = f"{path}: count {index}"
    if sorted(data) != sorted(COUNT_KEYS):
        raise BadInput(f"{where}: a count has exactly {', '.join(COUNT_KEYS)}")
    tests = data["tests"]
    if isinstance(tests, bool) or not isinstance(tests, int) or tests < 0:
        raise BadInput(f"{where}: 'tests' must be a whole number of tests, 0 or more")
    for key in ("arch", "variant", "suite", "reason"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise BadInput(f"{where}: '{key}' must be a non-empty string")
    if data["arch"] != ANY and data["arch"] not in ARCHES:
        raise BadInput(f"{where}: arch '{data['arch']}' is unknown")
    if data["variant"] != ANY and data["variant"] not in VARIANTS:
        raise BadInput(f"{where}: variant '{data['variant']}' is unknown")
    if data["suite"] not in (GUEST_SUITE, *UPSTREAM_SUITES):
        raise BadInput(
            f"{where}: suite '{data['suite']}' is unknown; use "
            f"{', '.join((GUEST_SUITE, *UPSTREAM_SUITES))}"
        )
    return Count(data["arch"], data["variant"], data["suite"], tests,
                 " ".join(data["reason"].split()))  # fmt: skip


def _entry(path: Path, index: int, line: int, data: dict[str, Any]) -> Expectation:
    where = f"{path}: entry {index}" + (f" (line {line})" if line else "")
    unknown = sorted(set(data) - set(ENTRY_KEYS))
    if unknown:
        raise BadInput(f"{where}: unknown key '{unknown[0]}'; an entry has {', '.join(ENTRY_KEYS)}")
    missing = [key for key in ENTRY_KEYS if key not in data]
    if missing:
        raise BadInput(f"{where}: no '{missing[0]}'; every entry needs {', '.join(ENTRY_KEYS)}")
    for key in ("arch", "variant", "outcome", "reason"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise BadInput(f"{where}: '{key}' must be a non-empty string")
    arch, variant, outcome = data["arch"], data["variant"], data["outcome"]
    if arch != ANY and arch not in ARCHES:
        raise BadInput(f"{where}: arch '{arch}' is unknown; use one of {', '.join(ARCHES)} or *")
    if variant != ANY and variant not in VARIANTS:
        raise BadInput(
            f"{where}: variant '{variant}' is unknown; use one of {', '.join(VARIANTS)} or *"
        )
    if outcome not in OUTCOMES:
        raise BadInput(f"{where}: outcome '{outcome}' is unknown; use one of {', '.join(OUTCOMES)}")
    tests = data["test"]
    if isinstance(tests, str):
        tests = [tests]
    if (
        not isinstance(tests, list)
        or not tests
        or not all(isinstance(glob, str) and glob.strip() for glob in tests)
    ):
        raise BadInput(f"{where}: 'test' must be a glob over node ids, or a list of them")
    return Expectation(
        index=index, line=line, arch=arch, variant=variant, tests=tuple(tests),
        outcome=outcome, reason=" ".join(data["reason"].split()),
        patterns=tuple(glob_pattern(glob) for glob in tests),
    )  # fmt: skip


def load_default(root: Path) -> Expectations:
    """The checkout's expectations.toml when there is one, else no expectations."""
    path = root / DEFAULT_NAME
    return load(path) if path.is_file() else NO_EXPECTATIONS


# -- judging a cell ----------------------------------------------------------------


@dataclass(frozen=True)
class Departure:
    test: str
    cell: str  # "arch/variant"
    expected: str  # an outcome, or UNLISTED
    actual: str
    reason: str  # the entry's, or why an unlisted test should pass
    entry: int | None = None  # the deciding entry's index, None for an unlisted test
    count: bool = False  # a [[count]] departure: the suite ran another number of tests

    def describe(self) -> str:
        return f"{self.test} {self.actual} (expected {self.expected})"

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test, "cell": self.cell, "expected": self.expected,
            "actual": self.actual, "reason": self.reason, "entry": self.entry,
        }  # fmt: skip


@dataclass(frozen=True)
class ExpectedFailure:
    test: str
    outcome: str  # failed or error
    reason: str
    entry: int

    def to_json(self) -> dict[str, Any]:
        return {"test": self.test, "outcome": self.outcome, "reason": self.reason,
                "entry": self.entry}  # fmt: skip


@dataclass(frozen=True)
class StaleEntry:
    entry: int
    line: int
    test: str  # the glob that decided no test
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"entry": self.entry, "line": self.line, "test": self.test, "reason": self.reason}


@dataclass
class Judgement:
    file: str  # the expectations file's name, "" without one
    departures: list[Departure] = field(default_factory=list)
    expected_failures: list[ExpectedFailure] = field(default_factory=list)
    stale: list[StaleEntry] = field(default_factory=list)

    def expected_failure_reasons(self) -> dict[str, str]:
        """nodeid -> "expected failure: <reason>", for the JUnit and KTAP writers."""
        return {f.test: f"expected failure: {f.reason}" for f in self.expected_failures}

    def stale_lines(self) -> list[str]:
        """One warning per stale entry, naming its globs that matched nothing."""
        globs: dict[tuple[int, int], list[str]] = {}
        for stale in self.stale:
            globs.setdefault((stale.entry, stale.line), []).append(stale.test)
        return [
            f"{self.file} entry {entry} (line {line}) matched no test: {', '.join(tests)}"
            for (entry, line), tests in globs.items()
        ]

    def summary(self, shown: int = 3) -> str:
        """One line naming the departures, for the cell's reason."""
        count = len(self.departures)
        head = (
            f"{count} test(s) departed from {self.file}" if self.file else f"{count} test(s) failed"
        )
        names = [departure.describe() for departure in self.departures[:shown]]
        if count > shown:
            names.append(f"and {count - shown} more")
        return f"{head}: {'; '.join(names)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "departures": [departure.to_json() for departure in self.departures],
            "expected_failures": [failure.to_json() for failure in self.expected_failures],
            "stale": [stale.to_json() for stale in self.stale],
        }


def judge(
    expectations: Expectations,
    arch: str,
    variant: str,
    results: Sequence[TestResult],
    whole_suites: bool = False,
) -> Judgement:
    """Every result of one cell against the expectations that apply to it.

    `whole_suites`: the results are of complete suites (no selection), so the
    [[count]] entries are judged too."""
    cell = f"{arch}/{variant}"
    judgement = Judgement(expectations.label)
    decided: set[tuple[int, str]] = set()  # (entry index, glob) that decided some test
    strict = expectations.unlisted == "passed"
    for result in results:
        match = expectations.deciding(arch, variant, result.nodeid)
        if match is None:
            if result.outcome in FAILING or (strict and result.outcome is Outcome.SKIPPED):
                judgement.departures.append(
                    Departure(result.nodeid, cell, expectations.unlisted, result.outcome,
                              f"no entry lists it, so it must be {expectations.unlisted}")
                )  # fmt: skip
            continue
        entry, glob = match
        decided.add((entry.index, glob))
        if result.outcome == entry.outcome:
            if result.outcome in FAILING:
                judgement.expected_failures.append(
                    ExpectedFailure(result.nodeid, result.outcome, entry.reason, entry.index)
                )
            continue
        judgement.departures.append(
            Departure(result.nodeid, cell, entry.outcome, result.outcome, entry.reason,
                      entry.index)
        )  # fmt: skip
    suites_run = {suite_of(result.nodeid) for result in results}
    judgement.stale = list(_stale(expectations.entries, arch, variant, suites_run, decided))
    if whole_suites:
        judgement.departures += _count_departures(expectations, cell, arch, variant, results)
    return judgement


def _count_departures(
    expectations: Expectations, cell: str, arch: str, variant: str, results: Sequence[TestResult]
) -> list[Departure]:
    """A suite that ran another number of tests than its (last matching) count says.

    Only suites the cell ran: --no-selftests leaves seccomp_bpf out on purpose, and a
    suite that should have run and reported nothing fails by the verdict's own rules."""
    ran: dict[str, set[str]] = {}
    for result in results:
        ran.setdefault(suite_of(result.nodeid), set()).add(without_repeat(result.nodeid))
    wanted = {c.suite: c for c in expectations.counts if c.applies_to(arch, variant)}
    return [
        Departure(f"{suite} suite", cell, f"{count.tests} tests", f"{len(ran[suite])} tests",
                  count.reason, count=True)
        for suite, count in wanted.items()
        if suite in ran and len(ran[suite]) != count.tests
    ]  # fmt: skip


def judge_prefix(
    expectations: Expectations, arch: str, results: Sequence[TestResult], whole_suites: bool = True
) -> Judgement:
    """A prefix of the series (patches 1..k): a test may stand where the whole
    series puts it (`patched`) or where it stood without the series
    (`baseline`), since a patch need not have made a test pass yet, but must
    not make one fail. It departs only where it departs from both; entries
    are not stale for a prefix."""
    judgement = judge(expectations, arch, Variant.PATCHED, results, whole_suites)
    from_baseline = {
        d.test
        for d in judge(expectations, arch, Variant.BASELINE, results, whole_suites).departures
    }
    judgement.departures = [d for d in judgement.departures if d.test in from_baseline]
    judgement.stale = []
    return judgement


def _stale(
    entries: Iterable[Expectation],
    arch: str,
    variant: str,
    suites_run: set[str],
    decided: set[tuple[int, str]],
) -> Iterable[StaleEntry]:
    """Globs of entries for this cell that decided nothing, in suites the cell did run."""
    for entry in entries:
        if not entry.applies_to(arch, variant):
            continue
        for glob in entry.tests:
            if suite_of(glob) in suites_run and (entry.index, glob) not in decided:
                yield StaleEntry(entry.index, entry.line, glob, entry.reason)
