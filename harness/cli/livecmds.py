"""`boot` (an interactive console, a live VM, a gdb stub) and `test --live`."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli import settings
from harness.cli.commandline import CommandLine
from harness.cli.options import DEFAULT_GDB_PORT
from harness.core.arches import ArchSpec
from harness.core.errors import BadInput
from harness.core.jsonfile import read_json
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.vocabulary import Accel, Variant
from harness.core.workdir import WorkDir, WorkDirLock, nothing_left_on_bad_input
from harness.run import inputs, keys
from harness.run.config import RunConfig
from harness.vm import compat, initramfs, qemu
from harness.vm.boot import ACCEL_TIME_FACTOR

if TYPE_CHECKING:  # paramiko comes with them: imported when a live command runs
    from harness.live.session import LiveOutcome
    from harness.live.state import LiveVM


def live_test(args: argparse.Namespace) -> int:
    """`test --live`: the current guest tests in the running live VMs, over SSH."""
    from harness.kernel import build
    from harness.live import session as livetest
    from harness.live import vm as live

    work = WorkDir(args.work_dir.resolve())
    if not args.guest_tests.is_dir():
        raise BadInput(f"{args.guest_tests}: no guest tests directory")
    vms = _running_vms(work, args)
    for vm in vms:
        live.check_current(vm, build.built_uts_version(Path(vm.build_dir)))
    # Timeouts and expectations as a booted run resolves them: options, then harness.toml.
    config = settings.make_config(args, do_build=False, do_test=True)
    if args.results is None:
        results = settings.new_run_dir(settings.results_root(), "live-").resolve()
    else:
        results = args.results.resolve()
        try:
            results.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise BadInput(f"--results {results}: not writable ({error.strerror})") from None
    pytest_args = list(args.pytest_arg) + (["-k", args.keyword] if args.keyword else [])
    progress = Progress(quiet=args.quiet)
    # Shared: live runs may go side by side, but not beside a run that rebuilds.
    with WorkDirLock(work.root, shared=True):
        outcomes = [_run_live_vm(vm, args, config, results, pytest_args, progress) for vm in vms]
    status = livetest.overall(outcomes)
    progress.line(f"live run {status.label} (exit {status.exit_code}); see {results}")
    return status.exit_code


def _run_live_vm(
    vm: LiveVM,
    args: argparse.Namespace,
    config: RunConfig,
    results: Path,
    pytest_args: list[str],
    progress: Progress,
) -> LiveOutcome:
    from harness.live import session as livetest

    factor = ACCEL_TIME_FACTOR[vm.accel] * config.timeout_factor
    run = livetest.LiveRun(
        vm=vm,
        guest_tests=args.guest_tests.resolve(),
        pytest_args=pytest_args,
        cell_dir=results / f"{vm.arch}-{vm.variant}",
        test_timeout=config.timeouts.test * factor,
        run_timeout=config.timeouts.run * factor,
        expectations=config.expectations,
    )
    outcome = livetest.run_live(run, progress)
    progress.line(livetest.summary_line(vm.cell, outcome))
    if outcome.status is not Status.PASS:
        progress.line(f"{vm.cell}: pytest's own output: {run.cell_dir / 'pytest.log'}")
    return outcome


def cmd_boot(args: argparse.Namespace) -> int:
    """A built kernel: an interactive console (Ctrl-A X leaves QEMU), or a live VM."""
    if args.stop:
        return _stop_live(args)
    config = settings.make_config(args, do_build=False, do_test=True)
    if len(config.platforms) != 1 or len(config.variants) != 1:
        raise BadInput("boot: give exactly one --arch, one --variant and at most one --toolchain")
    _check_boot_options(args)
    platform, variant = config.platforms[0], config.variants[0]
    arch = platform.arch
    if args.ssh and _already_live(config.work, arch.name, variant):
        return 0
    # The work-dir lock, as a run takes it: boot may unpack the tree, make the guest
    # userspace and write the live VM's state. It is let go before QEMU takes over.
    with (
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        prepared = inputs.prepare(config)
        build_dir = keys.build_dir_for(config.work, prepared, platform, variant)
        image = build_dir / arch.image_path
        if not image.is_file():
            toolchain = (
                "" if platform.toolchain.is_default else f" --toolchain {platform.toolchain}"
            )
            raise BadInput(
                f"{image}: not built; run "
                f"'harness build --arch {arch.name}{toolchain} --variant {variant}'"
            )
        accel = qemu.interactive_accel(config.accel, arch, qemu.AccelVerdicts(config.work.verdicts))
        # The guest tests' own waits stretch with --timeout-factor, as in a run.
        cmdline = [*config.cmdline, f"harness.timeout_factor={config.timeout_factor:g}"]
        gdb_port = None
        if args.gdb:
            from harness.live import vm as live

            gdb_port = args.gdb_port or live.free_port(DEFAULT_GDB_PORT)
            cmdline.append("nokaslr")  # symbols at vmlinux's addresses
            print(_gdb_hint(arch, build_dir / "vmlinux", gdb_port, args.gdb_wait), file=sys.stderr)
        if args.ssh:
            return _boot_live(
                config, arch, variant, build_dir, image, accel, cmdline, gdb_port, args.ssh_port
            )
        base = initramfs.build_base(
            arch, config.work.initramfs, config.work.initramfs / "build.log"
        )
        initrd = config.work.initramfs / f"initrd-{arch.name}-interactive.cpio"
        programs = compat.programs_layer(
            arch, config.guest_tests, config.work.initramfs, config.work.initramfs / "build.log"
        )
        initramfs.assemble(base, config.guest_tests, [], initrd, layers=(programs,))
        setup = qemu.QemuSetup(
            arch=arch,
            kernel=image,
            initrd=initrd,
            results=initrd.with_suffix(".results"),
            selftests=initrd.with_suffix(".tap"),
            accel=accel,
            cmdline_extra=["harness.shell", *cmdline],
            qemu_extra=config.qemu_args,
            gdb_port=gdb_port,
            gdb_wait=args.gdb_wait,
        )
    command = qemu.qemu_command(setup)
    print(f"$ {shlex.join(command)}", file=sys.stderr)
    os.execvp(command[0], command)


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
        + (" (the CPUs wait for gdb's 'continue')" if wait else "")
        + "; debug with:",
        f"  {shlex.join([binary, str(vmlinux), '-ex', f'target remote 127.0.0.1:{port}'])}",
    ]
    if not vmlinux.is_file():
        lines.append(f"harness: note: {vmlinux} is missing; rebuild the cell to get symbols")
    if shutil.which(binary) is None:
        lines.append(f"harness: note: {binary} is not installed: apt-get install {package}")
    return "\n".join(lines)


def _already_live(work: WorkDir, arch: str, variant: str) -> bool:
    """One live VM per cell: say where the running one is instead of starting another."""
    from harness.kernel import build
    from harness.live import state as live_state
    from harness.live import vm as live

    vm = live_state.running_vm(work, arch, variant)
    if vm is None:
        return False
    live.check_current(vm, build.built_uts_version(Path(vm.build_dir)))
    print(
        f"harness: a live VM for {vm.cell} already runs (QEMU pid {vm.pid}); log in with: "
        f"{live.login_hint(vm)}",
        file=sys.stderr,
    )
    return True


def _boot_live(
    config: RunConfig,
    arch: ArchSpec,
    variant: Variant,
    build_dir: Path,
    image: Path,
    accel: Accel,
    cmdline: list[str],
    gdb_port: int | None,
    ssh_port: int | None,
) -> int:
    from harness.kernel import build
    from harness.live import vm as live

    factor = ACCEL_TIME_FACTOR[accel] * config.timeout_factor
    spec = live.LiveBoot(
        arch=arch,
        variant=variant,
        work=config.work,
        kernel=image,
        build_dir=build_dir,
        build_key=read_json(build_dir / keys.BUILD_STAMP).get("key"),
        uts_version=build.built_uts_version(build_dir),
        accel=accel,
        guest_tests=config.guest_tests.resolve(),
        boot_timeout=config.timeouts.boot * factor,
        ssh_port=ssh_port,
        gdb_port=gdb_port,
        cmdline=tuple(cmdline),
        qemu_args=tuple(config.qemu_args),
    )
    progress = Progress()
    vm = live.boot(spec, progress.line)
    progress.line(
        f"{vm.cell}: live VM up, SSH answered after {time.time() - vm.started:.1f} s "
        f"(console: {vm.console_log}); log in with:"
    )
    print(live.login_hint(vm), flush=True)
    progress.line(
        f"run the guest tests there with 'harness test --live --arch {arch.name} --variant "
        f"{variant} [-k EXPR]'; stop it with 'harness boot --stop --arch {arch.name} "
        f"--variant {variant}'"
    )
    return 0


def _running_vms(work: WorkDir, args: argparse.Namespace) -> list[LiveVM]:
    """The live VMs of the cells --arch and --variant name (argparse checked the names),
    or of every cell when they name none; BadInput when there is none."""
    from harness.live import state as live_state

    line = CommandLine.of(args)
    arches = [arch.name for arch in line.arches] if line.arches else None
    vms = live_state.running_vms(work, arches, line.variants)
    if not vms:
        arch = arches[0] if arches else None
        raise live_state.no_vm_error(arch, line.variants[0] if line.variants else None)
    return vms


def _stop_live(args: argparse.Namespace) -> int:
    """`boot --stop`: the live VMs of the cells given, or every one when none is given."""
    from harness.live import vm as live

    vms = _running_vms(WorkDir(args.work_dir.resolve()), args)
    for vm in vms:
        live.stop(vm)
        print(f"harness: stopped the live VM {vm.cell} (QEMU pid {vm.pid})", file=sys.stderr)
    return 0
