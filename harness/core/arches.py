"""Everything that differs between target architectures, as one table of data."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from harness.core.errors import BadInput


@dataclass(frozen=True)
class CompatUserland:
    """An arch's 32-bit user mode, which its kernel runs with a compat option:
    the guest tests' 32-bit tracees are built for it (harness/vm/compat.py)."""

    name: str  # as the kernel's documentation calls it
    kernel_option: str  # the Kconfig option that runs it (set in kernel-configs/<arch>.config)
    compiler: str  # gcc making static programs for it
    packages: tuple[str, ...]  # Debian packages providing that gcc and its static libc
    flags: tuple[str, ...]  # for every program, after -static -O2 -s


@dataclass(frozen=True)
class ArchSpec:
    name: str  # the harness's name, also the kernel-configs/<name>.config fragment
    linux_arch: str  # ARCH= for make
    cross_compile: str  # CROSS_COMPILE= prefix; empty when native on an x86_64 host
    cross_package: str  # Debian package providing the cross compiler
    image_target: str  # make target building the boot image
    image_path: str  # path of the image relative to the build dir
    debian_arch: str  # architecture name for Debian packages (initramfs)
    qemu_binary: str
    qemu_package: str
    qemu_machine: str  # -M
    # Each CPU a socket of its own (-smp N,sockets=N): an x86 guest without ACPI
    # counts CPUs from SeaBIOS's MP table, which lists one CPU per package.
    socket_per_cpu: bool
    kvm_host_machine: str  # platform.machine() on which KVM can run this arch
    console: str  # serial console device for console=
    python_machine: str  # platform.machine() as seen inside the guest
    virtio_serial_device: str  # QEMU device carrying the results port
    nic_device: str  # QEMU NIC model of the live VM's user networking
    guest_nic: str  # the name the guest kernel gives that NIC (no udev renames it)
    compat: CompatUserland

    def __str__(self) -> str:
        return self.name  # how cells, dirs and messages name it

    @property
    def native(self) -> bool:
        return platform.machine() == self.kvm_host_machine

    @property
    def gdb(self) -> tuple[str, str]:
        """The host's debugger for this arch's kernel, and the Debian 12 package providing it."""
        return ("gdb", "gdb") if self.native else ("gdb-multiarch", "gdb-multiarch")

    def compiler_prefix(self) -> str:
        """CROSS_COMPILE for this host: empty when building natively."""
        return "" if self.native else self.cross_compile


ARCHES: dict[str, ArchSpec] = {
    "x86_64": ArchSpec(
        name="x86_64",
        linux_arch="x86_64",
        cross_compile="x86_64-linux-gnu-",
        cross_package="gcc-x86-64-linux-gnu",
        image_target="bzImage",
        image_path="arch/x86/boot/bzImage",
        debian_arch="amd64",
        qemu_binary="qemu-system-x86_64",
        qemu_package="qemu-system-x86",
        qemu_machine="pc",
        socket_per_cpu=True,
        kvm_host_machine="x86_64",
        console="ttyS0",
        python_machine="x86_64",
        virtio_serial_device="virtio-serial-pci",
        nic_device="virtio-net-pci",
        guest_nic="eth0",
        compat=CompatUserland(
            name="ia32",
            kernel_option="IA32_EMULATION",
            compiler="i686-linux-gnu-gcc",
            packages=("gcc-i686-linux-gnu", "libc6-dev-i386-cross"),
            flags=(),
        ),
    ),
    "arm64": ArchSpec(
        name="arm64",
        linux_arch="arm64",
        cross_compile="aarch64-linux-gnu-",
        cross_package="gcc-aarch64-linux-gnu",
        image_target="Image",
        image_path="arch/arm64/boot/Image",
        debian_arch="arm64",
        qemu_binary="qemu-system-aarch64",
        qemu_package="qemu-system-arm",
        qemu_machine="virt",
        socket_per_cpu=False,
        kvm_host_machine="aarch64",
        console="ttyAMA0",
        python_machine="aarch64",
        virtio_serial_device="virtio-serial-pci",
        nic_device="virtio-net-pci",
        guest_nic="eth0",
        # AArch32 EL0: QEMU's "max" CPU (qemu.py) has it under TCG. ARM, not Thumb,
        # code, so the tracee's r12 marker and r7 syscall number are its own.
        compat=CompatUserland(
            name="AArch32",
            kernel_option="COMPAT",
            compiler="arm-linux-gnueabihf-gcc",
            packages=("gcc-arm-linux-gnueabihf", "libc6-dev-armhf-cross"),
            flags=("-marm",),
        ),
    ),
}


def get_arch(name: str) -> ArchSpec:
    try:
        return ARCHES[name]
    except KeyError:
        known = ", ".join(ARCHES)
        raise BadInput(f"--arch {name}: unknown architecture; choose one of {known}") from None
