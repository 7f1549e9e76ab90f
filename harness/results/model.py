"""The result model of a run: cells, their stages and statuses. JSON comes from here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from harness.core.status import Status
from harness.core.vocabulary import Variant

STAGES = ("patch", "config", "build", "boot", "test")
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


@dataclass
class Cell:
    arch: str
    variant: Variant
    status: Status = Status.PASS
    reason: str = ""
    stages: dict[str, StageResult] = field(
        default_factory=lambda: {name: StageResult() for name in STAGES}
    )
    tests: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)  # nodeid -> outcome
    facts: dict[str, Any] = field(default_factory=dict)  # versions, hashes, accel
    kernel_reports: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # name -> path relative to the run dir

    @property
    def name(self) -> str:
        return f"{self.arch}/{self.variant}"

    def fail(self, status: Status, reason: str) -> None:
        if status.rank > self.status.rank:
            self.status, self.reason = status, reason

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.arch,
            "variant": self.variant,
            "status": self.status.label,
            "exit_code": self.status.exit_code,
            "reason": self.reason,
            "stages": {name: stage.to_json() for name, stage in self.stages.items()},
            "tests": self.tests,
            **self.facts,
            "kernel_reports": self.kernel_reports,
            "files": self.files,
        }


@dataclass
class RunSummary:
    run_id: str
    cells: list[Cell]
    facts: dict[str, Any] = field(default_factory=dict)

    def status(self) -> Status:
        worst = Status.PASS
        for cell in self.cells:
            if cell.status.rank > worst.rank:
                worst = cell.status
        return worst

    def to_json(self) -> dict[str, Any]:
        status = self.status()
        return {
            "run_id": self.run_id,
            "status": status.label,
            "exit_code": status.exit_code,
            **self.facts,
            "cells": [cell.to_json() for cell in self.cells],
        }
