"""The benchmark's own logic (the edit it makes, its counters), without running it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
import measures


def _hunks_consistent(text: str) -> bool:
    """Whether every hunk's body has exactly the lines its header counts."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        header = re.match(r"@@ -\d+,(\d+) \+\d+,(\d+) @@", lines[index])
        index += 1
        if not header:
            continue
        old, new = int(header[1]), int(header[2])
        while old > 0 or new > 0:
            kind = lines[index][:1]
            if kind not in (" ", "+", "-") or (kind == "-" and old == 0):
                return False
            old -= kind in " -"
            new -= kind in " +"
            if new < 0:
                return False
            index += 1
        # The next line must not continue the hunk.
        if index < len(lines) and lines[index][:1] == "+":
            return False
    return True


def test_the_edited_patch_adds_one_line_of_code_and_keeps_its_hunks_consistent(
    tmp_path: Path,
) -> None:
    pristine = tmp_path / "seccomp.c"
    pristine.write_text("".join(f"line {n}\n" for n in range(1, 2564)))
    edited = measures.edited_series(tmp_path / "edited", 1234, pristine)
    assert edited.name == measures.SERIES.name  # same tree and build dir as the real series
    original = (measures.SERIES / measures.SECCOMP_PATCH).read_text()
    changed = (edited / measures.SECCOMP_PATCH).read_text()
    added = [line for line in changed.splitlines() if line not in original.splitlines()]
    assert added[-1] == "+static const int bench_edit_1234 __maybe_unused = 1234;"
    assert _hunks_consistent(original)
    assert _hunks_consistent(changed)
    # The new hunk's context is the pristine file's end, which the patch leaves
    # alone; it starts below everything the patch's own seccomp.c hunks add,
    # counted here line by line rather than from their headers.
    section = original[original.index("+++ b/kernel/seccomp.c") : original.index("\n-- \n")]
    section_lines = section.splitlines()[1:]
    grown = sum(line.startswith("+") for line in section_lines) - sum(
        line.startswith("-") for line in section_lines
    )
    header = f"@@ -2561,3 +{2561 + grown},4 @@\n line 2561\n line 2562\n line 2563\n+static"
    assert header in changed
    # Counting is strict: the same edit without its header bump is caught.
    assert not _hunks_consistent(
        changed.replace(f" +{2561 + grown},4 @@", f" +{2561 + grown},3 @@", 1)
    )
    # The rest of the series is untouched.
    for patch in measures.SERIES.iterdir():
        if patch.name != measures.SECCOMP_PATCH:
            assert (edited / patch.name).read_bytes() == patch.read_bytes()


def test_ccache_hit_rate_is_taken_between_two_readings() -> None:
    before = {"direct_cache_hit": 10, "preprocessed_cache_hit": 5, "cache_miss": 100}
    after = {"direct_cache_hit": 50, "preprocessed_cache_hit": 15, "cache_miss": 110}
    hits, misses, rate = measures.hit_rate(before, after)
    assert (hits, misses) == (50, 10)
    assert rate == pytest.approx(50 / 60)
    assert measures.hit_rate(after, after) == (0, 0, None)


def test_kunit_elapsed_line_is_read() -> None:
    line = (
        "[07:01:02] Elapsed time: 312.501s total, 2.004s configuring, 290.100s building, "
        "20.397s running"
    )
    match = measures._KUNIT_ELAPSED.search(line)
    assert match is not None
    assert float(match["building"]) == 290.1 and float(match["running"]) == 20.397


def test_cell_layers_follow_the_harness_merge_order(tmp_path: Path) -> None:
    configs, tree = tmp_path / "configs", tmp_path / "tree"
    configs.mkdir()
    for name in ("base", "x86_64", "arm64", "feat", "feat.x86_64", "feat.arm64", "unused"):
        (configs / f"{name}.config").write_text(f"CONFIG_{name.upper().replace('.', '_')}=y\n")
    collection = tree / "tools" / "testing" / "selftests" / "withconfig"
    collection.mkdir(parents=True)
    (collection / "config").write_text("CONFIG_FROM_THE_TREE=y\n")
    matrix = tmp_path / "harness.toml"
    matrix.write_text('features = ["feat"]\nselftests = ["withconfig", "without"]\n')
    layers = measures.cell_layers(tree, "x86_64", matrix, configs)
    assert [name for name, _ in layers] == [
        "base.config", "x86_64.config", "feat.config", "feat.x86_64.config",
        "selftests/withconfig/config",
    ]  # fmt: skip
    assert layers[-1][1] == "CONFIG_FROM_THE_TREE=y\n"


def test_object_count_counts_the_objects_of_a_build_dir(tmp_path: Path) -> None:
    for name in ("kernel/fork.o", "kernel/fork.c", "lib/a.o", "vmlinux.o", "built-in.a"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert measures.object_count(tmp_path) == 3


def test_cell_layers_name_the_fragments_the_harness_merges(tmp_path: Path) -> None:
    """The bench's own list of the cell's fragment files against the harness's:
    a change to the harness's merge order must show here, not skew the rows."""
    import tomllib
    from types import SimpleNamespace

    from harness.core.arches import get_arch
    from harness.run.inputs import fragments_for

    matrix = tomllib.loads((measures.ROOT / "harness.toml").read_text())
    config = SimpleNamespace(
        config_dir=measures.ROOT / "kernel-configs", features=matrix.get("features", [])
    )
    for arch in ("x86_64", "arm64"):
        merged = [path.name for path in fragments_for(config, get_arch(arch))]  # type: ignore[arg-type]
        layers = measures.cell_layers(tmp_path, arch)  # a tree without selftest configs
        assert [name for name, _ in layers] == merged
