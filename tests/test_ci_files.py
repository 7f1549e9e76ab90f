"""The CI files for GitHub and GitLab: valid, and covering the whole matrix."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.core.arches import ARCHES
from harness.results.model import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github" / "workflows" / "kernel-matrix.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
CI_RUN = ROOT / ".ci" / "run"
README = ROOT / "README.md"
# The race cell's options after `harness run --arch ARCH` (README, "Race cell").
RACE_OPTIONS = (
    "--variant patched --feature seccomp --feature debug-race "
    "--pytest-arg=-m --pytest-arg=race --pytest-arg=--repeat=50 "
    "--no-selftests --timeout-factor 3"
)


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def words(text: str) -> str:
    """Whitespace, line breaks and shell continuations folded to single spaces."""
    return " ".join(text.replace("\\\n", " ").split())


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


def test_readme_documents_the_race_command() -> None:
    assert f"harness run --arch x86_64 {RACE_OPTIONS}" in words(README.read_text())


def test_github_runs_the_race_cell_nightly_for_every_arch() -> None:
    workflow = load(GITHUB)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    assert [entry["cron"] for entry in triggers["schedule"]]
    race = workflow["jobs"]["race"]
    assert race["if"] == "github.event_name == 'schedule'"
    assert race["needs"] == "checks"
    assert set(race["strategy"]["matrix"]["arch"]) == set(ARCHES)
    commands = words(" ".join(step.get("run", "") for step in race["steps"]))
    assert f"tox -e ${{{{ matrix.arch }}}} -- {RACE_OPTIONS}" in commands
    uses = {step.get("uses", "").split("@")[0] for step in race["steps"]}
    assert {"actions/upload-artifact", "mikepenz/action-junit-report"} <= uses
    # The push and pull-request matrix stays as it was: no race options there.
    cell = workflow["jobs"]["cell"]
    assert "if" not in cell and "debug-race" not in str(cell)


def test_gitlab_runs_the_race_cell_in_scheduled_pipelines_only() -> None:
    pipeline = load(GITLAB)
    race = pipeline["race"]
    assert race["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "schedule"'}]
    (axes,) = race["parallel"]["matrix"]
    assert set(axes["ARCH"]) == set(ARCHES)
    assert any(f'tox -e "$ARCH" -- {RACE_OPTIONS}' in words(line) for line in race["script"])
    assert race["artifacts"]["reports"]["junit"].endswith("junit.xml")
    assert "rules" not in pipeline["cell"] and "debug-race" not in str(pipeline["cell"])


def test_ci_run_does_not_run_the_race_cell() -> None:
    script = CI_RUN.read_text()
    assert "debug-race" not in script and "--repeat" not in script and "race" not in script
