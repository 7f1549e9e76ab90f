"""A SA_SIGINFO SIGSYS handler (via ctypes) that records the siginfo fields.

Python's own signal module drops siginfo, and SECCOMP_RET_TRAP cannot be
waited for with a blocked signal (a forced signal that is blocked kills), so
the child installs a real handler. ctypes re-acquires the GIL for the callback;
this is safe because the handler only runs while the single thread is inside
the (GIL-releasing) foreign syscall() call.
"""

from __future__ import annotations

import ctypes
import signal
from dataclasses import dataclass

from .libc import LIBC

SA_SIGINFO = 4
SYS_SECCOMP = 1  # si_code of a seccomp SIGSYS


class _Siginfo(ctypes.Structure):
    _fields_ = [
        ("si_signo", ctypes.c_int),
        ("si_errno", ctypes.c_int),
        ("si_code", ctypes.c_int),
        ("_pad", ctypes.c_int),
        # _sigsys: void *_call_addr; int _syscall; unsigned int _arch;
        ("call_addr", ctypes.c_void_p),
        ("syscall", ctypes.c_int),
        ("arch", ctypes.c_uint),
        ("_rest", ctypes.c_byte * 96),
    ]


class _Sigaction(ctypes.Structure):  # glibc's struct sigaction (x86_64 and aarch64)
    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


_HandlerType = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.POINTER(_Siginfo), ctypes.c_void_p)


@dataclass(frozen=True)
class SigsysInfo:
    signo: int
    errno: int
    code: int
    syscall: int
    arch: int


class SigsysRecorder:
    """Install with install(); every SIGSYS appends a SigsysInfo to .received."""

    def __init__(self) -> None:
        self.received: list[SigsysInfo] = []
        self._callback = _HandlerType(self._on_signal)  # kept alive by self

    def _on_signal(self, signo: int, info_ptr: ctypes._Pointer[_Siginfo], _context: int) -> None:
        info = info_ptr.contents
        self.received.append(
            SigsysInfo(info.si_signo, info.si_errno, info.si_code, info.syscall, info.arch)
        )

    def install(self) -> None:
        action = _Sigaction()
        action.handler = ctypes.cast(self._callback, ctypes.c_void_p)
        action.flags = SA_SIGINFO
        ctypes.set_errno(0)
        if LIBC.sigaction(signal.SIGSYS, ctypes.byref(action), None) != 0:
            raise OSError(ctypes.get_errno(), "sigaction(SIGSYS)")
