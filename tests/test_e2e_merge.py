"""End to end: one arch's baseline and patched cells run apart, as CI's cell jobs run them,
then merged by `harness report --merge`, give the differences and verdict of one run of
both (the `matrix_run` fixture's, whose kernels they reuse: each part boots and tests a
kernel already built, about a minute for the two under TCG).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ARCHES, E2E_RUNS, ROOT, MatrixRun

from harness.core.arches import get_arch
from harness.core.vocabulary import Variant
from harness.results.model import CellKey
from harness.results.rundir import load_run

pytestmark = pytest.mark.e2e

ARCH = ARCHES[0]
VARIANTS = ("baseline", "patched")


@dataclass(frozen=True)
class MergedRun:
    directory: Path
    exit_code: int
    output: str
    summary: dict[str, Any]
    part_exit_codes: dict[str, int]


def harness(*arguments: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [sys.executable, "-m", "harness", *arguments],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600,
    )  # fmt: skip
    sys.stderr.write(completed.stderr)
    return completed


@pytest.fixture(scope="module")
def merged_apart(matrix_run: MatrixRun, tmp_path_factory: pytest.TempPathFactory) -> MergedRun:
    """`matrix_run` first: its builds are what the parts boot."""
    root = tmp_path_factory.mktemp("apart")
    parts, exit_codes = [], {}
    for variant in VARIANTS:
        part = root / f"{ARCH}-{variant}"
        E2E_RUNS.append(part)
        completed = harness("run", "--arch", ARCH, "--variant", variant, "--results", str(part))
        assert (part / "summary.json").is_file(), completed.stderr[-3000:]
        parts.append(str(part))
        exit_codes[variant] = completed.returncode
    merged = root / "merged"
    completed = harness("report", "--merge", *parts, "--results", str(merged))
    assert (merged / "summary.json").is_file(), completed.stderr[-3000:]
    summary = json.loads((merged / "summary.json").read_text())
    return MergedRun(merged, completed.returncode, completed.stdout, summary, exit_codes)


def test_merged_cells_run_apart_have_the_one_runs_differences(
    merged_apart: MergedRun, matrix_run: MatrixRun
) -> None:
    assert merged_apart.summary["differences"] == {ARCH: matrix_run.summary["differences"][ARCH]}
    assert merged_apart.summary["differences"][ARCH]  # PTRACE_SECCOMP: skipped -> passed


def test_merged_cells_run_apart_have_the_one_runs_verdict(
    merged_apart: MergedRun, matrix_run: MatrixRun
) -> None:
    together = {v: matrix_run.cell(ARCH, v) for v in VARIANTS}
    apart = {c["variant"]: c for c in merged_apart.summary["cells"]}
    assert {v: apart[v]["status"] for v in VARIANTS} == {
        v: together[v]["status"] for v in VARIANTS
    }, merged_apart.output
    worst_together = max(together[v]["exit_code"] for v in VARIANTS)
    assert merged_apart.exit_code == merged_apart.summary["exit_code"] == worst_together
    # The parts' own exit codes were each cell's: the merge adds no verdict of its own.
    assert merged_apart.part_exit_codes == {v: together[v]["exit_code"] for v in VARIANTS}
    cells = {f"{ARCH}/{v}" for v in VARIANTS}
    for key in ("departures", "stale_expectations"):
        assert merged_apart.summary[key] == [
            entry for entry in matrix_run.summary[key] if entry["cell"] in cells
        ], key


def test_merged_cells_run_apart_have_the_one_runs_outcomes(
    merged_apart: MergedRun, matrix_run: MatrixRun
) -> None:
    together, apart = load_run(matrix_run.directory), load_run(merged_apart.directory)
    for variant in VARIANTS:
        key = CellKey(get_arch(ARCH), Variant(variant))
        one, other = together.cell(key), apart.cell(key)
        assert one is not None and other is not None
        # Only the tests that differ: the whole table would hide the other failures in a CI log.
        names = one.outcomes.keys() | other.outcomes.keys()
        differing = {
            name: (one.outcomes.get(name), other.outcomes.get(name))
            for name in sorted(names)
            if one.outcomes.get(name) != other.outcomes.get(name)
        }
        assert not differing, f"{ARCH}/{variant}, (together, apart): {differing}"
