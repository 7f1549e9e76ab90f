"""W=1 warnings: parsed from recorded gcc output, compared without line numbers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.extrawarn import CompilerWarning, built_sources, parse_warnings


def test_warnings_are_file_function_and_message_relative_to_the_tree(data_dir: Path) -> None:
    output = (data_dir / "gcc-w1-two-functions.txt").read_text()
    found = parse_warnings(output.replace("/TREE", "/work/trees/linux"), Path("/work/trees/linux"))
    unused = "warning: variable 'unused_total' set but not used [-Wunused-but-set-variable]"
    assert found == {
        CompilerWarning(
            "kernel/demo.c", "warning: no previous prototype for 'helper' [-Wmissing-prototypes]"
        ): 1,
        CompilerWarning("kernel/demo.c", unused, "'helper'"): 1,
        CompilerWarning(
            "kernel/demo.c", "warning: no previous prototype for 'other' [-Wmissing-prototypes]"
        ): 1,
        CompilerWarning("kernel/demo.c", unused, "'other'"): 1,
    }
    assert CompilerWarning("kernel/demo.c", unused, "'other'").describe() == (
        f"kernel/demo.c: {unused} (in 'other')"
    )


def test_moved_code_adds_no_warning_but_a_second_instance_does(data_dir: Path) -> None:
    tree = Path("/t")
    before = parse_warnings("/t/kernel/a.c:10:5: warning: unused variable 'x' [-Wunused]\n", tree)
    moved = parse_warnings("/t/kernel/a.c:42:7: warning: unused variable 'x' [-Wunused]\n", tree)
    assert not moved - before
    twice = parse_warnings(
        "/t/kernel/a.c:42:7: warning: unused variable 'x' [-Wunused]\n"
        "./kernel/a.c:50:7: warning: unused variable 'x' [-Wunused]\n",
        tree,
    )
    assert list((twice - before).elements()) == [
        CompilerWarning("kernel/a.c", "warning: unused variable 'x' [-Wunused]")
    ]


def test_werror_errors_count_and_make_noise_does_not() -> None:
    found = parse_warnings(
        "make[2]: *** [scripts/Makefile.build:229: kernel/a.s] Error 1\n"
        "kernel/a.c:3:1: error: no previous prototype for 'f' [-Werror=missing-prototypes]\n",
        Path("/t"),
    )
    assert list(found) == [
        CompilerWarning(
            "kernel/a.c", "error: no previous prototype for 'f' [-Werror=missing-prototypes]"
        )
    ]


def test_only_objects_the_last_build_made_count_as_built(tmp_path: Path) -> None:
    tree, build_dir = tmp_path / "tree", tmp_path / "build"
    for name in ("kernel/fresh.c", "kernel/stale.c", "kernel/never.c", "include/x.h"):
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("int x;\n")
    (build_dir / "kernel").mkdir(parents=True)
    (build_dir / "kernel/fresh.o").write_text("")
    stale = build_dir / "kernel/stale.o"
    stale.write_text("")
    old = time.time() - 3600
    os.utime(stale, (old, old))  # left from before its source was given a fresh mtime
    sources = ["kernel/fresh.c", "kernel/stale.c", "kernel/never.c", "include/x.h", "kernel/gone.c"]
    assert built_sources(tree, build_dir, sources) == ["kernel/fresh.c"]
