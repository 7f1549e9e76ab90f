from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from harness.core.arches import get_arch
from harness.core.progress import Progress
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.source import KernelSource
from harness.run.config import Prepared, RunConfig
from harness.run.matrix import Matrix

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parent.parent
ARCHES = os.environ.get("HARNESS_E2E_ARCHES", "x86_64 arm64").split()


def load_guest_module(relative: str, name: str) -> ModuleType:
    """A guest-tests module that imports only the standard library (seccomplib's
    model.py, shrink.py), loaded alone rather than through its package, which is
    written for the guest."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "guest-tests" / relative)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def linux(tmp_path: Path) -> Path:
    """The fake kernel tree (tests/data/fakelinux), its files an hour old, so that patched
    files are newer than the objects built from them."""
    tree = tmp_path / "linux"
    shutil.copytree(DATA / "fakelinux", tree)
    old = time.time() - 3600
    for path in tree.rglob("*"):
        os.utime(path, (old, old))
    return tree


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """Config fragments for the fake tree, one option each."""
    directory = tmp_path / "configs"
    directory.mkdir()
    for name, option in (("base", "FAKE_BASE"), ("x86_64", "FAKE_X86"), ("arm64", "FAKE_ARM64"),
                         ("seccomp", "SECCOMP")):  # fmt: skip
        (directory / f"{name}.config").write_text(f"CONFIG_{option}=y\n")
    return directory


def one_cell_matrix(tmp_path: Path, **config: Any) -> Matrix:
    """A Matrix of x86_64/baseline over an empty fake tree, for host tests of its stages."""
    run_config = RunConfig(
        arches=[get_arch("x86_64")], variants=["baseline"], series_dir=tmp_path / "series",
        config_dir=tmp_path / "configs", guest_tests=tmp_path / "guest-tests",
        work=WorkDir(tmp_path / "work"), results_dir=tmp_path / "results", **config,
    )  # fmt: skip
    prepared = Prepared(
        source=KernelSource(tmp_path / "linux", "6.12.117", "directory"),
        series=None,
        merged={"x86_64": kconfig.MergedConfig()},
        index=kconfig.KconfigIndex(tmp_path),
    )
    return Matrix(run_config, prepared, Progress(io.StringIO(), live=False))


# Guest-side tests of the fault-injection runs: they run inside QEMU only.
collect_ignore = ["faults"]


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


# The results dirs of the real runs this session made, for the cells summary at its end.
E2E_RUNS: list[Path] = []


def error_line(record: dict[str, Any]) -> str:
    """The first line of a failed guest test's error: pytest's report starts with
    source lines, and its first `E` line is the exception."""
    lines = (record.get("message") or "").strip().splitlines()
    error = next((line[1:].strip() for line in lines if line.startswith("E ")), None)
    return error or (lines[0] if lines else "")


def not_passing_cells(directory: Path) -> list[str]:
    """One line per cell of a run dir that did not pass, then its failed tests (a few,
    each with its error line): what a CI log must show when an e2e test fails, since
    the tests' own messages are long (a whole outcome table)."""
    lines = []
    for cell_json in sorted(directory.glob("*/cell.json")):
        cell = json.loads(cell_json.read_text())
        if cell["status"] == "pass":
            continue
        name = f"{directory.name}/{cell_json.parent.name}"
        # The accelerator too: KVM may work on a CI runner where it does not here.
        accel = f" ({cell['accel']})" if cell.get("accel") else ""
        lines.append(f"{name}: {cell['status']}{accel}: {cell['reason']}")
        results = cell_json.parent / "results.jsonl"
        records = []
        if results.is_file():
            for line in results.read_text(errors="replace").splitlines():
                # A guest that died mid-write leaves a cut last line: the rest still counts.
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        failed = [
            r for r in records if r["type"] == "result" and r["outcome"] in ("failed", "error")
        ]
        for record in failed[:5]:
            lines.append(f"  {record['outcome']} {record['nodeid']}: {error_line(record)[:300]}")
        if len(failed) > 5:
            lines.append(f"  ... and {len(failed) - 5} more (see {results})")
    return lines


@pytest.hookimpl(trylast=True)  # after --durations' table: near the log's tail
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = [line for directory in E2E_RUNS for line in not_passing_cells(directory)]
    if lines:
        terminalreporter.section("e2e cells that did not pass")
        for line in lines:
            terminalreporter.line(line)


@pytest.fixture(scope="session")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> MatrixRun:
    directory = tmp_path_factory.mktemp("run") / "e2e"
    E2E_RUNS.append(directory)
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
