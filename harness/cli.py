"""Command line: subcommands built from shared option groups, dispatched by a dict.

Parsed arguments become a RunConfig at this boundary; only this module picks
exit codes (see the README's table).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from harness import checkseries, compare, doctor, initramfs, pipeline, qemu, report
from harness.arches import ARCHES, get_arch
from harness.boot import Timeouts
from harness.errors import BadInput, HarnessError, StageFailure
from harness.progress import Progress
from harness.status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Status
from harness.workdir import WorkDir, WorkDirLock


def project_root() -> Path:
    """The checkout holding patches/ and kernel-configs/, else the current directory."""
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "kernel-configs").is_dir() else Path.cwd()


def _add_matrix_options(
    parser: argparse.ArgumentParser, default_arches: list[str], variants: bool = True
) -> None:
    root = project_root()
    group = parser.add_argument_group("matrix")
    group.add_argument("--arch", action="append", help=f"{', '.join(ARCHES)} (repeatable; "
                       f"default: {' and '.join(default_arches)})")  # fmt: skip
    group.set_defaults(default_arches=default_arches)
    if variants:
        group.add_argument(
            "--variant", action="append", help="baseline, patched (repeatable; default both)"
        )
    group.add_argument("--series", type=Path, default=root / "patches" / "ptrace-seccomp",
                       help="quilt series directory (default: %(default)s)")  # fmt: skip
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
                       help="extra fragment from the configs dir, e.g. debug-kasan (repeatable; "
                       "default: seccomp)")  # fmt: skip
    group.add_argument("--kconfig-add", action="append", default=[], metavar="CONFIG_X=y",
                       help="add a config option (repeatable)")  # fmt: skip
    group.add_argument("--results", type=Path, help="run directory (default: results/<run id>)")
    group.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    group.add_argument("--build-timeout", type=float, default=3600.0, metavar="SECONDS")


def _add_guest_options(parser: argparse.ArgumentParser) -> None:
    root = project_root()
    group = parser.add_argument_group("guest")
    group.add_argument("--accel", choices=qemu.ACCELS, default="auto",
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
    group.add_argument("--no-selftests", dest="selftests", action="store_false",
                       help="skip the kernel's own seccomp selftests in the guest")  # fmt: skip
    defaults = Timeouts()
    group.add_argument(
        "--boot-timeout",
        type=float,
        default=defaults.boot,
        metavar="SECONDS",
        help="to userspace, at KVM speed; x3 under TCG (default: %(default)s)",
    )
    group.add_argument(
        "--test-timeout",
        type=float,
        default=defaults.test,
        metavar="SECONDS",
        help="per guest test, at KVM speed; x3 under TCG (default: %(default)s)",
    )
    group.add_argument(
        "--run-timeout",
        type=float,
        default=defaults.run,
        metavar="SECONDS",
        help="whole guest run, at KVM speed; x3 under TCG (default: %(default)s)",
    )
    group.add_argument(
        "--timeout-factor",
        type=float,
        default=1.0,
        help="multiply every timeout, for slow runners (default: %(default)s)",
    )


def _run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def make_config(args: argparse.Namespace, do_build: bool, do_test: bool) -> pipeline.RunConfig:
    arches = [get_arch(name) for name in (args.arch or args.default_arches)]
    variants = getattr(args, "variant", None) or list(pipeline.VARIANTS)
    pytest_args = list(args.pytest_arg) if do_test else []
    if do_test and args.keyword:
        pytest_args += ["-k", args.keyword]
    results = args.results or project_root() / "results" / _run_id()
    return pipeline.RunConfig(
        arches=arches,
        variants=variants,
        series_dir=args.series,
        config_dir=args.configs,
        guest_tests=getattr(args, "guest_tests", project_root() / "guest-tests"),
        work=WorkDir(args.work_dir.resolve()),
        results_dir=results.resolve(),
        source_dir=args.source,
        source_tarball=args.source_tarball,
        features=args.feature or ["seccomp"],
        kconfig_add=args.kconfig_add,
        accel=getattr(args, "accel", "auto"),
        cmdline=getattr(args, "cmdline", []),
        qemu_args=getattr(args, "qemu_arg", []),
        jobs=args.jobs,
        pytest_args=pytest_args,
        timeouts=Timeouts(
            boot=getattr(args, "boot_timeout", Timeouts.boot),
            test=getattr(args, "test_timeout", Timeouts.test),
            run=getattr(args, "run_timeout", Timeouts.run),
        ),
        timeout_factor=getattr(args, "timeout_factor", 1.0),
        build_timeout=args.build_timeout,
        do_build=do_build,
        do_test=do_test,
        selftests=getattr(args, "selftests", False) and do_test,
        mbox=args.mbox,
        commits=args.commits,
    )


def _matrix(args: argparse.Namespace, do_build: bool, do_test: bool) -> int:
    config = make_config(args, do_build, do_test)
    progress = Progress()
    with WorkDirLock(config.work.root):
        prepared = pipeline.prepare(config)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); "
            f"cells: {', '.join(f'{a.name}/{v}' for a in config.arches for v in config.variants)}; "
            f"results: {config.results_dir}"
        )
        summary = pipeline.run_matrix(config, prepared, config.results_dir.name, progress)
    latest = config.results_dir.parent / "latest"
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(config.results_dir.name)
    status = summary.status()
    for cell in summary.cells:
        counts = " ".join(f"{k}={v}" for k, v in cell.tests.items() if v) or "no tests"
        progress.line(f"{cell.name}: {cell.status.label}: {counts}"
                      + (f" -- {cell.reason}" if cell.reason else ""))  # fmt: skip
    progress.line(
        f"run {status.label} (exit {status.exit_code}); see {config.results_dir}/summary.json"
    )
    return status.exit_code


def cmd_run(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=True)


def cmd_build(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=True, do_test=False)


def cmd_test(args: argparse.Namespace) -> int:
    return _matrix(args, do_build=False, do_test=True)


def cmd_boot(args: argparse.Namespace) -> int:
    """An interactive console on a built kernel (Ctrl-A X leaves QEMU)."""
    config = make_config(args, do_build=False, do_test=True)
    if len(config.arches) != 1 or len(config.variants) != 1:
        raise BadInput("boot: give exactly one --arch and one --variant")
    arch, variant = config.arches[0], config.variants[0]
    prepared = pipeline.prepare(config)
    build_dir = pipeline.build_dir_for(config.work, prepared, arch, variant)
    image = build_dir / arch.image_path
    if not image.is_file():
        raise BadInput(
            f"{image}: not built; run 'harness build --arch {arch.name} --variant {variant}'"
        )
    base = initramfs.build_base(arch, config.work.initramfs, config.work.initramfs / "build.log")
    initrd = config.work.initramfs / f"initrd-{arch.name}-interactive.cpio"
    initramfs.assemble(base, config.guest_tests, [], initrd)
    accel = "tcg" if config.accel == "auto" else config.accel
    setup = qemu.QemuSetup(
        arch=arch, kernel=image, initrd=initrd, results=initrd.with_suffix(".results"),
        selftests=initrd.with_suffix(".tap"), accel=accel,
        cmdline_extra=["harness.shell", *config.cmdline], qemu_extra=config.qemu_args,
    )  # fmt: skip
    command = qemu.qemu_command(setup)
    print(f"$ {shlex.join(command)}", file=sys.stderr)
    os.execvp(command[0], command)


def cmd_check_series(args: argparse.Namespace) -> int:
    """Every prefix of the series applies and builds; checkpatch, sign-offs, W=1 per patch."""
    config = dataclasses.replace(make_config(args, True, False), variants=["patched"])
    progress = Progress()
    with WorkDirLock(config.work.root):
        prepared = pipeline.prepare(config)
        series = checkseries.check_inputs(prepared)
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); check-series "
            f"of {series.name} ({len(series.patches)} patches) for "
            f"{', '.join(a.name for a in config.arches)}; results: {config.results_dir}"
        )
        result = checkseries.run_check_series(config, prepared, progress)
    for line in result.lines():
        print(line)
    progress.line(f"see {config.results_dir}/check-series.md and check-series.json")
    return result.status().exit_code


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
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = compare.compare_runs(args.run_a, args.run_b)
    print(compare.format_comparison(comparison))
    return comparison.exit_code


def _add_report_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report_parser = sub.add_parser("report", help="render report.html and report.md of a run")
    report_parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
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
    "boot": (cmd_boot, "interactive console on a built kernel", True, ["x86_64"]),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (handler, help_text, guest, default_arches) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        _add_matrix_options(command, default_arches)
        if guest:
            _add_guest_options(command)
        command.set_defaults(handler=handler)
    check_parser = sub.add_parser(
        "check-series",
        help="per patch: applies, builds (every prefix), checkpatch --strict, sign-off, W=1",
    )
    _add_matrix_options(check_parser, list(ARCHES), variants=False)
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
