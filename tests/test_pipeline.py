from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest

from harness import kconfig
from harness.arches import get_arch
from harness.pipeline import Matrix, Prepared, RunConfig
from harness.progress import Progress
from harness.source import KernelSource
from harness.status import Status
from harness.workdir import WorkDir


@pytest.fixture
def matrix(tmp_path: Path) -> Matrix:
    config = RunConfig(
        arches=[get_arch("x86_64")], variants=["baseline"], series_dir=tmp_path / "series",
        config_dir=tmp_path / "configs", guest_tests=tmp_path / "guest-tests",
        work=WorkDir(tmp_path / "work"), results_dir=tmp_path / "results",
    )  # fmt: skip
    prepared = Prepared(
        source=KernelSource(tmp_path / "linux", "6.12.117", "directory"),
        series=None,
        merged={"x86_64": kconfig.MergedConfig()},
        index=kconfig.KconfigIndex(tmp_path),
    )
    return Matrix(config, prepared, Progress(io.StringIO(), live=False))


def test_host_error_in_a_cell_is_infra_and_the_cell_is_still_written(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(variant: str) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matrix, "tree_for", disk_full)
    cell = matrix.run_cell(get_arch("x86_64"), "baseline", tmp_path / "results")
    assert cell.status is Status.INFRA
    assert "No space left on device" in cell.reason
    written = json.loads((tmp_path / "results/x86_64-baseline/cell.json").read_text())
    assert written["status"] == "infra" and written["exit_code"] == 10


def test_build_key_follows_every_input(tmp_path: Path) -> None:
    from harness.pipeline import build_key

    source = KernelSource(tmp_path / "linux", "6.12.117", "debian-package", "6.12.117-1")
    merged = kconfig.MergedConfig()
    merged.add(kconfig.Option("SECCOMP", "y", "f:1"))
    key = build_key(source, None, merged, "gcc 12.2.0")
    assert key == build_key(source, None, merged, "gcc 12.2.0")
    assert key != build_key(source, None, merged, "gcc 13.1.0")
    newer = KernelSource(tmp_path / "linux", "6.12.118", "debian-package", "6.12.118-1")
    assert key != build_key(newer, None, merged, "gcc 12.2.0")
    other = kconfig.MergedConfig()
    other.add(kconfig.Option("SECCOMP", "n", "f:1"))
    assert key != build_key(source, None, other, "gcc 12.2.0")


def test_patched_build_dir_is_keyed_by_series_and_config(matrix: Matrix, tmp_path: Path) -> None:
    from harness.series import Series

    arch = get_arch("x86_64")
    baseline = matrix.build_dir(arch, "baseline")
    matrix.prepared.series = Series("my-series", tmp_path, ())
    patched = matrix.build_dir(arch, "patched")
    digest = matrix.prepared.merged["x86_64"].digest()[:12]
    assert baseline.name == f"x86_64-baseline-{digest}"
    assert patched.name == f"x86_64-patched-my-series-{digest}"
