"""`run`, `build`, `test` and `check-series`: the commands that run the matrix
(or every prefix of the series) under the work-dir lock."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from harness.checks import checkseries
from harness.cli import livecmds, settings
from harness.core.progress import Progress
from harness.core.vocabulary import Variant
from harness.core.workdir import WorkDirLock, nothing_left_on_bad_input
from harness.run import inputs, summary
from harness.run.config import RunConfig


def _matrix(args: argparse.Namespace, do_build: bool, do_test: bool) -> int:
    progress = Progress(quiet=args.quiet)
    with (
        settings.fresh_run_dir(
            settings.make_config(args, do_build, do_test), args.results
        ) as config,
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        args.run_dir = config.results_dir
        prepared = inputs.prepare(config, progress.line)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); "
            f"cells: {', '.join(f'{p}/{v}' for p in config.platforms for v in config.variants)}; "
            f"results: {config.results_dir}"
        )
        finished = summary.run_matrix(config, prepared, config.results_dir.name, progress)
    _point_latest_at(config.results_dir)
    status = finished.status()
    for cell in finished.cells:
        counts = " ".join(f"{k}={v}" for k, v in cell.tests.items() if v) or "no tests"
        progress.line(
            f"{cell.name}: {cell.status.label}: {counts}"
            + (f" -- {cell.reason}" if cell.reason else "")
        )
    if config.expectations.path is not None:
        judged = [cell.facts.get("expectations") or {} for cell in finished.cells]
        totals = [
            sum(len(j.get(key, [])) for j in judged)
            for key in ("departures", "expected_failures", "stale")
        ]
        progress.line(
            f"expectations {config.expectations.path}: {totals[0]} departure(s), "
            f"{totals[1]} expected failure(s), {totals[2]} stale glob(s)"
        )
    progress.line(
        f"run {status.label} (exit {status.exit_code}); see {config.results_dir}/summary.json"
    )
    return status.exit_code


def _point_latest_at(run_dir: Path) -> None:
    """`results/latest` -> the run, when the run is in the results root; nowhere else.

    `--results /tmp/x` must not create or replace `/tmp/latest`, which is not ours.
    """
    root = settings.results_root()
    if run_dir.resolve().parent != root.resolve():
        return
    latest = root / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(run_dir.name)


def cmd_run(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=True)


def cmd_build(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=False)


def cmd_test(args: argparse.Namespace) -> int:
    if args.live:
        return livecmds.live_test(args)
    return _matrix(args, do_build=False, do_test=True)


def cmd_check_series(args: argparse.Namespace) -> int:
    """Every prefix of the series applies and builds; checkpatch, sign-offs, W=1 per patch;
    with --boot, every prefix that builds also boots and behaves as the expectations say."""
    config = dataclasses.replace(
        settings.make_config(args, True, args.boot), variants=[Variant.PATCHED]
    )
    progress = Progress(quiet=args.quiet)
    with (
        settings.fresh_run_dir(config, args.results) as config,
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        args.run_dir = config.results_dir
        prepared = inputs.prepare(config, progress.line)
        series = checkseries.check_inputs(prepared)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); check-series "
            f"of {series.name} ({len(series.patches)} patches) for "
            f"{', '.join(p.name for p in config.platforms)}; results: {config.results_dir}"
        )
        if args.boot:
            progress.line(f"--boot: each prefix is booted and judged by {_judged_by(config)}")
        result = checkseries.run_check_series(config, prepared, progress)
    for line in result.lines():
        print(line)
    progress.line(f"see {config.results_dir}/check-series.md and check-series.json")
    return result.status().exit_code


def _judged_by(config: RunConfig) -> str:
    path = config.expectations.path
    return f"{path} (base: baseline, patches: patched)" if path else "no expectations file"
