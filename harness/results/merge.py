"""`harness report --merge RUN_DIR...`: run directories of one matrix, run apart (a CI job
per cell), combined into one run directory as if one run had made them.

Each cell is taken as its own run decided it: status, reason, stages, counts and its
judgement by the expectations are copied, never decided again. What a run derives from
its cells together (the differences between baseline and patched, the run's departures
and stale entries, its status and exit code) comes from the functions a run uses
(run/summary.py's summary_facts, results/model.py's RunSummary), and report.html,
report.md and results.ktap are rendered from the merged directory as for any run.

Refused before anything is written (BadInput, exit 2): a directory that is not a run
with a summary.json, a cell this harness cannot read back (results/rundir.py), runs of
different sources, series hashes or harness versions (their cells were not made from
the same inputs, so no one run could have made them), and two runs holding the same
cell (which of the two would decide it?).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.arches import ARCHES
from harness.core.errors import BadInput
from harness.core.jsonfile import write_json
from harness.core.toolchains import DEFAULT_TOOLCHAIN, TOOLCHAINS
from harness.core.vocabulary import Variant
from harness.results.ktap import write_ktap
from harness.results.model import INTERRUPTED, Cell, CellKey, RunSummary
from harness.results.report import write_reports
from harness.results.rundir import RunRecord, load_run
from harness.run.summary import summary_facts

SHORT_HASH = 12


@dataclass(frozen=True)
class Identity:
    """What every merged run must share: what its cells were built and judged from."""

    label: str  # as the refusal names it
    value: Callable[[dict[str, Any]], object]  # read from the run's summary.json
    show: Callable[[object], str]


def _series_hash(summary: dict[str, Any]) -> object:
    series = summary.get("series")
    return series.get("hash") if isinstance(series, dict) else None


def _show_source(source: object) -> str:
    if not isinstance(source, dict):
        return str(source)
    shown = f"{source.get('origin')} {source.get('kernel_version')}"
    package = source.get("package_version")
    return f"{shown} ({package})" if package else shown


def _show_hash(value: object) -> str:
    return str(value)[:SHORT_HASH] if value else "none"


IDENTITIES = (
    Identity("source", lambda summary: summary.get("source"), _show_source),
    Identity("series hash", _series_hash, _show_hash),
    Identity("harness version", lambda summary: summary.get("harness_version"), str),
)


@dataclass
class MergedRun:
    directory: Path
    summary: RunSummary
    written: list[Path]  # summary.json, the reports, results.ktap


def load_mergeable(run_dirs: list[Path]) -> list[RunRecord]:
    """Every run directory read back and checked to be one matrix's; BadInput naming the
    first problem. Nothing is written."""
    runs = []
    seen: set[Path] = set()
    for directory in run_dirs:
        if directory.resolve() in seen:
            raise BadInput(f"report --merge: {directory} is given twice; give each run once")
        seen.add(directory.resolve())
        run = load_run(directory)
        if not isinstance(run.summary.get("cells"), list):
            raise BadInput(
                f"report --merge: {directory} has no summary.json listing its cells; "
                "merge run directories a run finished writing"
            )
        runs.append(run)
    _check_same_inputs(runs)
    _check_cells_apart(runs)
    return runs


def _check_same_inputs(runs: list[RunRecord]) -> None:
    first = runs[0]
    for identity in IDENTITIES:
        wanted = identity.value(first.summary)
        for run in runs[1:]:
            found = identity.value(run.summary)
            if found != wanted:
                raise BadInput(
                    f"report --merge: {run.directory} and {first.directory} differ in "
                    f"{identity.label} ({identity.show(found)} vs {identity.show(wanted)}); "
                    "merge only runs of one source, series and harness version"
                )


def _check_cells_apart(runs: list[RunRecord]) -> None:
    holder: dict[CellKey, Path] = {}
    for run in runs:
        for cell in run.cells:
            if cell.key in holder:
                raise BadInput(
                    f"report --merge: cell {cell.name} is in both {holder[cell.key]} and "
                    f"{run.directory}; give each cell's run once"
                )
            holder[cell.key] = run.directory


def _rank(name: str, known: list[str]) -> tuple[int, str]:
    """A name's place among the known ones; unknown names after them, by name."""
    return (known.index(name) if name in known else len(known), name)


def matrix_order(cell: Cell) -> tuple[int, int, int]:
    """Where a cell stands in a run of the whole matrix: arch by arch as ARCHES lists them,
    then toolchain by toolchain, baseline before patched (run/summary.py plans a run's
    cells in that order)."""
    return (
        list(ARCHES).index(cell.arch.name),
        list(TOOLCHAINS).index(cell.toolchain.name),
        list(Variant).index(cell.variant),
    )


def _union_in_matrix_order(runs: list[RunRecord], key: str, known: list[str]) -> list[str]:
    """The arches (or variants) the runs were asked for, as one run of them all lists them."""
    # A run from before the toolchain axis was gcc's only.
    absent = [DEFAULT_TOOLCHAIN] if key == "toolchains" else []
    names = {str(name) for run in runs for name in run.summary.get(key) or absent}
    return sorted(names, key=lambda name: _rank(name, known))


def write_merged(runs: list[RunRecord], destination: Path) -> MergedRun:
    """The runs' cells as one run in `destination` (a new or empty directory): each cell's
    directory copied, its cell.json and the run's summary.json written as a run writes
    them, then the reports and KTAP rendered from it."""
    cells = sorted((cell for run in runs for cell in run.cells), key=matrix_order)
    destination.mkdir(parents=True, exist_ok=True)
    for run in runs:
        for cell in run.cells:
            source_dir = run.directory / cell.directory_name
            if source_dir.is_dir():
                shutil.copytree(source_dir, destination / cell.directory_name)
    for cell in cells:
        cell_dir = destination / cell.directory_name
        cell_dir.mkdir(exist_ok=True)
        write_json(cell_dir / "cell.json", cell.to_json())
    first = runs[0].summary
    interrupted = any(run.status == INTERRUPTED for run in runs) or any(
        cell.interrupted for cell in cells
    )
    summary = RunSummary(destination.name, cells, interrupted=interrupted)
    summary.facts.update(
        summary_facts(
            cells,
            harness_version=str(first.get("harness_version") or ""),
            expectations_file=_expectations_file(runs),
            arches=_union_in_matrix_order(runs, "arches", list(ARCHES)),
            variants=_union_in_matrix_order(runs, "variants", list(Variant)),
            toolchains=_union_in_matrix_order(runs, "toolchains", list(TOOLCHAINS)),
            series=first.get("series"),
            source=first.get("source") or {},
        )
    )
    # Where the cells came from: not a fact of any one run, so kept apart from them.
    summary.facts["merged_from"] = [
        {
            "run_id": run.run_id,
            "directory": str(run.directory.resolve()),
            "cells": [cell.name for cell in run.cells],
        }
        for run in runs
    ]
    summary_path = destination / "summary.json"
    write_json(summary_path, summary.to_json())
    written = [summary_path, *write_reports(destination), write_ktap(destination)]
    return MergedRun(destination, summary, written)


def _expectations_file(runs: list[RunRecord]) -> str | None:
    """The expectations file the runs name: the first run's that names one. Each cell was
    judged by its own run, and its judgement names the file too (cell.json)."""
    for run in runs:
        if run.summary.get("expectations"):
            return str(run.summary["expectations"])
    return None


def merge_runs(run_dirs: list[Path], destination: Path) -> MergedRun:
    return write_merged(load_mergeable(run_dirs), destination)
