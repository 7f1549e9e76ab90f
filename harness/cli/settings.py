"""Settings of a run, resolved in one place: the command line (read through its typed
view, cli/commandline.py), else the matrix file (harness.toml), else the built-in
defaults (written once, here and in vm/boot.py's Timeouts), into one typed RunConfig."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from harness.cli.commandline import CommandLine
from harness.core.arches import get_arch
from harness.core.errors import BadInput
from harness.core.kselftests import COLLECTIONS, Collection
from harness.core.toolchains import DEFAULT_TOOLCHAIN, get_toolchain
from harness.core.vocabulary import Accel, Variant, parse_variant
from harness.core.workdir import KBUILD_UNSAFE, WorkDir, check_directory_option
from harness.run import matrixfile
from harness.run.config import (
    DEFAULT_ACCEL,
    DEFAULT_BUILD_TIMEOUT,
    DEFAULT_FEATURES,
    DEFAULT_GUEST_TESTS,
    DEFAULT_KCIDB,
    DEFAULT_KCIDB_ORIGIN,
    DEFAULT_KTAP,
    DEFAULT_SELFTESTS,
    DEFAULT_SERIES,
    DEFAULT_TIMEOUT_FACTOR,
    RunConfig,
)
from harness.verdict import expectations
from harness.vm.boot import Timeouts


def project_root() -> Path:
    """The checkout holding patches/ and kernel-configs/, else the current directory."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "kernel-configs").is_dir() else Path.cwd()


# The commands whose cells (arches, variants) come from the matrix file; `boot` boots one.
FILE_CELL_COMMANDS = ("run", "build", "test", "check-series")


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def results_root() -> Path:
    return project_root() / "results"


def new_run_dir(root: Path, prefix: str = "") -> Path:
    """A run directory of its own: `<prefix><run id>`, or `-2`, `-3`... when that exists.

    Run ids have one-second resolution; the directory is created exclusively,
    so two runs started in the same second never share one (nor a summary).
    """
    base = f"{prefix}{_run_id()}"
    for number in itertools.count(1):
        candidate = root / (base if number == 1 else f"{base}-{number}")
        try:
            root.mkdir(parents=True, exist_ok=True)
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as error:
            raise BadInput(f"{root}: cannot create a run directory ({error.strerror})") from None
        return candidate
    raise AssertionError("unreachable")


@contextlib.contextmanager
def fresh_run_dir(config: RunConfig, given: Path | None) -> Iterator[RunConfig]:
    """`config` with a run directory of its own unless --results named one; an empty one
    made for a run that stopped before writing anything is removed again."""
    if given is not None:
        yield config
        return
    run_dir = new_run_dir(results_root())
    try:
        yield dataclasses.replace(config, results_dir=run_dir.resolve())
    except BaseException:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when empty
        raise


T = TypeVar("T")


def _pick(given: T | None, in_file: T | None, builtin: T) -> T:
    """A command-line value, else the matrix file's, else the built-in default."""
    if given is not None:
        return given
    return in_file if in_file is not None else builtin


def _matrix_file(line: CommandLine) -> matrixfile.MatrixFile:
    """--matrix FILE, else the checkout's harness.toml if it has one."""
    if line.matrix is not None:
        return matrixfile.load(line.matrix)
    return matrixfile.load_default(project_root())


def _required(value: T | None, option: str) -> T:
    """An option every command resolving a RunConfig has (argparse gives its default)."""
    if value is None:
        raise AssertionError(f"{option}: missing from the command's options")
    return value


def make_config(args: argparse.Namespace, do_build: bool, do_test: bool) -> RunConfig:
    """The command's RunConfig: each setting from the command line (CommandLine, the
    typed view of `args`), else the matrix file, else the built-in default."""
    line = CommandLine.of(args)
    matrix = _matrix_file(line)
    cells_from_file = line.command in FILE_CELL_COMMANDS
    arches = _pick(
        line.arches,
        [get_arch(name) for name in matrix.arches]
        if cells_from_file and matrix.arches is not None
        else None,
        line.default_arches,
    )
    toolchains = _pick(
        line.toolchains,
        [get_toolchain(name) for name in matrix.toolchains]
        if cells_from_file and matrix.toolchains is not None
        else None,
        [get_toolchain(DEFAULT_TOOLCHAIN)],
    )
    variants = _pick(
        line.variants,
        [parse_variant(name) for name in matrix.variants]
        if cells_from_file and matrix.variants is not None
        else None,
        list(Variant),
    )
    pytest_args = list(line.pytest_args) if do_test else []
    if do_test and line.keyword:
        pytest_args += ["-k", line.keyword]
    # The run's own directory is made when it starts (new_run_dir); this is its likely name.
    results = (line.results or results_root() / _run_id()).resolve()
    args.run_dir = results  # where a bug's traceback goes (see main)
    work_dir = _required(line.work_dir, "--work-dir").resolve()
    check_directory_option("--work-dir", work_dir)
    check_directory_option("--results", results, kbuild=False)
    if line.source is not None and any(char in str(line.source) for char in KBUILD_UNSAFE):
        raise BadInput(
            f"--source {line.source}: kbuild refuses spaces and colons in the source tree's "
            "path; move or link the tree to a path without them"
        )
    timeouts = matrix.timeouts
    defaults = Timeouts()
    run_selftests, configured_selftests = _selftests(line, matrix)
    accel = Accel(matrix.accel) if matrix.accel is not None else None
    return RunConfig(
        arches=arches,
        variants=variants,
        series_dir=_pick(line.series, matrix.series, project_root() / DEFAULT_SERIES),
        config_dir=_required(line.configs, "--configs"),
        guest_tests=line.guest_tests or project_root() / DEFAULT_GUEST_TESTS,
        work=WorkDir(work_dir),
        results_dir=results,
        source_dir=line.source,
        source_tarball=line.source_tarball,
        features=_pick(line.features, matrix.features, list(DEFAULT_FEATURES)),
        kconfig_add=_pick(line.kconfig_add, matrix.kconfig_add, []),
        accel=_pick(line.accel, accel, DEFAULT_ACCEL),
        cmdline=line.cmdline,
        qemu_args=line.qemu_args,
        jobs=_required(line.jobs, "--jobs"),
        pytest_args=pytest_args,
        timeouts=Timeouts(
            boot=_pick(line.boot_timeout, timeouts.get("boot"), defaults.boot),
            test=_pick(line.test_timeout, timeouts.get("test"), defaults.test),
            run=_pick(line.run_timeout, timeouts.get("run"), defaults.run),
        ),
        timeout_factor=_pick(line.timeout_factor, timeouts.get("factor"), DEFAULT_TIMEOUT_FACTOR),
        build_timeout=_pick(line.build_timeout, timeouts.get("build"), DEFAULT_BUILD_TIMEOUT),
        do_build=do_build,
        do_test=do_test,
        # Not off for `build`: the collections' config files are part of the kernel.
        selftests=run_selftests,
        selftest_configs=configured_selftests,
        mbox=line.mbox,
        commits=line.commits,
        expectations=_expectations(line, matrix) if do_test else expectations.NO_EXPECTATIONS,
        ktap=_pick(line.ktap, matrix.ktap, DEFAULT_KTAP) and do_test,
        kcidb=_pick(line.kcidb, matrix.kcidb, DEFAULT_KCIDB) and do_test,
        kcidb_origin=_pick(line.kcidb_origin, matrix.kcidb_origin, DEFAULT_KCIDB_ORIGIN),
        toolchains=list(dict.fromkeys(toolchains)),  # each once, in the order given
    )


def _selftests(
    line: CommandLine, matrix: matrixfile.MatrixFile
) -> tuple[tuple[Collection, ...], tuple[Collection, ...]]:
    """The collections the guest runs, and those whose config files the kernels get:
    --selftests NAME (each; alone, the default list) both; else the matrix file's, else
    the built-in default list, both; --no-selftests runs none but keeps the configs."""
    configured = _pick(None, matrix.selftests, list(DEFAULT_SELFTESTS))
    if line.selftests:
        expanded = [n for name in line.selftests for n in ([name] if name else DEFAULT_SELFTESTS)]
        configured = expanded
    collections = tuple(COLLECTIONS[name] for name in dict.fromkeys(configured))
    return (() if line.selftests == [] else collections), collections


def kcidb_origin(args: argparse.Namespace) -> str:
    """`harness report --kcidb`'s origin: --kcidb-origin, else the matrix file's, else the
    built-in one, as for a run."""
    line = CommandLine.of(args)
    if line.kcidb_origin is not None:
        return line.kcidb_origin
    return _matrix_file(line).kcidb_origin or DEFAULT_KCIDB_ORIGIN


def _expectations(line: CommandLine, matrix: matrixfile.MatrixFile) -> expectations.Expectations:
    """--expectations FILE, else the matrix file's, else the checkout's expectations.toml."""
    path = _pick(line.expectations, matrix.expectations, None)
    if path is not None:
        return expectations.load(path)
    return expectations.load_default(project_root())
