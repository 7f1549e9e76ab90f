"""harness.toml: the matrix read by default, command-line options over it, bad keys refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT

from harness.cli.main import build_parser, main
from harness.cli.settings import make_config
from harness.core.errors import BadInput
from harness.core.status import EXIT_BAD_INPUT
from harness.run import matrixfile
from harness.run.config import RunConfig

CHECKED_IN = ROOT / "harness.toml"


def config_for(*argv: str, do_build: bool = True, do_test: bool = True) -> RunConfig:
    args = build_parser().parse_args(list(argv))
    return make_config(args, do_build, do_test)


def settings(config: RunConfig) -> dict[str, object]:
    """What the matrix file can set, as the run would use it."""
    timeouts = config.timeouts
    return {
        "arches": [arch.name for arch in config.arches],
        "variants": config.variants,
        "series": config.series_dir.resolve(),
        "features": config.features,
        "kconfig_add": config.kconfig_add,
        "accel": config.accel,
        "selftests": [collection.name for collection in config.selftests],
        "timeouts": (
            timeouts.boot,
            timeouts.test,
            timeouts.run,
            config.build_timeout,
            config.timeout_factor,
        ),
        "expectations": config.expectations.path,
        "ktap": config.ktap,
        "kcidb": (config.kcidb, config.kcidb_origin),
    }


@pytest.fixture
def isolated(tmp_path: Path) -> list[str]:
    return ["--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results")]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "harness.toml"
    path.write_text(text)
    return path


def test_the_checked_in_file_is_the_built_in_defaults(tmp_path: Path, isolated: list[str]) -> None:
    empty = write(tmp_path, "")
    for command in ("run", "test"):
        with_file = settings(config_for(command, *isolated))
        without = settings(config_for(command, "--matrix", str(empty), *isolated))
        assert with_file == without
    assert with_file == {
        "arches": ["x86_64", "arm64"], "variants": ["baseline", "patched"],
        "series": ROOT / "patches" / "ptrace-seccomp", "features": ["seccomp"],
        "kconfig_add": [], "accel": "auto", "selftests": ["seccomp", "ptrace"],
        "timeouts": (40.0, 60.0, 600.0, 3600.0, 1.0),
        "expectations": ROOT / "expectations.toml", "ktap": False,
        "kcidb": (False, "kernel_series_harness"),
    }  # fmt: skip


def test_an_option_on_the_command_line_overrides_the_file(isolated: list[str]) -> None:
    """tox -e x86_64 passes --arch x86_64: baseline and patched of x86_64 only."""
    config = config_for("run", "--arch", "x86_64", *isolated)
    assert [a.name for a in config.arches] == ["x86_64"]
    assert config.variants == ["baseline", "patched"]


def test_every_key_of_a_file_and_every_override(tmp_path: Path, isolated: list[str]) -> None:
    (tmp_path / "known.toml").write_text("")
    path = write(tmp_path, """
arches = ["arm64"]
variants = ["patched"]
series = "my-series"
features = ["seccomp", "debug-kasan"]
kconfig-add = ["CONFIG_KASAN_INLINE=y"]
accel = "tcg"
selftests = ["ptrace"]
expectations = "known.toml"
ktap = true
kcidb = true
kcidb-origin = "my_lab"

[timeouts]
boot = 90
test = 120.5
run = 1800
build = 7200
factor = 2
""")  # fmt: skip
    from_file = settings(config_for("test", "--matrix", str(path), *isolated))
    assert from_file == {
        "arches": ["arm64"], "variants": ["patched"], "series": tmp_path / "my-series",
        "features": ["seccomp", "debug-kasan"], "kconfig_add": ["CONFIG_KASAN_INLINE=y"],
        "accel": "tcg", "selftests": ["ptrace"], "timeouts": (90.0, 120.5, 1800.0, 7200.0, 2.0),
        "expectations": tmp_path / "known.toml", "ktap": True, "kcidb": (True, "my_lab"),
    }  # fmt: skip
    overridden = settings(config_for(
        "test", "--matrix", str(path), "--arch", "x86_64", "--variant", "baseline",
        "--series", str(tmp_path / "other"), "--feature", "seccomp", "--kconfig-add", "X=y",
        "--accel", "auto", "--selftests", "--expectations", str(CHECKED_IN.parent /
        "expectations.toml"), "--no-ktap", "--no-kcidb", "--kcidb-origin", "other_ci",
        "--boot-timeout", "1", "--test-timeout", "2", "--run-timeout", "3", "--build-timeout", "4",
        "--timeout-factor", "5", *isolated,
    ))  # fmt: skip
    assert overridden == {
        "arches": ["x86_64"], "variants": ["baseline"], "series": tmp_path / "other",
        "features": ["seccomp"], "kconfig_add": ["X=y"], "accel": "auto",
        "selftests": ["seccomp", "ptrace"],
        "timeouts": (1.0, 2.0, 3.0, 4.0, 5.0), "expectations": ROOT / "expectations.toml",
        "ktap": False, "kcidb": (False, "other_ci"),
    }  # fmt: skip


def test_boot_takes_one_cell_whatever_the_file_lists(tmp_path: Path, isolated: list[str]) -> None:
    path = write(tmp_path, 'arches = ["arm64"]\naccel = "tcg"\n')
    config = config_for("boot", "--matrix", str(path), "--variant", "patched", *isolated)
    assert [a.name for a in config.arches] == ["x86_64"] and config.accel == "tcg"


def test_build_reads_the_file_but_runs_no_tests(tmp_path: Path, isolated: list[str]) -> None:
    path = write(tmp_path, 'arches = ["arm64"]\nktap = true\nkcidb = true\nselftests = ["ptrace"]')
    config = config_for("build", "--matrix", str(path), *isolated, do_test=False)
    assert [a.name for a in config.arches] == ["arm64"]
    assert (config.ktap, config.kcidb, config.do_test) == (False, False, False)
    # The collections stay: their config files are part of the kernel `test` boots later.
    assert [c.name for c in config.selftests] == ["ptrace"]


@pytest.mark.parametrize(
    ("line", "names"),
    [
        ("selftests = true", ["seccomp", "ptrace"]),  # harness.toml files from before lists
        ("selftests = false", []),
        ("selftests = []", []),
        ('selftests = ["ptrace", "seccomp", "ptrace"]', ["ptrace", "seccomp"]),
    ],
)  # fmt: skip
def test_selftests_is_a_list_of_collections_or_a_boolean(
    tmp_path: Path, isolated: list[str], line: str, names: list[str]
) -> None:
    path = write(tmp_path, line + "\n")
    config = config_for("run", "--matrix", str(path), *isolated)
    assert [c.name for c in config.selftests] == names


@pytest.mark.parametrize(
    ("options", "names"),
    [
        (["--selftests", "ptrace"], ["ptrace"]),
        (["--selftests", "ptrace", "--selftests", "seccomp"], ["ptrace", "seccomp"]),
        (["--selftests"], ["seccomp", "ptrace"]),  # alone: the default collections
        (["--no-selftests"], []),
        (["--no-selftests", "--selftests", "ptrace"], ["ptrace"]),
    ],
)  # fmt: skip
def test_selftests_options_override_the_file(
    tmp_path: Path, isolated: list[str], options: list[str], names: list[str]
) -> None:
    path = write(tmp_path, "selftests = false\n")
    config = config_for("run", "--matrix", str(path), *options, *isolated)
    assert [c.name for c in config.selftests] == names
    assert config.selftest_configs == config.selftests


def test_no_selftests_runs_none_but_keeps_their_configs(
    tmp_path: Path, isolated: list[str]
) -> None:
    """The race cell, the benchmark and the fault tests pass --no-selftests: the kernel
    must stay the one a run with the selftests builds."""
    path = write(tmp_path, 'selftests = ["ptrace"]\n')
    config = config_for("test", "--matrix", str(path), "--no-selftests", *isolated)
    assert config.selftests == () and [c.name for c in config.selftest_configs] == ["ptrace"]
    default = config_for("test", "--no-selftests", *isolated)
    assert [c.name for c in default.selftest_configs] == ["seccomp", "ptrace"]


def test_an_unknown_collection_is_one_line_naming_the_option(
    tmp_path: Path, isolated: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--selftests", "ptrac", *isolated]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err == (
        "harness: error: --selftests ptrac: unknown selftest collection; "
        "choose from seccomp, ptrace"
    )
    bad = write(tmp_path, 'selftests = ["seccomp", "bpf"]\n')
    with pytest.raises(BadInput, match=r"selftests: 'bpf' is unknown; choose from seccomp, ptrace"):
        matrixfile.load(bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('arches = ["x86_64", "sparc"]\n',
         "arches: 'sparc' is unknown; choose from x86_64, arm64"),
        ('arches = "x86_64"\n', 'arches: expected a list of strings, e.g. arches = ["..."]'),
        ("arches = []\n", "arches: empty; name at least one of x86_64, arm64"),
        ('variants = ["nightly"]\n', "variants: 'nightly' is unknown"),
        ('arch = ["x86_64"]\n', "arch: unknown key; the keys are arches, variants, toolchains"),
        ("selftests = 1\n", 'selftests: expected a list of collections, e.g. selftests = ["s'),
        ('kcidb = "yes"\n', "kcidb: expected true or false"),
        ('kcidb-origin = "My-Lab"\n',
         "kcidb-origin: 'My-Lab': a KCIDB origin is lower-case letters, digits and '_' only"),
        ('accel = "hvf"\n', "accel: 'hvf' is unknown; choose from auto, kvm, tcg"),
        ("series = 3\n", 'series: expected a non-empty string, e.g. series = "..."'),
        ('kconfig-add = ["CONFIG_X=yes please"]\n',
         "kconfig-add CONFIG_X=yes please: malformed line"),
        ("timeouts = 30\n", "timeouts: expected a table"),
        ("[timeouts]\nboot = -1\n", "timeouts.boot: expected a positive number"),
        ('[timeouts]\nboot = "40"\n', "timeouts.boot: expected a positive number"),
        ("[timeouts]\nfirst_output = 20\n",
         "timeouts.first_output: unknown key; the timeouts are boot, test, run, build, factor"),
        ('arches = ["x86_64"\n', "not valid TOML ("),
    ],
)  # fmt: skip
def test_bad_keys_are_bad_input_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BadInput) as error:
        matrixfile.load(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_cli_refuses_a_bad_or_missing_matrix_file_before_any_work(
    tmp_path: Path, isolated: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path, 'arches = ["riscv64"]\n')
    assert main(["run", "--matrix", str(bad), *isolated]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err == (
        f"harness: error: {bad}: arches: 'riscv64' is unknown; choose from x86_64, arm64"
    )
    missing = tmp_path / "none.toml"
    assert main(["build", "--matrix", str(missing), *isolated]) == EXIT_BAD_INPUT
    assert f"{missing}: cannot read the matrix file" in capsys.readouterr().err
    assert not (tmp_path / "work").exists() and not (tmp_path / "results").exists()


def test_without_a_default_file_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: list[str]
) -> None:
    monkeypatch.setattr("harness.cli.settings.project_root", lambda: tmp_path)
    assert matrixfile.load_default(tmp_path) is matrixfile.NO_MATRIX_FILE
    config = config_for("run", *isolated)
    assert [a.name for a in config.arches] == ["x86_64", "arm64"]
    assert config.series_dir == tmp_path / "patches" / "ptrace-seccomp"
    assert config.expectations.path is None  # nor an expectations.toml there
