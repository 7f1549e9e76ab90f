"""The kselftest collections (core/kselftests.py): the table against a real tree's
Makefiles, each binary's compile command, and the collections' config files merged as
fragments (the series' version too). No compiler runs: run_logged is faked."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import ROOT
from test_bad_input import Inputs

from harness.cli.main import build_parser
from harness.cli.settings import make_config
from harness.core.arches import get_arch
from harness.core.errors import BadInput
from harness.core.kselftests import COLLECTIONS, SUITES, collection_of_suite, get_collection
from harness.core.process import Completed
from harness.kernel import kconfig, selftests
from harness.kernel.selftest_tap import SelftestBinary
from harness.kernel.series import Patch
from harness.run.inputs import prepare

SECCOMP, PTRACE = COLLECTIONS["seccomp"], COLLECTIONS["ptrace"]


def real_trees() -> list[Path]:
    """Unpacked kernel trees of a work dir (HARNESS_WORK_DIR, or the checkout's .work)."""
    work_dirs = [Path(os.environ["HARNESS_WORK_DIR"])] if "HARNESS_WORK_DIR" in os.environ else []
    return [tree for work in [*work_dirs, ROOT / ".work"] for tree in work.glob("sources/*")]


@pytest.mark.parametrize("name", list(COLLECTIONS))
def test_the_table_runs_what_the_trees_makefile_builds(name: str) -> None:
    """Every binary of the table is one its Makefile builds, from <binary>.c; a program
    left out is left out on purpose (seccomp_benchmark, said why in the table)."""
    trees = [tree for tree in real_trees() if (tree / COLLECTIONS[name].directory).is_dir()]
    if not trees:
        pytest.skip("no unpacked kernel tree in the work dir (set HARNESS_WORK_DIR)")
    collection = COLLECTIONS[name]
    directory = trees[0] / collection.directory
    makefile = (directory / "Makefile").read_text()
    programs = re.search(r"^TEST_GEN_PROGS\s*:?=\s*(.*)$", makefile, re.M)
    assert programs is not None
    built = programs[1].split()
    assert set(collection.binaries) <= set(built)
    assert set(built) - set(collection.binaries) <= {"seccomp_benchmark"}
    assert all((directory / f"{binary}.c").is_file() for binary in collection.binaries)
    for flag in collection.cflags:
        assert flag in makefile or flag == "-O2", flag  # -O2: seccomp_bpf as always built


def test_suites_name_their_cases_plainly_only_after_their_one_binary() -> None:
    assert SUITES == ("seccomp_bpf", "ptrace")
    assert SECCOMP.plain_cases and SECCOMP.case_prefix("seccomp_bpf") == ""
    assert not PTRACE.plain_cases and PTRACE.case_prefix("vmaccess") == "vmaccess."
    assert collection_of_suite("ptrace") is PTRACE and collection_of_suite("guest") is None
    assert len({c.suite for c in COLLECTIONS.values()}) == len(COLLECTIONS)
    with pytest.raises(BadInput, match=r"^--selftests bpf: unknown selftest collection; choose"):
        get_collection("bpf")


def fake_compiler(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """run_logged faked: a compile writes its -o file; the commands run, in order."""
    commands: list[list[str]] = []

    def run_logged(command: list[str], log_path: Path, **_kwargs: object) -> Completed:
        commands.append(command)
        Path(command[command.index("-o") + 1]).write_text("binary")
        return Completed(command, 0, "", 0.1)

    monkeypatch.setattr(selftests, "run_logged", run_logged)
    return commands


def build(tmp_path: Path, binary: SelftestBinary, sysroot: Path | None) -> Path:
    tree = tmp_path / "linux"
    return selftests.build_binary(
        get_arch("arm64"), binary, tree / binary.collection.directory, tree,
        tmp_path / "build", sysroot, tmp_path / "log", tmp_path / "ccache",
    )  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    for collection in COLLECTIONS.values():
        (tree / collection.directory).mkdir(parents=True)
        for binary in collection.binaries:
            (tree / collection.directory / f"{binary}.c").write_text("int main;\n")
    (tree / "tools/testing/selftests/kselftest_harness.h").write_text("/* harness */\n")
    (tmp_path / "build/usr/include/linux").mkdir(parents=True)
    (tmp_path / "build/usr/include/linux/ptrace.h").write_text("/* uapi */\n")
    return tree


def test_each_collection_compiles_with_its_makefiles_flags(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = fake_compiler(monkeypatch)
    sysroot = tmp_path / "sysroot"
    ptrace = build(tmp_path, SelftestBinary(PTRACE, "get_syscall_info"), sysroot)
    assert ptrace == tmp_path / "build/selftests/ptrace/get_syscall_info"
    assert commands[0][:5] == ["aarch64-linux-gnu-gcc", "-static", "-std=c99", "-pthread", "-Wall"]
    assert str(sysroot) not in " ".join(commands[0])  # ptrace links nothing of the sysroot
    assert commands[0][-2:] == ["-o", str(ptrace.with_name("get_syscall_info.partial"))]
    seccomp = build(tmp_path, SelftestBinary(SECCOMP, "seccomp_bpf", series=True), sysroot)
    assert seccomp == tmp_path / "build/selftests/seccomp/series/seccomp_bpf"
    assert commands[1][-4:] == ["-L", str(sysroot / "lib"), "-lcap", "-lpthread"]
    assert ["-I", str(sysroot / "include")] == commands[1][7:9]


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_binary_is_rebuilt_when_its_sources_headers_or_command_change(
    tmp_path: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = fake_compiler(monkeypatch)
    binary = SelftestBinary(PTRACE, "vmaccess")
    inputs = [
        tree / PTRACE.directory / "vmaccess.c",
        tree / "tools/testing/selftests/kselftest_harness.h",
        tmp_path / "build/usr/include/linux/ptrace.h",
    ]
    for path in inputs:
        age(path, 100)
    made = build(tmp_path, binary, None)
    age(made, 90)
    build(tmp_path, binary, None)
    assert len(commands) == 1  # up to date
    for newer in inputs:
        age(newer, 50)
        build(tmp_path, binary, None)
        age(newer, 100)
        age(made, 90)
    assert len(commands) == 1 + len(inputs)
    command_file = made.with_name("vmaccess.command")
    command_file.write_text(command_file.read_text().replace("-Wall", "-W"))
    build(tmp_path, binary, None)
    assert len(commands) == 2 + len(inputs)  # another command than the one it was built with


# -- config files -------------------------------------------------------------------------


def config_patch(path: Path, old: str, new: str) -> Patch:
    config = PTRACE.config
    path.write_text(
        "Subject: selftests/ptrace: needs X\n---\n"
        f"diff --git a/{config} b/{config}\n--- a/{config}\n+++ b/{config}\n"
        f"@@ -1 +1,2 @@\n {old}\n+{new}\n-- \n2.39.5\n"
    )
    return Patch(path)


def test_a_collections_config_file_is_read_as_a_fragment_naming_its_lines(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / SECCOMP.config).parent.mkdir(parents=True)
    (tree / SECCOMP.config).write_text("CONFIG_SECCOMP=y\n# a comment\nCONFIG_USER_NS=y\n")
    options = selftests.config_options(tree, [], [SECCOMP, PTRACE])  # ptrace has no config
    assert [(o.name, o.value, o.origin) for o in options] == [
        ("SECCOMP", "y", f"{tree / SECCOMP.config}:1"),
        ("USER_NS", "y", f"{tree / SECCOMP.config}:3"),
    ]
    (tree / SECCOMP.config).write_text("CONFIG_SECCOMP = y\n")
    with pytest.raises(BadInput, match=r"seccomp/config:1: malformed line"):
        selftests.config_options(tree, [], [SECCOMP])


def test_the_series_version_of_a_config_file_counts_for_both_variants(tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / PTRACE.config).parent.mkdir(parents=True)
    (tree / PTRACE.config).write_text("CONFIG_PID_NS=y\n")
    patch = config_patch(tmp_path / "0001.patch", "CONFIG_PID_NS=y", "CONFIG_CHECKPOINT_RESTORE=y")
    options = selftests.config_options(tree, [patch], [PTRACE])
    origin = f"{tree / PTRACE.config} (with the series' hunks)"
    assert [(o.name, o.origin) for o in options] == [
        ("PID_NS", f"{origin}:1"), ("CHECKPOINT_RESTORE", f"{origin}:2")
    ]  # fmt: skip
    assert (tree / PTRACE.config).read_text() == "CONFIG_PID_NS=y\n"  # the tree as it was
    # Hunks that do not apply: the pristine file (the patched cell's patch stage fails).
    stale = config_patch(tmp_path / "0002.patch", "CONFIG_OTHER=y", "CONFIG_X=y")
    assert [o.name for o in selftests.config_options(tree, [stale], [PTRACE])] == ["PID_NS"]


def test_a_collections_option_that_conflicts_with_a_fragment_is_refused(tmp_path: Path) -> None:
    fragment = tmp_path / "seccomp.config"
    fragment.write_text("# CONFIG_USER_NS is not set\n")
    wanted = kconfig.parse_text("CONFIG_USER_NS=y\n", "linux/tools/testing/selftests/x/config")
    with pytest.raises(BadInput, match=r"selftests/x/config:1: CONFIG_USER_NS=y conflicts with n"):
        kconfig.merge([fragment], (), wanted)
    # --kconfig-add still wins over both.
    merged = kconfig.merge([fragment], ["CONFIG_USER_NS=n"], [])
    assert merged.options["USER_NS"].value == "n"


def test_build_run_and_no_selftests_configure_the_same_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness build` runs no selftest but merges the collections' config files as `run`
    does (`test` boots what `build` built), and so does --no-selftests (`test
    --no-selftests` boots the kernel a run built); naming other collections does not."""
    monkeypatch.setattr(shutil, "which", lambda tool: "/usr/bin/" + tool)  # every host tool
    inputs = Inputs(tmp_path)
    (inputs.linux / PTRACE.config).parent.mkdir(parents=True)
    (inputs.linux / PTRACE.config).write_text("CONFIG_FAKE_ARM64=y\n")
    argv = ["--arch", "x86_64", "--source", str(inputs.linux), "--series", str(inputs.series),
            "--configs", str(inputs.configs), "--matrix", str(inputs.matrix),
            "--work-dir", str(tmp_path / "work"),
            "--results", str(tmp_path / "results")]  # fmt: skip

    def merged(command: str, *extra: str) -> kconfig.MergedConfig:
        args = build_parser().parse_args([command, *argv, *extra])
        config = make_config(args, do_build=True, do_test=command != "build")
        return prepare(config).merged["x86_64"]

    built, run = merged("build"), merged("run")
    assert built.digest() == run.digest()
    assert run.options["FAKE_ARM64"].origin == f"{inputs.linux / PTRACE.config}:1"
    assert merged("run", "--no-selftests").digest() == run.digest()
    assert merged("build", "--selftests", "ptrace").digest() == run.digest()
    assert "FAKE_ARM64" not in merged("run", "--selftests", "seccomp").options


def test_an_excluded_case_is_left_out_by_its_binarys_command_line_only() -> None:
    from harness.core.kselftests import COLLECTIONS

    ptrace = COLLECTIONS["ptrace"]
    assert ptrace.arguments("vmaccess") == ("-T", "attach")
    assert [ptrace.arguments(b) for b in ptrace.binaries if b != "vmaccess"] == [(), (), ()]
    assert all(case.reason for case in ptrace.excluded)
