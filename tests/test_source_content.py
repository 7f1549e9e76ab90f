"""A --source tree is keyed by what it holds: an edit there rebuilds, nothing else does.

False green this guards against: build once from --source, put `#error` in a
C file of the tree, build again -- both cells said "kernel up to date" and
passed, since the build key and the link farm's stamp named the tree by its
path only. The fake kernel (tests/data/fakelinux) fails to compile a file
holding a line that starts with `#error `.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from test_bad_input import Inputs

from harness.cli.main import main
from harness.core.status import Status
from harness.kernel.source import tree_fingerprint

BROKEN = "#error the edit this build must see\n"


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    return Inputs(tmp_path)


def build(inputs: Inputs, variant: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main([
        "build", "--arch", "x86_64", "--variant", variant, "--source", str(inputs.linux),
        "--series", str(inputs.series), "--configs", str(inputs.configs),
        "--work-dir", str(inputs.root / "work"), "--results", str(inputs.root / f"r-{variant}"),
        "--matrix", str(inputs.matrix), "-j", "2",
    ])  # fmt: skip
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("variant", ["baseline", "patched"])
def test_an_edit_in_place_of_the_source_tree_rebuilds(
    inputs: Inputs, variant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(inputs, variant, capsys)[0] == 0
    code, err = build(inputs, variant, capsys)
    assert code == 0 and "kernel up to date" in err  # nothing changed: nothing rebuilt
    with (inputs.linux / "kernel/b.c").open("a") as source:  # same inode, as `>>` does
        source.write(BROKEN)
    code, err = build(inputs, variant, capsys)
    assert code == Status.BUILD_FAILED.exit_code, err
    assert "kernel up to date" not in err


@pytest.mark.parametrize("variant", ["baseline", "patched"])
def test_a_file_an_editor_replaced_rebuilds(
    inputs: Inputs, variant: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(inputs, variant, capsys)[0] == 0
    # An editor writes a new file and renames it over the old one: a new inode, which
    # the patched tree's hard links do not follow.
    edited = inputs.linux / "kernel/b.c"
    replacement = edited.with_name("b.c.swp")
    replacement.write_text(BROKEN + edited.read_text())
    replacement.rename(edited)
    code, err = build(inputs, variant, capsys)
    assert code == Status.BUILD_FAILED.exit_code, err


def test_a_new_file_in_the_tree_rebuilds(
    inputs: Inputs, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build(inputs, "patched", capsys)[0] == 0
    (inputs.linux / "kernel/c.c").write_text(BROKEN)
    code, err = build(inputs, "patched", capsys)
    assert code == Status.BUILD_FAILED.exit_code, err


def test_the_fingerprint_follows_every_kind_of_edit(tmp_path: Path, data_dir: Path) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(data_dir / "fakelinux", tree)
    base = tree_fingerprint(tree)
    assert tree_fingerprint(tree) == base  # stable while nothing changes
    # New content of the same size and mtime through a new inode, as an editor saves.
    target = tree / "kernel/a.c"
    stat = target.stat()
    swapped = target.with_name("a.new")
    swapped.write_text(target.read_text().upper())
    os.utime(swapped, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    swapped.rename(target)
    replaced = tree_fingerprint(tree)
    assert replaced != base
    (tree / "kernel/new.c").write_text("int n;\n")
    added = tree_fingerprint(tree)
    assert added not in (base, replaced)
    (tree / "kernel/new.c").unlink()
    assert tree_fingerprint(tree) == replaced  # the same tree again
    os.utime(tree / "Kconfig", ns=(0, 12345))  # touched: make would rebuild from it
    assert tree_fingerprint(tree) not in (base, replaced, added)


def test_a_git_checkout_is_keyed_by_head_diff_and_untracked_files(
    tmp_path: Path, data_dir: Path
) -> None:
    tree = tmp_path / "linux"
    shutil.copytree(data_dir / "fakelinux", tree)
    git = ["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    clean = tree_fingerprint(tree)
    assert clean.startswith("git-") and tree_fingerprint(tree) == clean
    (tree / "kernel/a.c").write_text("int dirty;\n")
    dirty = tree_fingerprint(tree)
    assert dirty != clean
    (tree / "kernel/untracked.c").write_text("int u;\n")
    untracked = tree_fingerprint(tree)
    assert untracked not in (clean, dirty)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "edit"], check=True)
    assert tree_fingerprint(tree) not in (clean, dirty, untracked)


def test_a_tarball_is_unpacked_once_and_said_so(tmp_path: Path) -> None:
    from harness.kernel.source import unpack_tarball

    tree = tmp_path / "linux-9.9"
    shutil.copytree(Path(__file__).parent / "data" / "fakelinux", tree)
    tarball = tmp_path / "linux.tar"
    subprocess.run(["tar", "-cf", str(tarball), "-C", str(tmp_path), "linux-9.9"], check=True)
    said: list[str] = []
    unpack_tarball(tarball, tmp_path / "work" / "unpacked", said.append)
    assert said[0] == f"unpacking {tarball} (once) ..."
    assert said[1].startswith("unpacked linux.tar in ")
    unpack_tarball(tarball, tmp_path / "work" / "unpacked", said.append)
    assert len(said) == 2
