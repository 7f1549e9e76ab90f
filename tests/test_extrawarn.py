"""W=1 warnings: parsed from recorded gcc output, compared without line numbers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from harness.checks.extrawarn import CompilerWarning, built_sources, parse_warnings


def test_warnings_are_file_function_and_message_relative_to_the_tree(data_dir: Path) -> None:
    output = (data_dir / "gcc-w1-two-functions.txt").read_text()
    tree, build_dir = Path("/work/trees/linux"), Path("/work/builds/x86_64")
    found = parse_warnings(output.replace("/TREE", str(tree)), tree, build_dir)
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


def test_paths_relative_to_the_build_dir_as_ccache_prints_them() -> None:
    tree, build_dir = Path("/w/trees/src/check-series/s"), Path("/w/builds/src/x86_64-cs")
    found = parse_warnings(
        "../../../trees/src/check-series/s/kernel/a.c:3:5: warning: unused [-Wunused]\n"
        "./include/generated/autoconf.h:1:1: warning: odd [-Wodd]\n",
        tree,
        build_dir,
    )
    assert sorted(w.file for w in found) == ["include/generated/autoconf.h", "kernel/a.c"]


def test_paths_from_a_build_dir_inside_the_tree() -> None:
    tree = Path("/w/trees/src/check-series-s")
    found = parse_warnings(
        "../kernel/a.c:3:5: warning: unused [-Wunused]\n", tree, tree / "harness-build-x86_64-0"
    )
    assert [w.file for w in found] == ["kernel/a.c"]


def test_moved_code_adds_no_warning_but_a_second_instance_does() -> None:
    tree, build_dir = Path("/t"), Path("/b")
    warning = "warning: unused variable 'x' [-Wunused]"
    before = parse_warnings(f"/t/kernel/a.c:10:5: {warning}\n", tree, build_dir)
    moved = parse_warnings(f"/t/kernel/a.c:42:7: {warning}\n", tree, build_dir)
    assert not moved - before
    twice = parse_warnings(
        f"/t/kernel/a.c:42:7: {warning}\n../t/kernel/a.c:50:7: {warning}\n", tree, build_dir
    )
    assert list((twice - before).elements()) == [
        CompilerWarning("kernel/a.c", "warning: unused variable 'x' [-Wunused]")
    ]


def test_werror_errors_count_and_make_noise_does_not() -> None:
    found = parse_warnings(
        "make[2]: *** [scripts/Makefile.build:229: kernel/a.s] Error 1\n"
        "/t/kernel/a.c:3:1: error: no previous prototype for 'f' [-Werror=missing-prototypes]\n",
        Path("/t"),
        Path("/b"),
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
