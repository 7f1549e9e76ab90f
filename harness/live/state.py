"""A live VM's state in the work dir (live/<arch>-<variant>/state.json): which VMs
run, and where."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.core.errors import BadInput
from harness.core.jsonfile import read_json, write_json
from harness.core.vocabulary import Accel, Variant
from harness.core.workdir import WorkDir


@dataclass(frozen=True)
class LiveVM:
    """What state.json records about a running live VM."""

    arch: str
    variant: Variant
    pid: int
    ssh_port: int
    directory: str  # the cell's live dir: console.log, pidfile, initrd, manifest
    client_key: str  # private key for `ssh -i`
    known_hosts: str
    kernel: str  # the booted image
    build_dir: str
    build_key: str | None  # the build's key (.harness-build.json), None for a foreign build
    uts_version: str | None  # `uname -v` of the build when the VM booted
    accel: Accel  # what it runs under, KVM or TCG
    guest_tests: str  # the tests dir the VM was booted with
    started: float  # time.time() at QEMU's start
    gdb_port: int | None = None

    @property
    def cell(self) -> str:
        return f"{self.arch}/{self.variant}"

    @property
    def console_log(self) -> Path:
        return Path(self.directory) / "console.log"

    @property
    def pidfile(self) -> Path:
        return Path(self.directory) / "qemu.pid"

    def ssh_command(self) -> list[str]:
        return [
            "ssh",
            "-i",
            self.client_key,
            "-p",
            str(self.ssh_port),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "root@127.0.0.1",
        ]


def cell_dir(work: WorkDir, arch: str, variant: str) -> Path:
    return work.live / f"{arch}-{variant}"


def read_state(directory: Path) -> LiveVM | None:
    data = read_json(directory / STATE)
    if not data:
        return None
    try:
        return LiveVM(
            **{
                **data,
                "variant": Variant(str(data.get("variant"))),
                "accel": Accel(str(data.get("accel"))),
            }
        )
    except (TypeError, ValueError):  # a state file of another harness version
        return None


def write_state(vm: LiveVM) -> None:
    write_json(Path(vm.directory) / STATE, asdict(vm))


def is_running(vm: LiveVM) -> bool:
    """Whether vm.pid is still this VM's QEMU (not a dead one, nor a reused pid)."""
    try:
        cmdline = Path(f"/proc/{vm.pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(vm.pidfile).encode() in cmdline.split(b"\0")


def running_vm(work: WorkDir, arch: str, variant: str) -> LiveVM | None:
    """The cell's live VM if it runs; a state file left by a dead one is removed."""
    directory = cell_dir(work, arch, variant)
    vm = read_state(directory)
    if vm is None:
        return None
    if is_running(vm):
        return vm
    (directory / STATE).unlink(missing_ok=True)
    return None


def running_vms(
    work: WorkDir, arches: Sequence[str] | None = None, variants: Sequence[str] | None = None
) -> list[LiveVM]:
    """The live VMs running from `work`, of the arches and variants given (default: all)."""
    found = []
    for state in sorted(work.live.glob(f"*/{STATE}")) if work.live.is_dir() else []:
        vm = read_state(state.parent)
        if vm is None or (arches and vm.arch not in arches):
            continue
        if variants and vm.variant not in variants:
            continue
        if (vm := running_vm(work, vm.arch, vm.variant)) is not None:
            found.append(vm)
    return found


def no_vm_error(arch: str | None, variant: str | None) -> BadInput:
    """No live VM of the cell asked for (or of any cell, when none was named)."""
    wanted = "" if arch is None and variant is None else f" for {arch or '*'}/{variant or '*'}"
    return BadInput(
        f"no live VM{wanted}; start one with "
        f"'harness boot --ssh --arch {arch or 'x86_64'} --variant {variant or 'patched'}'"
    )


STATE = "state.json"
