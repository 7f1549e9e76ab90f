"""The upstream selftests' TAP, as the guest sends it, read into results named per suite.

The guest's init runs every binary under /selftests/<collection>/ (the cell's
own tree's) and /selftests/<collection>/series/ (the series tree's, on a
baseline kernel) and writes, into the TAP port, `# harness-selftest: PATH`
before each binary's output (PATH relative to /selftests) and
`# harness-selftest-exit: STATUS` after it. Output before any mark is the
cell's own seccomp_bpf, and the marks `seccomp_bpf` and `seccomp_bpf.series`
name the two seccomp_bpf binaries: that is how runs before there were
several collections wrote it.

The series tree's binaries, run on the baseline kernel (kselftests run on
kernels older than their tree), name their cases `<suite>::series:<case>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.core.kselftests import COLLECTIONS, SUITES, Collection
from harness.core.vocabulary import Outcome
from harness.vm.records import TestResult

SERIES_LABEL = "series:"
SERIES_DIR = "series"  # the series tree's binaries of a collection, in the guest and build dir
KSFT_SKIP = 4  # tools/testing/selftests/kselftest.h: the exit status of a binary that skipped
MISSING_CASE = "<missing>"
_BINARY_MARK = re.compile(r"^# harness-selftest: (?P<path>\S+)$")
_EXIT_MARK = re.compile(r"^# harness-selftest-exit: (?P<status>\d+)$")
_PLAN = re.compile(r"^1\.\.(?P<count>\d+)(?:\s*#\s*SKIP\b\s*(?P<reason>.*))?")
_TAP_RESULT = re.compile(
    r"^(?P<not>not )?ok (?P<number>\d+) (?P<name>[^#]*?)\s*"
    r"(?:#\s*(?P<directive>SKIP|XFAIL|TODO)\b\s*(?P<reason>.*))?$"
)
# The marks of runs from before collections: the seccomp_bpf binaries by their file names.
_LEGACY_MARKS = {"seccomp_bpf": ("seccomp", "seccomp_bpf", False)}
_LEGACY_MARKS["seccomp_bpf.series"] = ("seccomp", "seccomp_bpf", True)


@dataclass(frozen=True)
class SelftestBinary:
    """One binary the guest runs: which collection, which program, whose tree."""

    collection: Collection
    binary: str
    series: bool = False  # the series tree's build, run on a baseline kernel

    @property
    def guest_path(self) -> str:
        """Where it lies under /selftests in the guest, and how its mark names it."""
        series = f"{SERIES_DIR}/" if self.series else ""
        return f"{self.collection.name}/{series}{self.binary}"

    def nodeid(self, case: str) -> str:
        label = SERIES_LABEL if self.series else ""
        return f"{self.collection.suite}::{label}{self.collection.case_prefix(self.binary)}{case}"

    @property
    def whole_nodeid(self) -> str:
        """The binary as one case: for a binary that reported no case of its own."""
        label = SERIES_LABEL if self.series else ""
        return f"{self.collection.suite}::{label}{self.binary}"

    @classmethod
    def from_mark(cls, path: str) -> SelftestBinary:
        """The binary a guest's mark names (see the module's docstring)."""
        if path in _LEGACY_MARKS:
            name, binary, series = _LEGACY_MARKS[path]
            return cls(COLLECTIONS[name], binary, series)
        parts = path.split("/")
        name, series = parts[0], len(parts) == 3 and parts[1] == SERIES_DIR
        # A collection this harness does not know (a guest and host that disagree) is
        # named as it came, its cases judged as any unlisted ones.
        collection = COLLECTIONS.get(name) or Collection(name, name, (), ())
        return cls(collection, parts[-1], series)


OWN_SECCOMP_BPF = SelftestBinary(COLLECTIONS["seccomp"], "seccomp_bpf")


@dataclass
class BinaryOutput:
    """What one binary wrote into the TAP port."""

    binary: SelftestBinary
    results: list[TestResult] = field(default_factory=list)
    planned: int | None = None  # its plan's count; None without a plan
    skip_reason: str = ""  # a plan of "1..0 # SKIP reason": the whole binary skipped
    exit_status: int | None = None  # None: the guest never said it ended

    def exit_result(self) -> TestResult | None:
        """The binary as one case, from its exit status, when it reported no case itself."""
        if self.results or self.exit_status is None:
            return None
        status = self.exit_status
        if status == 0:
            return TestResult(self.binary.whole_nodeid, Outcome.PASSED, 0.0, "")
        if status == KSFT_SKIP:
            reason = self.skip_reason or "exit status 4 (KSFT_SKIP)"
            return TestResult(self.binary.whole_nodeid, Outcome.SKIPPED, 0.0, f"SKIP: {reason}")
        why = f"killed by signal {status - 128}" if status > 128 else f"exit status {status}"
        message = f"{why}, no TAP result (see the cell's selftests.tap)"
        return TestResult(self.binary.whole_nodeid, Outcome.FAILED, 0.0, message)

    def missing(self) -> int:
        """How many planned cases it never reported."""
        return max(0, (self.planned or 0) - len(self.results))


def parse_tap(text: str) -> list[BinaryOutput]:
    """The guest's TAP port, one BinaryOutput per binary in the order they ran."""
    outputs: list[BinaryOutput] = []
    current: BinaryOutput | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if mark := _BINARY_MARK.match(line):
            current = BinaryOutput(SelftestBinary.from_mark(mark["path"]))
            outputs.append(current)
            continue
        if current is None:
            current = BinaryOutput(OWN_SECCOMP_BPF)
            outputs.append(current)
        if mark := _EXIT_MARK.match(line):
            current.exit_status = int(mark["status"])
        elif plan := _PLAN.match(line):
            current.planned = (current.planned or 0) + int(plan["count"])
            current.skip_reason = (plan["reason"] or "").strip()
        elif match := _TAP_RESULT.match(line):
            current.results.append(_result(current.binary, match))
    return outputs


def _result(binary: SelftestBinary, match: re.Match[str]) -> TestResult:
    directive = match["directive"]
    if directive in ("SKIP", "XFAIL", "TODO"):
        outcome, message = Outcome.SKIPPED, f"{directive}: {match['reason'].strip()}"
    elif match["not"]:
        outcome, message = Outcome.FAILED, "not ok (see the cell's selftests.tap)"
    else:
        outcome, message = Outcome.PASSED, ""
    return TestResult(binary.nodeid(match["name"].strip()), outcome, 0.0, message)


def results_of(outputs: list[BinaryOutput]) -> list[TestResult]:
    """Every case the binaries reported, and each silent binary's exit status as its case."""
    results: list[TestResult] = []
    for output in outputs:
        results += output.results
        if (whole := output.exit_result()) is not None:
            results.append(whole)
    return results


def _series_prefix(nodeid: str) -> str | None:
    """`<suite>::series:` when the node id is a series-tree case of a known suite."""
    suite, separator, case = nodeid.partition("::")
    if separator and suite in SUITES and case.startswith(SERIES_LABEL):
        return f"{suite}::{SERIES_LABEL}"
    return None


def is_series_case(nodeid: str) -> bool:
    """Whether a result comes from a series tree's binary (run on a baseline kernel)."""
    return _series_prefix(nodeid) is not None


def comparable_outcomes(baseline: dict[str, str]) -> dict[str, str]:
    """A baseline cell's outcomes as set beside the patched cell's: where the baseline
    also ran the series tree's binaries, their outcome stands for the case (the same
    binary on the other kernel), so only the kernels differ."""
    outcomes = {n: o for n, o in baseline.items() if not is_series_case(n)}
    for nodeid, outcome in baseline.items():
        prefix = _series_prefix(nodeid)
        if prefix is not None:
            suite = prefix.removesuffix(SERIES_LABEL)
            outcomes[suite + nodeid.removeprefix(prefix)] = outcome
    return outcomes
