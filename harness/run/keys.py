"""What a built kernel and its .config depend on, and where a cell's build lives."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.core.process import capture
from harness.core.toolchains import Platform
from harness.core.vocabulary import Variant
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.series import Series
from harness.kernel.source import KernelSource
from harness.kernel.trees import build_dir_in
from harness.run.config import Prepared

BUILD_STAMP = ".harness-build.json"


def build_key(
    source: KernelSource, series: Series | None, merged: kconfig.MergedConfig, toolchain: str
) -> str:
    """What a built kernel depends on: source (a --source tree by its content), series
    content, merged config and compiler."""
    parts = [
        str(source.tree),
        source.kernel_version,
        str(source.package_version),
        source.fingerprint,
        series.content_hash() if series else "no series",
        merged.fragment_text(),
        toolchain,
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def config_key(
    source: KernelSource,
    series: Series | None,
    merged: kconfig.MergedConfig,
    toolchain: str,
    tree: Path,
) -> str:
    """What a cell's .config depends on: a series edit that leaves every Kconfig
    file alone (the usual case) keeps it, so the rebuild skips the config stage."""
    parts = [
        str(source.tree),
        source.kernel_version,
        str(source.package_version),
        merged.fragment_text(),
        toolchain,
    ]
    for relative in series.touched_files() if series else []:
        if Path(relative).name.startswith("Kconfig"):
            path = tree / relative
            content = path.read_bytes() if path.is_file() else b"(absent)"
            parts.append(f"{relative}:{hashlib.sha256(content).hexdigest()}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def tree_dir_for(work: WorkDir, prepared: Prepared, variant: Variant) -> Path:
    """A variant's tree (a link farm of the pristine tree, its build dirs inside):
    per source, and per series for the patched variant."""
    label = str(Variant.BASELINE)
    if variant == Variant.PATCHED and prepared.series is not None:
        label = f"series-{prepared.series.dir_name}"
    return work.trees / source_key(prepared.source) / label


def build_dir_for(work: WorkDir, prepared: Prepared, platform: Platform, variant: Variant) -> Path:
    """A cell's build dir: in its variant's tree, per arch, toolchain and merged config."""
    tree = tree_dir_for(work, prepared, variant)
    return build_dir_in(tree, platform.name, prepared.merged[platform.arch.name].digest())


def source_key(source: KernelSource) -> str:
    if source.origin == "directory":
        return "dir-" + hashlib.sha256(str(source.tree).encode()).hexdigest()[:12]
    return source.tree.name


def toolchain_version(platform: Platform) -> str:
    """The compiler's first line of --version: part of the build key."""
    compiler = platform.toolchain.compiler_for(platform.arch)
    first = capture([compiler, "--version"]).splitlines()
    return first[0] if first else "unknown"
