"""The matrix: for every arch x variant cell, patch, configure, build, boot and test.

Every input is checked before the first long step (bad input exits 2 with
nothing started). A failing cell records its status and the run goes on with
the next cell; the worst cell decides the run's exit code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness import __version__
from harness.core.arches import ArchSpec
from harness.core.errors import BadInput, StageFailure
from harness.core.jsonfile import read_json, write_json
from harness.core.process import capture
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.workdir import WorkDir
from harness.kernel import build, kconfig, selftests, series_input
from harness.kernel.series import Series, parse_series
from harness.kernel.source import KernelSource, resolve_source
from harness.kernel.trees import prepare_patched_tree
from harness.results.junit import Suite, write_junit
from harness.results.ktap import write_ktap
from harness.results.model import VARIANTS, Cell, RunSummary, StageState
from harness.results.report import write_reports
from harness.verdict.cell import GuestEvidence, Verdict, counts, decide
from harness.verdict.expectations import NO_EXPECTATIONS, Expectations, Judgement, judge
from harness.vm import initramfs, qemu
from harness.vm.boot import ACCEL_TIME_FACTOR, BootEnd, BootOutcome, Timeouts, boot_and_test
from harness.vm.decode import decode_stacktrace
from harness.vm.records import TestResult


@dataclass(frozen=True)
class RunConfig:
    arches: list[ArchSpec]
    variants: list[str]
    series_dir: Path
    config_dir: Path
    guest_tests: Path
    work: WorkDir
    results_dir: Path
    source_dir: Path | None = None
    source_tarball: Path | None = None
    features: list[str] = field(default_factory=lambda: ["seccomp"])
    kconfig_add: list[str] = field(default_factory=list)
    accel: str = "auto"
    cmdline: list[str] = field(default_factory=list)
    qemu_args: list[str] = field(default_factory=list)
    jobs: int = os.cpu_count() or 1
    pytest_args: list[str] = field(default_factory=list)
    timeouts: Timeouts = field(default_factory=Timeouts)  # at KVM speed, scaled per accel
    timeout_factor: float = 1.0  # an extra multiplier, for slow runners
    build_timeout: float = 3600.0
    do_build: bool = True  # False: use the kernels already built (`harness test`)
    do_test: bool = True  # False: stop after the build (`harness build`)
    selftests: bool = True  # also run the kernel's seccomp selftests in the guest
    mbox: Path | None = None  # the series as an mbox, instead of series_dir
    commits: str | None = None  # the series as BASE..TIP of the git tree source_dir
    expectations: Expectations = NO_EXPECTATIONS  # known outcomes per cell
    ktap: bool = False  # also write results.ktap into the run directory


@dataclass
class Prepared:
    """Everything checked before long work starts."""

    source: KernelSource
    series: Series | None
    merged: dict[str, kconfig.MergedConfig]
    index: kconfig.KconfigIndex


def fragments_for(config: RunConfig, arch: ArchSpec) -> list[Path]:
    """base, the arch's own fragment, then per feature `<feature>.config` and
    `<feature>.<arch>.config`, each where it exists (one of the two must).

    A feature that differs per arch keeps the difference in its per-arch
    file; the merge refuses an option the two files set differently.
    """
    paths = [config.config_dir / f"{name}.config" for name in ("base", arch.name)]
    for path in paths:
        if not path.is_file():
            raise BadInput(f"{path}: no such config fragment; create it or drop the feature")
    for feature in config.features:
        common = config.config_dir / f"{feature}.config"
        per_arch = config.config_dir / f"{feature}.{arch.name}.config"
        found = [path for path in (common, per_arch) if path.is_file()]
        if not found:
            raise BadInput(
                f"{common}: no such config fragment (nor {per_arch.name}); "
                "create it or drop the feature"
            )
        paths += found
    return paths


def check_tools(config: RunConfig) -> None:
    """Missing host tools, named with the Debian package that provides them."""
    needed: list[tuple[str, str]] = [("make", "build-essential"), ("patch", "patch")]
    for arch in config.arches:
        if config.do_build or (config.do_test and config.selftests):
            # The selftests are compiled for the target too, even by `harness test`.
            needed.append((f"{arch.compiler_prefix()}gcc", arch.cross_package))
        if config.do_test:
            needed.append((arch.qemu_binary, arch.qemu_package))
    if config.do_test:
        needed.append(("mmdebstrap", "mmdebstrap"))
    for tool, package in needed:
        if shutil.which(tool) is None:
            raise BadInput(
                f"{tool} not found; install it with 'apt-get install {package}' "
                "(or 'harness doctor --install')"
            )


def series_and_source_dirs(config: RunConfig) -> tuple[Path, Path | None]:
    """The quilt directory to apply, and the pristine tree it applies to.

    An mbox or a git commit range becomes a quilt directory in the work
    dir; a commit range also makes its base commit the pristine tree.
    """
    if config.mbox is not None and config.commits is not None:
        raise BadInput("--mbox and --commits: give one series source, not both")
    series_root = config.work.root / "series"
    if config.mbox is not None:
        return series_input.series_from_mbox(config.mbox, series_root), config.source_dir
    if config.commits is not None:
        if config.source_dir is None:
            raise BadInput("--commits needs --source, the git tree that holds the commits")
        series_dir, base = series_input.series_from_commits(
            config.source_dir.resolve(), config.commits, series_root
        )
        pristine = series_input.export_commit(
            config.source_dir.resolve(), base, config.work.sources / f"git-{base[:12]}"
        )
        return series_dir, pristine
    return config.series_dir, config.source_dir


def prepare(config: RunConfig) -> Prepared:
    for variant in config.variants:
        if variant not in VARIANTS:
            raise BadInput(f"--variant {variant}: unknown; choose from {', '.join(VARIANTS)}")
    if not config.guest_tests.is_dir() and config.do_test:
        raise BadInput(f"{config.guest_tests}: no guest tests directory")
    series_dir, source_dir = series_and_source_dirs(config)
    # Read even for baseline alone: its cell runs the series tree's selftests too, so a
    # baseline cell gives the same results whichever other cells share its run.
    series = parse_series(series_dir)
    merged = {
        arch.name: kconfig.merge(fragments_for(config, arch), config.kconfig_add)
        for arch in config.arches
    }
    check_tools(config)  # after the inputs: a bad file is named even on a bare host
    try:
        config.results_dir.mkdir(parents=True, exist_ok=True)
        probe = config.results_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise BadInput(
            f"--results {config.results_dir}: not writable ({error.strerror}); "
            "pass a directory you can write"
        ) from None
    source = resolve_source(config.work.root, source_dir, config.source_tarball)
    if series is not None:
        series.check_tree(source.tree)  # no name through a symlink out of it, before any copy
    index = kconfig.KconfigIndex(source.tree)
    for merged_config in merged.values():
        kconfig.check_symbols(merged_config, index)
    if not config.do_build:
        for arch in config.arches:
            for variant in config.variants:
                prepared = Prepared(source, series, merged, index)
                image = build_dir_for(config.work, prepared, arch, variant) / arch.image_path
                if not image.is_file():
                    raise BadInput(
                        f"{arch.name}/{variant} is not built yet; run 'harness build "
                        f"--arch {arch.name} --variant {variant}' first"
                    )
    return Prepared(source, series, merged, index)


BUILD_STAMP = ".harness-build.json"


def build_key(
    source: KernelSource, series: Series | None, merged: kconfig.MergedConfig, toolchain: str
) -> str:
    """What a built kernel depends on: source, series content, merged config and compiler."""
    parts = [
        str(source.tree), source.kernel_version, str(source.package_version),
        series.content_hash() if series else "no series", merged.fragment_text(), toolchain,
    ]  # fmt: skip
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
    parts = [str(source.tree), source.kernel_version, str(source.package_version),
             merged.fragment_text(), toolchain]  # fmt: skip
    for relative in series.touched_files() if series else []:
        if Path(relative).name.startswith("Kconfig"):
            path = tree / relative
            content = path.read_bytes() if path.is_file() else b"(absent)"
            parts.append(f"{relative}:{hashlib.sha256(content).hexdigest()}")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def build_dir_for(work: WorkDir, prepared: Prepared, arch: ArchSpec, variant: str) -> Path:
    """A cell's build dir: per source, arch, variant (with its series) and config."""
    label = variant
    if variant == "patched" and prepared.series is not None:
        label = f"{variant}-{prepared.series.dir_name}"
    digest = prepared.merged[arch.name].digest()
    return work.build_dir(source_key(prepared.source), arch.name, label, digest)


def source_key(source: KernelSource) -> str:
    if source.origin == "directory":
        return "dir-" + hashlib.sha256(str(source.tree).encode()).hexdigest()[:12]
    return source.tree.name


def toolchain_version(arch: ArchSpec) -> str:
    first = capture([f"{arch.compiler_prefix()}gcc", "--version"]).splitlines()
    return first[0] if first else "unknown"


T = TypeVar("T")

# CPUs one guest keeps busy under TCG: its tests run one at a time, so of
# its two vCPUs one is mostly idle.
GUEST_CPUS = 1


def guest_slots(jobs: int) -> int:
    """How many guests may run at once within the CPU budget `jobs` (-j)."""
    return max(1, jobs // GUEST_CPUS)


@dataclass(frozen=True)
class BuiltCell:
    """A cell whose kernel (and selftests) are built, waiting for its boot."""

    cell: Cell
    arch: ArchSpec
    cell_dir: Path
    tree: Path
    build_dir: Path
    image: Path
    selftests: list[Path]


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


class Matrix:
    def __init__(self, config: RunConfig, prepared: Prepared, progress: Progress) -> None:
        self.config = config
        self.prepared = prepared
        self.progress = progress
        self.verdicts = qemu.AccelVerdicts(config.work.verdicts)
        self.trees: dict[str, Path | StageFailure] = {}
        self.bases: dict[str, initramfs.Initramfs | StageFailure] = {}
        # Two guests of one arch share one base; arches do not wait for each other.
        self.bases_locks = {name: threading.Lock() for name in (a.name for a in config.arches)}
        self.cancel = threading.Event()  # set on Ctrl-C: running guests stop

    # -- stages ---------------------------------------------------------------

    def _timed(self, cell: Cell, stage: str, action: Callable[[], object]) -> object:
        started = time.monotonic()
        result = cell.stages[stage]
        try:
            with self.progress.stage(cell.name, stage):
                value = action()
        except StageFailure as failure:
            result.state, result.seconds = StageState.FAIL, time.monotonic() - started
            result.message = str(failure)
            cell.fail(failure.status, f"{stage}: {failure}")
            if failure.excerpt:
                cell.facts.setdefault("excerpts", {})[stage] = failure.excerpt
            raise
        result.state, result.seconds = StageState.PASS, time.monotonic() - started
        return value

    def build_dir(self, arch: ArchSpec, variant: str) -> Path:
        return build_dir_for(self.config.work, self.prepared, arch, variant)

    def tree_for(self, variant: str) -> Path:
        """The variant's source tree: the pristine tree, or the patched link farm."""
        series = self.prepared.series
        if variant == "baseline" or series is None:
            return self.prepared.source.tree

        def patch() -> Path:
            destination = (
                self.config.work.trees / source_key(self.prepared.source) / series.dir_name
            )
            prepare_patched_tree(self.prepared.source.tree, series, destination)
            return destination

        return _once(self.trees, variant, patch)

    def base_for(self, arch: ArchSpec, log_path: Path) -> initramfs.Initramfs:
        with self.bases_locks.setdefault(arch.name, threading.Lock()):
            return _once(
                self.bases,
                arch.name,
                lambda: initramfs.build_base(arch, self.config.work.initramfs, log_path),
            )

    def guest_base_for(self, cell: Cell, arch: ArchSpec, cell_dir: Path) -> None:
        """Make the arch's guest userspace here, in the build thread, where Ctrl-C
        stops mmdebstrap at once (a guest worker would wait for it to finish)."""
        try:
            self.base_for(arch, cell_dir / "initramfs.log")
        except StageFailure as failure:
            cell.fail(failure.status, f"guest userspace: {failure}")
            raise

    def run_cell(self, arch: ArchSpec, variant: str, run_dir: Path) -> Cell:
        """Build and then test one cell, in this thread."""
        built = self.build_cell(arch, variant, run_dir)
        return built if isinstance(built, Cell) else self.test_cell(built)

    def build_cell(self, arch: ArchSpec, variant: str, run_dir: Path) -> BuiltCell | Cell:
        """Patch, configure and build a cell (and its selftests).

        Returns the cell, written and finished, when a stage failed or there
        is nothing to test; else what its boot and test stage needs.
        """
        cell = Cell(arch.name, variant)
        cell_dir = run_dir / f"{arch.name}-{variant}"
        cell_dir.mkdir(parents=True, exist_ok=True)
        source = self.prepared.source
        series = self.prepared.series if variant == "patched" else None
        cell.facts.update(
            kernel_version=source.kernel_version,
            package_version=source.package_version,
            source=str(source.tree) if source.origin != "debian-package" else source.origin,
            series=series.name if series else None,
            series_hash=series.content_hash() if series else None,
            toolchain=toolchain_version(arch),
            qemu=qemu.qemu_version(arch.qemu_binary),
        )
        build_dir = self.build_dir(arch, variant)
        build_log = cell_dir / "build.log"
        cell.files["build_log"] = build_log.name
        try:
            tree = self._timed(cell, "patch", lambda: self.tree_for(variant))
            assert isinstance(tree, Path)
            image = build_dir / arch.image_path
            stamp = build_dir / BUILD_STAMP
            key = build_key(
                source, series, self.prepared.merged[arch.name], cell.facts["toolchain"]
            )
            cell.facts["build_key"] = key
            merged = self.prepared.merged[arch.name]
            configured = config_key(source, series, merged, cell.facts["toolchain"], tree)
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
                        cell, "config",
                        lambda: build.configure(arch, tree, build_dir, merged,
                                                self.prepared.index, build_log,
                                                self.config.work.ccache),
                    )  # fmt: skip
                self._timed(
                    cell, "build",
                    lambda: build.build(arch, tree, build_dir, self.config.jobs, build_log,
                                        self.config.work.ccache, self.config.build_timeout),
                )  # fmt: skip
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
        self.write_cell(cell, cell_dir)
        return cell

    def test_cell(self, built: BuiltCell) -> Cell:
        """Boot and test a built cell; safe to run beside other cells' builds and boots."""
        cell = built.cell
        try:
            self.boot_and_test(cell, built.arch, built.image, built.cell_dir, built.selftests)
            self.decode_reports(cell, built.arch, built.tree, built.build_dir / "vmlinux")
        except StageFailure:
            pass
        except OSError as error:
            cell.fail(Status.INFRA, f"host error: {error}")
        self.write_cell(cell, built.cell_dir)
        return cell

    def run_cells(self, plan: list[tuple[ArchSpec, str]], run_dir: Path) -> list[Cell]:
        """Every cell of `plan`, builds one after another, boots overlapped.

        Builds run in this thread, in order; each built cell is booted and
        tested by a worker while the next one builds, and up to `guest_slots`
        guests run side by side (a no-op run boots its cells in parallel).
        """
        slots = guest_slots(self.config.jobs)
        finished: dict[int, Cell] = {}
        pending: dict[int, Future[Cell]] = {}
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="guest")
        try:
            for index, (arch, variant) in enumerate(plan):
                built = self.build_cell(arch, variant, run_dir)
                if isinstance(built, Cell):
                    finished[index] = built
                else:
                    pending[index] = pool.submit(self.test_cell, built)
            for index, future in pending.items():
                finished[index] = future.result()
        except BaseException:
            # Ctrl-C or SIGTERM: running guests see the event within a second
            # and stop their QEMU; guests not started yet never start.
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return [finished[index] for index in range(len(plan))]

    def selftests_for(
        self, cell: Cell, arch: ArchSpec, tree: Path, build_dir: Path, log_path: Path
    ) -> list[Path]:
        """The upstream selftest binaries built from this cell's tree (none if disabled)."""
        if not self.config.selftests:
            return []
        started = time.monotonic()
        try:
            sysroot = selftests.build_sysroot(arch, self.config.work.initramfs, log_path)
            binaries = [
                selftests.build_seccomp_bpf(
                    arch, tree, build_dir, sysroot, log_path, self.config.work.ccache
                )
            ]
            binaries += self.series_selftests(cell, arch, build_dir, sysroot, log_path)
        except StageFailure as failure:
            cell.stages["build"].state = StageState.FAIL
            cell.stages["build"].message = str(failure)
            cell.fail(failure.status, f"selftests build: {failure}")
            raise
        cell.facts["selftests_build_seconds"] = round(time.monotonic() - started, 3)
        return binaries

    def series_selftests(
        self, cell: Cell, arch: ArchSpec, build_dir: Path, sysroot: Path, log_path: Path
    ) -> list[Path]:
        """For a baseline cell, the series tree's seccomp_bpf as well, when the series
        changes it: kselftests run on kernels older than their tree, so its new cases
        must skip cleanly there and the others agree with the baseline tree's own."""
        series = self.prepared.series
        if cell.variant != "baseline" or series is None:
            return []
        pristine = self.prepared.source.tree
        scratch = build_dir / "selftests" / "series-source"
        source = selftests.series_source(pristine, series.patches, scratch, log_path)
        if source is None:
            return []
        return [
            selftests.build_seccomp_bpf(
                arch, pristine, build_dir, sysroot, log_path, self.config.work.ccache,
                source=source, name=selftests.SERIES_BINARY,
            )
        ]  # fmt: skip

    def boot_and_test(
        self, cell: Cell, arch: ArchSpec, image: Path, cell_dir: Path, selftest_binaries: list[Path]
    ) -> None:
        initramfs_log = cell_dir / "initramfs.log"
        started = time.monotonic()
        base = self.base_for(arch, initramfs_log)
        # One initrd per cell: cells of one arch may boot side by side.
        initrd = self.config.work.initramfs / f"initrd-{cell.arch}-{cell.variant}.cpio"
        initramfs.assemble(
            base, self.config.guest_tests, self.config.pytest_args, initrd, selftest_binaries
        )
        cell.facts["initramfs"] = {"base_key": base.key, "bytes": initrd.stat().st_size,
                                   "seconds": round(time.monotonic() - started, 3)}  # fmt: skip
        console_log = cell_dir / "console.log"
        results_path = cell_dir / "results.jsonl"
        tap_path = cell_dir / "selftests.tap"
        cell.files.update(console_log=console_log.name, results=results_path.name)
        if selftest_binaries:
            cell.files["selftests_tap"] = tap_path.name
        outcome: BootOutcome | None = None
        boot_started = time.monotonic()
        for accel in qemu.accel_candidates(self.config.accel, arch, self.verdicts):
            setup = qemu.QemuSetup(
                arch=arch, kernel=image, initrd=initrd, results=results_path, selftests=tap_path,
                accel=accel, cmdline_extra=self.config.cmdline, qemu_extra=self.config.qemu_args,
            )  # fmt: skip
            command = qemu.qemu_command(setup)
            qemu.write_reproducer(command, cell_dir / "qemu.sh")
            cell.files["reproducer"] = "qemu.sh"
            probing = accel == "kvm" and self.config.accel == "auto"
            with self.progress.stage(cell.name, f"boot+test ({accel})"):
                factor = ACCEL_TIME_FACTOR[accel] * self.config.timeout_factor
                outcome = boot_and_test(
                    command, console_log, results_path, self.config.timeouts.scaled(factor),
                    require_banner=probing, extra_outputs=(tap_path,), cancel=self.cancel,
                )  # fmt: skip
            if probing:
                broken = outcome.end is BootEnd.NO_OUTPUT
                self.verdicts.record(arch, "broken" if broken else "works")
                if broken:
                    self.progress.line(f"{cell.name}: KVM guest printed nothing; using TCG")
                    continue
            cell.facts["accel"] = accel
            break
        assert outcome is not None
        seconds = time.monotonic() - boot_started
        self.record_outcome(cell, outcome, cell_dir, seconds, bool(selftest_binaries))

    def record_outcome(
        self, cell: Cell, outcome: BootOutcome, cell_dir: Path, seconds: float, selftests_ran: bool
    ) -> None:
        """Decide a finished guest run from its files in `cell_dir` (verdict/cell.py),
        copy the verdict onto the cell, write JUnit."""
        console = (cell_dir / "console.log").read_text(errors="replace")
        tap = (cell_dir / "selftests.tap").read_text(errors="replace") if selftests_ran else None
        evidence = GuestEvidence(
            end=outcome.end, guest=outcome.guest, console=console, detail=outcome.detail,
            reached_userspace=outcome.boot_seconds is not None, tainted=outcome.tainted,
            booted_version=outcome.kernel_version,
            built_version=cell.facts.get("built_uts_version"), selftests_tap=tap,
        )  # fmt: skip
        verdict = decide(evidence, lambda results: self.judgement_of(cell, results))
        self.copy_verdict(cell, outcome, verdict, seconds, selftests_ran)
        judgement = verdict.judgement
        assert judgement is not None
        junit = cell_dir / "junit.xml"
        properties = {
            "arch": cell.arch, "variant": cell.variant,
            "kernel_release": outcome.kernel_release, "kernel_version": outcome.kernel_version,
            "series_hash": str(cell.facts.get("series_hash")),
            "config_hash": str(cell.facts.get("config_hash")),
        }  # fmt: skip
        expected = judgement.expected_failure_reasons()
        suites = [Suite(f"{cell.arch}.{cell.variant}", verdict.results, properties, expected)]
        if selftests_ran:
            name = f"{cell.arch}.{cell.variant}.{selftests.SUITE_NAME}"
            suites.append(Suite(name, verdict.upstream, properties, expected))
        write_junit(junit, suites)
        cell.files["junit"] = junit.name

    def copy_verdict(
        self,
        cell: Cell,
        outcome: BootOutcome,
        verdict: Verdict,
        seconds: float,
        selftests_ran: bool,
    ) -> None:
        """The verdict and the run's facts onto the cell: it decides nothing itself."""
        boot, test = cell.stages["boot"], cell.stages["test"]
        boot.state, boot.message = verdict.boot.state, verdict.boot.message
        test.state, test.message = verdict.test.state, verdict.test.message
        boot.seconds = outcome.boot_seconds or seconds
        test.seconds = max(0.0, seconds - (outcome.boot_seconds or seconds))
        cell.fail(verdict.status, verdict.reason)
        cell.kernel_reports = [
            {"kind": r.kind.value, "title": r.title, "test": r.test, "line": r.line,
             "excerpt": r.excerpt}
            for r in verdict.reports
        ]  # fmt: skip
        cell.facts.update(kernel_release=outcome.kernel_release,
                          booted_kernel_version=outcome.kernel_version)  # fmt: skip
        guest = outcome.guest
        cell.tests = guest.counts()
        cell.outcomes = {result.nodeid: result.outcome for result in verdict.results}
        if outcome.boot_seconds is not None:
            cell.facts["tainted"] = outcome.tainted
        if guest.seconds is not None:
            cell.facts["guest_tests_seconds"] = round(guest.seconds, 3)
        if outcome.first_test_seconds is not None:
            cell.facts["first_test_seconds"] = round(outcome.first_test_seconds, 3)
        if selftests_ran:
            own = [r for r in verdict.upstream if not selftests.is_series_case(r.nodeid)]
            cell.facts["selftests"] = counts(own)
            if len(own) < len(verdict.upstream):
                series = [r for r in verdict.upstream if selftests.is_series_case(r.nodeid)]
                cell.facts["selftests_series"] = counts(series)
            cell.outcomes.update((r.nodeid, r.outcome) for r in verdict.upstream)
        assert verdict.judgement is not None
        cell.facts["expectations"] = verdict.judgement.to_json()
        for warning in verdict.judgement.stale_lines():
            self.progress.line(f"{cell.name}: warning: {warning}")

    def decode_reports(self, cell: Cell, arch: ArchSpec, tree: Path, vmlinux: Path) -> None:
        for report in cell.kernel_reports:
            decoded = decode_stacktrace(arch, tree, vmlinux, report["excerpt"])
            if decoded is not None:
                report["decoded"] = decoded

    def judgement_of(self, cell: Cell, results: list[TestResult]) -> Judgement:
        """How the expectations judge this cell's results (check-series judges prefixes
        its own way). A selection (-k, -m, node ids) leaves most entries nothing to
        decide: none is reported stale."""
        judgement = judge(self.config.expectations, cell.arch, cell.variant, results)
        if selects_tests(self.config.pytest_args):
            judgement.stale = []
        return judgement

    def write_cell(self, cell: Cell, cell_dir: Path) -> None:
        write_json(cell_dir / "cell.json", cell.to_json())
        self.progress.line(
            f"{cell.name}: {cell.status.label}" + (f" ({cell.reason})" if cell.reason else "")
        )


def selects_tests(pytest_args: list[str]) -> bool:
    """Whether pytest's arguments run a selection of the guest tests, not all of them."""
    return any(arg in ("-k", "-m") or arg.startswith(("-k", "-m")) or "::" in arg
               or arg.endswith(".py") for arg in pytest_args)  # fmt: skip


def outcome_differences(cells: list[Cell]) -> dict[str, list[dict[str, str]]]:
    """Per arch, the tests whose outcome differs between baseline and patched (the
    series' selftests on the baseline kernel compared as the patched tree's)."""
    differences: dict[str, list[dict[str, str]]] = {}
    by_key = {(cell.arch, cell.variant): cell for cell in cells}
    for (arch, variant), baseline in by_key.items():
        patched = by_key.get((arch, "patched"))
        if variant != "baseline" or patched is None:
            continue
        before = selftests.comparable_outcomes(baseline.outcomes)
        nodeids = sorted(set(before) | set(patched.outcomes))
        differences[arch] = [
            {
                "test": nodeid,
                "baseline": before.get(nodeid, "not run"),
                "patched": patched.outcomes.get(nodeid, "not run"),
            }
            for nodeid in nodeids
            if before.get(nodeid) != patched.outcomes.get(nodeid)
        ]
    return differences


def expectation_facts(expectations: Expectations, cells: list[Cell]) -> dict[str, object]:
    """The expectations file and every cell's departures and stale entries, for summary.json."""
    departures: list[dict[str, object]] = []
    stale: list[dict[str, object]] = []
    for cell in cells:
        judged = cell.facts.get("expectations") or {}
        departures.extend(judged.get("departures", []))
        stale.extend({**entry, "cell": cell.name} for entry in judged.get("stale", []))
    return {
        "expectations": str(expectations.path.resolve()) if expectations.path else None,
        "departures": departures,
        "stale_expectations": stale,
    }


def run_matrix(
    config: RunConfig, prepared: Prepared, run_id: str, progress: Progress
) -> RunSummary:
    matrix = Matrix(config, prepared, progress)
    run_dir = config.results_dir
    plan = [(arch, variant) for arch in config.arches for variant in config.variants]
    cells = matrix.run_cells(plan, run_dir)
    summary = RunSummary(run_id, cells)
    summary.facts.update(
        harness_version=__version__,
        differences=outcome_differences(cells),
        **expectation_facts(config.expectations, cells),
        arches=[arch.name for arch in config.arches],
        variants=list(config.variants),
        series={
            "name": prepared.series.name,
            "hash": prepared.series.content_hash(),
            "patches": [patch.name for patch in prepared.series.patches],
        } if prepared.series else None,
        source={
            "origin": prepared.source.origin,
            "kernel_version": prepared.source.kernel_version,
            "package_version": prepared.source.package_version,
        },
    )  # fmt: skip
    write_json(run_dir / "summary.json", summary.to_json())
    try:
        write_reports(run_dir)
    except Exception as error:  # the report is a by-product: it never changes the exit code
        progress.line(f"warning: report not rendered: {type(error).__name__}: {error}")
    if config.ktap:
        try:
            progress.line(f"KTAP: {write_ktap(run_dir)}")
        except Exception as error:  # like the report, a by-product of summary.json and JUnit
            progress.line(f"warning: results.ktap not written: {type(error).__name__}: {error}")
    return summary
