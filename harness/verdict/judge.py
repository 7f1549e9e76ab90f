"""A cell's results judged by its expectations (verdict/expectations.py): departures,
expected failures, stale entries and per-suite counts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.core.vocabulary import Outcome, Variant
from harness.verdict.expectations import (
    FAILING,
    Expectation,
    Expectations,
    suite_of,
    without_repeat,
)
from harness.vm.records import TestResult


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
            "test": self.test,
            "cell": self.cell,
            "expected": self.expected,
            "actual": self.actual,
            "reason": self.reason,
            "entry": self.entry,
        }


@dataclass(frozen=True)
class ExpectedFailure:
    test: str
    outcome: str  # failed or error
    reason: str
    entry: int

    def to_json(self) -> dict[str, Any]:
        return {
            "test": self.test,
            "outcome": self.outcome,
            "reason": self.reason,
            "entry": self.entry,
        }


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
                    Departure(
                        result.nodeid,
                        cell,
                        expectations.unlisted,
                        result.outcome,
                        f"no entry lists it, so it must be {expectations.unlisted}",
                    )
                )
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
            Departure(result.nodeid, cell, entry.outcome, result.outcome, entry.reason, entry.index)
        )
    suites_run = {suite_of(result.nodeid) for result in results}
    judgement.stale = list(_stale(expectations.entries, arch, variant, suites_run, decided))
    if whole_suites:
        judgement.departures += _count_departures(expectations, cell, arch, variant, results)
    return judgement


def _count_departures(
    expectations: Expectations, cell: str, arch: str, variant: str, results: Sequence[TestResult]
) -> list[Departure]:
    """A suite that ran another number of tests than its (last matching) count says.

    Only suites the cell ran: --no-selftests leaves the upstream suites out on purpose,
    and a suite that should have run and reported nothing fails by the verdict's own
    rules."""
    ran: dict[str, set[str]] = {}
    for result in results:
        ran.setdefault(suite_of(result.nodeid), set()).add(without_repeat(result.nodeid))
    wanted = {c.suite: c for c in expectations.counts if c.applies_to(arch, variant)}
    return [
        Departure(
            f"{suite} suite",
            cell,
            f"{count.tests} tests",
            f"{len(ran[suite])} tests",
            count.reason,
            count=True,
        )
        for suite, count in wanted.items()
        if suite in ran and len(ran[suite]) != count.tests
    ]


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
