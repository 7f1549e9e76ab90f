from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from harness.core.errors import BadInput, PatchError
from harness.core.jsonfile import read_json
from harness.kernel.series import Series, parse_series
from harness.kernel.trees import (
    STAMP,
    apply_patch,
    build_dir_in,
    parse_patch_failure,
    prepare_tree,
    reset_tree,
)


def patch_text(path: str, old: str, new: str) -> str:
    return f"--- a/{path}\n+++ b/{path}\n@@ -1,3 +1,3 @@\n line1\n-{old}\n+{new}\n line3\n"


@pytest.fixture
def pristine(tmp_path: Path) -> Path:
    tree = tmp_path / "pristine"
    (tree / "kernel").mkdir(parents=True)
    for name in ("a.c", "b.c"):
        (tree / "kernel" / name).write_text("line1\nold\nline3\n")
    old = time.time() - 3600
    for name in ("a.c", "b.c"):
        os.utime(tree / "kernel" / name, (old, old))
    return tree


def write_series(tmp_path: Path, patches: dict[str, str]) -> Path:
    directory = tmp_path / "series-dir"
    directory.mkdir(exist_ok=True)
    for stale in directory.iterdir():
        stale.unlink()
    (directory / "series").write_text("".join(f"{name}\n" for name in patches))
    for name, text in patches.items():
        (directory / name).write_text(text)
    return directory


def one_patch_series(tmp_path: Path, path: str) -> Series:
    return parse_series(write_series(tmp_path, {"1.patch": patch_text(path, "old", "new")}))


def test_patched_tree_changes_only_its_copy(tmp_path: Path, pristine: Path) -> None:
    series = parse_series(
        write_series(tmp_path, {"1.patch": patch_text("kernel/a.c", "old", "new")})
    )
    tree = tmp_path / "patched"
    prepare_tree(pristine, series, tree)
    assert (tree / "kernel/a.c").read_text() == "line1\nnew\nline3\n"
    assert (pristine / "kernel/a.c").read_text() == "line1\nold\nline3\n"
    # Untouched files are shared, not copied.
    assert (tree / "kernel/b.c").stat().st_ino == (pristine / "kernel/b.c").stat().st_ino
    assert (tree / "kernel/a.c").stat().st_ino != (pristine / "kernel/a.c").stat().st_ino


def test_baseline_tree_is_a_farm_that_a_source_edit_makes_again(
    tmp_path: Path, pristine: Path
) -> None:
    tree = tmp_path / "baseline"
    prepare_tree(pristine, None, tree, "fingerprint-1")
    assert (tree / "kernel/a.c").stat().st_ino == (pristine / "kernel/a.c").stat().st_ino
    # An editor that replaces a file gives it a new inode: the farm must follow.
    replaced = pristine / "kernel/a.c"
    replaced.unlink()
    replaced.write_text("line1\nedited\nline3\n")
    prepare_tree(pristine, None, tree, "fingerprint-1")
    assert (tree / "kernel/a.c").read_text() == "line1\nold\nline3\n"  # same fingerprint
    prepare_tree(pristine, None, tree, "fingerprint-2")
    assert (tree / "kernel/a.c").read_text() == "line1\nedited\nline3\n"


def test_build_dirs_live_in_the_tree_and_outlive_a_new_farm(tmp_path: Path, pristine: Path) -> None:
    tree = tmp_path / "patched"
    prepare_tree(pristine, one_patch_series(tmp_path, "kernel/a.c"), tree)
    build_dir = build_dir_in(tree, "x86_64", "0123456789abcdef")
    assert build_dir.parent == tree  # kbuild's srctree is "..": relative, shareable
    (build_dir / "kernel").mkdir(parents=True)
    (build_dir / "kernel/b.o").write_text("object")
    prepare_tree(pristine, one_patch_series(tmp_path, "kernel/b.c"), tree)
    assert (tree / "kernel/b.c").read_text() == "line1\nnew\nline3\n"
    assert (build_dir / "kernel/b.o").read_text() == "object"
    assert not (pristine / build_dir.name).exists()


def test_failing_hunk_names_patch_file_and_hunk_and_leaves_no_tree(
    tmp_path: Path, pristine: Path
) -> None:
    series = parse_series(
        write_series(
            tmp_path,
            {
                "1-good.patch": patch_text("kernel/a.c", "old", "new"),
                "2-bad.patch": patch_text("kernel/b.c", "absent", "new"),
            },
        )
    )
    tree = tmp_path / "patched"
    with pytest.raises(PatchError, match=r"2-bad.patch: hunk #1 of kernel/b.c"):
        prepare_tree(pristine, series, tree)
    assert not tree.exists()
    assert not (tmp_path / "patched.new").exists()
    assert (pristine / "kernel/a.c").read_text() == "line1\nold\nline3\n"


def test_file_reverted_by_a_new_series_gets_a_fresh_private_copy(
    tmp_path: Path, pristine: Path
) -> None:
    tree = tmp_path / "patched"
    first = parse_series(
        write_series(tmp_path, {"1.patch": patch_text("kernel/a.c", "old", "new")})
    )
    prepare_tree(pristine, first, tree)
    built_at = time.time()
    second = parse_series(write_series(tmp_path, {"1.patch": patch_text("kernel/b.c", "old", "x")}))
    prepare_tree(pristine, second, tree)
    reverted = tree / "kernel/a.c"
    assert reverted.read_text() == "line1\nold\nline3\n"
    # Linked back to pristine it would carry the old mtime and leave a stale object.
    assert reverted.stat().st_ino != (pristine / "kernel/a.c").stat().st_ino
    assert reverted.stat().st_mtime >= built_at - 1


def test_editing_one_patch_refreshes_only_the_files_whose_content_changed(
    tmp_path: Path, pristine: Path
) -> None:
    tree = tmp_path / "patched"
    patches = {
        "1.patch": patch_text("kernel/a.c", "old", "new"),
        "2.patch": patch_text("kernel/b.c", "old", "first"),
    }
    prepare_tree(pristine, parse_series(write_series(tmp_path, patches)), tree)
    long_ago = time.time() - 600
    for name in ("a.c", "b.c"):
        os.utime(tree / "kernel" / name, (long_ago, long_ago))  # as if built since
    edited_at = time.time()
    patches["2.patch"] = patch_text("kernel/b.c", "old", "second")
    prepare_tree(pristine, parse_series(write_series(tmp_path, patches)), tree)
    # a.c came out of the re-applied series byte for byte as before: make must not
    # see it as new. b.c changed: it must look newer than anything built from it.
    assert (tree / "kernel/a.c").stat().st_mtime == pytest.approx(long_ago, abs=1e-3)
    assert (tree / "kernel/b.c").read_text() == "line1\nsecond\nline3\n"
    assert (tree / "kernel/b.c").stat().st_mtime >= edited_at - 1


def test_unchanged_series_reuses_the_tree(tmp_path: Path, pristine: Path) -> None:
    series = parse_series(
        write_series(tmp_path, {"1.patch": patch_text("kernel/a.c", "old", "new")})
    )
    tree = tmp_path / "patched"
    prepare_tree(pristine, series, tree)
    inode = (tree / "kernel/a.c").stat().st_ino
    prepare_tree(pristine, series, tree)
    assert (tree / "kernel/a.c").stat().st_ino == inode


def test_missing_file_is_reported_from_patch_output() -> None:
    output = "can't find file to patch at input line 3\nNo file to patch.  Skipping patch.\n"
    failure = parse_patch_failure("0003-x.patch", output)
    assert failure.hunk is None
    assert "0003-x.patch" in failure.describe()


def test_apply_patch_writes_all_of_a_patch_or_none_of_it(tmp_path: Path, pristine: Path) -> None:
    tree = tmp_path / "tree"
    reset_tree(pristine, tree, ["kernel/a.c", "kernel/b.c"])
    half = patch_text("kernel/a.c", "old", "new") + patch_text("kernel/b.c", "absent", "new")
    series = parse_series(write_series(tmp_path, {"1.patch": half}))
    # --dry-run prints "checking file": the failure still names the file and hunk.
    with pytest.raises(PatchError, match=r"1.patch: hunk #1 of kernel/b.c \(at line 1\)"):
        apply_patch(series.patches[0], tree)
    assert (tree / "kernel/a.c").read_text() == "line1\nold\nline3\n"
    good = parse_series(write_series(tmp_path, {"2.patch": patch_text("kernel/b.c", "old", "x")}))
    apply_patch(good.patches[0], tree)
    assert (tree / "kernel/b.c").read_text() == "line1\nx\nline3\n"
    assert (pristine / "kernel/b.c").read_text() == "line1\nold\nline3\n"


def test_reset_tree_gives_every_file_patched_before_a_fresh_private_copy(
    tmp_path: Path, pristine: Path
) -> None:
    tree = tmp_path / "tree"
    reset_tree(pristine, tree, ["kernel/a.c"])
    series = parse_series(
        write_series(tmp_path, {"1.patch": patch_text("kernel/a.c", "old", "new")})
    )
    apply_patch(series.patches[0], tree)
    built_at = time.time()
    # The next use patches only b.c; a.c goes back to pristine content but not to its inode.
    reset_tree(pristine, tree, ["kernel/b.c"])
    reverted = tree / "kernel/a.c"
    assert reverted.read_text() == "line1\nold\nline3\n"
    assert reverted.stat().st_ino != (pristine / "kernel/a.c").stat().st_ino
    assert reverted.stat().st_mtime >= built_at - 1
    # Both stay remembered: an interrupted run may leave either patched.
    assert read_json(tree / STAMP)["touched"] == ["kernel/a.c", "kernel/b.c"]
    assert not (tmp_path / "tree.new").exists()


def test_apply_refuses_a_name_through_a_symlink_out_of_the_tree(
    tmp_path: Path, pristine: Path
) -> None:
    """An earlier patch (or the tree) may hold a symlink out: each apply checks again."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a.c").write_text("line1\nold\nline3\n")
    tree = tmp_path / "tree"
    reset_tree(pristine, tree, [])
    (tree / "escape").symlink_to(outside)
    directory = write_series(tmp_path, {"1.patch": patch_text("escape/a.c", "old", "new")})
    with pytest.raises(BadInput, match=r"1.patch: .*escape/a.c: goes through the symlink escape"):
        apply_patch(parse_series(directory).patches[0], tree)
    assert (outside / "a.c").read_text() == "line1\nold\nline3\n"
