"""The C library through ctypes, and raw system calls.

Every call goes through syscall(2) with explicit c_long arguments: ctypes
would otherwise convert Python ints to 32-bit C ints.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

LIBC = ctypes.CDLL(None, use_errno=True)

_syscall = LIBC.syscall
_syscall.restype = ctypes.c_long

ULONG_MASK = (1 << 64) - 1


@dataclass(frozen=True)
class SyscallResult:
    """What syscall(2) returned, split the way libc splits it."""

    value: int
    errno: int  # 0 when the call succeeded

    @property
    def failed(self) -> bool:
        return self.value == -1 and self.errno != 0

    @classmethod
    def from_raw(cls, raw: int) -> SyscallResult:
        """A raw syscall return value (-errno on failure), split the same way."""
        return cls(-1, -raw) if -4096 < raw < 0 else cls(raw, 0)


def _long(value: int) -> ctypes.c_long:
    # Accept unsigned 64-bit values (e.g. magic markers) as well as negatives.
    if value > (1 << 63) - 1:
        value -= 1 << 64
    return ctypes.c_long(value)


def syscall(nr: int, *args: int) -> SyscallResult:
    """Issue a raw system call with up to six arguments."""
    if len(args) > 6:
        raise ValueError("at most six syscall arguments")
    ctypes.set_errno(0)
    value = _syscall(_long(nr), *(_long(a) for a in args))
    return SyscallResult(value, ctypes.get_errno() if value == -1 else 0)


def syscall_with_x7(nr: int, args: tuple[int, int, int, int, int, int], x7: int) -> SyscallResult:
    """Like syscall(), but on aarch64 also leaves `x7` in register x7 at the svc.

    glibc's aarch64 syscall() shifts x1..x7 down into x0..x6 and does not touch
    x7, so an eighth C argument is still in x7 when the kernel is entered. On
    x86_64 the extra argument is simply ignored.
    """
    ctypes.set_errno(0)
    value = _syscall(_long(nr), *(_long(a) for a in args), _long(x7))
    return SyscallResult(value, ctypes.get_errno() if value == -1 else 0)


def check(result: SyscallResult, what: str) -> int:
    """Return result.value, raising OSError when the call failed."""
    if result.failed:
        raise OSError(result.errno, f"{what}: {os.strerror(result.errno)}")
    return result.value
