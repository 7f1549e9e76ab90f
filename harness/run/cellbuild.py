"""A cell's kernel side: its tree (pristine, or the patched link farm), config,
build and selftest binaries, and the arch's guest userspace it will boot with.

A stage that fails records itself on the cell (its status, message and the
excerpt its StageFailure carries); the cell is then finished and written.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from harness.core.arches import ArchSpec
from harness.core.errors import StageFailure
from harness.core.jsonfile import read_json, write_json
from harness.core.progress import Meter, Progress
from harness.core.status import Status
from harness.core.toolchains import Platform
from harness.core.vocabulary import Variant
from harness.kernel import build, selftests
from harness.kernel.buildmeter import metered_build
from harness.kernel.selftest_tap import SelftestBinary
from harness.kernel.trees import prepare_tree
from harness.results.model import Cell, StageState
from harness.run.config import Prepared, RunConfig
from harness.run.keys import (
    BUILD_STAMP,
    build_dir_for,
    build_key,
    config_key,
    toolchain_version,
    tree_dir_for,
)
from harness.vm import initramfs, qemu
from harness.vm.initramfs import GuestBinary

T = TypeVar("T")


@dataclass(frozen=True)
class BuiltCell:
    """A cell whose kernel (and selftests) are built, waiting for its boot."""

    cell: Cell
    arch: ArchSpec
    cell_dir: Path
    tree: Path
    build_dir: Path
    image: Path
    selftests: list[GuestBinary]


def _once(cache: dict[str, T | StageFailure], key: str, make: Callable[[], T]) -> T:
    """`make()` once per key and run; a stage failure is remembered and raised again."""
    cached = cache.get(key)
    if isinstance(cached, StageFailure):
        raise cached
    if cached is None:
        try:
            cached = make()
        except StageFailure as failure:
            cache[key] = failure
            raise
        cache[key] = cached
    return cached


def write_cell(cell: Cell, cell_dir: Path, progress: Progress) -> None:
    """The finished cell's cell.json, and its one progress line."""
    write_json(cell_dir / "cell.json", cell.to_json())
    progress.line(
        f"{cell.name}: {cell.status.label}" + (f" ({cell.reason})" if cell.reason else "")
    )


class CellBuilder:
    """Patches, configures and builds cells; shares trees and guest bases between them."""

    def __init__(self, config: RunConfig, prepared: Prepared, progress: Progress) -> None:
        self.config = config
        self.prepared = prepared
        self.progress = progress
        self.trees: dict[str, Path | StageFailure] = {}
        self.bases: dict[str, initramfs.Initramfs | StageFailure] = {}
        # Two guests of one arch share one base; arches do not wait for each other.
        self.bases_locks = {name: threading.Lock() for name in (a.name for a in config.arches)}
        self.opened: list[tuple[Cell, Path]] = []  # every cell begun, in order, and its dir

    def _timed(self, cell: Cell, stage: str, action: Callable[[Meter], object]) -> object:
        started = time.monotonic()
        result = cell.stages[stage]
        try:
            with self.progress.stage(cell.name, stage) as meter:
                value = action(meter)
        except StageFailure as failure:
            result.state, result.seconds = StageState.FAIL, time.monotonic() - started
            result.message = str(failure)
            cell.fail(failure.status, f"{stage}: {failure}")
            if failure.excerpt:
                cell.facts.setdefault("excerpts", {})[stage] = failure.excerpt
            raise
        result.state, result.seconds = StageState.PASS, time.monotonic() - started
        return value

    def build_dir(self, platform: Platform, variant: Variant) -> Path:
        return build_dir_for(self.config.work, self.prepared, platform, variant)

    def tree_for(self, variant: Variant) -> Path:
        """The variant's tree: a link farm of the pristine tree, the series applied
        for the patched variant."""
        series = self.prepared.series if variant == Variant.PATCHED else None
        destination = tree_dir_for(self.config.work, self.prepared, variant)

        def farm() -> Path:
            source = self.prepared.source
            prepare_tree(source.tree, series, destination, source.fingerprint)
            return destination

        return _once(self.trees, str(destination), farm)

    def base_for(self, arch: ArchSpec, log_path: Path) -> initramfs.Initramfs:
        def make() -> initramfs.Initramfs:
            cache = self.config.work.initramfs
            if initramfs.base_path(arch, cache).is_file():
                return initramfs.build_base(arch, cache, log_path)
            with self.progress.stage(arch.name, "guest userspace (mmdebstrap, once)"):
                return initramfs.build_base(arch, cache, log_path)

        with self.bases_locks.setdefault(arch.name, threading.Lock()):
            return _once(self.bases, arch.name, make)

    def guest_base_for(self, cell: Cell, arch: ArchSpec, cell_dir: Path) -> None:
        """Make the arch's guest userspace here, in the build thread, where Ctrl-C
        stops mmdebstrap at once (a guest worker would wait for it to finish)."""
        try:
            self.base_for(arch, cell_dir / "initramfs.log")
        except StageFailure as failure:
            cell.fail(failure.status, f"guest userspace: {failure}")
            raise

    def build_cell(self, platform: Platform, variant: Variant, run_dir: Path) -> BuiltCell | Cell:
        """Patch, configure and build a cell (and its selftests).

        Returns the cell, written and finished, when a stage failed or there
        is nothing to test; else what its boot and test stage needs.
        """
        arch, toolchain = platform.arch, platform.toolchain
        cell = Cell(arch, variant, toolchain=toolchain)
        cell_dir = run_dir / cell.directory_name
        cell_dir.mkdir(parents=True, exist_ok=True)
        self.opened.append((cell, cell_dir))
        source = self.prepared.source
        series = self.prepared.series if variant == Variant.PATCHED else None
        cell.facts.update(
            kernel_version=source.kernel_version,
            package_version=source.package_version,
            source=str(source.tree) if source.origin != "debian-package" else source.origin,
            series=series.name if series else None,
            series_hash=series.content_hash() if series else None,
            compiler=toolchain_version(platform),
            qemu=qemu.qemu_version(arch.qemu_binary),
        )
        build_dir = self.build_dir(platform, variant)
        build_log = cell_dir / "build.log"
        cell.files["build_log"] = build_log.name
        try:
            tree = self._timed(cell, "patch", lambda _: self.tree_for(variant))
            assert isinstance(tree, Path)
            image = build_dir / arch.image_path
            stamp = build_dir / BUILD_STAMP
            key = build_key(source, series, self.prepared.merged[arch.name], cell.facts["compiler"])
            cell.facts["build_key"] = key
            merged = self.prepared.merged[arch.name]
            configured = config_key(source, series, merged, cell.facts["compiler"], tree)
            previous = read_json(stamp)
            if self.config.do_build and previous.get("key") == key and image.is_file():
                # Same source, series, config and compiler as the kernel there: reuse it.
                for stage in ("config", "build"):
                    cell.stages[stage].state = StageState.REUSED
                self.progress.line(f"{cell.name}: kernel up to date (build key {key[:12]})")
            elif self.config.do_build:
                stamp.unlink(missing_ok=True)
                if previous.get("config_key") == configured and (build_dir / ".config").is_file():
                    # Only sources changed: kbuild rebuilds what they touch, .config stands.
                    cell.stages["config"].state = StageState.REUSED
                else:
                    self._timed(
                        cell,
                        "config",
                        lambda _: build.configure(
                            arch,
                            toolchain,
                            tree,
                            build_dir,
                            merged,
                            self.prepared.index,
                            build_log,
                            self.config.work.ccache,
                        ),
                    )
                self._timed(
                    cell,
                    "build",
                    lambda meter: metered_build(
                        arch,
                        toolchain,
                        tree,
                        build_dir,
                        merged.digest(),
                        self.config.jobs,
                        build_log,
                        self.config.work,
                        meter,
                        self.config.build_timeout,
                    ),
                )
                write_json(stamp, {"key": key, "config_key": configured})
            cell.facts["config_hash"] = build.config_hash(build_dir / ".config")
            cell.facts["built_uts_version"] = build.built_uts_version(build_dir)
            for kept in (".config", "System.map"):
                if (build_dir / kept).exists():
                    shutil.copy2(build_dir / kept, cell_dir / kept.lstrip("."))
            cell.files["vmlinux"] = str(build_dir / "vmlinux")
            if self.config.do_test:
                selftests = self.selftests_for(cell, arch, tree, build_dir, build_log)
                self.guest_base_for(cell, arch, cell_dir)
                return BuiltCell(cell, arch, cell_dir, tree, build_dir, image, selftests)
        except StageFailure:
            pass  # the stage recorded its failure on the cell
        except OSError as error:
            # Disk full, a vanished file, a tool that could not start: the
            # host failed, not the kernel; the next cell may still run.
            cell.fail(Status.INFRA, f"host error: {error}")
        write_cell(cell, cell_dir, self.progress)
        return cell

    def selftests_for(
        self, cell: Cell, arch: ArchSpec, tree: Path, build_dir: Path, log_path: Path
    ) -> list[GuestBinary]:
        """The upstream selftest binaries built from this cell's tree (none if disabled)."""
        if not self.config.selftests:
            return []
        started = time.monotonic()
        try:
            with self.progress.stage(cell.name, "selftests build"):
                binaries = self._build_selftests(cell, arch, tree, build_dir, log_path)
        except StageFailure as failure:
            cell.stages["build"].state = StageState.FAIL
            cell.stages["build"].message = str(failure)
            cell.fail(failure.status, f"selftests build: {failure}")
            raise
        cell.facts["selftests_build_seconds"] = round(time.monotonic() - started, 3)
        return binaries

    def _build_selftests(
        self, cell: Cell, arch: ArchSpec, tree: Path, build_dir: Path, log_path: Path
    ) -> list[GuestBinary]:
        collections = self.config.selftests
        files = selftests.sysroot_files(collections)
        sysroot = selftests.build_sysroot(arch, files, self.config.work.initramfs, log_path)
        ccache = self.config.work.ccache
        selftests.install_headers(arch, cell.toolchain, tree, build_dir, log_path, ccache)
        built: list[GuestBinary] = []
        for collection in collections:
            for name in collection.binaries:
                binary = SelftestBinary(collection, name)
                path = selftests.build_binary(
                    arch,
                    binary,
                    tree / collection.directory,
                    tree,
                    build_dir,
                    sysroot,
                    log_path,
                    ccache,
                    from_series=cell.variant == Variant.PATCHED,
                )
                built.append(GuestBinary(path, binary.guest_path, collection.arguments(name)))
        return built + self.series_selftests(cell, arch, build_dir, sysroot, log_path)

    def series_selftests(
        self, cell: Cell, arch: ArchSpec, build_dir: Path, sysroot: Path | None, log_path: Path
    ) -> list[GuestBinary]:
        """For a baseline cell, the series tree's binaries as well, of every collection the
        series changes: kselftests run on kernels older than their tree, so their new
        cases must skip cleanly there and the others agree with the baseline tree's own."""
        series = self.prepared.series
        if cell.variant != Variant.BASELINE or series is None:
            return []
        pristine = self.prepared.source.tree
        scratch = build_dir / selftests.BUILT_DIR / "series-source"
        built: list[GuestBinary] = []
        for collection in self.config.selftests:
            source_dir = selftests.series_directory(
                pristine, series.patches, collection, scratch, log_path
            )
            if source_dir is None:
                continue
            for name in collection.binaries:
                binary = SelftestBinary(collection, name, series=True)
                path = selftests.build_binary(
                    arch,
                    binary,
                    source_dir,
                    pristine,
                    build_dir,
                    sysroot,
                    log_path,
                    self.config.work.ccache,
                    from_series=True,
                )
                built.append(GuestBinary(path, binary.guest_path, collection.arguments(name)))
        return built
