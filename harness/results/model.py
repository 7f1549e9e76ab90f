"""The result model of a run: cells, their stages, statuses and per-test results.

JSON comes from here and is read back here: a cell's cell.json (and the
cells of summary.json) hold every test's outcome, so the report, `compare`
and KTAP read one shape (Cell.from_json); JUnit is written for CI only.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from harness.core.arches import ARCHES, ArchSpec
from harness.core.status import EXIT_INTERRUPTED, Status, worst
from harness.core.toolchains import DEFAULT_TOOLCHAIN, TOOLCHAINS, Platform, Toolchain
from harness.core.vocabulary import Outcome, Variant

STAGES = ("patch", "config", "build", "boot", "test")
# 2: cell.json holds "results" (every test); 1 (no key): only JUnit held them.
CELL_FORMAT = 2
GUEST_SUITE = "guest"  # the suite label of the guest's own pytest tests
INTERRUPTED = "interrupted"  # the status of a run, or a cell, stopped before its end
VARIANTS = tuple(Variant)


class StageState(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    NOT_RUN = "not_run"
    REUSED = "reused"  # an up-to-date result from an earlier run was used


@dataclass
class StageResult:
    state: StageState = StageState.NOT_RUN
    seconds: float = 0.0
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.state.value,
            "seconds": round(self.seconds, 3),
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageResult:
        """ValueError for a state this harness does not know."""
        return cls(
            state=StageState(str(data.get("status", StageState.NOT_RUN.value))),
            seconds=float(data.get("seconds") or 0.0),
            message=str(data.get("message", "")),
        )


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str  # as pytest names it, e.g. "test_x.py::test_y[a]", or "seccomp_bpf::global.kcmp"
    suite: str  # GUEST_SUITE, or the upstream suite's name, e.g. "seccomp_bpf"
    outcome: Outcome
    message: str = ""
    expected: str = ""  # "expected failure: <reason>" when the expectations allowed the failure
    duration: float = 0.0

    def __post_init__(self) -> None:
        # A plain "passed" (from a test, say) typed, as vm/records.py's TestResult does.
        object.__setattr__(self, "outcome", Outcome(self.outcome))

    def to_json(self) -> dict[str, Any]:
        return {
            "nodeid": self.nodeid,
            "suite": self.suite,
            "outcome": str(self.outcome),
            "message": self.message,
            "expected": self.expected,
            "duration": round(self.duration, 3),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TestOutcome:
        return cls(
            nodeid=str(data.get("nodeid", "")),
            suite=str(data.get("suite", GUEST_SUITE)),
            outcome=Outcome.parse(data.get("outcome")),
            message=str(data.get("message", "")),
            expected=str(data.get("expected", "")),
            duration=float(data.get("duration") or 0.0),
        )


# The keys of a cell's JSON that are its own fields or follow from them; the rest are facts.
CELL_KEYS = frozenset(
    (
        "arch",
        "toolchain",
        "variant",
        "status",
        "exit_code",
        "reason",
        "stages",
        "tests",
        "kernel_reports",
        "files",
        "format",
        "results",
    )
)


@dataclass(frozen=True)
class CellKey:
    """What names a cell: its arch, variant and toolchain. Every name of a cell (its
    progress and report name, its directory, its JUnit suite) comes from here; the
    default toolchain (gcc) leaves the names as they were before there was a choice."""

    arch: ArchSpec
    variant: Variant
    toolchain: Toolchain = TOOLCHAINS[DEFAULT_TOOLCHAIN]

    @property
    def platform(self) -> Platform:
        """What the cell's kernel is built for and with: "x86_64", "x86_64-clang"."""
        return Platform(self.arch, self.toolchain)

    def __str__(self) -> str:
        return f"{self.platform}/{self.variant}"

    @property
    def directory_name(self) -> str:
        return f"{self.platform}-{self.variant}"

    @property
    def suite_name(self) -> str:
        """The cell's JUnit suite, and its KTAP test: "x86_64.patched", "x86_64-clang.patched"."""
        return f"{self.platform}.{self.variant}"

    def with_variant(self, variant: Variant) -> CellKey:
        """The cell beside this one that differs in its variant only."""
        return dataclasses.replace(self, variant=variant)


@dataclass
class Cell:
    arch: ArchSpec
    variant: Variant
    status: Status = Status.PASS
    reason: str = ""
    stages: dict[str, StageResult] = field(
        default_factory=lambda: {name: StageResult() for name in STAGES}
    )
    tests: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)  # nodeid -> outcome
    facts: dict[str, Any] = field(default_factory=dict)  # versions, hashes, accel
    kernel_reports: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run dir
    results: list[TestOutcome] = field(default_factory=list)  # every test, guest and upstream
    interrupted: bool = False  # begun, never decided: the run was interrupted
    # Read back only (results/rundir.py), never written: why a format-1 cell's junit.xml,
    # which alone holds its results, could not be read.
    junit_problem: str = ""
    toolchain: Toolchain = TOOLCHAINS[DEFAULT_TOOLCHAIN]

    @property
    def key(self) -> CellKey:
        return CellKey(self.arch, self.variant, self.toolchain)

    @property
    def platform(self) -> Platform:
        return self.key.platform

    @property
    def name(self) -> str:
        return str(self.key)

    @property
    def directory_name(self) -> str:
        return self.key.directory_name

    @property
    def status_label(self) -> str:
        """The status as cell.json names it: "interrupted" for a cell never decided."""
        return INTERRUPTED if self.interrupted else self.status.label

    @property
    def passed(self) -> bool:
        return self.status is Status.PASS and not self.interrupted

    def stage(self, name: str) -> StageResult:
        """The stage `name` of the cell; not run when the cell has no such stage."""
        return self.stages.get(name) or StageResult()

    def fail(self, status: Status, reason: str) -> None:
        if status.outranks(self.status):
            self.status, self.reason = status, reason

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch.name,
            "toolchain": self.toolchain.name,
            "variant": self.variant,
            "status": self.status_label,
            "exit_code": EXIT_INTERRUPTED if self.interrupted else self.status.exit_code,
            "reason": self.reason,
            "stages": {name: stage.to_json() for name, stage in self.stages.items()},
            "tests": self.tests,
            **self.facts,
            "kernel_reports": self.kernel_reports,
            "files": self.files,
            "format": CELL_FORMAT,
            "results": [result.to_json() for result in self.results],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        """The cell its JSON (cell.json, or summary.json's entry) records, as its run decided
        it: `report --merge` writes cells of several runs as one run's. A format-1 cell has
        no results here, only in its junit.xml (results/rundir.py reads them: with_results).
        ValueError for a format newer than CELL_FORMAT, or an arch, variant, status or stage
        state this harness does not know.
        """
        written = data.get("format", 1)
        if not isinstance(written, int) or written > CELL_FORMAT:
            raise ValueError(f"format {written!r} is newer than this harness reads ({CELL_FORMAT})")
        arch_name = str(data.get("arch", ""))
        if arch_name not in ARCHES:
            raise ValueError(f"unknown arch {arch_name!r}")
        label = str(data.get("status", ""))
        interrupted = label == INTERRUPTED
        try:
            status = Status.PASS if interrupted else Status[label.upper()]
        except KeyError:
            raise ValueError(f"unknown status {label!r}") from None
        results = cls.results_from_json(data) or []
        try:
            variant = Variant(str(data.get("variant", "")))
        except ValueError:
            raise ValueError(f"unknown variant {data.get('variant')!r}") from None
        stages = {name: StageResult() for name in STAGES}
        for name, stage in (data.get("stages") or {}).items():
            stages[name] = StageResult.from_json(stage)
        facts = {key: value for key, value in data.items() if key not in CELL_KEYS}
        toolchain = str(data.get("toolchain") or DEFAULT_TOOLCHAIN)
        if toolchain not in TOOLCHAINS and "compiler" not in data:
            # Written before the toolchain axis: "toolchain" was gcc's --version line.
            facts["compiler"], toolchain = toolchain, DEFAULT_TOOLCHAIN
        if toolchain not in TOOLCHAINS:
            raise ValueError(f"unknown toolchain {toolchain!r}")
        return cls(
            arch=ARCHES[arch_name],
            variant=variant,
            status=status,
            reason=str(data.get("reason", "")),
            stages=stages,
            tests=dict(data.get("tests") or {}),
            outcomes=outcomes_of(results),
            facts=facts,
            kernel_reports=list(data.get("kernel_reports") or []),
            files=dict(data.get("files") or {}),
            results=results,
            interrupted=interrupted,
            toolchain=TOOLCHAINS[toolchain],
        )

    def with_results(self, results: list[TestOutcome]) -> Cell:
        """This cell holding `results` (a format-1 cell's, from its junit.xml)."""
        return dataclasses.replace(self, results=results, outcomes=outcomes_of(results))

    @classmethod
    def results_from_json(cls, data: dict[str, Any]) -> list[TestOutcome] | None:
        """The per-test results a cell's JSON holds; None for a format-1 cell, which has
        them only in its junit.xml."""
        results = data.get("results")
        if not isinstance(results, list):
            return None
        return [TestOutcome.from_json(item) for item in results if isinstance(item, dict)]


def outcomes_of(results: list[TestOutcome]) -> dict[str, Outcome]:
    """Cell.outcomes as a run fills it (run/celltest.py): every test, guest and upstream."""
    return {result.nodeid: result.outcome for result in results}


@dataclass
class RunSummary:
    run_id: str
    cells: list[Cell]
    facts: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False  # Ctrl-C, SIGTERM or SIGHUP: what finished, and the rest

    def status(self) -> Status:
        return worst([cell.status for cell in self.cells])

    @property
    def status_label(self) -> str:
        return INTERRUPTED if self.interrupted else self.status().label

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED if self.interrupted else self.status().exit_code

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status_label,
            "exit_code": self.exit_code,
            **self.facts,
            "cells": [cell.to_json() for cell in self.cells],
        }
