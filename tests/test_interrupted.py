"""An interrupted run (Ctrl-C, SIGTERM, SIGHUP) still writes summary.json: status
`interrupted` (exit 130), the cells it decided as they were, and each cell it had
begun with its stages so far and every guest test record that came back."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from harness.core.arches import ARCHES, get_arch
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.vocabulary import Variant
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.source import KernelSource
from harness.results.model import Cell, StageState
from harness.run.cellbuild import CellBuilder
from harness.run.config import Prepared, RunConfig
from harness.run.summary import run_matrix

RECORDS = (
    '{"type": "session", "time": 1}\n'
    '{"type": "start", "nodeid": "test_a.py::test_one"}\n'
    '{"type": "result", "nodeid": "test_a.py::test_one", "outcome": "passed", "duration": 0.5}\n'
    '{"type": "start", "nodeid": "test_a.py::test_two"}\n'
)


def test_an_interrupted_run_writes_what_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def build_cell(self: CellBuilder, arch: object, variant: Variant, run_dir: Path) -> Cell:
        cell = Cell(ARCHES["x86_64"], variant)
        cell_dir = run_dir / f"x86_64-{variant}"
        cell_dir.mkdir(parents=True)
        self.opened.append((cell, cell_dir))
        for stage in ("patch", "config", "build"):
            cell.stages[stage].state = StageState.PASS
        if variant == Variant.BASELINE:
            cell.fail(Status.BUILD_FAILED, "build: failed")  # decided: a finished cell
            return cell
        (cell_dir / "results.jsonl").write_text(RECORDS)  # the guest had begun its tests
        raise KeyboardInterrupt

    monkeypatch.setattr(CellBuilder, "build_cell", build_cell)
    config = RunConfig(
        arches=[get_arch("x86_64")], variants=[Variant.BASELINE, Variant.PATCHED],
        series_dir=tmp_path / "series", config_dir=tmp_path / "configs",
        guest_tests=tmp_path / "guest-tests", work=WorkDir(tmp_path / "work"),
        results_dir=tmp_path / "run",
    )  # fmt: skip
    prepared = Prepared(
        KernelSource(tmp_path / "linux", "6.12.117", "directory"), None,
        {"x86_64": kconfig.MergedConfig()}, kconfig.KconfigIndex(tmp_path),
    )  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        run_matrix(config, prepared, "r1", Progress(io.StringIO(), live=False))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (summary["status"], summary["exit_code"]) == ("interrupted", 130)
    baseline, patched = summary["cells"]
    assert (baseline["variant"], baseline["status"]) == ("baseline", "build_failed")
    assert (patched["variant"], patched["status"], patched["exit_code"]) == (
        "patched", "interrupted", 130
    )  # fmt: skip
    assert patched["stages"]["build"]["status"] == "pass"
    assert patched["stages"]["test"]["status"] == "not_run"
    assert [(r["nodeid"], r["outcome"]) for r in patched["results"]] == [
        ("test_a.py::test_one", "passed")
    ]
    written = json.loads((tmp_path / "run" / "x86_64-patched" / "cell.json").read_text())
    assert written["status"] == "interrupted"
