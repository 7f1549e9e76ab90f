"""The benchmark's measurements: each runs real commands and returns timed facts.

Everything is wall time as a developer sees it, taken around whole
commands; details (stage times, ccache counters) come from what the
commands themselves record (summary.json, `ccache --print-stats`, kunit's
own "Elapsed time" line).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERIES = ROOT / "patches" / "ptrace-seccomp"
# The patch of the series that touches kernel/seccomp.c and nothing else.
# The patch whose diff of kernel/seccomp.c the edit row extends (its last file).
SECCOMP_PATCH = "0002-ptrace-seccomp-add-PTRACE_SECCOMP-failing-closed.patch"
SECCOMP_FILE = "kernel/seccomp.c"


class BenchError(Exception):
    """A measured command failed: the benchmark stops and says which."""


@dataclass
class Timed:
    seconds: float
    exit_code: int
    output: str
    summary: dict[str, Any] = field(default_factory=dict)

    def cell(self, arch: str, variant: str) -> dict[str, Any]:
        return next(
            c for c in self.summary["cells"] if c["arch"] == arch and c["variant"] == variant
        )


def timed(command: list[str], log: Path, cwd: Path = ROOT, env: dict[str, str] | None = None,
          allowed: tuple[int, ...] = (0,)) -> Timed:  # fmt: skip
    """Run `command`, its output appended to `log`; fail unless it exits as allowed."""
    started = time.monotonic()
    completed = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    output = completed.stdout + completed.stderr
    with log.open("a") as stream:
        stream.write(
            f"$ {' '.join(command)}\n{output}\n# {seconds:.1f} s, exit {completed.returncode}\n"
        )
    if completed.returncode not in allowed:
        raise BenchError(f"{' '.join(command[:6])} ... exited {completed.returncode}; see {log}")
    return Timed(seconds, completed.returncode, output)


def harness_run(argv: list[str], results: Path, log: Path, **kwargs: Any) -> Timed:
    """`harness ARGV --results RESULTS`, timed, with its summary.json read back."""
    command = [sys.executable, "-m", "harness", *argv, "--results", str(results)]
    outcome = timed(command, log, **kwargs)
    summary = results / "summary.json"
    if summary.is_file():
        outcome.summary = json.loads(summary.read_text())
    return outcome


# -- scratch work dirs --------------------------------------------------------------


def scratch_work_dir(path: Path, work: Path, share_ccache: bool) -> Path:
    """A work dir with no builds and no trees that shares the unpacked sources (and,
    if asked, the ccache) of `work`: unpacking the tarball is set-up, not a build."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    # A hard-link farm, not a symlink: kbuild resolves the source tree's real
    # path, and one outside this work dir (ccache's base dir) would keep
    # absolute paths in every compile command and miss the shared cache.
    (path / "sources").mkdir()
    for tree in (work / "sources").iterdir():
        if tree.is_dir():
            subprocess.run(["cp", "-al", str(tree), str(path / "sources" / tree.name)], check=True)
    # The guest userspace is cached by content: reuse it, as any later run would.
    (path / "initramfs").symlink_to(work.resolve() / "initramfs")
    if share_ccache:
        (path / "ccache").symlink_to(work.resolve() / "ccache")
    if (work / "accel-verdicts.json").is_file():
        shutil.copy2(work / "accel-verdicts.json", path)
    return path


def set_up(work: Path, log: Path) -> None:
    """The default source unpacked into `work` and the x86_64 guest userspace made,
    as a first run would (set-up, not a build): the scratch work dirs share both."""
    script = (
        "import sys; from pathlib import Path; "
        "from harness.core.arches import get_arch; "
        "from harness.kernel.source import resolve_source; "
        "from harness.vm.initramfs import build_base; "
        "work = Path(sys.argv[1]); resolve_source(work, None, None); "
        "build_base(get_arch('x86_64'), work / 'initramfs', Path(sys.argv[2]))"
    )
    subprocess.run([sys.executable, "-c", script, str(work), str(log)], cwd=ROOT, check=True)


def pristine_tree(work: Path) -> Path:
    trees = sorted((work / "sources").glob("debian-*"))
    if not trees:
        raise BenchError(f"no unpacked kernel source in {work}/sources: run 'harness run' once")
    return trees[-1]


# -- ccache -------------------------------------------------------------------------


def ccache_counters(ccache_dir: Path) -> dict[str, int]:
    completed = subprocess.run(
        ["ccache", "--print-stats"], env={**os.environ, "CCACHE_DIR": str(ccache_dir)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    counters: dict[str, int] = {}
    for line in completed.stdout.splitlines():
        name, _, value = line.partition("\t")
        if value.strip().isdigit():
            counters[name] = int(value)
    return counters


def hit_rate(before: dict[str, int], after: dict[str, int]) -> tuple[int, int, float | None]:
    """(hits, misses, hit rate) between two `ccache --print-stats` readings."""

    def delta(*names: str) -> int:
        return sum(after.get(name, 0) - before.get(name, 0) for name in names)

    hits = delta("direct_cache_hit", "preprocessed_cache_hit")
    misses = delta("cache_miss")
    return hits, misses, (hits / (hits + misses) if hits + misses else None)


# -- plain make, as a developer would type it -----------------------------------------


def plain_make_build(tree: Path, build_dir: Path, fragment_text: str, ccache_dir: Path,
                     jobs: int, log: Path) -> float:  # fmt: skip
    """tinyconfig + the same fragment + olddefconfig + make bzImage: the commands the
    harness runs, typed by hand, with the same compiler wrapper and an empty ccache."""
    shutil.rmtree(build_dir, ignore_errors=True)
    shutil.rmtree(ccache_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    fragment = build_dir / "fragment.config"
    fragment.write_text(fragment_text)
    env = {**os.environ, "CCACHE_DIR": str(ccache_dir), "CCACHE_BASEDIR": str(build_dir.parent),
           "KBUILD_BUILD_USER": "bench", "KBUILD_BUILD_HOST": "bench", "LC_ALL": "C"}  # fmt: skip
    make = ["make", "-C", str(tree), f"O={build_dir}", "ARCH=x86_64", "CC=ccache gcc",
            "HOSTCC=ccache gcc"]  # fmt: skip
    started = time.monotonic()
    timed([*make, "tinyconfig"], log, env=env)
    timed([str(tree / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build_dir),
           str(build_dir / ".config"), str(fragment)], log, cwd=build_dir, env=env)  # fmt: skip
    timed([*make, "olddefconfig"], log, env=env)
    timed([*make, f"-j{jobs}", "bzImage"], log, env=env)
    return time.monotonic() - started


def object_count(build_dir: Path) -> int:
    """Objects a build made: kbuild's *.o files under its build dir."""
    return sum(1 for _ in build_dir.rglob("*.o"))


def cell_layers(
    tree: Path, arch: str, matrix_file: Path = ROOT / "harness.toml",
    configs: Path = ROOT / "kernel-configs",
) -> list[tuple[str, str]]:  # fmt: skip
    """The default cell's config fragments in the harness's merge order, as
    (name, text): base, the arch's own, each feature's (common, then per arch),
    then each selftest collection's config from `tree` where it has one."""
    matrix = tomllib.loads(matrix_file.read_text())
    names = ["base", arch]
    for feature in matrix.get("features", []):
        names += [feature, f"{feature}.{arch}"]
    layers = [(f"{name}.config", (configs / f"{name}.config").read_text())
              for name in names if (configs / f"{name}.config").is_file()]  # fmt: skip
    for collection in matrix.get("selftests", []):
        path = tree / "tools" / "testing" / "selftests" / collection / "config"
        if path.is_file():
            layers.append((f"selftests/{collection}/config", path.read_text()))
    return layers


# -- a one-patch edit ---------------------------------------------------------------


def edited_series(destination: Path, token: int, pristine_source: Path) -> Path:
    """A copy of the series whose kernel/seccomp.c patch adds one line of code.

    The line is a file-scope constant appended to kernel/seccomp.c in a hunk
    of its own, after the file's last lines (which no later patch uses as
    context), so the object really recompiles (a comment would be a ccache
    hit) while the kernel behaves the same. kernel/seccomp.c must be the
    last file of that patch, so the new hunk lands in its section. The copy
    keeps the series' name, so it maps to the same tree and build dir as the
    real series.
    """
    copy = destination / SERIES.name
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(SERIES, copy)
    patch = copy / SECCOMP_PATCH
    lines = patch.read_text().splitlines(keepends=True)
    sections = [n for n, line in enumerate(lines) if line.startswith("+++ ")]
    if not sections or lines[sections[-1]] != f"+++ b/{SECCOMP_FILE}\n":
        raise ValueError(f"{patch.name}: {SECCOMP_FILE} is not the last file it changes")
    # The patches before this one leave kernel/seccomp.c alone: it is the pristine file.
    pristine = pristine_source.read_text().splitlines(keepends=True)
    shift = 0  # lines this patch adds above the end of the file
    for line in lines[sections[-1] :]:
        header = re.match(r"@@ -\d+,(\d+) \+\d+,(\d+) @@", line)
        if header:
            shift += int(header[2]) - int(header[1])
    context = pristine[-3:]
    start = len(pristine) - len(context) + 1
    hunk = [f"@@ -{start},{len(context)} +{start + shift},{len(context) + 1} @@\n"]
    hunk += [f" {line}" for line in context]
    hunk.append(f"+static const int bench_edit_{token} __maybe_unused = {token};\n")
    signature = lines.index("-- \n") if "-- \n" in lines else len(lines)
    lines[signature:signature] = hunk
    patch.write_text("".join(lines))
    return copy


# -- kunit.py, as a reference ---------------------------------------------------------

_KUNIT_ELAPSED = re.compile(
    r"Elapsed time: (?P<total>[\d.]+)s total, (?P<configuring>[\d.]+)s configuring, "
    r"(?P<building>[\d.]+)s building, (?P<running>[\d.]+)s running"
)


def kunit_run(tree: Path, build_dir: Path, jobs: int, log: Path) -> dict[str, float]:
    """`kunit.py run --arch=x86_64` from the same source tree (out of tree, cold)."""
    shutil.rmtree(build_dir, ignore_errors=True)
    command = [sys.executable, str(tree / "tools/testing/kunit/kunit.py"), "run",
               "--arch=x86_64", f"--build_dir={build_dir}", f"--jobs={jobs}",
               "--timeout=900"]  # fmt: skip
    outcome = timed(command, log, cwd=tree)
    match = _KUNIT_ELAPSED.search(outcome.output)
    figures = {"wall": outcome.seconds}
    if match:
        figures.update({name: float(value) for name, value in match.groupdict().items()})
    return figures
