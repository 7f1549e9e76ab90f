"""`harness compare RUN_A RUN_B`: what changed from one run to the next, regressions first.

A regression is a cell whose status got worse, or a test that now fails or
errors where it passed (or was skipped, or did not exist) before, unless RUN_B's
expectations allowed that failure. A fix is the reverse. Everything else that
changed (a skip, a test gone, a new cell, a different kernel, config or series
hash, accelerator) is listed last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.core.status import Status
from harness.core.vocabulary import Outcome
from harness.results.differences import NOT_RUN
from harness.results.model import Cell
from harness.results.rundir import RunRecord, load_run

# Facts of a cell whose change is worth a line (key in the cell's JSON, label).
COMPARED_FACTS = (
    ("kernel_version", "kernel version"),
    ("series_hash", "series hash"),
    ("config_hash", "config hash"),
    ("accel", "accelerator"),
)
SHORT_HASH = 12
GROUP_OTHER_CHANGES_ABOVE = 5  # more non-failing changes alike in a cell make one line


@dataclass
class Comparison:
    run_a: RunRecord
    run_b: RunRecord
    regressions: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def status_rank(cell: Cell) -> int:
    """The rank of a cell's status; a cell never decided (interrupted) ranks worst."""
    return Status.INFRA.rank + 1 if cell.interrupted else cell.status.rank


def compare_runs(run_a: Path, run_b: Path) -> Comparison:
    comparison = Comparison(load_run(run_a), load_run(run_b))
    before = {cell.key: cell for cell in comparison.run_a.cells}
    after = {cell.key: cell for cell in comparison.run_b.cells}
    cell_regressions: list[str] = []
    test_regressions: list[str] = []
    for key in [*before, *(key for key in after if key not in before)]:
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            comparison.others.append(_cell_presence(old, new))
            continue
        _compare_status(old, new, cell_regressions, comparison)
        _compare_tests(old, new, test_regressions, comparison)
        comparison.others.extend(_fact_changes(old, new))
    comparison.regressions = cell_regressions + test_regressions
    return comparison


def _cell_presence(old: Cell | None, new: Cell | None) -> str:
    if old is None:
        assert new is not None
        return f"cell {new.name}: new in RUN_B ({new.status_label})"
    return f"cell {old.name}: not in RUN_B (was {old.status_label})"


def _compare_status(old: Cell, new: Cell, regressions: list[str], comparison: Comparison) -> None:
    if (old.status, old.interrupted) == (new.status, new.interrupted):
        return
    line = f"cell {new.name}: {old.status_label} -> {new.status_label}"
    reason = new.reason
    if status_rank(new) > status_rank(old):
        regressions.append(line + (f" ({reason})" if reason else ""))
    else:
        comparison.fixes.append(line)


FAILING = (Outcome.FAILED, Outcome.ERROR)


def classify_test_change(old: Outcome | None, new: Outcome | None) -> str:
    """'regression', 'fix', 'other' or '' (no change) for a test's outcome going old -> new;
    None: the test did not run."""
    if old == new:
        return ""
    if new in FAILING and old not in FAILING:
        return "regression"
    if old in FAILING and new == Outcome.PASSED:
        return "fix"
    return "other"


def shown(outcome: Outcome | None) -> str:
    return NOT_RUN if outcome is None else str(outcome)


def _compare_tests(old: Cell, new: Cell, regressions: list[str], comparison: Comparison) -> None:
    before, after = old.outcomes, new.outcomes
    messages = {test.nodeid: test.message for test in new.results}
    expected = {test.nodeid: test.expected for test in new.results if test.expected}
    suites = {test.nodeid: test.suite for test in [*old.results, *new.results]}
    other_groups: dict[tuple[str, str, str], list[str]] = {}
    for nodeid in [*before, *(nodeid for nodeid in after if nodeid not in before)]:
        old_outcome, new_outcome = shown(before.get(nodeid)), shown(after.get(nodeid))
        kind = classify_test_change(before.get(nodeid), after.get(nodeid))
        line = f"test {new.name} {nodeid}: {old_outcome} -> {new_outcome}"
        if kind == "regression" and nodeid in expected:
            comparison.others.append(f"{line} ({expected[nodeid]})")
        elif kind == "regression":
            last_line = messages.get(nodeid, "").strip().splitlines()[-1:]
            regressions.append(line + (f" ({last_line[0]})" if last_line else ""))
        elif kind == "fix":
            comparison.fixes.append(line)
        elif kind == "other":
            key = (suites.get(nodeid, ""), old_outcome, new_outcome)
            other_groups.setdefault(key, []).append(nodeid)
    for (suite, old_outcome, new_outcome), nodeids in other_groups.items():
        comparison.others.extend(
            _other_test_lines(new.name, suite, old_outcome, new_outcome, nodeids)
        )


def _other_test_lines(
    cell: str, suite: str, old_outcome: str, new_outcome: str, nodeids: list[str]
) -> list[str]:
    """One line per test, or one for the lot when many went the same way (a suite not run)."""
    if len(nodeids) <= GROUP_OTHER_CHANGES_ABOVE:
        return [f"test {cell} {nodeid}: {old_outcome} -> {new_outcome}" for nodeid in nodeids]
    return [f"tests {cell}: {len(nodeids)} {suite} tests {old_outcome} -> {new_outcome}"]


def _fact_changes(old: Cell, new: Cell) -> list[str]:
    changes = []
    for key, label in COMPARED_FACTS:
        before, after = old.facts.get(key), new.facts.get(key)
        if before != after:
            changes.append(f"cell {new.name}: {label} {_short(before)} -> {_short(after)}")
    return changes


def _short(value: object) -> str:
    if value is None or value == "":
        return "none"
    text = str(value)
    return text[:SHORT_HASH] if len(text) == 64 else text  # a sha256 hex digest


def format_comparison(comparison: Comparison) -> str:
    run_a, run_b = comparison.run_a, comparison.run_b
    lines = [
        f"RUN_A {run_a.directory} ({run_a.run_id}): {run_a.status}",
        f"RUN_B {run_b.directory} ({run_b.run_id}): {run_b.status}",
    ]
    for title, entries in (
        ("regressions", comparison.regressions),
        ("fixes", comparison.fixes),
        ("other changes", comparison.others),
    ):
        lines.append(f"{title} ({len(entries)}):")
        lines.extend(f"  {entry}" for entry in entries)
    if comparison.regressions:
        lines.append(f"{len(comparison.regressions)} regression(s)")
    else:
        lines.append("no regression")
    return "\n".join(lines)
