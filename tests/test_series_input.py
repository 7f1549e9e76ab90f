"""A series from an mbox or a git commit range gives the same tree as the quilt directory."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.core.errors import BadInput
from harness.kernel.series import parse_series
from harness.kernel.series_input import (
    export_commit,
    series_from_commits,
    series_from_mbox,
    split_mbox,
)
from harness.kernel.trees import prepare_tree

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author", "GIT_COMMITTER_EMAIL": "author@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}  # fmt: skip


def git(tree: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(tree), *args], env=GIT_ENV, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A small 'kernel' git tree: a base commit tagged `base`, then two patches."""
    tree = tmp_path / "linux"
    (tree / "kernel").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 0\nEXTRAVERSION =\n")
    (tree / "kernel/a.c").write_text("one\ntwo\nthree\n")
    (tree / "kernel/b.c").write_text("alpha\nbeta\ngamma\n")
    git(tree, "init", "-q")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "base")
    git(tree, "tag", "base")
    (tree / "kernel/a.c").write_text("one\nTWO\nthree\n")
    git(tree, "commit", "-q", "-am", "kernel: a: shout two")
    (tree / "kernel/b.c").write_text("alpha\nbeta\ngamma\ndelta\n")
    (tree / "kernel/new.c").write_text("fresh\n")
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", "kernel: b: add delta and a new file")
    return tree


def tree_files(tree: Path) -> dict[str, str]:
    return {
        str(path.relative_to(tree)): path.read_text()
        for path in sorted(tree.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def test_quilt_mbox_and_commit_range_give_the_same_tree(repo: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    pristine = export_commit(repo, git(repo, "rev-parse", "base").strip(), work / "pristine")
    quilt = tmp_path / "quilt"
    git(repo, "format-patch", "-q", "--cover-letter", "-o", str(quilt), "base..HEAD")
    (quilt / "series").write_text(
        "".join(f"{p.name}\n" for p in sorted(quilt.glob("000[1-9]-*.patch")))
    )
    mbox = tmp_path / "series.mbox"
    mbox.write_text(git(repo, "format-patch", "--stdout", "--cover-letter", "base..HEAD"))
    from_commits, base = series_from_commits(repo, "base..HEAD", work / "series")
    assert base == git(repo, "rev-parse", "base").strip()
    trees = {}
    for name, directory in {
        "quilt": quilt,
        "mbox": series_from_mbox(mbox, work / "series"),
        "commits": from_commits,
    }.items():
        series = parse_series(directory)
        assert len(series.patches) == 2, name  # the cover letter is left out
        prepare_tree(pristine, series, work / "trees" / name)
        trees[name] = tree_files(work / "trees" / name)
    assert trees["quilt"] == trees["mbox"] == trees["commits"]
    assert trees["quilt"]["kernel/a.c"] == "one\nTWO\nthree\n"
    assert trees["quilt"]["kernel/new.c"] == "fresh\n"
    # The checkout itself was never touched.
    assert git(repo, "status", "--porcelain") == ""


def test_mbox_messages_and_cover_letter(repo: Path) -> None:
    text = git(repo, "format-patch", "--stdout", "--cover-letter", "base..HEAD")
    messages = split_mbox(text)
    assert [m.is_cover_letter for m in messages] == [True, False, False]
    assert messages[1].subject == "[PATCH 1/2] kernel: a: shout two"


def test_bad_ranges_and_empty_mbox_are_bad_input(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"--commits base: give a range BASE..TIP"):
        series_from_commits(repo, "base", tmp_path / "series")
    with pytest.raises(BadInput, match=r"the range holds no commits"):
        series_from_commits(repo, "HEAD..HEAD", tmp_path / "series")
    with pytest.raises(BadInput, match=r"unknown-tag"):
        series_from_commits(repo, "unknown-tag..HEAD", tmp_path / "series")
    empty = tmp_path / "empty.mbox"
    empty.write_text("just some text\n")
    with pytest.raises(BadInput, match=r"--mbox .*empty.mbox: no messages"):
        series_from_mbox(empty, tmp_path / "series")
