"""Command line: subcommands built from shared option groups, dispatched by a dict.

Parsed arguments become a RunConfig at this boundary; only this module picks
exit codes (see the README's table).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import logging
import math
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import traceback
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from harness.checks import checkseries
from harness.cli import doctor
from harness.core import limits
from harness.core.arches import ARCHES, ArchSpec, get_arch
from harness.core.errors import BadInput, HarnessError, StageFailure
from harness.core.jsonfile import read_json
from harness.core.progress import Progress
from harness.core.status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Status
from harness.core.workdir import (
    KBUILD_UNSAFE,
    WorkDir,
    WorkDirLock,
    check_directory_option,
    nothing_left_on_bad_input,
)
from harness.results import compare, ktap, report
from harness.results.model import VARIANTS
from harness.run import inputs, keys, matrixfile, summary
from harness.run.config import RunConfig
from harness.verdict import expectations
from harness.vm import initramfs, qemu
from harness.vm.boot import ACCEL_TIME_FACTOR, Timeouts


def project_root() -> Path:
    """The checkout holding patches/ and kernel-configs/, else the current directory."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "kernel-configs").is_dir() else Path.cwd()


BUILTIN_SERIES = Path("patches") / "ptrace-seccomp"  # under the project root
BUILTIN_FEATURES = ["seccomp"]
BUILTIN_BUILD_TIMEOUT = 3600.0


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


def _add_matrix_options(
    parser: argparse.ArgumentParser, default_arches: list[str], variants: bool = True
) -> None:
    root = project_root()
    group = parser.add_argument_group(
        "matrix", f"options left out take their value from {matrixfile.DEFAULT_NAME}"
    )
    group.add_argument("--matrix", type=Path, metavar="FILE",
                       help=f"the matrix file (default: {root / matrixfile.DEFAULT_NAME}, "
                       "when it exists)")  # fmt: skip
    group.add_argument("--arch", action="append", help=f"{', '.join(ARCHES)} (repeatable; "
                       f"default: {' and '.join(default_arches)})")  # fmt: skip
    group.set_defaults(default_arches=default_arches)
    if variants:
        group.add_argument(
            "--variant", action="append", help="baseline, patched (repeatable; default both)"
        )
    group.add_argument(
        "--series", type=Path, help=f"quilt series directory (default: {root / BUILTIN_SERIES})"
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
    group.add_argument("--work-dir", type=Path,
                       default=Path(os.environ.get("HARNESS_WORK_DIR", root / ".work")),
                       help="sources, trees, builds and caches (default: %(default)s)")  # fmt: skip
    group.add_argument("--configs", type=Path, default=root / "kernel-configs",
                       help="config fragment directory (default: %(default)s)")  # fmt: skip
    group.add_argument("--feature", action="append",
                       help="extra fragment from the configs dir, e.g. debug-kasan: NAME.config "
                       "and/or NAME.<arch>.config (repeatable; "
                       f"default: {', '.join(BUILTIN_FEATURES)})")  # fmt: skip
    group.add_argument("--kconfig-add", action="append", metavar="CONFIG_X=y",
                       help="add a config option (repeatable)")  # fmt: skip
    group.add_argument("--results", type=Path, help="run directory (default: results/<run id>)")
    group.add_argument("-j", "--jobs", type=jobs_count, default=limits.cores(),
                       help=f"CPU budget: make's jobs and guests at once (default: the "
                       f"cores, %(default)s; at most {limits.JOBS_PER_CORE} per core)")  # fmt: skip
    group.add_argument("--build-timeout", type=seconds, metavar="SECONDS",
                       help=f"one kernel build (default: {BUILTIN_BUILD_TIMEOUT:g})")  # fmt: skip


def _add_guest_options(parser: argparse.ArgumentParser, ktap_option: bool = True) -> None:
    root = project_root()
    group = parser.add_argument_group(
        "guest", f"options left out take their value from {matrixfile.DEFAULT_NAME} too"
    )
    group.add_argument("--accel", choices=qemu.ACCELS,
                       help="auto uses KVM only where it works here (default: auto)")  # fmt: skip
    group.add_argument(
        "--cmdline", action="append", default=[], help="add to the kernel command line"
    )
    group.add_argument("--qemu-arg", action="append", default=[],
                       help="add a QEMU argument (write --qemu-arg=-foo)")  # fmt: skip
    group.add_argument("--guest-tests", type=Path, default=root / "guest-tests")
    group.add_argument("-k", dest="keyword", help="pytest -k expression for the guest tests")
    group.add_argument("--pytest-arg", action="append", default=[],
                       help="pass an argument to the guest's pytest (repeatable)")  # fmt: skip
    group.add_argument("--selftests", action=argparse.BooleanOptionalAction,
                       help="run the kernel's own seccomp selftests in the guest (default: "
                       "yes)")  # fmt: skip
    group.add_argument("--expectations", type=Path, metavar="FILE",
                       help="known outcomes per arch and variant (default: "
                       f"{root / expectations.DEFAULT_NAME}, when it exists)")  # fmt: skip
    if ktap_option:
        group.add_argument("--ktap", action=argparse.BooleanOptionalAction,
                           help=f"also write the run as KTAP, {ktap.KTAP_NAME} in the run "
                           "directory (default: no)")  # fmt: skip
    defaults = Timeouts()
    for name, what, default in (
        ("boot", "to userspace", defaults.boot),
        ("test", "per guest test", defaults.test),
        ("run", "whole guest run", defaults.run),
    ):
        help_text = f"{what}, at KVM speed; x3 under TCG (default: {default:g})"
        group.add_argument(f"--{name}-timeout", type=seconds, metavar="SECONDS", help=help_text)
    group.add_argument("--timeout-factor", type=factor,
                       help="multiply the boot, test and run timeouts, for slow runners "
                       "(default: 1)")  # fmt: skip


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


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
def _fresh_run_dir(config: RunConfig, given: Path | None) -> Iterator[RunConfig]:
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
    arch_names = _pick(args.arch, matrix.arches if cells_from_file else None, args.default_arches)
    variants = _pick(
        getattr(args, "variant", None), matrix.variants if cells_from_file else None, list(VARIANTS)
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
        arches=[get_arch(name) for name in arch_names],
        variants=variants,
        series_dir=_pick(args.series, matrix.series, project_root() / BUILTIN_SERIES),
        config_dir=args.configs,
        guest_tests=getattr(args, "guest_tests", project_root() / "guest-tests"),
        work=WorkDir(work_dir),
        results_dir=results,
        source_dir=args.source,
        source_tarball=args.source_tarball,
        features=_pick(args.feature, matrix.features, BUILTIN_FEATURES),
        kconfig_add=_pick(args.kconfig_add, matrix.kconfig_add, []),
        accel=_pick(getattr(args, "accel", None), matrix.accel, "auto"),
        cmdline=getattr(args, "cmdline", []),
        qemu_args=getattr(args, "qemu_arg", []),
        jobs=args.jobs,
        pytest_args=pytest_args,
        timeouts=Timeouts(
            boot=_pick(getattr(args, "boot_timeout", None), timeouts.get("boot"), defaults.boot),
            test=_pick(getattr(args, "test_timeout", None), timeouts.get("test"), defaults.test),
            run=_pick(getattr(args, "run_timeout", None), timeouts.get("run"), defaults.run),
        ),
        timeout_factor=_pick(getattr(args, "timeout_factor", None), timeouts.get("factor"), 1.0),
        build_timeout=_pick(args.build_timeout, timeouts.get("build"), BUILTIN_BUILD_TIMEOUT),
        do_build=do_build,
        do_test=do_test,
        selftests=_pick(getattr(args, "selftests", None), matrix.selftests, True) and do_test,
        mbox=args.mbox,
        commits=args.commits,
        expectations=_expectations(args, matrix) if do_test else expectations.NO_EXPECTATIONS,
        ktap=_pick(getattr(args, "ktap", None), matrix.ktap, False) and do_test,
    )


def _expectations(
    args: argparse.Namespace, matrix: matrixfile.MatrixFile
) -> expectations.Expectations:
    """--expectations FILE, else the matrix file's, else the checkout's expectations.toml."""
    path: Path | None = _pick(getattr(args, "expectations", None), matrix.expectations, None)
    if path is not None:
        return expectations.load(path)
    return expectations.load_default(project_root())


def _matrix(args: argparse.Namespace, do_build: bool, do_test: bool) -> int:
    progress = Progress()
    with (
        _fresh_run_dir(make_config(args, do_build, do_test), args.results) as config,
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        args.run_dir = config.results_dir
        prepared = inputs.prepare(config)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); "
            f"cells: {', '.join(f'{a.name}/{v}' for a in config.arches for v in config.variants)}; "
            f"results: {config.results_dir}"
        )
        finished = summary.run_matrix(config, prepared, config.results_dir.name, progress)
    _point_latest_at(config.results_dir)
    status = finished.status()
    for cell in finished.cells:
        counts = " ".join(f"{k}={v}" for k, v in cell.tests.items() if v) or "no tests"
        progress.line(f"{cell.name}: {cell.status.label}: {counts}"
                      + (f" -- {cell.reason}" if cell.reason else ""))  # fmt: skip
    if config.expectations.path is not None:
        judged = [cell.facts.get("expectations") or {} for cell in finished.cells]
        totals = [sum(len(j.get(key, [])) for j in judged)
                  for key in ("departures", "expected_failures", "stale")]  # fmt: skip
        progress.line(
            f"expectations {config.expectations.path}: {totals[0]} departure(s), "
            f"{totals[1]} expected failure(s), {totals[2]} stale glob(s)"
        )
    progress.line(
        f"run {status.label} (exit {status.exit_code}); see {config.results_dir}/summary.json"
    )
    return status.exit_code


def results_root() -> Path:
    return project_root() / "results"


def _point_latest_at(run_dir: Path) -> None:
    """`results/latest` -> the run, when the run is in the results root; nowhere else.

    `--results /tmp/x` must not create or replace `/tmp/latest`, which is not ours.
    """
    root = results_root()
    if run_dir.resolve().parent != root.resolve():
        return
    latest = root / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(run_dir.name)


def cmd_run(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=True)


def cmd_build(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=False)


def cmd_test(args: argparse.Namespace) -> int:
    if args.live:
        return _live_test(args)
    return _matrix(args, do_build=False, do_test=True)


def _live_test(args: argparse.Namespace) -> int:
    """`test --live`: the current guest tests in the running live VMs, over SSH."""
    from harness.kernel import build
    from harness.live import session as livetest
    from harness.live import vm as live

    work = WorkDir(args.work_dir.resolve())
    for name in args.arch or []:
        get_arch(name)
    for variant in args.variant or []:
        if variant not in VARIANTS:
            raise BadInput(f"--variant {variant}: unknown; choose from {', '.join(VARIANTS)}")
    if not args.guest_tests.is_dir():
        raise BadInput(f"{args.guest_tests}: no guest tests directory")
    vms = live.running_vms(work, args.arch, args.variant)
    if not vms:
        raise live.no_vm_error((args.arch or [None])[0], (args.variant or [None])[0])
    for vm in vms:
        live.check_current(vm, build.built_uts_version(Path(vm.build_dir)))
    # Timeouts and expectations as a booted run resolves them: options, then harness.toml.
    config = make_config(args, do_build=False, do_test=True)
    if args.results is None:
        results = new_run_dir(results_root(), "live-").resolve()
    else:
        results = args.results.resolve()
        try:
            results.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BadInput(f"--results {results}: not writable ({error.strerror})") from None
    pytest_args = list(args.pytest_arg) + (["-k", args.keyword] if args.keyword else [])
    progress = Progress()
    outcomes = []
    for vm in vms:
        factor = ACCEL_TIME_FACTOR[vm.accel] * config.timeout_factor
        run = livetest.LiveRun(
            vm=vm, guest_tests=args.guest_tests.resolve(), pytest_args=pytest_args,
            cell_dir=results / f"{vm.arch}-{vm.variant}",
            test_timeout=config.timeouts.test * factor, run_timeout=config.timeouts.run * factor,
            expectations=config.expectations,
        )  # fmt: skip
        outcome = livetest.run_live(run, progress)
        progress.line(livetest.summary_line(vm.cell, outcome))
        if outcome.status is not Status.PASS:
            progress.line(f"{vm.cell}: pytest's own output: {run.cell_dir / 'pytest.log'}")
        outcomes.append(outcome)
    status = livetest.overall(outcomes)
    progress.line(f"live run {status.label} (exit {status.exit_code}); see {results}")
    return status.exit_code


def cmd_boot(args: argparse.Namespace) -> int:
    """A built kernel: an interactive console (Ctrl-A X leaves QEMU), or a live VM."""
    if args.stop:
        return _stop_live(args)
    config = make_config(args, do_build=False, do_test=True)
    if len(config.arches) != 1 or len(config.variants) != 1:
        raise BadInput("boot: give exactly one --arch and one --variant")
    _check_boot_options(args)
    arch, variant = config.arches[0], config.variants[0]
    if args.ssh and _already_live(config.work, arch.name, variant):
        return 0
    with nothing_left_on_bad_input(config.work.root, config.results_dir):
        prepared = inputs.prepare(config)
        build_dir = keys.build_dir_for(config.work, prepared, arch, variant)
        image = build_dir / arch.image_path
        if not image.is_file():
            raise BadInput(
                f"{image}: not built; run 'harness build --arch {arch.name} --variant {variant}'"
            )
    accel = qemu.interactive_accel(config.accel, arch, qemu.AccelVerdicts(config.work.verdicts))
    cmdline = list(config.cmdline)
    gdb_port = None
    if args.gdb:
        from harness.live import vm as live

        gdb_port = args.gdb_port or live.free_port(DEFAULT_GDB_PORT)
        cmdline.append("nokaslr")  # symbols at vmlinux's addresses
        print(_gdb_hint(arch, build_dir / "vmlinux", gdb_port, args.gdb_wait), file=sys.stderr)
    if args.ssh:
        return _boot_live(config, arch, variant, build_dir, image, accel, cmdline, gdb_port,
                          args.ssh_port)  # fmt: skip
    base = initramfs.build_base(arch, config.work.initramfs, config.work.initramfs / "build.log")
    initrd = config.work.initramfs / f"initrd-{arch.name}-interactive.cpio"
    initramfs.assemble(base, config.guest_tests, [], initrd)
    setup = qemu.QemuSetup(
        arch=arch, kernel=image, initrd=initrd, results=initrd.with_suffix(".results"),
        selftests=initrd.with_suffix(".tap"), accel=accel,
        cmdline_extra=["harness.shell", *cmdline], qemu_extra=config.qemu_args,
        gdb_port=gdb_port, gdb_wait=args.gdb_wait,
    )  # fmt: skip
    command = qemu.qemu_command(setup)
    print(f"$ {shlex.join(command)}", file=sys.stderr)
    os.execvp(command[0], command)


DEFAULT_GDB_PORT = 1234  # gdb's and QEMU's -s own default


def _check_boot_options(args: argparse.Namespace) -> None:
    for option, port in (("--ssh-port", args.ssh_port), ("--gdb-port", args.gdb_port)):
        if port is not None and not 1 <= port <= 65535:
            raise BadInput(f"{option} {port}: not a TCP port; give 1-65535")
    if args.ssh_port is not None and not args.ssh:
        raise BadInput("--ssh-port needs --ssh")
    if (args.gdb_port is not None or args.gdb_wait) and not args.gdb:
        raise BadInput("--gdb-port and --gdb-wait need --gdb")
    if args.gdb_wait and args.ssh:
        raise BadInput(
            "--gdb-wait with --ssh: the guest would wait for gdb before SSH can answer; "
            "drop --gdb-wait, or boot with --gdb --gdb-wait without --ssh"
        )


def _gdb_hint(arch: ArchSpec, vmlinux: Path, port: int, wait: bool) -> str:
    binary, package = arch.gdb
    lines = [
        f"harness: gdb stub on 127.0.0.1:{port}"
        + (" (the CPUs wait for gdb's 'continue')" if wait else "") + "; debug with:",
        f"  {shlex.join([binary, str(vmlinux), '-ex', f'target remote 127.0.0.1:{port}'])}",
    ]  # fmt: skip
    if not vmlinux.is_file():
        lines.append(f"harness: note: {vmlinux} is missing; rebuild the cell to get symbols")
    if shutil.which(binary) is None:
        lines.append(f"harness: note: {binary} is not installed: apt-get install {package}")
    return "\n".join(lines)


def _already_live(work: WorkDir, arch: str, variant: str) -> bool:
    """One live VM per cell: say where the running one is instead of starting another."""
    from harness.kernel import build
    from harness.live import vm as live

    vm = live.running_vm(work, arch, variant)
    if vm is None:
        return False
    live.check_current(vm, build.built_uts_version(Path(vm.build_dir)))
    print(f"harness: a live VM for {vm.cell} already runs (QEMU pid {vm.pid}); log in with: "
          f"{live.login_hint(vm)}", file=sys.stderr)  # fmt: skip
    return True


def _boot_live(
    config: RunConfig, arch: ArchSpec, variant: str, build_dir: Path, image: Path,
    accel: str, cmdline: list[str], gdb_port: int | None, ssh_port: int | None,
) -> int:  # fmt: skip
    from harness.kernel import build
    from harness.live import vm as live

    factor = ACCEL_TIME_FACTOR[accel] * config.timeout_factor
    spec = live.LiveBoot(
        arch=arch, variant=variant, work=config.work, kernel=image, build_dir=build_dir,
        build_key=read_json(build_dir / keys.BUILD_STAMP).get("key"),
        uts_version=build.built_uts_version(build_dir), accel=accel,
        guest_tests=config.guest_tests.resolve(), boot_timeout=config.timeouts.boot * factor,
        ssh_port=ssh_port, gdb_port=gdb_port, cmdline=tuple(cmdline),
        qemu_args=tuple(config.qemu_args),
    )  # fmt: skip
    progress = Progress()
    vm = live.boot(spec, progress.line)
    progress.line(f"{vm.cell}: live VM up, SSH answered after {time.time() - vm.started:.1f} s "
                  f"(console: {vm.console_log}); log in with:")  # fmt: skip
    print(live.login_hint(vm), flush=True)
    progress.line(
        f"run the guest tests there with 'harness test --live --arch {arch.name} --variant "
        f"{variant} [-k EXPR]'; stop it with 'harness boot --stop --arch {arch.name} "
        f"--variant {variant}'"
    )
    return 0


def _stop_live(args: argparse.Namespace) -> int:
    """`boot --stop`: the live VMs of the cells given, or every one when none is given."""
    from harness.live import vm as live

    work = WorkDir(args.work_dir.resolve())
    vms = live.running_vms(work, args.arch, args.variant)
    if not vms:
        raise live.no_vm_error((args.arch or [None])[0], (args.variant or [None])[0])
    for vm in vms:
        live.stop(vm)
        print(f"harness: stopped the live VM {vm.cell} (QEMU pid {vm.pid})", file=sys.stderr)
    return 0


def cmd_check_series(args: argparse.Namespace) -> int:
    """Every prefix of the series applies and builds; checkpatch, sign-offs, W=1 per patch;
    with --boot, every prefix that builds also boots and behaves as the expectations say."""
    config = dataclasses.replace(make_config(args, True, args.boot), variants=["patched"])
    progress = Progress()
    with (
        _fresh_run_dir(config, args.results) as config,
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        args.run_dir = config.results_dir
        prepared = inputs.prepare(config)
        series = checkseries.check_inputs(prepared)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); check-series "
            f"of {series.name} ({len(series.patches)} patches) for "
            f"{', '.join(a.name for a in config.arches)}; results: {config.results_dir}"
        )
        if args.boot:
            progress.line(f"--boot: each prefix is booted and judged by {_judged_by(config)}")
        result = checkseries.run_check_series(config, prepared, progress)
    for line in result.lines():
        print(line)
    progress.line(f"see {config.results_dir}/check-series.md and check-series.json")
    return result.status().exit_code


def _judged_by(config: RunConfig) -> str:
    path = config.expectations.path
    return f"{path} (base: baseline, patches: patched)" if path else "no expectations file"


def cmd_doctor(args: argparse.Namespace) -> int:
    requirements = doctor.read_requirements(doctor.PACKAGE_LIST)
    for requirement in requirements:
        mark = "ok     " if requirement.present() else "MISSING"
        print(f"{mark} {requirement.package:24} {requirement.provides:40} {requirement.why}")
    missing = doctor.missing_packages(requirements)
    if not missing:
        print("all host tools present")
        return 0
    command = shlex.join(doctor.install_command(missing))
    if args.install:
        if os.geteuid() != 0:
            print(f"doctor --install needs root; run: sudo {command}", file=sys.stderr)
            return Status.INFRA.exit_code
        return 0 if doctor.install(missing) == 0 else Status.INFRA.exit_code
    print(f"missing: {' '.join(missing)}\ninstall with: apt-get update && {command}")
    return Status.INFRA.exit_code


def cmd_report(args: argparse.Namespace) -> int:
    for path in report.write_reports(args.run_dir):
        print(path)
    if args.ktap:
        print(ktap.write_ktap(args.run_dir))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = compare.compare_runs(args.run_a, args.run_b)
    print(compare.format_comparison(comparison))
    return comparison.exit_code


def _add_report_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    report_parser = sub.add_parser("report", help="render report.html and report.md of a run")
    report_parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    report_parser.add_argument(
        "--ktap", action="store_true", help=f"also write {ktap.KTAP_NAME} (KTAP version 1)"
    )
    report_parser.set_defaults(handler=cmd_report)
    compare_parser = sub.add_parser(
        "compare", help="what changed between two runs, regressions first (exit 1 if any)"
    )
    compare_parser.add_argument("run_a", type=Path, metavar="RUN_A")
    compare_parser.add_argument("run_b", type=Path, metavar="RUN_B")
    compare_parser.set_defaults(handler=cmd_compare)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str, bool, list[str]]] = {
    # name: (handler, help, takes guest options, default arches)
    "run": (cmd_run, "patch, configure, build, boot and test the matrix", True, list(ARCHES)),
    "build": (cmd_build, "patch, configure and build only", False, list(ARCHES)),
    "test": (cmd_test, "boot and test kernels already built", True, list(ARCHES)),
    "boot": (
        cmd_boot,
        "interactive console on a built kernel, or a live VM (--ssh)",
        True,
        ["x86_64"],
    ),
}


def _add_boot_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("live VM and debugging")
    group.add_argument("--ssh", action="store_true",
                       help="keep the guest running in the background with an SSH server on "
                       "127.0.0.1; returns once SSH answers")  # fmt: skip
    group.add_argument("--ssh-port", type=int, metavar="PORT",
                       help="host port for --ssh (default: a free one)")  # fmt: skip
    group.add_argument("--stop", action="store_true",
                       help="stop the live VMs of the cells given (all, if none is)")  # fmt: skip
    group.add_argument("--gdb", action="store_true",
                       help="QEMU's gdb stub on 127.0.0.1, for the cell's vmlinux")  # fmt: skip
    group.add_argument("--gdb-port", type=int, metavar="PORT",
                       help=f"gdb stub port (default: {DEFAULT_GDB_PORT} if free)")  # fmt: skip
    group.add_argument("--gdb-wait", action="store_true",
                       help="with --gdb: the CPUs wait for gdb's 'continue'")  # fmt: skip


def _add_test_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--live", action="store_true",
                        help="copy the guest tests into the running live VMs (harness boot "
                        "--ssh) and run them there, over SSH")  # fmt: skip


EXTRA_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "boot": _add_boot_options,
    "test": _add_test_options,
}
# The commands whose cells (arches, variants) come from the matrix file; `boot` boots one.
FILE_CELL_COMMANDS = ("run", "build", "test", "check-series")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="harness", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (handler, help_text, guest, default_arches) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        _add_matrix_options(command, default_arches)
        if guest:
            _add_guest_options(command)
        if name in EXTRA_OPTIONS:
            EXTRA_OPTIONS[name](command)
        command.set_defaults(handler=handler)
    check_parser = sub.add_parser(
        "check-series",
        help="per patch: applies, builds (every prefix), checkpatch --strict, sign-off, W=1",
    )
    _add_matrix_options(check_parser, list(ARCHES), variants=False)
    check_parser.add_argument(
        "--boot", action="store_true",
        help="also boot every prefix that builds in QEMU and run the guest tests, judged by "
        "the expectations: the base by its baseline entries, each prefix by both (a test "
        "may stand where baseline or patched puts it, never fail); "
        "the guest options below apply only with --boot",
    )  # fmt: skip
    _add_guest_options(check_parser, ktap_option=False)
    check_parser.set_defaults(handler=cmd_check_series)
    doctor_parser = sub.add_parser("doctor", help="check host tools; --install installs them")
    doctor_parser.add_argument(
        "--install", action="store_true", help="apt-get install what is missing"
    )
    doctor_parser.set_defaults(handler=cmd_doctor)
    _add_report_commands(sub)
    return parser


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(message)s")  # fmt: skip
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args))
    except BadInput as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StageFailure as error:
        print(f"harness: {error.status.label}: {error}", file=sys.stderr)
        return error.status.exit_code
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return Status.INFRA.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; children stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug: exit 10 (never 1, a test's), its traceback kept
        return _report_bug(args, error)


ERROR_FILE = "harness-error.txt"


def _report_bug(args: argparse.Namespace, error: Exception) -> int:
    """One line naming the error and the file that keeps its traceback: the run dir's
    harness-error.txt, or the results root's when there is no run dir yet."""
    run_dir: Path | None = getattr(args, "run_dir", None)
    if run_dir is None or not run_dir.is_dir():
        given: Path | None = getattr(args, "results", None)
        if run_dir is not None:
            directory = run_dir.parent
        elif given is not None:
            directory = given.resolve().parent
        else:
            directory = project_root() / "results"
    else:
        directory = run_dir
    text = traceback.format_exc()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        saved = directory / ERROR_FILE
        saved.write_text(text)
    except OSError:
        handle, name = tempfile.mkstemp(prefix="harness-error-", suffix=".txt")
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        saved = Path(name)
    message = " ".join(str(error).split("\n", 1)[0].split())
    print(f"harness: infra: {type(error).__name__}{': ' if message else ''}{message} "
          f"(a bug of the harness; traceback in {saved})", file=sys.stderr)  # fmt: skip
    return Status.INFRA.exit_code
