"""x86_64: getppid() made through the ia32 entry (int $0x80) from 64-bit code.

A 64-bit process on x86_64 can make 32-bit syscalls: int $0x80 takes the
kernel's ia32 entry, where in_compat_syscall() is true, seccomp sees
AUDIT_ARCH_I386 and the ia32 numbers (getppid is 64), and the arguments are
ebx, ecx, ... (32 bits each). So the compat path of the series' stop can be
reached without a 32-bit program:

    long int80_getppid(long marker);

makes getppid() with 0 and the low half of `marker` as its first two
arguments and returns the raw result (-errno on failure), sign-extended.
arm64 has no such way (AArch32 syscalls need an AArch32 program): no code
there.
"""

from __future__ import annotations

import ctypes
from functools import cache

from .libc import SyscallResult
from .machinecode import map_code
from .syscalls import ARCH

# x86_64, SysV: rdi marker. rbx is callee-saved; int $0x80 keeps every
# register but rax (r8-r11 too, since Linux 4.17).
#    0: push rbx            1: xor ebx, ebx       3: mov ecx, edi
#    5: mov eax, 64         a: int 0x80           c: pop rbx
#    d: movsxd rax, eax    10: ret
_CODE: dict[str, bytes | None] = {
    "x86_64": bytes.fromhex("5331db89f9b840000000cd805b4863c0c3"),
    "aarch64": None,
}
HAVE_INT80 = _CODE[ARCH.machine] is not None

_Function = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long)


@cache
def _int80_getppid() -> ctypes._CFuncPtr:
    code = _CODE[ARCH.machine]
    if code is None:
        raise OSError(f"no int $0x80 on {ARCH.machine}")
    return _Function(map_code(code, "int80 getppid"))


def int80_getppid(marker: int) -> SyscallResult:
    """getppid(0, marker) through the ia32 entry; x86_64 only (HAVE_INT80)."""
    return SyscallResult.from_raw(int(_int80_getppid()(marker)))
