from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import BadInput
from harness.kernel.series import parse_series

PATCH = """\
From 1 Mon Sep 17 00:00:00 2001
Subject: [PATCH] demo

---
diff --git a/kernel/a.c b/kernel/a.c
--- a/kernel/a.c
+++ b/kernel/a.c
@@ -1 +1 @@
-one
+two
diff --git a/include/new.h b/include/new.h
new file mode 100644
--- /dev/null
+++ b/include/new.h
@@ -0,0 +1 @@
+new
"""


def make_series(tmp_path: Path, series: str, patches: dict[str, str]) -> Path:
    directory = tmp_path / "demo"
    directory.mkdir()
    (directory / "series").write_text(series)
    for name, text in patches.items():
        (directory / name).write_text(text)
    return directory


def test_parses_patches_in_order_skipping_comments(tmp_path: Path) -> None:
    directory = make_series(
        tmp_path,
        "# the series\n0002-b.patch\n\n0001-a.patch -p1 # trailing comment\n",
        {"0001-a.patch": PATCH, "0002-b.patch": PATCH, "0000-cover-letter.patch": "cover"},
    )
    series = parse_series(directory)
    assert [p.name for p in series.patches] == ["0002-b.patch", "0001-a.patch"]
    assert series.name == "demo"


def test_touched_files_strip_one_level(tmp_path: Path) -> None:
    series = parse_series(make_series(tmp_path, "a.patch\n", {"a.patch": PATCH}))
    assert series.touched_files() == ["kernel/a.c", "include/new.h"]


def test_strip_level_option_applies_to_touched_files(tmp_path: Path) -> None:
    text = PATCH.replace("a/kernel", "x/y/kernel").replace("b/kernel", "x/y/kernel")
    series = parse_series(make_series(tmp_path, "a.patch -p2\n", {"a.patch": text}))
    assert series.patches[0].strip == 2
    assert "kernel/a.c" in series.touched_files()


def test_content_hash_follows_patch_content(tmp_path: Path) -> None:
    directory = make_series(tmp_path, "a.patch\n", {"a.patch": PATCH})
    before = parse_series(directory).content_hash()
    (directory / "a.patch").write_text(PATCH.replace("+two", "+three"))
    assert parse_series(directory).content_hash() != before


def test_missing_series_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"series: no series file"):
        parse_series(tmp_path)


def test_listed_patch_that_is_absent_names_line_and_patch(tmp_path: Path) -> None:
    directory = make_series(tmp_path, "a.patch\ngone.patch\n", {"a.patch": PATCH})
    with pytest.raises(BadInput, match=r"series:2: patch gone.patch does not exist"):
        parse_series(directory)


def test_patch_path_escaping_the_series_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.patch").write_text(PATCH)
    directory = make_series(tmp_path, "../outside.patch\n", {})
    with pytest.raises(BadInput, match=r"escapes"):
        parse_series(directory)


def test_unknown_option_and_empty_series_are_refused(tmp_path: Path) -> None:
    directory = make_series(tmp_path, "a.patch -R\n", {"a.patch": PATCH})
    with pytest.raises(BadInput, match=r"unknown option '-R'"):
        parse_series(directory)
    (directory / "series").write_text("# nothing\n")
    with pytest.raises(BadInput, match=r"lists no patches"):
        parse_series(directory)


RENAME = """\
diff --git a/kernel/a.c b/kernel/z.c
similarity index 100%
rename from kernel/a.c
rename to {target}
"""
COPY = RENAME.replace("rename", "copy")
BINARY = """\
diff --git a/kernel/blob.bin {target}
new file mode 100644
index 0000000..3b18e51
GIT binary patch
literal 5
McmZ?wbYf%x00Bn<3jhEB

literal 0
HcmV?d00001

"""
HUNK = "--- a/kernel/a.c\n+++ {target}\n@@ -1 +1 @@\n-one\n+two\n"
OLD_SIDE = "--- {target}\n+++ b/kernel/a.c\n@@ -1 +1 @@\n-one\n+two\n"
PLAIN_HUNK = "--- kernel/a.c\n+++ {target}\n@@ -1 +1 @@\n-one\n+two\n"
ESCAPES = [
    ("rename-dotdot", RENAME, "../../victim"),
    ("rename-inner-dotdot", RENAME, "kernel/../../victim"),
    ("rename-absolute", RENAME, "/etc/victim"),
    ("copy-dotdot", COPY, "../victim"),
    ("copy-absolute", COPY, "/etc/victim"),
    ("git-binary-dotdot", BINARY, "b/../../victim"),
    ("git-binary-quoted", BINARY, '"b/..\\057victim"'),
    ("plus-dotdot", HUNK, "b/../../../../victim.txt"),
    ("plus-absolute", HUNK, "/etc/victim"),
    ("plus-quoted", HUNK, '"b/kernel/../../victim"'),
    ("plus-timestamp", HUNK, "b/../victim\t2024-01-01 00:00:00"),
    ("minus-dotdot", OLD_SIDE, "a/../victim"),
]


@pytest.mark.parametrize(("template", "target"), [(t, n) for _, t, n in ESCAPES],
                         ids=[i for i, _, _ in ESCAPES])  # fmt: skip
def test_every_path_a_patch_names_is_checked(tmp_path: Path, template: str, target: str) -> None:
    text = template.format(target=target)
    directory = make_series(tmp_path, "0001-bad.patch\n", {"0001-bad.patch": text})
    with pytest.raises(BadInput, match=r"0001-bad\.patch: .*(outside the tree|absolute)") as error:
        parse_series(directory)
    assert "\n" not in str(error.value)


def test_paths_are_checked_after_the_strip_level(tmp_path: Path) -> None:
    text = PLAIN_HUNK.format(target="kernel/a.c")
    # -p0 takes the names as written: fine.
    parse_series(make_series(tmp_path, "0001-ok.patch -p0\n", {"0001-ok.patch": text}))


def test_a_patch_creating_a_symlink_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    text = (
        "diff --git a/kernel/link b/kernel/link\nnew file mode 120000\nindex 0000000..1\n"
        "--- /dev/null\n+++ b/kernel/link\n@@ -0,0 +1 @@\n+../../outside\n"
        "\\ No newline at end of file\n"
    )
    directory = make_series(tmp_path, "0001-link.patch\n", {"0001-link.patch": text})
    with pytest.raises(BadInput, match=r"0001-link\.patch: kernel/link: a symlink to "
                       r"\.\./\.\./outside, outside the tree"):  # fmt: skip
        parse_series(directory)
    inside = text.replace("../../outside", "../include")
    (directory / "0001-link.patch").write_text(inside)
    parse_series(directory)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no diff in it"),
        ("Subject: a cover letter\n\nJust words.\n", "no diff in it"),
        ("--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1,2 +1,2 @@\n one\n-two\n+two\n",
         "changes nothing"),
    ],
    ids=["empty", "no-diff", "same-lines"],
)  # fmt: skip
def test_a_patch_that_changes_nothing_is_refused(tmp_path: Path, text: str, why: str) -> None:
    directory = make_series(tmp_path, "a.patch\n0002-none.patch\n",
                            {"a.patch": PATCH, "0002-none.patch": text})  # fmt: skip
    with pytest.raises(BadInput, match=rf"0002-none\.patch: {why}"):
        parse_series(directory)


@pytest.mark.parametrize(
    "text",
    [
        "diff --git a/kernel/a.c b/kernel/z.c\nsimilarity index 100%\n"
        "rename from kernel/a.c\nrename to kernel/z.c\n",
        "diff --git a/kernel/a.c b/kernel/a.c\nold mode 100644\nnew mode 100755\n",
        "diff --git a/kernel/e.c b/kernel/e.c\nnew file mode 100644\nindex 0000000..e69de29\n",
        "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -1 +1 @@\n-one\n\\ No newline at end of file\n"
        "+one\n",
        BINARY.format(target="b/kernel/blob.bin"),
    ],
    ids=["rename", "mode", "empty-new-file", "newline-at-eof", "binary"],
)
def test_patches_that_change_the_tree_without_text_hunks_are_kept(
    tmp_path: Path, text: str
) -> None:
    directory = make_series(tmp_path, "a.patch\n", {"a.patch": text})
    assert len(parse_series(directory).patches) == 1
