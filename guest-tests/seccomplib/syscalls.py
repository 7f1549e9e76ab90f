"""Per-arch syscall numbers and AUDIT_ARCH values, keyed by platform.machine().

Only syscalls that exist on both arches are listed (arm64 has no open(),
fork() or other legacy calls), so a test reads the same on both.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class SyscallNumbers:
    read: int
    write: int
    getpid: int
    getppid: int
    gettid: int
    getuid: int
    kill: int
    clone: int
    execve: int
    exit_group: int
    prctl: int
    ptrace: int
    seccomp: int


@dataclass(frozen=True)
class Arch:
    machine: str
    audit_arch: int  # what seccomp_data.arch holds for native syscalls
    nr: SyscallNumbers


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        machine="x86_64",
        audit_arch=0xC000003E,  # AUDIT_ARCH_X86_64
        nr=SyscallNumbers(
            read=0,
            write=1,
            getpid=39,
            getppid=110,
            gettid=186,
            getuid=102,
            kill=62,
            clone=56,
            execve=59,
            exit_group=231,
            prctl=157,
            ptrace=101,
            seccomp=317,
        ),
    ),
    "aarch64": Arch(
        machine="aarch64",
        audit_arch=0xC00000B7,  # AUDIT_ARCH_AARCH64
        nr=SyscallNumbers(
            read=63,
            write=64,
            getpid=172,
            getppid=173,
            gettid=178,
            getuid=174,
            kill=129,
            clone=220,
            execve=221,
            exit_group=94,
            prctl=167,
            ptrace=117,
            seccomp=277,
        ),
    ),
}


def current_arch() -> Arch:
    machine = platform.machine()
    try:
        return ARCHES[machine]
    except KeyError:
        raise RuntimeError(f"no syscall table for machine {machine!r}") from None


ARCH = current_arch()
NR = ARCH.nr
IS_ARM64 = ARCH.machine == "aarch64"
