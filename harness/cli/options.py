"""The command line's option groups, shared by the subcommands."""

from __future__ import annotations

import argparse
import math
import os
import typing
from collections.abc import Callable
from pathlib import Path

from harness.cli import settings
from harness.core import limits
from harness.core.arches import ARCHES, get_arch
from harness.core.kselftests import COLLECTIONS, get_collection
from harness.core.status import EXIT_BAD_INPUT
from harness.core.toolchains import TOOLCHAINS, get_toolchain
from harness.core.vocabulary import parse_variant
from harness.results import kcidb, ktap
from harness.run import matrixfile
from harness.run.config import (
    DEFAULT_BUILD_TIMEOUT,
    DEFAULT_FEATURES,
    DEFAULT_GUEST_TESTS,
    DEFAULT_KCIDB_ORIGIN,
    DEFAULT_SELFTESTS,
    DEFAULT_SERIES,
)
from harness.verdict import expectations
from harness.vm import qemu
from harness.vm.boot import Timeouts


class Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line (and exit 2, as argparse's own)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_BAD_INPUT, f"harness: error: {message}; see '{self.prog} --help'\n")


def jobs_count(text: str) -> int:
    """-j: a whole number of jobs, from 1 to the cap (limits.max_jobs)."""
    try:
        jobs = int(text)
    except ValueError:
        message = f"{text}: not a whole number; {limits.jobs_range()}"
        raise argparse.ArgumentTypeError(message) from None
    problem = limits.jobs_problem(jobs)
    if problem:
        raise argparse.ArgumentTypeError(f"{text}: {problem}")
    return jobs


def _checked_float(check: Callable[[float], str | None]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        problem = check(value)
        if problem:
            raise argparse.ArgumentTypeError(f"{text}: {problem}")
        return value

    parse.__name__ = check.__name__.removesuffix("_problem")  # argparse names the type so
    return parse


seconds = _checked_float(limits.seconds_problem)


factor = _checked_float(limits.factor_problem)


def selftest_collection(text: str) -> str:
    """--selftests NAME: a collection of core/kselftests.py (BadInput names the known ones)."""
    return get_collection(text).name


def kcidb_origin(text: str) -> str:
    """--kcidb-origin: a name KCIDB takes as an origin."""
    problem = kcidb.origin_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"'{text}': {problem}")
    return text


def add_matrix_options(
    parser: argparse.ArgumentParser, default_arches: list[str], variants: bool = True
) -> None:
    root = settings.project_root()
    group = parser.add_argument_group(
        "matrix", f"options left out take their value from {matrixfile.DEFAULT_NAME}"
    )
    group.add_argument(
        "--matrix",
        type=Path,
        metavar="FILE",
        help=f"the matrix file (default: {root / matrixfile.DEFAULT_NAME}, when it exists)",
    )
    # --arch and --variant are checked here, once, as argparse reads them: get_arch and
    # parse_variant refuse a name with the harness's one-line BadInput (see main).
    group.add_argument(
        "--arch",
        action="append",
        type=get_arch,
        help=f"{', '.join(ARCHES)} (repeatable; default: {' and '.join(default_arches)})",
    )
    group.set_defaults(default_arches=[get_arch(name) for name in default_arches])
    group.add_argument(
        "--toolchain",
        action="append",
        type=get_toolchain,
        help=f"the compiler the kernels are built with: {', '.join(TOOLCHAINS)} (clang with "
        "LLVM=1; repeatable: a cell per arch x toolchain x variant; default: gcc)",
    )
    if variants:
        group.add_argument(
            "--variant",
            action="append",
            type=parse_variant,
            help="baseline, patched (repeatable; default both)",
        )
    group.add_argument(
        "--series",
        type=Path,
        help=f"quilt series directory (default: {root / DEFAULT_SERIES})",
    )
    group.add_argument(
        "--mbox", type=Path, help="the series as an mbox (git format-patch or a list archive)"
    )
    group.add_argument(
        "--commits",
        metavar="BASE..TIP",
        help="the series as a commit range of the git tree given with --source",
    )
    group.add_argument("--source", type=Path, help="kernel source tree (never modified)")
    group.add_argument("--source-tarball", type=Path, help="kernel source tarball")
    group.add_argument(
        "--work-dir",
        type=Path,
        default=Path(os.environ.get("HARNESS_WORK_DIR", root / ".work")),
        help="sources, trees, builds and caches (default: %(default)s)",
    )
    group.add_argument(
        "--configs",
        type=Path,
        default=root / "kernel-configs",
        help="config fragment directory (default: %(default)s)",
    )
    group.add_argument(
        "--feature",
        action="append",
        help="extra fragment from the configs dir, e.g. debug-kasan: NAME.config "
        "and/or NAME.<arch>.config (repeatable; "
        f"default: {', '.join(DEFAULT_FEATURES)})",
    )
    group.add_argument(
        "--selftests",
        nargs="?",
        action="append",
        type=selftest_collection,
        metavar="COLLECTION",
        help="a kselftest collection whose config file the kernels get and whose binaries "
        "the guest runs: "
        f"{', '.join(COLLECTIONS)} (repeatable; alone: the default ones, "
        f"{' and '.join(DEFAULT_SELFTESTS)})",
    )
    group.add_argument(
        "--no-selftests",
        dest="selftests",
        action="store_const",
        const=[],
        help="run no kselftest collection (their config files stay in the kernel)",
    )
    group.add_argument(
        "--kconfig-add",
        action="append",
        metavar="CONFIG_X=y",
        help="add a config option (repeatable)",
    )
    group.add_argument("--results", type=Path, help="run directory (default: results/<run id>)")
    group.add_argument(
        "-j",
        "--jobs",
        type=jobs_count,
        default=limits.cores(),
        help=f"CPU budget: make's jobs and guests at once (default: the "
        f"cores, %(default)s; at most {limits.JOBS_PER_CORE} per core)",
    )
    group.add_argument(
        "-q", "--quiet", action="store_true", help="no progress meters, the stage lines only"
    )
    group.add_argument(
        "--build-timeout",
        type=seconds,
        metavar="SECONDS",
        help=f"one kernel build (default: {DEFAULT_BUILD_TIMEOUT:g})",
    )


def add_guest_options(parser: argparse.ArgumentParser, ktap_option: bool = True) -> None:
    root = settings.project_root()
    group = parser.add_argument_group(
        "guest", f"options left out take their value from {matrixfile.DEFAULT_NAME} too"
    )
    group.add_argument(
        "--accel",
        choices=qemu.ACCELS,
        help="auto uses KVM only where it works here (default: auto)",
    )
    group.add_argument(
        "--cmdline", action="append", default=[], help="add to the kernel command line"
    )
    group.add_argument(
        "--qemu-arg",
        action="append",
        default=[],
        help="add a QEMU argument (write --qemu-arg=-foo)",
    )
    group.add_argument("--guest-tests", type=Path, default=root / DEFAULT_GUEST_TESTS)
    group.add_argument("-k", dest="keyword", help="pytest -k expression for the guest tests")
    group.add_argument(
        "--pytest-arg",
        action="append",
        default=[],
        help="pass an argument to the guest's pytest (repeatable)",
    )
    group.add_argument(
        "--expectations",
        type=Path,
        metavar="FILE",
        help="known outcomes per arch and variant (default: "
        f"{root / expectations.DEFAULT_NAME}, when it exists)",
    )
    if ktap_option:
        group.add_argument(
            "--ktap",
            action=argparse.BooleanOptionalAction,
            help=f"also write the run as KTAP, {ktap.KTAP_NAME} in the run directory (default: no)",
        )
        group.add_argument(
            "--kcidb",
            action=argparse.BooleanOptionalAction,
            help="also write the run in KernelCI's KCIDB I/O schema, "
            f"{kcidb.KCIDB_NAME} in the run directory (default: no)",
        )
        add_kcidb_origin_option(group)
    defaults = Timeouts()
    for name, what, default in (
        ("boot", "to userspace", defaults.boot),
        ("test", "per guest test", defaults.test),
        ("run", "whole guest run", defaults.run),
    ):
        help_text = f"{what}, at KVM speed; x3 under TCG (default: {default:g})"
        group.add_argument(f"--{name}-timeout", type=seconds, metavar="SECONDS", help=help_text)
    group.add_argument(
        "--timeout-factor",
        type=factor,
        help="multiply the boot, test and run timeouts, for slow runners (default: 1)",
    )


def add_kcidb_origin_option(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--kcidb-origin",
        type=kcidb_origin,
        metavar="NAME",
        help="the CI system named in the KCIDB objects and their ids: "
        f"a-z, 0-9 and _ (default: {DEFAULT_KCIDB_ORIGIN})",
    )


DEFAULT_GDB_PORT = 1234  # gdb's and QEMU's -s own default


def add_boot_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live VM and debugging")
    group.add_argument(
        "--ssh",
        action="store_true",
        help="keep the guest running in the background with an SSH server on "
        "127.0.0.1; returns once SSH answers",
    )
    group.add_argument(
        "--ssh-port", type=int, metavar="PORT", help="host port for --ssh (default: a free one)"
    )
    group.add_argument(
        "--stop", action="store_true", help="stop the live VMs of the cells given (all, if none is)"
    )
    group.add_argument(
        "--gdb", action="store_true", help="QEMU's gdb stub on 127.0.0.1, for the cell's vmlinux"
    )
    group.add_argument(
        "--gdb-port",
        type=int,
        metavar="PORT",
        help=f"gdb stub port (default: {DEFAULT_GDB_PORT} if free)",
    )
    group.add_argument(
        "--gdb-wait", action="store_true", help="with --gdb: the CPUs wait for gdb's 'continue'"
    )


def add_test_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--live",
        action="store_true",
        help="copy the guest tests into the running live VMs (harness boot "
        "--ssh) and run them there, over SSH",
    )
