"""Small things a forked child does: marker writes, masks, magic values."""

from __future__ import annotations

import ctypes
import signal
from typing import Any

from .libc import SyscallResult, check, syscall, syscall_with_x7
from .syscalls import NR

PR_SET_DUMPABLE = 4

# Values a filter matches in an argument register. Python's own syscalls
# never carry them, so a rule on them only catches the test's own calls.
MAGIC_TRACE = 0x5EC0_0000_7ACE_0001
MAGIC_DENY = 0x5EC0_0000_DE4F_0002
MAGIC_PLAIN = 0x5EC0_0000_0A11_0003
X7_MARKER = 0x7777_0000_0000_7777
TRACE_DATA = 0x0ACE  # SECCOMP_RET_DATA given to RET_TRACE rules


def write_bytes(fd: int, data: bytes) -> SyscallResult:
    """write(2) through syscall(2), so the filter sees exactly this call."""
    buffer = ctypes.create_string_buffer(data, len(data))
    return syscall(NR.write, fd, ctypes.addressof(buffer), len(data))


def getppid_marked(marker: int) -> SyscallResult:
    """getppid() with `marker` in args[1]; getppid ignores its arguments."""
    return syscall(NR.getppid, 0, marker)


def getppid_marked_x7(marker: int, x7: int) -> SyscallResult:
    return syscall_with_x7(NR.getppid, (0, marker, 0, 0, 0, 0), x7)


def getppid_as_write(fd: int, data: bytes, buffer_keepalive: list[Any]) -> SyscallResult:
    """getppid() carrying write(fd, data, len) arguments: a tracer that
    redirects it to write makes the bytes appear in the pipe."""
    buffer = ctypes.create_string_buffer(data, len(data))
    buffer_keepalive.append(buffer)
    return syscall(NR.getppid, fd, ctypes.addressof(buffer), len(data))


def outcome(result: SyscallResult) -> dict[str, int]:
    return {"ret": result.value, "errno": result.errno}


def block_sigchld() -> None:
    """A traced parent stops for every signal, even SIGCHLD with SIG_DFL;
    blocking it keeps such signal-delivery stops out of the tests."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})


def make_undumpable() -> None:
    """A child that is meant to die by SIGSYS must not write a core dump."""
    check(syscall(NR.prctl, PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(SET_DUMPABLE)")
