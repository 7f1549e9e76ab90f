"""Bad input: a one-line error naming the thing, exit 2, before any long work."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from run_samples import copy_sample_run

from harness.cli.commandline import CommandLine
from harness.cli.main import build_parser, main
from harness.cli.settings import make_config
from harness.core.arches import ARCHES, get_arch
from harness.core.status import EXIT_BAD_INPUT
from harness.core.vocabulary import Accel
from harness.run.inputs import fragments_for


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.fixture
def isolated(tmp_path: Path) -> list[str]:
    return ["--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results")]


def test_unknown_arch(capsys: pytest.CaptureFixture[str], isolated: list[str]) -> None:
    code, err = run_cli(capsys, "run", "--arch", "sparc", *isolated)
    assert code == EXIT_BAD_INPUT
    assert err == "harness: error: --arch sparc: unknown architecture; choose one of x86_64, arm64"


def test_unknown_variant(capsys: pytest.CaptureFixture[str], isolated: list[str]) -> None:
    code, err = run_cli(capsys, "build", "--arch", "x86_64", "--variant", "nightly", *isolated[:2])
    assert code == EXIT_BAD_INPUT
    assert "--variant nightly: unknown" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["test", "--live", "--arch", "sparc"], "--arch sparc: unknown architecture"),
        (["test", "--live", "--variant", "nightly"], "--variant nightly: unknown"),
        (["boot", "--ssh", "--arch", "x86_64", "--variant", "nightly"], "--variant nightly"),
        (["bisect", "--arch", "x86_64", "--arch", "sparc"], "--arch sparc: unknown"),
    ],
)
def test_arch_and_variant_are_checked_as_the_command_line_is_read(
    capsys: pytest.CaptureFixture[str], isolated: list[str], argv: list[str], named: str
) -> None:
    code, err = run_cli(capsys, *argv, *isolated)
    assert code == EXIT_BAD_INPUT
    assert err.startswith(f"harness: error: {named}") and len(err.splitlines()) == 1, err


def test_the_typed_view_of_a_command_without_matrix_options() -> None:
    line = CommandLine.of(build_parser().parse_args(["report", "run-dir"]))
    assert (line.command, line.arches, line.variants, line.work_dir) == ("report", None, None, None)
    assert (line.cmdline, line.pytest_args, line.run_dir) == ([], [], None)
    line = CommandLine.of(build_parser().parse_args(["test", "--arch", "arm64", "--accel", "tcg"]))
    assert line.arches == [get_arch("arm64")] and line.accel is Accel.TCG
    assert line.default_arches == [get_arch(name) for name in ARCHES] and line.variants is None


def test_missing_series(
    capsys: pytest.CaptureFixture[str], isolated: list[str], tmp_path: Path
) -> None:
    code, err = run_cli(
        capsys, "run", "--arch", "x86_64", "--series", str(tmp_path / "nope"), *isolated
    )
    assert code == EXIT_BAD_INPUT
    assert err.endswith("nope/series: no series file; list the patches there, one per line")
    assert len(err.splitlines()) == 1


def test_malformed_fragment_line(
    capsys: pytest.CaptureFixture[str], isolated: list[str], tmp_path: Path
) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("base", "x86_64"):
        (configs / f"{name}.config").write_text("CONFIG_SMP=y\n")
    (configs / "seccomp.config").write_text("CONFIG_SECCOMP=yes please\n")
    code, err = run_cli(
        capsys, "run", "--arch", "x86_64", "--variant", "baseline", "--configs", str(configs),
        *isolated,
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "seccomp.config:1: malformed line" in err


def test_unwritable_results_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, err = run_cli(
        capsys, "run", "--arch", "x86_64", "--variant", "baseline",
        "--work-dir", str(tmp_path / "work"), "--results", str(blocker / "sub"),
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "--results" in err and "not writable" in err


def test_source_that_is_not_a_kernel_tree(
    capsys: pytest.CaptureFixture[str], isolated: list[str], tmp_path: Path
) -> None:
    code, err = run_cli(
        capsys, "run", "--arch", "x86_64", "--variant", "baseline", "--source", str(tmp_path),
        *isolated,
    )  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert "not a Linux kernel tree (missing Makefile" in err


def test_second_run_on_a_locked_work_dir_is_refused(
    capsys: pytest.CaptureFixture[str], isolated: list[str], tmp_path: Path
) -> None:
    from harness.core.workdir import WorkDirLock

    with WorkDirLock(tmp_path / "work"):
        code, err = run_cli(capsys, "run", "--arch", "x86_64", "--variant", "baseline", *isolated)
    assert code == EXIT_BAD_INPUT
    assert "is in use by pid" in err


def test_commit_range_without_a_git_tree(
    capsys: pytest.CaptureFixture[str], isolated: list[str]
) -> None:
    code, err = run_cli(capsys, "build", "--arch", "x86_64", "--commits", "v6.12..HEAD", *isolated)
    assert code == EXIT_BAD_INPUT
    assert err == "harness: error: --commits needs --source, the git tree that holds the commits"


def test_a_kcidb_origin_kcidb_refuses_is_bad_input(
    capsys: pytest.CaptureFixture[str], isolated: list[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as refused:  # argparse refuses it, as any bad value
        main(["run", "--kcidb", "--kcidb-origin", "My-CI", *isolated])
    assert refused.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.strip() == (
        "harness: error: argument --kcidb-origin: 'My-CI': a KCIDB origin is lower-case "
        "letters, digits and '_' only, e.g. my_lab_ci; see 'harness run --help'"
    )
    assert not (tmp_path / "work").exists() and not (tmp_path / "results").exists()


def test_report_kcidb_writes_kcidb_json_with_the_origin_it_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The origin: --kcidb-origin, else the matrix file's kcidb-origin, else the default."""
    run_dir = copy_sample_run(tmp_path / "run")
    written = run_dir / "kcidb.json"

    def origins() -> set[str]:
        data = json.loads(written.read_text())
        return {item["origin"] for kind in ("checkouts", "builds", "tests") for item in data[kind]}

    assert main(["report", "--kcidb", str(run_dir)]) == 0
    assert str(written) in capsys.readouterr().out.splitlines()
    assert origins() == {"kernel_series_harness"}  # the checked-in harness.toml's
    matrix = tmp_path / "harness.toml"
    matrix.write_text('kcidb-origin = "from_the_file"\n')
    assert main(["report", "--kcidb", "--matrix", str(matrix), str(run_dir)]) == 0
    assert origins() == {"from_the_file"}
    argv = ["report", "--kcidb", "--matrix", str(matrix), "--kcidb-origin", "my_lab", str(run_dir)]
    assert main(argv) == 0
    assert origins() == {"my_lab"}
    matrix.write_text('kcidb-origin = "Lab"\n')
    code, err = run_cli(capsys, "report", "--kcidb", "--matrix", str(matrix), str(run_dir))
    assert code == EXIT_BAD_INPUT and err.startswith(f"harness: error: {matrix}: kcidb-origin: ")
    # Without --kcidb, report neither writes it nor reads the matrix file.
    written.unlink()
    assert main(["report", "--matrix", str(matrix), str(run_dir)]) == 0
    assert not written.exists()


def test_readme_race_command_makes_the_race_cell(isolated: list[str]) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"```sh\n(harness run [^`]*--feature debug-race[^`]*)```", readme)
    assert block, "README: no race cell command"
    argv = shlex.split(block[1].replace("\\\n", " "))[1:]
    args = build_parser().parse_args([*argv, *isolated])
    config = make_config(args, do_build=True, do_test=True)
    assert [arch.name for arch in config.arches] == ["x86_64"] and config.variants == ["patched"]
    assert config.features == ["seccomp", "debug-race"]
    assert config.pytest_args == ["-m", "race", "--repeat=50"]
    assert not config.selftests and config.timeout_factor == 3
    names = [path.name for path in fragments_for(config, get_arch("x86_64"))]
    assert names[-2:] == ["debug-race.config", "debug-race.x86_64.config"]


# -- run directories: where they and `latest` go ------------------------------------------


@pytest.fixture
def fake_matrix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """`harness build` with prepare and the matrix faked: only the run dir handling is real."""
    from types import SimpleNamespace

    from harness.cli import settings
    from harness.results.model import RunSummary
    from harness.run import inputs, summary
    from harness.run.config import RunConfig

    root = tmp_path / "checkout"
    (root / "kernel-configs").mkdir(parents=True)
    monkeypatch.setattr(settings, "project_root", lambda: root)
    source = SimpleNamespace(kernel_version="6.12.0", origin="directory")

    def prepare(config: RunConfig, announce: object = None) -> object:
        config.results_dir.mkdir(parents=True, exist_ok=True)
        return SimpleNamespace(source=source)

    monkeypatch.setattr(inputs, "prepare", prepare)

    def run_matrix(config: object, prepared: object, run_id: str, progress: object) -> object:
        return RunSummary(run_id, [])

    monkeypatch.setattr(summary, "run_matrix", run_matrix)
    return root


def test_latest_lives_only_in_the_results_root(fake_matrix: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "tmp"
    elsewhere.mkdir()
    (elsewhere / "latest").write_text("someone else's file\n")
    work = ["--work-dir", str(tmp_path / "work"), "--arch", "x86_64"]
    assert main(["build", *work, "--results", str(elsewhere / "x")]) == 0
    assert (elsewhere / "latest").read_text() == "someone else's file\n"
    (elsewhere / "latest").unlink()
    assert main(["build", *work, "--results", str(elsewhere / "y")]) == 0
    assert not (elsewhere / "latest").exists() and not (elsewhere / "latest").is_symlink()
    # A run under the results root, by default or named with --results, moves `latest`.
    assert main(["build", *work]) == 0
    latest = fake_matrix / "results" / "latest"
    assert latest.is_symlink() and (latest / "..").resolve() == (fake_matrix / "results")
    first = latest.readlink()
    assert (fake_matrix / "results" / first).is_dir()
    named = fake_matrix / "results" / "mine"
    assert main(["build", *work, "--results", str(named)]) == 0
    assert latest.readlink() == Path("mine")


def test_two_runs_started_in_the_same_second_get_two_run_dirs(
    fake_matrix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.cli import settings

    monkeypatch.setattr(settings.time, "strftime", lambda *_args: "20250101-120000")
    argv = ["build", "--work-dir", str(tmp_path / "work"), "--arch", "x86_64"]
    assert all(main(argv) == 0 for _ in range(3))
    runs = sorted(p for p in (fake_matrix / "results").iterdir() if p.name != "latest")
    assert [p.name for p in runs] == ["20250101-120000", "20250101-120000-2", "20250101-120000-3"]
    assert all(p.is_dir() for p in runs)
    assert (fake_matrix / "results/latest").readlink() == Path("20250101-120000-3")
    # A command that runs nothing makes no run directory.
    make_config(build_parser().parse_args(argv), True, False)
    assert len(list((fake_matrix / "results").iterdir())) == 4


def test_help_speaks_to_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    assert "build, boot and behave" in shown and "README.md" in shown
    assert "harness run --arch x86_64" in shown
    # Not the module docstring about option groups and RunConfig it used to print.
    assert "RunConfig" not in shown and "dispatched" not in shown
