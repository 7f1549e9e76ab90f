"""End to end: a clang cell (`--toolchain clang`, LLVM=1) builds, boots and passes the
guest tests and selftests under the gcc cells' expectations, and everything says it
was clang's: the run's names, the .config, and the kernel the guest booted.

One cell (x86_64 patched): a cold clang build costs as much as a gcc one, and the
baseline cell takes no path the patched one does not. About 8 minutes cold on 2
cores (more on CI's), a minute with the clang objects in ccache.

Opt in with HARNESS_E2E_CLANG=1: beside the gcc matrix, that cold build took
`.ci/run` to 58.7 of its 60 minutes, so `.ci/run` leaves it out; CI's cell jobs
(the GitHub and GitLab files) build and test the clang cells of both arches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("HARNESS_E2E_CLANG") != "1",
        reason="a cold clang cell: opt in with HARNESS_E2E_CLANG=1",
    ),
]

CELL = "x86_64-clang-patched"


@pytest.fixture(scope="module")
def clang_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, dict[str, Any]]:
    directory = tmp_path_factory.mktemp("clang") / "run"
    command = [sys.executable, "-m", "harness", "run", "--arch", "x86_64"]
    command += ["--toolchain", "clang", "--variant", "patched", "--results", str(directory)]
    completed = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=3600
    )
    sys.stderr.write(completed.stderr[-5000:])
    assert (directory / "summary.json").is_file(), completed.stderr[-3000:]
    summary = json.loads((directory / "summary.json").read_text())
    return completed.returncode, directory, summary


def test_the_clang_cell_passes_under_the_gcc_expectations(
    clang_run: tuple[int, Path, dict[str, Any]],
) -> None:
    exit_code, _, summary = clang_run
    (cell,) = summary["cells"]
    assert (exit_code, summary["status"], cell["status"]) == (0, "pass", "pass"), cell["reason"]
    assert summary["toolchains"] == ["clang"]
    assert summary["departures"] == [] and summary["stale_expectations"] == []
    assert cell["tests"]["passed"] >= 100 and cell["tests"].get("failed", 0) == 0
    seccomp, ptrace = (cell["selftest_suites"][suite]["own"] for suite in ("seccomp_bpf", "ptrace"))
    assert seccomp["passed"] > 0 and seccomp.get("failed", 0) == 0
    # x86_64: every ptrace case passes (vmaccess.attach is left out by the table).
    assert ptrace["passed"] == 4 and ptrace.get("failed", 0) == 0


def test_everything_says_clang(clang_run: tuple[int, Path, dict[str, Any]]) -> None:
    _, directory, summary = clang_run
    (cell,) = summary["cells"]
    assert (cell["arch"], cell["toolchain"], cell["variant"]) == ("x86_64", "clang", "patched")
    assert cell["compiler"].startswith("Debian clang version")
    config = (directory / CELL / "config").read_text()
    assert "CONFIG_CC_IS_CLANG=y" in config and "CONFIG_LD_IS_LLD=y" in config
    # The kernel the guest booted names its compiler in its banner.
    banner = next(
        line
        for line in (directory / CELL / "console.log").read_text(errors="replace").splitlines()
        if "Linux version" in line
    )
    assert "clang version" in banner and "LLD" in banner, banner
    junit = (directory / CELL / "junit.xml").read_text()
    assert 'name="x86_64-clang.patched"' in junit
