"""The CI files for GitHub and GitLab: valid, and covering the whole matrix."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.arches import ARCHES
from harness.pipeline import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github" / "workflows" / "kernel-matrix.yml"
GITLAB = ROOT / ".gitlab-ci.yml"


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_github_workflow_passes_actionlint() -> None:
    actionlint = shutil.which("actionlint")
    if actionlint is None:
        pytest.skip("actionlint not installed (tox -e tests installs it)")
    result = subprocess.run([actionlint, str(GITHUB)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_github_matrix_covers_every_cell_and_publishes_results() -> None:
    cell = load(GITHUB)["jobs"]["cell"]
    matrix = cell["strategy"]["matrix"]
    assert set(matrix["arch"]) == set(ARCHES)
    assert set(matrix["variant"]) == set(VARIANTS)
    steps = {step.get("uses", "").split("@")[0]: step for step in cell["steps"]}
    assert "actions/cache" in steps and ".work/ccache" in steps["actions/cache"]["with"]["path"]
    assert "actions/upload-artifact" in steps
    assert "junit.xml" in steps["mikepenz/action-junit-report"]["with"]["report_paths"]
    commands = " ".join(step.get("run", "") for step in cell["steps"])
    assert "scripts/setup-host.sh" in commands
    assert "tox -e ${{ matrix.arch }}" in commands


def test_gitlab_pipeline_structure() -> None:
    pipeline = load(GITLAB)
    assert pipeline["stages"] == ["checks", "matrix"]
    assert "scripts/setup-host.sh" in pipeline["default"]["before_script"]
    cell = pipeline["cell"]
    assert cell["stage"] in pipeline["stages"]
    (axes,) = cell["parallel"]["matrix"]
    assert set(axes["ARCH"]) == set(ARCHES)
    assert set(axes["VARIANT"]) == set(VARIANTS)
    assert ".work/ccache" in cell["cache"]["paths"]
    assert cell["artifacts"]["reports"]["junit"].endswith("junit.xml")
    assert any("tox -e" in line for line in cell["script"])
    for name, job in pipeline.items():
        if isinstance(job, dict) and "script" in job:
            assert job.get("stage") in pipeline["stages"], name
