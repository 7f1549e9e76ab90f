from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.arches import ARCHES, get_arch
from harness.core.errors import BadInput
from harness.core.vocabulary import Accel
from harness.vm import qemu


def test_every_arch_has_a_fragment_and_distinct_console() -> None:
    configs = Path(__file__).parent.parent / "kernel-configs"
    for arch in ARCHES.values():
        assert (configs / f"{arch.name}.config").is_file()
    assert len({arch.console for arch in ARCHES.values()}) == len(ARCHES)


def test_unknown_arch_is_bad_input() -> None:
    with pytest.raises(BadInput, match=r"--arch riscv: unknown architecture; choose one of"):
        get_arch("riscv")


@pytest.mark.parametrize("name", sorted(ARCHES))
def test_qemu_command_carries_the_arch_data(name: str, tmp_path: Path) -> None:
    arch = get_arch(name)
    setup = qemu.QemuSetup(
        arch=arch, kernel=tmp_path / "k", initrd=tmp_path / "i", results=tmp_path / "r",
        selftests=tmp_path / "s",
        accel=Accel.TCG, cmdline_extra=["quiet"], qemu_extra=["-s"],
    )  # fmt: skip
    command = qemu.qemu_command(setup)
    assert command[0] == arch.qemu_binary
    assert command[command.index("-M") + 1] == arch.qemu_machine
    # Without ACPI, x86_64 finds its CPUs in an MP table of one CPU per package.
    smp = "2,sockets=2" if arch.socket_per_cpu else "2"
    assert command[command.index("-smp") + 1] == smp
    assert "-no-reboot" in command
    append = command[command.index("-append") + 1]
    assert append.startswith(f"console={arch.console} panic=-1")
    assert append.endswith("quiet")
    assert command[-3:-1] == ["-nic", "none"]
    assert command[-1] == "-s"
    assert any(part.startswith(arch.virtio_serial_device) for part in command)


def test_kvm_is_never_tried_for_a_foreign_arch(tmp_path: Path) -> None:
    verdicts = qemu.AccelVerdicts(tmp_path / "v.json")
    foreign = next(a for a in ARCHES.values() if not a.native)
    assert qemu.accel_candidates(Accel.AUTO, foreign, verdicts) == ["tcg"]
    assert qemu.accel_candidates(Accel.KVM, foreign, verdicts) == ["kvm"]


def test_a_broken_kvm_verdict_is_remembered(tmp_path: Path) -> None:
    verdicts = qemu.AccelVerdicts(tmp_path / "v.json")
    native = next((a for a in ARCHES.values() if a.native), None)
    if native is None:
        pytest.skip("no arch of the table is native to this host")
    verdicts.record(native, "broken")
    assert qemu.AccelVerdicts(tmp_path / "v.json").get(native) == "broken"
    assert qemu.accel_candidates(Accel.AUTO, native, verdicts) == ["tcg"]


@pytest.mark.parametrize("name", sorted(ARCHES))
def test_live_vm_command_forwards_ssh_on_loopback_only_and_runs_in_the_background(
    name: str, tmp_path: Path
) -> None:
    arch = get_arch(name)
    setup = qemu.QemuSetup(
        arch=arch, kernel=tmp_path / "k", initrd=tmp_path / "i", results=tmp_path / "r",
        selftests=tmp_path / "s", accel=Accel.TCG, ssh_port=40022, gdb_port=1234,
        console_log=tmp_path / "console.log", daemon_pidfile=tmp_path / "qemu.pid",
    )  # fmt: skip
    command = qemu.qemu_command(setup)
    nic = command[command.index("-nic") + 1]
    assert nic == (f"user,model={arch.nic_device},restrict=on,hostfwd=tcp:127.0.0.1:40022-:22")
    assert command[command.index("-serial") + 1] == f"file:{tmp_path / 'console.log'}"
    assert command[command.index("-gdb") + 1] == "tcp:127.0.0.1:1234"
    assert "-S" not in command
    assert command[command.index("-daemonize") :][:3] == [
        "-daemonize", "-pidfile", str(tmp_path / "qemu.pid"),
    ]  # fmt: skip


def test_gdb_wait_stops_the_cpus_and_the_console_stays_interactive(tmp_path: Path) -> None:
    arch = get_arch("arm64")
    setup = qemu.QemuSetup(
        arch=arch, kernel=tmp_path / "k", initrd=tmp_path / "i", results=tmp_path / "r",
        selftests=tmp_path / "s", accel=Accel.TCG, gdb_port=4321, gdb_wait=True,
    )  # fmt: skip
    command = qemu.qemu_command(setup)
    assert command[command.index("-gdb") + 1 :][:2] == ["tcp:127.0.0.1:4321", "-S"]
    assert command[command.index("-serial") + 1] == "mon:stdio"
    assert "-daemonize" not in command


def test_the_debugger_is_gdb_multiarch_for_a_foreign_arch() -> None:
    for arch in ARCHES.values():
        assert arch.gdb == (("gdb", "gdb") if arch.native else ("gdb-multiarch", "gdb-multiarch"))


def test_an_unprobed_guest_uses_kvm_only_where_it_worked(tmp_path: Path) -> None:
    verdicts = qemu.AccelVerdicts(tmp_path / "v.json")
    foreign = next(a for a in ARCHES.values() if not a.native)
    assert qemu.interactive_accel(Accel.AUTO, foreign, verdicts) == "tcg"
    assert qemu.interactive_accel(Accel.KVM, foreign, verdicts) == "kvm"
    native = next((a for a in ARCHES.values() if a.native), None)
    if native is None:
        return
    assert qemu.interactive_accel(Accel.AUTO, native, verdicts) == "tcg"  # no verdict yet
    verdicts.record(native, "broken")
    assert qemu.interactive_accel(Accel.AUTO, native, verdicts) == "tcg"
