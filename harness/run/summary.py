"""A whole run: its cells through the matrix, then summary.json, the reports and KTAP."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness import __version__
from harness.core.jsonfile import write_json
from harness.core.progress import Progress
from harness.core.toolchains import DEFAULT_TOOLCHAIN
from harness.core.vocabulary import Variant
from harness.results.differences import differing
from harness.results.kcidb import KCIDB_NAME, patchset_hash, write_kcidb
from harness.results.ktap import write_ktap
from harness.results.model import GUEST_SUITE, Cell, RunSummary, TestOutcome
from harness.results.report import write_reports
from harness.run.config import Prepared, RunConfig
from harness.run.matrix import Matrix
from harness.verdict.expectations import Expectations
from harness.vm.records import read_records


def outcome_differences(cells: list[Cell]) -> dict[str, list[dict[str, str]]]:
    """Per platform ("x86_64", "x86_64-clang") with both variants, the tests whose
    outcome differs between them."""
    by_key = {cell.key: cell for cell in cells}
    return {
        key.platform.name: differing(baseline.outcomes, by_key[patched].outcomes)
        for key, baseline in by_key.items()
        if key.variant is Variant.BASELINE
        and (patched := key.with_variant(Variant.PATCHED)) in by_key
    }


def judged_facts(cells: list[Cell]) -> dict[str, list[dict[str, object]]]:
    """Every cell's departures and stale entries, listed for the run as a whole."""
    departures: list[dict[str, object]] = []
    stale: list[dict[str, object]] = []
    for cell in cells:
        judged = cell.facts.get("expectations") or {}
        departures.extend(judged.get("departures", []))
        stale.extend({**entry, "cell": cell.name} for entry in judged.get("stale", []))
    return {"departures": departures, "stale_expectations": stale}


def expectations_path(expectations: Expectations) -> str | None:
    return str(expectations.path.resolve()) if expectations.path else None


def expectation_facts(expectations: Expectations, cells: list[Cell]) -> dict[str, object]:
    """The expectations file and every cell's departures and stale entries, for summary.json."""
    return {"expectations": expectations_path(expectations), **judged_facts(cells)}


def summary_facts(
    cells: list[Cell],
    *,
    harness_version: str,
    expectations_file: str | None,
    arches: Sequence[str],
    variants: Sequence[str],
    toolchains: Sequence[str] = (DEFAULT_TOOLCHAIN,),
    series: Mapping[str, object] | None,
    source: Mapping[str, object],
) -> dict[str, object]:
    """summary.json's facts of the run as a whole. A run writes them through here, and so
    does `harness report --merge` (results/merge.py) for cells run apart, so the
    differences, departures and stale entries of one set of cells are the same whichever
    way they were run."""
    return {
        "harness_version": harness_version,
        "differences": outcome_differences(cells),
        "expectations": expectations_file,
        **judged_facts(cells),
        "arches": list(arches),
        "variants": list(variants),
        "toolchains": list(toolchains),
        "series": series,
        "source": source,
    }


def run_matrix(
    config: RunConfig, prepared: Prepared, run_id: str, progress: Progress
) -> RunSummary:
    matrix = Matrix(config, prepared, progress)
    run_dir = config.results_dir
    # Per platform, baseline then patched: the patched build right after its
    # baseline finds the same compiler's objects hot in ccache.
    plan = [(platform, variant) for platform in config.platforms for variant in config.variants]
    try:
        cells = matrix.run_cells(plan, run_dir)
    except KeyboardInterrupt:
        write_summary(interrupted_summary(matrix, run_id), config, prepared)
        raise
    summary = RunSummary(run_id, cells)
    write_summary(summary, config, prepared)
    try:
        write_reports(run_dir)
    except Exception as error:  # the report is a by-product: it never changes the exit code
        progress.line(f"warning: report not rendered: {type(error).__name__}: {error}")
    if config.ktap:
        try:
            progress.line(f"KTAP: {write_ktap(run_dir)}")
        except Exception as error:  # like the report, a by-product of summary.json and JUnit
            progress.line(f"warning: results.ktap not written: {type(error).__name__}: {error}")
    if config.kcidb:
        try:
            progress.line(f"KCIDB: {write_kcidb(run_dir, config.kcidb_origin)}")
        except Exception as error:  # a by-product too
            progress.line(f"warning: {KCIDB_NAME} not written: {type(error).__name__}: {error}")
    return summary


def interrupted_summary(matrix: Matrix, run_id: str) -> RunSummary:
    """What an interrupted run got done: the cells it decided, and each one it had
    begun with its stages so far and every guest test record that came back."""
    begun = matrix.unfinished()
    for cell, cell_dir in begun:
        cell.interrupted = True
        guest = read_records(cell_dir / "results.jsonl")
        cell.results = [
            TestOutcome(r.nodeid, GUEST_SUITE, r.outcome, r.message, duration=r.duration)
            for r in guest.results
        ]
        cell.tests = guest.counts()
        cell.outcomes = {r.nodeid: r.outcome for r in guest.results}
        write_json(cell_dir / "cell.json", cell.to_json())
    cells = [*matrix.finished.values(), *(cell for cell, _ in begun)]
    return RunSummary(run_id, cells, interrupted=True)


def write_summary(summary: RunSummary, config: RunConfig, prepared: Prepared) -> None:
    series = None
    if prepared.series is not None:
        series = {
            "name": prepared.series.name,
            "hash": prepared.series.content_hash(),
            # KCIDB's own hash: the patches' contents only (kcidb.json's patchset_hash).
            "patchset_hash": patchset_hash(patch.path for patch in prepared.series.patches),
            "patches": [patch.name for patch in prepared.series.patches],
        }
    source = {
        "origin": prepared.source.origin,
        "kernel_version": prepared.source.kernel_version,
        "package_version": prepared.source.package_version,
    }
    summary.facts.update(
        summary_facts(
            summary.cells,
            harness_version=__version__,
            expectations_file=expectations_path(config.expectations),
            arches=[arch.name for arch in config.arches],
            variants=config.variants,
            toolchains=[toolchain.name for toolchain in config.toolchains],
            series=series,
            source=source,
        )
    )
    write_json(config.results_dir / "summary.json", summary.to_json())
