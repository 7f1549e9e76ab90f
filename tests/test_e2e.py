"""End to end: really patch, build, boot and test the matrix, once per session.

Every test here reads the one run made by the `matrix_run` fixture; set
HARNESS_E2E_ARCHES (e.g. "x86_64") to run fewer arches, or deselect the
whole module with `-m "not e2e"`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
ARCHES = os.environ.get("HARNESS_E2E_ARCHES", "x86_64 arm64").split()


@dataclass(frozen=True)
class MatrixRun:
    directory: Path
    exit_code: int
    output: str
    summary: dict[str, Any]

    def cell(self, arch: str, variant: str) -> dict[str, Any]:
        return next(
            c for c in self.summary["cells"] if c["arch"] == arch and c["variant"] == variant
        )

    def outcomes(self, arch: str, variant: str) -> dict[str, str]:
        results = self.directory / f"{arch}-{variant}" / "results.jsonl"
        records = [json.loads(line) for line in results.read_text().splitlines()]
        return {r["nodeid"]: r["outcome"] for r in records if r["type"] == "result"}


@pytest.fixture(scope="session")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> MatrixRun:
    directory = tmp_path_factory.mktemp("run") / "e2e"
    command = [sys.executable, "-m", "harness", "run", "--results", str(directory)]
    for arch in ARCHES:
        command += ["--arch", arch]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3 * 3600
    )
    sys.stderr.write(completed.stderr)
    summary_path = directory / "summary.json"
    assert summary_path.is_file(), completed.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    return MatrixRun(directory, completed.returncode, completed.stderr, summary)


def test_every_cell_builds_boots_and_passes(matrix_run: MatrixRun) -> None:
    statuses = {f"{c['arch']}/{c['variant']}": c["status"] for c in matrix_run.summary["cells"]}
    assert statuses == {f"{a}/{v}": "pass" for a in ARCHES for v in ("baseline", "patched")}, (
        matrix_run.output[-3000:]
    )
    assert matrix_run.exit_code == 0
    assert matrix_run.summary["status"] == "pass"


@pytest.mark.parametrize("arch", ARCHES)
def test_summary_records_versions_hashes_and_stage_times(matrix_run: MatrixRun, arch: str) -> None:
    for variant in ("baseline", "patched"):
        cell = matrix_run.cell(arch, variant)
        assert cell["kernel_version"].startswith("6.12")
        assert cell["kernel_release"] == cell["kernel_version"]
        assert len(cell["config_hash"]) == 64
        assert cell["toolchain"].startswith(("gcc", "aarch64-linux-gnu-gcc", "x86_64"))
        assert cell["qemu"].startswith("QEMU emulator")
        for stage in ("patch", "config", "build", "boot", "test"):
            assert cell["stages"][stage]["status"] == "pass", (stage, cell["stages"][stage])
        assert cell["stages"]["build"]["seconds"] > 0
        assert cell["accel"] in ("kvm", "tcg")
    assert matrix_run.cell(arch, "baseline")["series_hash"] is None
    assert len(matrix_run.cell(arch, "patched")["series_hash"]) == 64


@pytest.mark.parametrize("arch", ARCHES)
def test_guest_results_reach_the_host_as_junit(matrix_run: MatrixRun, arch: str) -> None:
    for variant in ("baseline", "patched"):
        cell_dir = matrix_run.directory / f"{arch}-{variant}"
        suite = ET.parse(cell_dir / "junit.xml").getroot().find("testsuite")
        assert suite is not None
        assert suite.get("name") == f"{arch}.{variant}"
        assert int(suite.get("tests", "0")) == matrix_run.cell(arch, variant)["tests"]["total"] > 0
        assert suite.get("failures") == "0" and suite.get("errors") == "0"
        console = (cell_dir / "console.log").read_text(errors="replace")
        assert "HARNESS: userspace up" in console
        assert (cell_dir / "qemu.sh").read_text().startswith("#!/bin/sh")
        assert (cell_dir / "build.log").stat().st_size > 0


@pytest.mark.parametrize("arch", ARCHES)
def test_ptrace_seccomp_runs_on_patched_and_skips_on_baseline(
    matrix_run: MatrixRun, arch: str
) -> None:
    baseline = matrix_run.outcomes(arch, "baseline")
    patched = matrix_run.outcomes(arch, "patched")
    patch_only = [n for n in patched if n.startswith("test_ptrace_seccomp.py::")]
    assert patch_only
    assert all(baseline[n] == "skipped" for n in patch_only)
    assert all(patched[n] in ("passed", "skipped") for n in patch_only)
    assert sum(patched[n] == "passed" for n in patch_only) >= len(patch_only) - 1
    # Mainline behaviour is the same on both kernels.
    mainline = [n for n in baseline if n.startswith("test_return_values.py::")]
    assert mainline and all(baseline[n] == patched[n] == "passed" for n in mainline)
