"""Every bad input through the real CLI: exit 2, one line on stderr naming the option, file
or key and how to fix it, and nothing left behind (no lock, no run dir, the work dir as it
was). A fake kernel tree (tests/data/fakelinux), no kernel build, no QEMU.

Run with -s to see the table: each case, its exit code and the line it printed.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import DATA, ROOT

from harness.checks import checkseries
from harness.cli.main import build_parser, main
from harness.core.limits import MAX_FACTOR, MAX_SECONDS, max_jobs
from harness.core.status import EXIT_BAD_INPUT, Status, exit_code_table
from harness.kernel import kconfig
from harness.run import summary
from harness.vm import initramfs, qemu

NOT_UTF8 = b"\xff\xfe"  # never valid UTF-8


@dataclass
class Inputs:
    """A valid set of inputs in `root`; a case spoils one of them."""

    root: Path
    linux: Path = field(init=False)
    series: Path = field(init=False)
    configs: Path = field(init=False)
    expectations: Path = field(init=False)
    matrix: Path = field(init=False)

    def __post_init__(self) -> None:
        self.linux = self.root / "linux"
        shutil.copytree(DATA / "fakelinux", self.linux)
        self.series = self.root / "series"
        self.series.mkdir()
        before = (self.linux / "kernel/a.c").read_text()
        after = before.replace("int a_two;", "int a_two = 2;")
        assert before != after
        (self.series / "0001-a.patch").write_text(_patch(before, after))
        (self.series / "series").write_text("0001-a.patch\n")
        self.configs = self.root / "configs"
        self.configs.mkdir()
        for name, option in (("base", "FAKE_BASE"), ("x86_64", "FAKE_X86"),
                             ("seccomp", "SECCOMP")):  # fmt: skip
            (self.configs / f"{name}.config").write_text(f"CONFIG_{option}=y\n")
        self.expectations = self.root / "expectations.toml"
        shutil.copyfile(ROOT / "expectations.toml", self.expectations)
        self.matrix = self.root / "harness.toml"
        self.matrix.write_text('expectations = "expectations.toml"\n[timeouts]\nboot = 40\n')


def _patch(before: str, after: str) -> str:
    import difflib

    diff = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        "a/kernel/a.c", "b/kernel/a.c",
    )  # fmt: skip
    return (
        "From 0123456789abcdef Mon Sep 17 00:00:00 2001\nFrom: A U Thor <a@example.invalid>\n"
        "Subject: [PATCH] a\n\na.\n\nSigned-off-by: A U Thor <a@example.invalid>\n---\n"
        + "".join(diff)
    )


def spoil(path: Callable[[Inputs], Path], offset: int = 9) -> Callable[[Inputs], str]:
    """Put bytes that are not UTF-8 at `offset` of a file; the needle names the file and it."""

    def setup(inputs: Inputs) -> str:
        target = path(inputs)
        data = target.read_bytes()
        target.write_bytes(data[:offset] + NOT_UTF8 + data[offset:])
        return f"{target}: not UTF-8: byte 0xff at offset {offset}"

    return setup


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    options: tuple[str, ...] = ()  # {root} stands for the inputs' directory
    needle: str = ""  # in the one line on stderr; {root} as above
    setup: Callable[[Inputs], str] | None = None  # returns the needle instead


GUEST_COMMANDS = ("run", "test", "boot", "check-series")  # take the guest options
COMMANDS = ("run", "build", *GUEST_COMMANDS[1:])
CAP = max_jobs()


def _cases() -> list[Case]:
    cases = []
    for command in COMMANDS:
        for jobs in ("0", "-5", "100000000"):
            cases.append(Case(f"j{jobs}", command, ("-j", jobs), f"-j/--jobs: {jobs}:"))
        cases.append(Case("j-abc", command, ("-j", "abc"), "-j/--jobs: abc:"))
        options = ["--build-timeout"]
        if command in GUEST_COMMANDS:
            options += ["--boot-timeout", "--test-timeout", "--run-timeout", "--timeout-factor"]
        for option in options:
            for value in ("0", "-5", "nan", "inf", "1e300"):
                cases.append(Case(f"{option[2:]}={value}", command, (f"{option}={value}",),
                                  f"argument {option}: {value}:"))  # fmt: skip
        for key in ("boot", "test", "run", "build", "factor"):
            for value in ("0", "-5", "nan", "inf", "1e300"):
                if command != "run" and (key, value) != ("boot", "nan"):
                    continue  # every key and value once; the others with one of them
                cases.append(Case(f"toml-{key}={value}", command, (),
                                  setup=_toml_timeout(key, value)))  # fmt: skip
        cases += [
            Case("utf8-series", command, setup=spoil(lambda i: i.series / "series", 3)),
            Case("utf8-fragment", command, setup=spoil(lambda i: i.configs / "seccomp.config")),
            Case("utf8-matrix", command, setup=spoil(lambda i: i.matrix, 0)),
            Case("workdir-is-a-file", command, ("--work-dir", "{root}/file"),
                 "--work-dir {root}/file: a file, not a directory", _file("file")),
            Case("workdir-under-a-file", command, ("--work-dir", "{root}/file/work"),
                 "--work-dir {root}/file/work: not writable: {root}/file is a file", _file("file")),
            Case("workdir-space", command, ("--work-dir", "{root}/my work"),
                 "--work-dir {root}/my work: kbuild"),
            Case("workdir-comma", command, ("--work-dir", "{root}/wo,rk"),
                 "--work-dir {root}/wo,rk: a comma"),
            Case("results-comma", command, ("--results", "{root}/res,ults"),
                 "--results {root}/res,ults: a comma"),
            Case("results-under-a-file", command, ("--results", "{root}/file/results"),
                 "--results {root}/file/results: not writable: {root}/file is a file",
                 _file("file")),
        ]  # fmt: skip
        if command != "build":
            options_ = ("--boot",) if command == "check-series" else ()
            cases.append(Case("utf8-expectations", command, options_,
                              setup=spoil(lambda i: i.expectations, 20)))  # fmt: skip
    return cases


def _toml_timeout(key: str, value: str) -> Callable[[Inputs], str]:
    def setup(inputs: Inputs) -> str:
        inputs.matrix.write_text(f"[timeouts]\n{key} = {value}\n")
        return f"{inputs.matrix}: timeouts.{key}: "

    return setup


def _file(name: str) -> Callable[[Inputs], str]:
    def setup(inputs: Inputs) -> str:
        (inputs.root / name).write_text("not a directory\n")
        return ""

    return setup


CASES = _cases()


def _long_work(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("long work started")


@pytest.fixture(autouse=True)
def no_guests(monkeypatch: pytest.MonkeyPatch) -> None:
    """No QEMU, no guest userspace, whatever the harness does with a case."""
    for module, name in ((qemu, "qemu_command"), (initramfs, "build_base")):
        monkeypatch.setattr(module, name, _long_work)
    monkeypatch.setattr("os.execvp", _long_work)


def argv(case: Case, inputs: Inputs) -> list[str]:
    args = [
        case.command, "--arch", "x86_64", "--source", str(inputs.linux),
        "--series", str(inputs.series), "--configs", str(inputs.configs),
        "--matrix", str(inputs.matrix), "--work-dir", "{root}/work", "--results", "{root}/results",
    ]  # fmt: skip
    if case.command != "check-series":
        args += ["--variant", "patched"]
    args += case.options  # a later option wins
    return [arg.replace("{root}", str(inputs.root)) for arg in args]


def listing(root: Path) -> list[tuple[str, bool, int]]:
    return sorted(
        (str(path.relative_to(root)), path.is_dir(), 0 if path.is_dir() else path.stat().st_size)
        for path in root.rglob("*")
    )


def call(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse refuses by exiting
        code = exit_.code if isinstance(exit_.code, int) else 1
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", CASES, ids=[f"{c.command}:{c.name}" for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, pytestconfig: pytest.Config,
) -> None:  # fmt: skip
    for module, name in ((summary, "run_matrix"), (checkseries, "run_check_series")):
        monkeypatch.setattr(module, name, _long_work)  # refused before any of it
    inputs = Inputs(tmp_path)
    needle = case.needle
    if case.setup is not None:
        needle = case.setup(inputs) or needle
    needle = needle.replace("{root}", str(tmp_path))
    before = listing(tmp_path)
    code, err = call(argv(case, inputs), capsys)
    if pytestconfig.getoption("capture") == "no":  # -s: print the table as it goes
        with capsys.disabled():
            print(f"\n{case.command} {case.name} -> {code}: {err.splitlines()[:1]}", end="")
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1, err
    assert needle in err, err
    assert listing(tmp_path) == before


def test_caps_are_said_in_the_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(summary, "run_matrix", _long_work)
    inputs = Inputs(tmp_path)
    for command, options, cap in (
        ("build", ("-j", "100000000"), f"at most {CAP} "),
        ("run", ("--run-timeout", "1e300"), f"at most {MAX_SECONDS:g} "),
        ("run", ("--timeout-factor", "1000"), f"at most {MAX_FACTOR:g}"),
    ):
        code, err = call(argv(Case("cap", command, options), inputs), capsys)
        assert code == EXIT_BAD_INPUT and cap in err, err
    # The largest values allowed are taken.
    args = build_parser().parse_args(
        ["run", "-j", str(CAP), f"--build-timeout={MAX_SECONDS}", f"--timeout-factor={MAX_FACTOR}"]
    )
    assert (args.jobs, args.build_timeout, args.timeout_factor) == (CAP, MAX_SECONDS, MAX_FACTOR)


def test_series_dir_with_spaces_and_non_ascii_builds_in_safe_dirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """kbuild refuses spaces and colons in its paths: the series' name, which names the
    patched tree and the build dir, becomes a slug and a hash of the name."""
    inputs = Inputs(tmp_path)
    odd = inputs.series.rename(tmp_path / "my series: ü")
    inputs.series = odd
    for command in ("build", "check-series"):
        code, err = call(argv(Case("odd", command), inputs), capsys)
        assert code == 0, err
    made = [p.relative_to(tmp_path / "work") for p in (tmp_path / "work").rglob("*")]
    dirs = {str(p) for p in made if len(p.parts) <= 4}
    assert all(re.fullmatch(r"[A-Za-z0-9._/+-]+", d) for d in dirs), sorted(dirs)
    assert any("my-series-" in d for d in dirs), sorted(dirs)
    # Two names that slug alike still get dirs of their own.
    from harness.kernel.series import Series

    one, other = Series("a b", odd, ()), Series("a_b", odd, ())
    assert one.dir_name != other.dir_name and Series("plain", odd, ()).dir_name == "plain"


def test_a_bug_exits_10_naming_the_error_and_the_saved_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> object:
        raise RuntimeError("deep down\nsecond line")

    monkeypatch.setattr(kconfig, "parse_fragment", broken)
    inputs = Inputs(tmp_path)
    (tmp_path / "results").mkdir()  # the run dir
    code, err = call(argv(Case("bug", "build"), inputs), capsys)
    assert code == Status.INFRA.exit_code == 10, err
    assert len(err.splitlines()) == 1, err
    saved = tmp_path / "results" / "harness-error.txt"
    assert "RuntimeError: deep down" in err and str(saved) in err, err
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text
    # Without a run dir of its own, the traceback lands in the results root.
    code, err = call([*argv(Case("bug", "build"), inputs)[:-2], "--results",
                      str(tmp_path / "root/new-run")], capsys)  # fmt: skip
    assert code == 10 and str(tmp_path / "root/harness-error.txt") in err, err


def _readme_exit_codes() -> list[tuple[int, str, str]]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \| (.+?) \|$", section, re.MULTILINE)
    return [(int(code), status, meaning) for code, status, meaning in rows]


def test_readme_exit_code_table_matches_status_py() -> None:
    assert _readme_exit_codes() == exit_code_table()
