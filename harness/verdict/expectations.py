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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.arches import ARCHES
from harness.core.errors import BadInput
from harness.core.kselftests import SUITES
from harness.core.tomlfile import read_toml
from harness.core.vocabulary import Outcome
from harness.results.model import VARIANTS

DEFAULT_NAME = "expectations.toml"
OUTCOMES = (Outcome.PASSED, Outcome.FAILED, Outcome.SKIPPED, Outcome.ERROR)  # as documented
FAILING = (Outcome.FAILED, Outcome.ERROR)
UNLISTED = "passed or skipped"  # what a test that no entry matches is expected to do, by default
UNLISTED_CHOICES = (UNLISTED, "passed")
ANY = "*"
ENTRY_KEYS = ("arch", "variant", "test", "outcome", "reason")
COUNT_KEYS = ("arch", "variant", "suite", "tests", "reason")
GUEST_SUITE = "guest"
UPSTREAM_SUITES = SUITES  # one per kselftest collection: seccomp_bpf, ptrace
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
    """The upstream suite of a selftest's node id (or a glob over them): 'seccomp_bpf'
    for 'seccomp_bpf::global.kcmp', 'ptrace' for 'ptrace::vmaccess.global.attach'; else
    'guest'."""
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
    return Count(
        data["arch"], data["variant"], data["suite"], tests, " ".join(data["reason"].split())
    )


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
        index=index,
        line=line,
        arch=arch,
        variant=variant,
        tests=tuple(tests),
        outcome=outcome,
        reason=" ".join(data["reason"].split()),
        patterns=tuple(glob_pattern(glob) for glob in tests),
    )


def load_default(root: Path) -> Expectations:
    """The checkout's expectations.toml when there is one, else no expectations."""
    path = root / DEFAULT_NAME
    return load(path) if path.is_file() else NO_EXPECTATIONS


# -- judging a cell ----------------------------------------------------------------
