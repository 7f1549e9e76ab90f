"""Machine code mapped executable in the test process (and so in its forked
children, at the same address): for the few tests that need exact control of
registers or of what runs between two syscalls, which Python cannot give."""

from __future__ import annotations

import ctypes
import mmap
from functools import cache

from .libc import LIBC

_mmap = LIBC.mmap
_mmap.restype = ctypes.c_void_p
_mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_mprotect = LIBC.mprotect
_mprotect.restype = ctypes.c_int
_mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_MAP_FAILED = ctypes.c_void_p(-1).value


@cache
def map_code(text: bytes, what: str) -> int:
    """Where `text` is mapped read+exec, once per test process.

    Written while the page is not executable and only then made so, which
    on arm64 makes the kernel bring the instruction cache up to date."""
    size = mmap.PAGESIZE
    if len(text) > size:
        raise ValueError(f"{what}: {len(text)} bytes of code do not fit a page")
    base = _mmap(
        None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0
    )
    if base in (None, _MAP_FAILED):
        raise OSError(ctypes.get_errno(), f"mmap for the {what} code")
    ctypes.memmove(base, text, len(text))
    if _mprotect(base, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        raise OSError(ctypes.get_errno(), f"mprotect of the {what} code")
    return int(base)
