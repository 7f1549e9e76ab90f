"""Settings of a run, resolved in one place: the command line, else the matrix file
(harness.toml), else the built-in defaults (written once, here and in vm/boot.py's
Timeouts), into one typed RunConfig."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from harness.core.arches import get_arch
from harness.core.errors import BadInput
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


def _matrix_file(args: argparse.Namespace) -> matrixfile.MatrixFile:
    """--matrix FILE, else the checkout's harness.toml if it has one."""
    if args.matrix is not None:
        return matrixfile.load(args.matrix)
    return matrixfile.load_default(project_root())


def make_config(args: argparse.Namespace, do_build: bool, do_test: bool) -> RunConfig:
    matrix = _matrix_file(args)
    cells_from_file = args.command in FILE_CELL_COMMANDS
    # --arch and --variant come typed: argparse checked them (cli/options.py).
    arches = _pick(
        args.arch,
        [get_arch(name) for name in matrix.arches]
        if cells_from_file and matrix.arches is not None
        else None,
        args.default_arches,
    )
    variants = _pick(
        getattr(args, "variant", None),
        [parse_variant(name) for name in matrix.variants]
        if cells_from_file and matrix.variants is not None
        else None,
        list(Variant),
    )
    pytest_args = list(args.pytest_arg) if do_test else []
    if do_test and args.keyword:
        pytest_args += ["-k", args.keyword]
    # The run's own directory is made when it starts (new_run_dir); this is its likely name.
    results = (args.results or results_root() / _run_id()).resolve()
    args.run_dir = results  # where a bug's traceback goes (see main)
    work_dir = args.work_dir.resolve()
    check_directory_option("--work-dir", work_dir)
    check_directory_option("--results", results, kbuild=False)
    if args.source is not None and any(char in str(args.source) for char in KBUILD_UNSAFE):
        raise BadInput(
            f"--source {args.source}: kbuild refuses spaces and colons in the source tree's "
            "path; move or link the tree to a path without them"
        )
    timeouts = matrix.timeouts
    defaults = Timeouts()
    return RunConfig(
        arches=arches,
        variants=variants,
        series_dir=_pick(args.series, matrix.series, project_root() / DEFAULT_SERIES),
        config_dir=args.configs,
        guest_tests=getattr(args, "guest_tests", project_root() / DEFAULT_GUEST_TESTS),
        work=WorkDir(work_dir),
        results_dir=results,
        source_dir=args.source,
        source_tarball=args.source_tarball,
        features=_pick(args.feature, matrix.features, list(DEFAULT_FEATURES)),
        kconfig_add=_pick(args.kconfig_add, matrix.kconfig_add, []),
        accel=Accel(_pick(getattr(args, "accel", None), matrix.accel, DEFAULT_ACCEL)),
        cmdline=getattr(args, "cmdline", []),
        qemu_args=getattr(args, "qemu_arg", []),
        jobs=args.jobs,
        pytest_args=pytest_args,
        timeouts=Timeouts(
            boot=_pick(getattr(args, "boot_timeout", None), timeouts.get("boot"), defaults.boot),
            test=_pick(getattr(args, "test_timeout", None), timeouts.get("test"), defaults.test),
            run=_pick(getattr(args, "run_timeout", None), timeouts.get("run"), defaults.run),
        ),
        timeout_factor=_pick(
            getattr(args, "timeout_factor", None), timeouts.get("factor"), DEFAULT_TIMEOUT_FACTOR
        ),
        build_timeout=_pick(args.build_timeout, timeouts.get("build"), DEFAULT_BUILD_TIMEOUT),
        do_build=do_build,
        do_test=do_test,
        selftests=_pick(getattr(args, "selftests", None), matrix.selftests, DEFAULT_SELFTESTS)
        and do_test,
        mbox=args.mbox,
        commits=args.commits,
        expectations=_expectations(args, matrix) if do_test else expectations.NO_EXPECTATIONS,
        ktap=_pick(getattr(args, "ktap", None), matrix.ktap, DEFAULT_KTAP) and do_test,
        kcidb=_pick(getattr(args, "kcidb", None), matrix.kcidb, DEFAULT_KCIDB) and do_test,
        kcidb_origin=_pick(
            getattr(args, "kcidb_origin", None), matrix.kcidb_origin, DEFAULT_KCIDB_ORIGIN
        ),
    )


def kcidb_origin(args: argparse.Namespace) -> str:
    """`harness report --kcidb`'s origin: --kcidb-origin, else the matrix file's, else the
    built-in one, as for a run."""
    if args.kcidb_origin is not None:
        return str(args.kcidb_origin)
    return _matrix_file(args).kcidb_origin or DEFAULT_KCIDB_ORIGIN


def _expectations(
    args: argparse.Namespace, matrix: matrixfile.MatrixFile
) -> expectations.Expectations:
    """--expectations FILE, else the matrix file's, else the checkout's expectations.toml."""
    path: Path | None = _pick(getattr(args, "expectations", None), matrix.expectations, None)
    if path is not None:
        return expectations.load(path)
    return expectations.load_default(project_root())
