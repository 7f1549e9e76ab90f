"""`boot` takes the work-dir lock as a run does; `test --live` takes it shared:
live runs go side by side, never beside a run, build, boot or check-series."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_bad_input import Inputs

from harness.cli.main import main
from harness.core.errors import BadInput
from harness.core.status import EXIT_BAD_INPUT
from harness.core.workdir import WorkDirLock


def test_boot_is_refused_while_a_run_holds_the_work_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = Inputs(tmp_path)
    work = tmp_path / "work"
    with WorkDirLock(work):
        code = main([
            "boot", "--arch", "x86_64", "--variant", "baseline", "--source", str(inputs.linux),
            "--configs", str(inputs.configs), "--work-dir", str(work),
            "--matrix", str(inputs.matrix),
        ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_BAD_INPUT
    assert len(err) == 1 and f"work dir {work} is in use by pid " in err[0]


def test_readers_share_the_lock_and_keep_a_writer_out(tmp_path: Path) -> None:
    with (
        WorkDirLock(tmp_path, shared=True),
        WorkDirLock(tmp_path, shared=True),
        pytest.raises(BadInput, match="is in use"),
    ):
        WorkDirLock(tmp_path).__enter__()
    with WorkDirLock(tmp_path), pytest.raises(BadInput, match="is in use"):
        WorkDirLock(tmp_path, shared=True).__enter__()
