"""The `harness` command: subcommands dispatched from one table; only this module
picks exit codes (see the README's table)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from harness.cli import bisectcmd, doctor, settings
from harness.cli.commandline import CommandLine
from harness.cli.livecmds import cmd_boot
from harness.cli.matrixcmds import cmd_build, cmd_check_series, cmd_run, cmd_test
from harness.cli.options import (
    Parser,
    add_boot_options,
    add_guest_options,
    add_kcidb_origin_option,
    add_matrix_options,
    add_test_options,
)
from harness.core.arches import ARCHES
from harness.core.errors import BadInput, HarnessError, StageFailure
from harness.core.status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Status
from harness.core.workdir import check_directory_option
from harness.results import compare, kcidb, ktap, merge, report
from harness.run import matrixfile


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
    if args.merge:
        return cmd_merge(args)
    if len(args.run_dirs) != 1 or args.results is not None:
        raise BadInput(
            "report: one RUN_DIR renders that run's report; several RUN_DIRs and --results "
            "go with --merge (harness report --merge RUN_DIR... [--results DIR])"
        )
    args.run_dir = args.run_dirs[0]
    for path in report.write_reports(args.run_dir):
        print(path)
    if args.ktap:
        print(ktap.write_ktap(args.run_dir))
    if args.kcidb:
        print(kcidb.write_kcidb(args.run_dir, settings.kcidb_origin(args)))
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    """Run directories of cells run apart as one run; the exit code that run would have."""
    runs = merge.load_mergeable(args.run_dirs)
    destination = _merge_destination(args.results, args.run_dirs)
    if destination is None:
        destination = settings.new_run_dir(settings.results_root())
    args.run_dir = destination  # where a bug's traceback goes (see main)
    merged = merge.write_merged(runs, destination)
    for path in merged.written:
        print(path)
    if args.kcidb:
        print(kcidb.write_kcidb(destination, settings.kcidb_origin(args)))
    summary = merged.summary
    for cell in summary.cells:
        reason = f" -- {cell.reason}" if cell.reason else ""
        print(f"{cell.name}: {cell.status_label}{reason}")
    departures = len(summary.facts["departures"])
    stale = len(summary.facts["stale_expectations"])
    print(
        f"{departures} departure(s), {stale} stale expectation(s); "
        f"run {summary.status_label} (exit {summary.exit_code})"
    )
    return summary.exit_code


def _merge_destination(given: Path | None, run_dirs: list[Path]) -> Path | None:
    """--results DIR checked: new or empty, and not inside a run being merged. None
    without it: the merge gets a run directory of its own in the results root."""
    if given is None:
        return None
    destination = given.resolve()
    check_directory_option("--results", destination, kbuild=False)
    if destination.is_dir() and any(destination.iterdir()):
        raise BadInput(
            f"--results {given}: not empty; a merge writes a run directory of its own, "
            "give a new or empty one"
        )
    for run_dir in run_dirs:
        if destination.is_relative_to(run_dir.resolve()):
            raise BadInput(
                f"--results {given}: inside {run_dir}, a run being merged; "
                "give a directory outside it"
            )
    return destination


def cmd_compare(args: argparse.Namespace) -> int:
    comparison = compare.compare_runs(args.run_a, args.run_b)
    print(compare.format_comparison(comparison))
    return comparison.exit_code


def _add_report_commands(sub: argparse._SubParsersAction[Parser]) -> None:
    report_parser = sub.add_parser(
        "report",
        help="render report.html and report.md of a run; --merge: runs of cells run apart "
        "as one run",
    )
    report_parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    report_parser.add_argument(
        "--ktap", action="store_true", help=f"also write {ktap.KTAP_NAME} (KTAP version 1)"
    )
    report_parser.add_argument(
        "--merge",
        action="store_true",
        help="combine the RUN_DIRs (one source, series and harness version; each cell in "
        "one of them) into a new run directory: summary.json with the differences, "
        f"departures and stale entries, the reports and {ktap.KTAP_NAME}, as if one run "
        "had made them; exits as that run would",
    )
    report_parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="with --merge: the new run directory (default: results/<run id>)",
    )
    report_parser.add_argument(
        "--kcidb",
        action="store_true",
        help=f"also write {kcidb.KCIDB_NAME} (KernelCI's KCIDB I/O schema)",
    )
    add_kcidb_origin_option(report_parser)
    report_parser.add_argument(
        "--matrix",
        type=Path,
        metavar="FILE",
        help=f"the matrix file whose kcidb-origin applies (default: "
        f"{settings.project_root() / matrixfile.DEFAULT_NAME}, when it exists)",
    )
    report_parser.set_defaults(handler=cmd_report)
    compare_parser = sub.add_parser(
        "compare", help="what changed between two runs, regressions first (exit 1 if any)"
    )
    compare_parser.add_argument("run_a", type=Path, metavar="RUN_A")
    compare_parser.add_argument("run_b", type=Path, metavar="RUN_B")
    compare_parser.set_defaults(handler=cmd_compare)


DESCRIPTION = """\
Does a kernel patch series still build, boot and behave? For every cell of
the matrix arch (x86_64, arm64) x variant (baseline: no patches; patched: the
series), and toolchain (gcc; clang with --toolchain clang) when asked, the
harness patches a kernel tree, merges the config fragments,
builds, boots the kernel in QEMU and runs the guest tests (pytest) and the
kernel's own selftests (seccomp, ptrace) inside it, then reports JUnit,
summary.json and report.html. The worst cell decides the exit code."""

EPILOG = """\
common commands:
  harness run --arch x86_64            build, boot and test baseline and patched
  harness check-series --arch x86_64   per patch: applies, builds, checkpatch, W=1
  harness bisect --arch x86_64         the first patch at which the cell departs
  harness boot --ssh --arch x86_64 --variant patched; harness test --live -k NAME
  harness compare RUN_A RUN_B          what changed between two runs
  harness report --merge RUN_DIR...    cells run apart (one CI job each) as one run

'harness COMMAND --help' lists a command's options; harness.toml holds the
default matrix. README.md explains the matrix file, expectations, live VMs
and every exit code (0 pass, 1 a test failed, 2 bad input, 3-11 the stage
or kernel report that failed, 130 interrupted)."""


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


EXTRA_OPTIONS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "boot": add_boot_options,
    "test": add_test_options,
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="harness",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every command run")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (handler, help_text, guest, default_arches) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        add_matrix_options(command, default_arches)
        if guest:
            add_guest_options(command)
        if name in EXTRA_OPTIONS:
            EXTRA_OPTIONS[name](command)
        command.set_defaults(handler=handler)
    check_parser = sub.add_parser(
        "check-series",
        help="per patch: applies, builds (every prefix), checkpatch --strict, sign-off, W=1",
    )
    add_matrix_options(check_parser, list(ARCHES), variants=False)
    check_parser.add_argument(
        "--boot",
        action="store_true",
        help="also boot every prefix that builds in QEMU and run the guest tests, judged by "
        "the expectations: the base by its baseline entries, each prefix by both (a test "
        "may stand where baseline or patched puts it, never fail); "
        "the guest options below apply only with --boot",
    )
    add_guest_options(check_parser, ktap_option=False)
    check_parser.set_defaults(handler=cmd_check_series)
    bisectcmd.add_parser(sub)
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
    try:
        args = build_parser().parse_args(argv)
    except BadInput as error:  # an --arch, --variant or --toolchain this harness does not know
        return _bad_input(error)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s"
    )
    # A closed terminal (SIGHUP) stops a run as Ctrl-C and SIGTERM do: children stopped,
    # exit 130.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    try:
        return int(args.handler(args))
    except BadInput as error:
        return _bad_input(error)
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


def _bad_input(error: BadInput) -> int:
    print(f"harness: error: {error}", file=sys.stderr)
    return EXIT_BAD_INPUT


ERROR_FILE = "harness-error.txt"


def _report_bug(args: argparse.Namespace, error: Exception) -> int:
    """One line naming the error and the file that keeps its traceback: the run dir's
    harness-error.txt, or the results root's when there is no run dir yet."""
    line = CommandLine.of(args)
    run_dir, given = line.run_dir, line.results
    if run_dir is None or not run_dir.is_dir():
        if run_dir is not None:
            directory = run_dir.parent
        elif given is not None:
            directory = given.resolve().parent
        else:
            directory = settings.project_root() / "results"
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
    print(
        f"harness: infra: {type(error).__name__}{': ' if message else ''}{message} "
        f"(a bug of the harness; traceback in {saved})",
        file=sys.stderr,
    )
    return Status.INFRA.exit_code
