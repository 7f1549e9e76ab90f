"""The QEMU command line for a cell, and which accelerator works on this host."""

from __future__ import annotations

import os
import shlex
import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.jsonfile import read_json, write_json
from harness.core.process import capture
from harness.core.vocabulary import Accel

RESULTS_PORT = "harness.results"
SELFTESTS_PORT = "harness.selftests"
ACCELS = tuple(Accel)
# The CPU model per accelerator: every feature TCG can emulate, or the host's own.
CPU_MODEL = {Accel.TCG: "max", Accel.KVM: "host"}


@dataclass(frozen=True)
class QemuSetup:
    arch: ArchSpec
    kernel: Path
    initrd: Path
    results: Path  # host file receiving the guest's result records
    selftests: Path  # host file receiving the upstream selftests' TAP
    accel: Accel  # what the guest runs under: KVM or TCG, never AUTO
    cmdline_extra: list[str] = field(default_factory=list)
    qemu_extra: list[str] = field(default_factory=list)
    memory: str = "1G"
    cpus: int = 2
    # User networking with the guest's port 22 forwarded to 127.0.0.1:ssh_port (the live VM).
    ssh_port: int | None = None
    gdb_port: int | None = None  # QEMU's gdb stub on 127.0.0.1:gdb_port
    gdb_wait: bool = False  # the CPUs start stopped, until gdb says continue
    console_log: Path | None = None  # the console to this file instead of stdio
    daemon_pidfile: Path | None = None  # QEMU goes to the background and writes its pid here


def kernel_cmdline(setup: QemuSetup) -> str:
    # panic=-1 reboots at once on panic, and -no-reboot turns that into a QEMU exit.
    # watchdog_thresh=30: a soft lockup is a CPU held for 60 s, not the default
    # 20 s that a TCG vCPU on a busy host can miss without any kernel bug.
    base = [f"console={setup.arch.console}", "panic=-1", "rdinit=/init", "watchdog_thresh=30"]
    return " ".join(base + setup.cmdline_extra)


def qemu_command(setup: QemuSetup) -> list[str]:
    arch = setup.arch
    command = [
        arch.qemu_binary,
        "-M",
        arch.qemu_machine,
        "-accel",
        setup.accel,
        "-cpu",
        CPU_MODEL[setup.accel],
        "-m",
        setup.memory,
        "-smp",
        f"{setup.cpus},sockets={setup.cpus}" if arch.socket_per_cpu else str(setup.cpus),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        f"file:{setup.console_log}" if setup.console_log else "mon:stdio",
        "-kernel",
        str(setup.kernel),
        "-initrd",
        str(setup.initrd),
        "-append",
        kernel_cmdline(setup),
        "-device",
        f"{arch.virtio_serial_device},id=harness-serial",
    ]
    ports = ((RESULTS_PORT, setup.results), (SELFTESTS_PORT, setup.selftests))
    for number, (name, path) in enumerate(ports):
        chardev = f"harness-port{number}"
        command += [
            "-chardev",
            f"file,id={chardev},path={path}",
            "-device",
            f"virtserialport,bus=harness-serial.0,chardev={chardev},name={name}",
        ]
    command += ["-nic", user_network(setup)]
    if setup.gdb_port is not None:
        command += ["-gdb", f"tcp:127.0.0.1:{setup.gdb_port}"]
        if setup.gdb_wait:
            command.append("-S")
    if setup.daemon_pidfile is not None:
        command += ["-daemonize", "-pidfile", str(setup.daemon_pidfile)]
    return command + setup.qemu_extra


def user_network(setup: QemuSetup) -> str:
    """-nic: none, or user networking that only the forwarded SSH port reaches.

    restrict=on keeps the guest off the host's network and the outside;
    the forwarding rule is bound to 127.0.0.1, so only this host can log in.
    """
    if setup.ssh_port is None:
        return "none"
    return (
        f"user,model={setup.arch.nic_device},restrict=on,hostfwd=tcp:127.0.0.1:{setup.ssh_port}-:22"
    )


def kvm_usable(arch: ArchSpec) -> bool:
    """KVM can run this arch's guests here at all: the host's own arch, /dev/kvm ours."""
    return arch.native and os.access("/dev/kvm", os.R_OK | os.W_OK)


def interactive_accel(requested: Accel, arch: ArchSpec, verdicts: AccelVerdicts) -> Accel:
    """The accelerator of a guest that is not probed: KVM only where it has worked here."""
    if requested is not Accel.AUTO:
        return requested
    return Accel.KVM if kvm_usable(arch) and verdicts.get(arch) == "works" else Accel.TCG


def write_reproducer(command: list[str], path: Path) -> None:
    """A script that boots the cell again exactly as the harness did."""
    path.write_text(
        "#!/bin/sh\n"
        "# Boots this cell again as the harness did (the initrd is the run's own copy\n"
        "# only until the next run of the same arch rewrites it).\n"
        f"exec {shlex.join(command)}\n"
    )
    path.chmod(0o755)


def qemu_version(binary: str) -> str:
    first = capture([binary, "--version"]).splitlines()
    return first[0] if first else "unknown"


class AccelVerdicts:
    """Per host: whether KVM guests of an arch print anything, so later boots need not wait."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        return read_json(self.path)

    @staticmethod
    def key(arch: ArchSpec) -> str:
        return f"{arch.name} {os.uname().release} {qemu_version(arch.qemu_binary)}"

    def get(self, arch: ArchSpec) -> str | None:
        return self._load().get(self.key(arch))

    # Cells probe side by side: one read-modify-write at a time.
    _lock = threading.Lock()

    def record(self, arch: ArchSpec, verdict: str) -> None:
        with self._lock:
            data = self._load()
            data[self.key(arch)] = verdict
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json(self.path, data)


def accel_candidates(requested: Accel, arch: ArchSpec, verdicts: AccelVerdicts) -> list[Accel]:
    """Accelerators to try in order: KVM only where it can work and has not failed here."""
    if requested is not Accel.AUTO:
        return [requested]
    if kvm_usable(arch) and verdicts.get(arch) != "broken":
        return [Accel.KVM, Accel.TCG]
    return [Accel.TCG]
