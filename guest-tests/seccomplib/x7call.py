"""arm64: a raw syscall made with a chosen value in x7, and the x7 its caller
sees when it returns.

arm64's syscall stops borrow x7 to tell the tracer entry (0) from exit (1)
and must give the tracee its own x7 back; only machine code can set x7 just
before the svc and read it right after:

    void x7_syscall(long nr, long arg0, long arg1, long x7, long results[2]);

The listing beside the bytes is what they encode.
"""

from __future__ import annotations

import ctypes
from functools import cache

from .machinecode import map_code

# aarch64, AAPCS64: x0 nr, x1 arg0, x2 arg1, x3 x7, x4 results.
#    0: mov x8, x0          4: mov x0, x1         8: mov x1, x2
#    c: mov x7, x3         10: svc #0
#   14: str x0, [x4]       18: str x7, [x4, #8]  1c: ret
_AARCH64 = bytes.fromhex("e80300aae00301aae10302aae70303aa010000d4800000f9870400f9c0035fd6")

_Function = ctypes.CFUNCTYPE(
    None, ctypes.c_long, ctypes.c_long, ctypes.c_long, ctypes.c_ulong, ctypes.c_void_p
)


@cache
def _x7_syscall() -> ctypes._CFuncPtr:
    return _Function(map_code(_AARCH64, "x7 syscall"))


def x7_syscall(nr: int, arg0: int, arg1: int, x7: int) -> tuple[int, int]:
    """(raw return value, x7 after the syscall), on arm64 only."""
    results = (ctypes.c_long * 2)()
    _x7_syscall()(nr, arg0, arg1, x7, ctypes.addressof(results))
    return int(results[0]), int(results[1]) & ((1 << 64) - 1)
