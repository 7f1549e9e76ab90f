"""What a run is asked to do (RunConfig, from the settings) and what was checked
before its long work started (Prepared, from run/inputs.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.core import limits
from harness.core.arches import ArchSpec
from harness.core.kselftests import COLLECTIONS, Collection
from harness.core.toolchains import DEFAULT_TOOLCHAIN, TOOLCHAINS, Platform, Toolchain, platforms
from harness.core.vocabulary import Accel, Variant
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.series import Series
from harness.kernel.source import KernelSource
from harness.verdict.expectations import NO_EXPECTATIONS, Expectations
from harness.vm.boot import Timeouts

# The built-in defaults, written once: RunConfig's and the command line's
# (cli/settings.py: command line > harness.toml > these). The guest
# timeouts' defaults are vm/boot.py's Timeouts.
DEFAULT_SERIES = Path("patches") / "ptrace-seccomp"  # under the project root
DEFAULT_GUEST_TESTS = Path("guest-tests")  # under the project root
DEFAULT_FEATURES = ("seccomp",)
DEFAULT_ACCEL = Accel.AUTO
DEFAULT_TIMEOUT_FACTOR = 1.0
DEFAULT_BUILD_TIMEOUT = 3600.0
DEFAULT_SELFTESTS = ("seccomp", "ptrace")  # kselftest collections (core/kselftests.py)
DEFAULT_KTAP = False
DEFAULT_KCIDB = False
DEFAULT_KCIDB_ORIGIN = "kernel_series_harness"  # KCIDB's origin: [a-z0-9_]+


@dataclass(frozen=True)
class RunConfig:
    arches: list[ArchSpec]
    variants: list[Variant]
    series_dir: Path
    config_dir: Path
    guest_tests: Path
    work: WorkDir
    results_dir: Path
    source_dir: Path | None = None
    source_tarball: Path | None = None
    features: list[str] = field(default_factory=lambda: list(DEFAULT_FEATURES))
    kconfig_add: list[str] = field(default_factory=list)
    accel: Accel = DEFAULT_ACCEL
    cmdline: list[str] = field(default_factory=list)
    qemu_args: list[str] = field(default_factory=list)
    jobs: int = field(default_factory=limits.cores)
    pytest_args: list[str] = field(default_factory=list)
    timeouts: Timeouts = field(default_factory=Timeouts)  # at KVM speed, scaled per accel
    timeout_factor: float = DEFAULT_TIMEOUT_FACTOR  # an extra multiplier, for slow runners
    build_timeout: float = DEFAULT_BUILD_TIMEOUT
    do_build: bool = True  # False: use the kernels already built (`harness test`)
    do_test: bool = True  # False: stop after the build (`harness build`)
    # The kernel's own selftest collections the guest runs; empty: none (--no-selftests).
    selftests: tuple[Collection, ...] = tuple(COLLECTIONS[name] for name in DEFAULT_SELFTESTS)
    # Those whose config files every kernel gets: the same, but that --no-selftests keeps
    # them, so that it boots the very kernel a run with the selftests builds.
    selftest_configs: tuple[Collection, ...] = selftests
    mbox: Path | None = None  # the series as an mbox, instead of series_dir
    commits: str | None = None  # the series as BASE..TIP of the git tree source_dir
    expectations: Expectations = NO_EXPECTATIONS  # known outcomes per cell
    ktap: bool = DEFAULT_KTAP  # also write results.ktap into the run directory
    kcidb: bool = DEFAULT_KCIDB  # also write kcidb.json (KCIDB I/O schema) into the run directory
    kcidb_origin: str = DEFAULT_KCIDB_ORIGIN  # the CI system its objects and ids name
    toolchains: list[Toolchain] = field(default_factory=lambda: [TOOLCHAINS[DEFAULT_TOOLCHAIN]])

    @property
    def platforms(self) -> list[Platform]:
        """Every (arch, toolchain) the run builds for."""
        return platforms(self.arches, self.toolchains)


@dataclass
class Prepared:
    """Everything checked before long work starts."""

    source: KernelSource
    series: Series | None
    merged: dict[str, kconfig.MergedConfig]
    index: kconfig.KconfigIndex
