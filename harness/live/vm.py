"""A live VM: one cell's kernel kept running in the background with an SSH server.

`harness boot --ssh` starts it and returns once SSH answers; its state file
(work dir `live/<arch>-<variant>/state.json`) tells later commands where it
is; `harness test --live` runs the guest tests in it over SSH; `harness boot
--stop` ends it. The guest's network is QEMU's user networking, reached only
through port 22 forwarded to 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko

from harness.core.arches import ArchSpec
from harness.core.errors import BadInput, InfraError, StageFailure
from harness.core.jsonfile import write_json
from harness.core.status import Status
from harness.core.vocabulary import Accel, Variant
from harness.core.workdir import WorkDir
from harness.live import keys as sshkeys
from harness.live import sync as livesync
from harness.live.state import STATE, LiveVM, cell_dir, is_running, write_state
from harness.verdict.cell import GuestEvidence, decide_boot
from harness.vm import compat, initramfs, qemu
from harness.vm.boot import PANIC, USERSPACE_UP, BootEnd
from harness.vm.records import GuestRun

# QEMU's user networking: the guest's address and its gateway (the host).
GUEST_ADDRESS = "10.0.2.15/24"
GATEWAY = "10.0.2.2"
# The guest's pytest server (guest/pytest_zygote.py), on the guest's own loopback.
PYTEST_PORT = 7357
SYNCED = "synced.json"  # the manifest of what the guest was last given
SSH_UP = re.compile(r"HARNESS: live: sshd exit status (?P<status>\d+)")
PYTEST_UP = re.compile(r"HARNESS: live: pytest ready")


class BootFailed(StageFailure):
    """The live VM did not come up; `status` says how (boot timeout, panic, ...)."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


def free_port(preferred: int | None = None) -> int:
    """`preferred` if nothing listens there on 127.0.0.1, else a port the kernel picks."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", preferred or 0))
        except OSError:
            probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def live_cmdline(arch: ArchSpec) -> str:
    """The kernel parameter telling the guest's init to be a live VM (see guest/init)."""
    return f"harness.live={arch.guest_nic},{GUEST_ADDRESS},{GATEWAY},{PYTEST_PORT}"


def connect(vm: LiveVM, timeout: float = 10.0) -> paramiko.SSHClient:
    """An SSH connection to the VM as root, its host key checked against ours."""
    client = paramiko.SSHClient()
    client.load_host_keys(vm.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=vm.ssh_port,
        username="root",
        key_filename=vm.client_key,
        allow_agent=False,
        look_for_keys=False,
        timeout=timeout,
        banner_timeout=timeout,
        auth_timeout=timeout,
    )
    return client


def _console(vm: LiveVM) -> str:
    try:
        return vm.console_log.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_until_ready(vm: LiveVM, timeout: float, expected_uts: str | None) -> float:
    """Wait for SSH to answer and the guest's pytest to be ready; the seconds it took.
    Raises BootFailed, stopping nothing; the verdict (verdict/cell.py) names the status."""
    deadline = time.monotonic() + timeout
    booted: str | None = None  # `uname -v` once userspace is up

    def failed(end: BootEnd, detail: str) -> BootFailed:
        evidence = GuestEvidence(
            end=end,
            guest=GuestRun(),
            console=_console(vm),
            detail=detail,
            reached_userspace=booted is not None,
            booted_version=booted or "",
            built_version=expected_uts,
        )
        verdict = decide_boot(evidence)
        return BootFailed(verdict.status, f"{verdict.reason}; see {vm.console_log}")

    while True:
        console = _console(vm)
        if PANIC.search(console):
            raise failed(BootEnd.PANIC, "kernel panic")
        if booted is None and (match := USERSPACE_UP.search(console)):
            booted = match["version"].strip()
            if expected_uts and booted != expected_uts:
                raise failed(BootEnd.COMPLETED, "the guest ran another kernel")
        if not is_running(vm):
            raise failed(BootEnd.QEMU_EXITED, "QEMU exited during boot")
        if (ssh := SSH_UP.search(console)) and ssh["status"] != "0":
            # The live VM's own transport, not the kernel: nothing for the verdict.
            raise BootFailed(Status.INFRA, f"dropbear did not start; see {vm.console_log}")
        if ssh and PYTEST_UP.search(console):
            try:
                connect(vm, timeout=5.0).close()
            except (OSError, paramiko.SSHException):
                pass  # the port is forwarded before dropbear listens
            else:
                # test --live judges only its own run's console: a kernel report
                # printed while the VM came up counts here or nowhere.
                if (ready := failed(BootEnd.COMPLETED, "")).status is not Status.PASS:
                    raise ready
                return time.time() - vm.started
        if time.monotonic() > deadline:
            where = (
                "no userspace"
                if booted is None
                else "no SSH"
                if not ssh
                else "no pytest server in the guest"
            )
            raise failed(BootEnd.BOOT_TIMEOUT, f"{where} after {timeout:.0f} s")
        time.sleep(0.2)


def start_qemu(setup: qemu.QemuSetup, log: Path) -> int:
    """QEMU daemonized; its pid. Raises InfraError with QEMU's own message."""
    assert setup.daemon_pidfile is not None
    setup.daemon_pidfile.unlink(missing_ok=True)
    command = qemu.qemu_command(setup)
    qemu.write_reproducer(command, log.with_name("qemu.sh"))
    # The parent QEMU exits once the daemon is set up; the daemon inherits no
    # descriptor of ours but the ones it closes (so no lock of the caller's).
    completed = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if completed.returncode != 0:
        raise InfraError(f"QEMU did not start: {completed.stderr.strip()[-500:]}")
    return int(setup.daemon_pidfile.read_text().strip())


def stop(vm: LiveVM, grace: float = 10.0) -> None:
    """End the VM's QEMU (SIGTERM, then SIGKILL) and remove its state."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not is_running(vm):
            break
        try:
            os.kill(vm.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while is_running(vm) and time.monotonic() < deadline:
            time.sleep(0.1)
    if is_running(vm):
        raise InfraError(f"QEMU (pid {vm.pid}) of the live VM {vm.cell} did not stop")
    directory = Path(vm.directory)
    for name in (STATE, SYNCED, "qemu.pid", "initrd.cpio", "known_hosts"):
        (directory / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class LiveBoot:
    """Everything `boot --ssh` needs beyond the QEMU setup it makes."""

    arch: ArchSpec
    variant: Variant
    work: WorkDir
    kernel: Path
    build_dir: Path
    build_key: str | None
    uts_version: str | None
    accel: Accel
    guest_tests: Path
    boot_timeout: float  # already scaled for the accelerator
    ssh_port: int | None = None  # None: the harness picks a free one
    gdb_port: int | None = None
    cmdline: tuple[str, ...] = ()
    qemu_args: tuple[str, ...] = ()


def boot(spec: LiveBoot, announce: Callable[[str], None]) -> LiveVM:
    """Start the cell's live VM and wait for SSH; on any failure no QEMU is left."""
    directory = cell_dir(spec.work, spec.arch.name, spec.variant)
    directory.mkdir(parents=True, exist_ok=True)
    # Its initrd carries the guest's SSH host key: keep the whole cell dir private.
    directory.chmod(0o700)
    keys = sshkeys.ensure_keys(spec.work.live / "keys")
    base = initramfs.build_base(spec.arch, spec.work.initramfs, directory / "initramfs.log")
    overlay = initramfs.build_live_overlay(
        spec.arch, base, spec.work.initramfs, directory / "initramfs.log"
    )
    live_config = directory / "live-config.cpio"
    initramfs.write_live_config_cpio(
        keys.authorized_key, sshkeys.dropbear_private_key(keys.host_key), live_config
    )
    initrd = directory / "initrd.cpio"
    programs = compat.programs_layer(
        spec.arch, spec.guest_tests, spec.work.initramfs, directory / "initramfs.log"
    )
    initramfs.assemble(base, spec.guest_tests, [], initrd, layers=(programs, overlay, live_config))
    live_config.unlink()
    for attempt in range(3):
        port = spec.ssh_port or free_port()
        setup = qemu.QemuSetup(
            arch=spec.arch,
            kernel=spec.kernel,
            initrd=initrd,
            results=directory / "results.port",
            selftests=directory / "selftests.port",
            accel=spec.accel,
            cmdline_extra=[live_cmdline(spec.arch), *spec.cmdline],
            qemu_extra=list(spec.qemu_args),
            ssh_port=port,
            gdb_port=spec.gdb_port,
            console_log=directory / "console.log",
            daemon_pidfile=directory / "qemu.pid",
        )
        known_hosts = directory / "known_hosts"
        known_hosts.write_text(keys.known_hosts_line(port) + "\n")
        started = time.time()
        try:
            pid = start_qemu(setup, directory / "console.log")
            break
        except InfraError as error:
            # Another process took the port between our probe and QEMU's bind.
            if spec.ssh_port is not None or attempt == 2 or "forwarding rule" not in str(error):
                raise
    vm = LiveVM(
        arch=spec.arch.name,
        variant=spec.variant,
        pid=pid,
        ssh_port=port,
        directory=str(directory),
        client_key=str(keys.client_key_path),
        known_hosts=str(known_hosts),
        kernel=str(spec.kernel),
        build_dir=str(spec.build_dir),
        build_key=spec.build_key,
        uts_version=spec.uts_version,
        accel=spec.accel,
        guest_tests=str(spec.guest_tests),
        started=started,
        gdb_port=spec.gdb_port,
    )
    # Written at once, so that a harness killed while waiting leaves a VM that
    # `boot --stop` still finds.
    write_state(vm)
    write_json(directory / SYNCED, livesync.manifest_of(livesync.guest_files(spec.guest_tests)))
    announce(f"{vm.cell}: live VM starting (QEMU pid {pid}, {spec.accel}); waiting for SSH ...")
    try:
        wait_until_ready(vm, spec.boot_timeout, spec.uts_version)
    except BaseException:
        stop(vm)
        raise
    return vm


def describe(vm: LiveVM) -> str:
    return f"{vm.cell} (QEMU pid {vm.pid}, SSH on 127.0.0.1:{vm.ssh_port})"


def login_hint(vm: LiveVM) -> str:
    return shlex.join(vm.ssh_command())


def check_current(vm: LiveVM, uts_version: str | None) -> None:
    """Refuse a VM that runs an older build of its cell than the build dir now holds."""
    if vm.uts_version and uts_version and uts_version != vm.uts_version:
        raise BadInput(
            f"the live VM for {vm.cell} runs an older build of its kernel; restart it with "
            f"'harness boot --stop --arch {vm.arch} --variant {vm.variant}' and "
            f"'harness boot --ssh --arch {vm.arch} --variant {vm.variant}'"
        )
