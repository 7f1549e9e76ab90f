"""How far a kernel build is: kbuild's compile lines counted against an expected total.

The total is what the last full build of the same arch and config compiled
(exact), else what the last full build of the arch compiled under another
config (an estimate, shown with `~`). A build dir that already holds objects
recompiles what changed, an unknown share of the total: only the count shows.
The ccache hit rate is that of the cache's counters since the build began.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.jsonfile import read_json, write_json
from harness.core.progress import Meter, clock
from harness.core.toolchains import Toolchain
from harness.core.workdir import WorkDir
from harness.kernel import build

# kbuild's quiet line for one object compiled: "  CC      kernel/seccomp.o".
_OBJECT = re.compile(r"^  (?:CC|AS)\s+(?:\[M\]\s+)?\S+\.o$")

CCACHE_EVERY = 5.0  # seconds between two reads of ccache's counters


@dataclass(frozen=True)
class Expected:
    objects: int
    estimated: bool  # from another config of the arch


def expected_objects(counts_file: Path, arch: str, digest: str) -> Expected | None:
    by_config = read_json(counts_file).get(arch)
    if not isinstance(by_config, dict):
        return None
    exact = by_config.get(digest)
    if isinstance(exact, int):
        return Expected(exact, False)
    last = by_config.get("last")
    return Expected(last, True) if isinstance(last, int) else None


def record_objects(counts_file: Path, arch: str, digest: str, objects: int) -> None:
    counts = read_json(counts_file)
    by_config = counts.get(arch)
    by_config = by_config if isinstance(by_config, dict) else {}
    by_config.update({digest: objects, "last": objects})
    counts[arch] = by_config
    write_json(counts_file, counts)


def ccache_hits(ccache_dir: Path) -> tuple[int, int]:
    """(hits, misses) of the cache so far; (0, 0) without ccache."""
    env = {"CCACHE_DIR": str(ccache_dir), "PATH": "/usr/bin:/bin"}
    command = ["ccache", "--print-stats"]
    try:
        printed = subprocess.run(
            command, capture_output=True, text=True, check=False, env=env, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0, 0
    values = dict(line.split("\t", 1) for line in printed.splitlines() if "\t" in line)

    def counter(name: str) -> int:
        value = values.get(name, "0").strip()
        return int(value) if value.isdigit() else 0

    hits = counter("direct_cache_hit") + counter("preprocessed_cache_hit")
    return hits, counter("cache_miss")


def meter_for(
    counts_file: Path, arch: str, digest: str, build_dir: Path, ccache_dir: Path
) -> BuildMeter:
    """A meter for the build about to run in `build_dir`."""
    incremental = (build_dir / "vmlinux").exists()
    return BuildMeter(expected_objects(counts_file, arch, digest), incremental, ccache_dir)


def remember(meter: BuildMeter, counts_file: Path, arch: str, digest: str) -> None:
    """After a build that succeeded: a full one's count is the next one's total."""
    if not meter.incremental and meter.objects:
        record_objects(counts_file, arch, digest, meter.objects)


@dataclass
class BuildMeter:
    """Fed kbuild's output line by line; describes the build so far."""

    expected: Expected | None
    incremental: bool  # the build dir already held objects
    ccache_dir: Path
    started: float = field(default_factory=time.monotonic)
    objects: int = 0
    _ccache_start: tuple[int, int] = (0, 0)
    _ccache_now: tuple[int, int] = (0, 0)
    _ccache_read: float = 0.0

    def __post_init__(self) -> None:
        self._ccache_start = self._ccache_now = ccache_hits(self.ccache_dir)
        self._ccache_read = self.started

    def see(self, line: str) -> None:
        if _OBJECT.match(line.rstrip("\n")):
            self.objects += 1

    def hit_rate(self, now: float) -> str:
        if now - self._ccache_read >= CCACHE_EVERY:
            self._ccache_now, self._ccache_read = ccache_hits(self.ccache_dir), now
        hits = self._ccache_now[0] - self._ccache_start[0]
        misses = self._ccache_now[1] - self._ccache_start[1]
        return f"ccache {100 * hits // (hits + misses)}% hits" if hits + misses else ""

    def describe(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        parts = [f"{self.objects} objects" + (" recompiled" if self.incremental else "")]
        if self.expected is not None and not self.incremental and self.expected.objects:
            mark = "~" if self.expected.estimated else ""
            total = self.expected.objects
            parts = [f"{self.objects}/{mark}{total} objects"]
            if self.objects:
                left = max(0.0, elapsed * (total - self.objects) / self.objects)
                parts.append(f"ETA {mark}{clock(left)}")
        parts.insert(1, clock(elapsed))
        rate = self.hit_rate(now)
        return ", ".join(parts + ([rate] if rate else []))


def metered_build(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    config_digest: str,
    jobs: int,
    log_path: Path,
    work: WorkDir,
    stage: Meter,
    timeout: float | None = None,
) -> build.BuildOutputs:
    """build.build, its progress reported on `stage` as kbuild's lines arrive."""
    # Counted per platform: clang and gcc compile the same objects, but not
    # at the same pace, and a meter's total is that of the last full build.
    platform = toolchain.platform(arch)
    meter = meter_for(work.build_objects, platform, config_digest, build_dir, work.ccache)

    def on_line(line: str) -> None:
        meter.see(line)
        stage.report(meter.describe())

    outputs = build.build(
        arch, toolchain, tree, build_dir, jobs, log_path, work.ccache, timeout, on_line
    )
    remember(meter, work.build_objects, platform, config_digest)
    return outputs
