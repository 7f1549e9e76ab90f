"""The parsed command line as settings read it: one typed field per option.

Not every subcommand has every option (`build` has no guest options,
`check-series` no --variant, `report` hardly any), so the view is made once
from argparse's Namespace, with an option the subcommand lacks or the user
left out as None (or empty). --arch, --variant and --toolchain were checked by argparse
(cli/options.py); nothing here refuses anything.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.toolchains import Toolchain
from harness.core.vocabulary import Accel, Variant


@dataclass(frozen=True)
class CommandLine:
    command: str
    matrix: Path | None = None
    arches: list[ArchSpec] | None = None  # --arch
    default_arches: list[ArchSpec] = field(default_factory=list)  # the subcommand's own
    variants: list[Variant] | None = None  # --variant
    toolchains: list[Toolchain] | None = None  # --toolchain
    series: Path | None = None
    mbox: Path | None = None
    commits: str | None = None
    source: Path | None = None
    source_tarball: Path | None = None
    work_dir: Path | None = None
    configs: Path | None = None
    features: list[str] | None = None  # --feature
    kconfig_add: list[str] | None = None
    results: Path | None = None
    jobs: int | None = None
    build_timeout: float | None = None
    # The guest options.
    accel: Accel | None = None
    cmdline: list[str] = field(default_factory=list)
    qemu_args: list[str] = field(default_factory=list)  # --qemu-arg
    guest_tests: Path | None = None
    keyword: str | None = None  # -k
    pytest_args: list[str] = field(default_factory=list)  # --pytest-arg
    # --selftests NAME (None: given alone, the default collections) and --no-selftests ([]).
    selftests: list[str | None] | None = None
    expectations: Path | None = None
    ktap: bool | None = None
    kcidb: bool | None = None
    kcidb_origin: str | None = None
    boot_timeout: float | None = None
    test_timeout: float | None = None
    run_timeout: float | None = None
    timeout_factor: float | None = None
    # Not an option: the run directory, once the command knows it (where a bug's
    # traceback goes, see main).
    run_dir: Path | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> CommandLine:
        """The view of `args`; never raises, so that main can read it after a bug."""
        given = vars(args)
        accel = given.get("accel")
        return cls(
            command=str(given.get("command", "")),
            matrix=given.get("matrix"),
            arches=given.get("arch"),
            default_arches=list(given.get("default_arches") or []),
            variants=given.get("variant"),
            toolchains=given.get("toolchain"),
            series=given.get("series"),
            mbox=given.get("mbox"),
            commits=given.get("commits"),
            source=given.get("source"),
            source_tarball=given.get("source_tarball"),
            work_dir=given.get("work_dir"),
            configs=given.get("configs"),
            features=given.get("feature"),
            kconfig_add=given.get("kconfig_add"),
            results=given.get("results"),
            jobs=given.get("jobs"),
            build_timeout=given.get("build_timeout"),
            accel=None if accel is None else Accel(accel),
            cmdline=list(given.get("cmdline") or []),
            qemu_args=list(given.get("qemu_arg") or []),
            guest_tests=given.get("guest_tests"),
            keyword=given.get("keyword"),
            pytest_args=list(given.get("pytest_arg") or []),
            selftests=given.get("selftests"),
            expectations=given.get("expectations"),
            ktap=given.get("ktap"),
            kcidb=given.get("kcidb"),
            kcidb_origin=given.get("kcidb_origin"),
            boot_timeout=given.get("boot_timeout"),
            test_timeout=given.get("test_timeout"),
            run_timeout=given.get("run_timeout"),
            timeout_factor=given.get("timeout_factor"),
            run_dir=given.get("run_dir"),
        )
