"""The CI files for GitHub and GitLab: valid, and covering the whole matrix."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.core.arches import ARCHES
from harness.core.toolchains import TOOLCHAINS
from harness.results.model import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
GITHUB = ROOT / ".github" / "workflows" / "kernel-matrix.yml"
GITLAB = ROOT / ".gitlab-ci.yml"
CI_RUN = ROOT / ".ci" / "run"
README = ROOT / "README.md"
TOX = ROOT / "tox.ini"
# The merged run the verdict job writes and publishes.
MERGED = "results/merged"
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
    assert set(matrix["toolchain"]) == set(TOOLCHAINS)
    assert set(matrix["variant"]) == set(VARIANTS)
    steps = {step.get("uses", "").split("@")[0]: step for step in cell["steps"]}
    assert "actions/cache" in steps and ".work/ccache" in steps["actions/cache"]["with"]["path"]
    assert "actions/upload-artifact" in steps
    assert "junit.xml" in steps["mikepenz/action-junit-report"]["with"]["report_paths"]
    commands = " ".join(step.get("run", "") for step in cell["steps"])
    assert "scripts/setup-host.sh" in commands
    assert "tox -e ${{ matrix.arch }}" in words(commands)
    assert "--toolchain ${{ matrix.toolchain }} --variant ${{ matrix.variant }}" in words(commands)


def test_gitlab_pipeline_structure() -> None:
    pipeline = load(GITLAB)
    assert pipeline["stages"] == ["checks", "matrix", "verdict"]
    assert "scripts/setup-host.sh" in pipeline["default"]["before_script"]
    cell = pipeline["cell"]
    assert cell["stage"] in pipeline["stages"]
    (axes,) = cell["parallel"]["matrix"]
    assert set(axes["ARCH"]) == set(ARCHES)
    assert set(axes["TOOLCHAIN"]) == set(TOOLCHAINS)
    assert set(axes["VARIANT"]) == set(VARIANTS)
    assert ".work/ccache" in cell["cache"]["paths"]
    assert cell["artifacts"]["reports"]["junit"].endswith("junit.xml")
    assert any(
        'tox -e "$ARCH" -- --toolchain "$TOOLCHAIN" --variant "$VARIANT"' in words(line)
        for line in cell["script"]
    )
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


# -- the verdict job: every cell's run directory merged into one run ------------------------


def every_cell() -> list[tuple[str, str, str]]:
    """(arch, toolchain, variant) in the order a run of the whole matrix takes them."""
    return [(a, t, v) for a in ARCHES for t in TOOLCHAINS for v in VARIANTS]


def merge_command(commands: str) -> list[str]:
    """The arguments after `tox -e merge --` in a job's commands (it fails the job by its
    exit code: nothing may swallow it)."""
    text = words(commands)
    assert text.count("tox -e merge --") == 1, text
    assert "|| true" not in text and "; true" not in text
    return text.split("tox -e merge --", 1)[1].split()


def test_tox_merge_env_runs_report_merge() -> None:
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(TOX)
    assert tox["testenv:merge"]["commands"].strip() == (
        "python -m harness report --merge {posargs}"
    )


def test_github_verdict_job_merges_every_cell_and_publishes_the_report() -> None:
    jobs = load(GITHUB)["jobs"]
    verdict = jobs["verdict"]
    assert verdict["needs"] == "cell"
    # After the cells, whatever they gave; not when they never ran or the run was cancelled.
    assert "!cancelled()" in verdict["if"] and "needs.cell.result != 'skipped'" in verdict["if"]
    assert "continue-on-error" not in verdict
    steps = verdict["steps"]
    uses = [step.get("uses", "").split("@")[0] for step in steps]
    download = steps[uses.index("actions/download-artifact")]["with"]
    # Every cell job uploads its run directory as run-ARCH-VARIANT; the race jobs do not match.
    cell_upload = next(
        step for step in jobs["cell"]["steps"]
        if step.get("uses", "").startswith("actions/upload-artifact")
    )  # fmt: skip
    assert cell_upload["with"]["name"] == (
        "run-${{ matrix.arch }}-${{ matrix.toolchain }}-${{ matrix.variant }}"
    )
    assert download["pattern"] == "run-*"
    race_upload = next(step for step in jobs["race"]["steps"] if "upload-artifact" in
                       step.get("uses", ""))  # fmt: skip
    assert not race_upload["with"]["name"].startswith("run-")
    merge_step = next(step for step in steps if "tox -e merge" in step.get("run", ""))
    assert "if" not in merge_step and "continue-on-error" not in merge_step
    arguments = merge_command(merge_step["run"])
    run_dirs = [f"{download['path']}/run-{a}-{t}-{v}" for a, t, v in every_cell()]
    assert arguments == [*run_dirs, "--kcidb", "--results", MERGED]
    publish = [step for step in steps if step is not merge_step and step.get("if", "")]
    assert all(step["if"].startswith("always()") for step in publish)
    upload = next(step for step in publish if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["path"] == MERGED
    assert any(f"{MERGED}/report.md" in step.get("run", "") and "GITHUB_STEP_SUMMARY" in
               step["run"] for step in publish)  # fmt: skip
    assert "setup-host" not in str(verdict)  # no kernel toolchain needed to merge


def test_gitlab_verdict_job_merges_every_cell_and_publishes_the_report() -> None:
    pipeline = load(GITLAB)
    verdict = pipeline["verdict"]
    assert pipeline["stages"].index(verdict["stage"]) > pipeline["stages"].index(
        pipeline["cell"]["stage"]
    )
    assert verdict["needs"] == ["cell"] and verdict["when"] == "always"
    assert "allow_failure" not in verdict
    # The cells' artifacts land where their jobs wrote them: results/ARCH-TOOLCHAIN-VARIANT.
    assert pipeline["cell"]["artifacts"]["paths"] == ["results/$ARCH-$TOOLCHAIN-$VARIANT"]
    (command,) = [line for line in verdict["script"] if "tox -e merge" in line]
    run_dirs = [f"results/{a}-{t}-{v}" for a, t, v in every_cell()]
    assert merge_command(command) == [*run_dirs, "--kcidb", "--results", MERGED]
    artifacts = verdict["artifacts"]
    assert artifacts["when"] == "always" and artifacts["paths"] == [f"{MERGED}/"]
    assert "setup-host" not in " ".join(verdict["before_script"])
