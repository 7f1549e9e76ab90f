"""The guest's result records (JSON lines from the virtio port) as test results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.vocabulary import Outcome


@dataclass
class TestResult:
    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    message: str = ""

    def __post_init__(self) -> None:
        self.outcome = Outcome(self.outcome)  # a plain "passed" from a test or a file, typed


@dataclass
class GuestRun:
    session: dict[str, object] = field(default_factory=dict)
    results: list[TestResult] = field(default_factory=list)
    running: str | None = None  # started but never finished: the guest stopped during it
    exit_status: int | None = None  # pytest's, when the session finished
    seconds: float | None = None  # the session's guest time, when it finished
    garbage_lines: int = 0
    collected: int | None = None  # tests pytest collected, once collection finished

    def counts(self) -> dict[str, int]:
        return count_outcomes(self.results)

    @property
    def finished(self) -> bool:
        return self.exit_status is not None

    def progress(self) -> str:
        """How far the session is, for a progress line: "40/121 tests, 1 failed"."""
        counts = self.counts()
        done = f"{counts['total']}/{self.collected}" if self.collected else str(counts["total"])
        bad = [f"{counts[kind]} {kind}" for kind in ("failed", "error") if counts[kind]]
        return ", ".join([f"{done} tests", *bad])

    @staticmethod
    def unfinished(nodeid: str, why: str) -> TestResult:
        """The result of a test the guest never finished (panic, hang, QEMU exit)."""
        return TestResult(
            nodeid, Outcome.ERROR, message=f"no result: the guest stopped during it ({why})"
        )


def count_outcomes(results: list[TestResult]) -> dict[str, int]:
    """passed/failed/error/skipped and total of some results."""
    counts = {str(outcome): 0 for outcome in Outcome}
    for result in results:
        counts[str(result.outcome)] += 1
    counts["total"] = len(results)
    return counts


def parse_records(text: str) -> GuestRun:
    """Fold the record stream into results; a torn last line (a killed guest) is skipped."""
    run = GuestRun()
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            run.garbage_lines += 1
            continue
        if not isinstance(record, dict):
            run.garbage_lines += 1
            continue
        kind = record.get("type")
        if kind == "session":
            run.session = record
        elif kind == "collected" and isinstance(record.get("count"), int):
            run.collected = record["count"]
        elif kind == "start":
            run.running = str(record.get("nodeid"))
        elif kind == "result":
            nodeid = str(record.get("nodeid"))
            outcome = str(record.get("outcome"))
            run.results.append(
                TestResult(
                    nodeid=nodeid,
                    outcome=Outcome.parse(outcome),
                    duration=float(record.get("duration") or 0.0),
                    message=str(record.get("message") or ""),
                )
            )
            if run.running == nodeid:
                run.running = None
        elif kind == "end":
            run.exit_status = int(record.get("exitstatus", -1))
            started, ended = run.session.get("time"), record.get("time")
            if isinstance(started, (int, float)) and isinstance(ended, (int, float)):
                run.seconds = ended - started
    return run


def read_records(path: Path) -> GuestRun:
    try:
        return parse_records(path.read_text(errors="replace"))
    except FileNotFoundError:
        return GuestRun()
