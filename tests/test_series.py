from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import BadInput
from harness.series import parse_series

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
