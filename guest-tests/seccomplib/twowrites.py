"""Two raw write(2)s back to back, in a few instructions of machine code.

Between two syscalls made from Python the interpreter runs thousands of
instructions and other syscalls. A tracer that single-steps or emulates
syscalls (PTRACE_SINGLESTEP, PTRACE_SYSEMU) from one stop has to reach the
next syscall in a handful of steps, so this function does nothing between
the two writes but store the first result:

    void two_writes(long fd, const char *first, const char *second,
                    long results[2], long nr);

writes one byte of `first`, then one byte of `second`, to `fd` with syscall
number `nr` (NR.write), storing each raw return value (-errno on failure) in
`results`. The code is per-arch data (assembled from the listing beside it);
it is mapped once in the test process, so forked children run it at the same
address and the tracer knows where each instruction is.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import cache

from .machinecode import map_code
from .syscalls import ARCH


@dataclass(frozen=True)
class Code:
    text: bytes
    after_first: int  # offset of the instruction after the first syscall
    after_second: int  # ... after the second one
    last: int  # offset of the return: execution got past both writes


# x86_64, SysV: rdi fd, rsi first, rdx second, rcx results, r8 nr.
#    0: mov r9, rcx         3: mov r10, rdx       6: mov edx, 1
#    b: mov rax, r8         e: syscall
#   10: mov [r9], rax      13: mov rsi, r10      16: mov rax, r8
#   19: syscall
#   1b: mov [r9+8], rax    1f: ret
# syscall keeps every register but rax, rcx and r11.
_X86_64 = Code(
    bytes.fromhex("4989c94989d2ba010000004c89c00f054989014c89d64c89c00f0549894108c3"),
    after_first=0x10,
    after_second=0x1B,
    last=0x1F,
)

# aarch64, AAPCS64: x0 fd, x1 first, x2 second, x3 results, x4 nr.
#    0: mov x9, x0          4: mov x10, x2        8: mov x8, x4
#    c: mov x2, #1         10: svc #0
#   14: str x0, [x3]       18: mov x0, x9        1c: mov x1, x10
#   20: svc #0
#   24: str x0, [x3, #8]   28: ret
# svc keeps every register but x0.
_AARCH64 = Code(
    bytes.fromhex(
        "e90300aaea0302aae80304aa220080d2010000d4600000f9e00309aae1030aaa010000d4600400f9c0035fd6"
    ),
    after_first=0x14,
    after_second=0x24,
    last=0x28,
)

CODE = {"x86_64": _X86_64, "aarch64": _AARCH64}[ARCH.machine]

_Function = ctypes.CFUNCTYPE(
    None, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long
)


@dataclass(frozen=True)
class TwoWrites:
    base: int  # where CODE.text is mapped

    def address(self, offset: int) -> int:
        return self.base + offset

    def __call__(self, fd: int, first: bytes, second: bytes, nr: int) -> tuple[int, int]:
        """Run the two writes in this process; their raw return values."""
        buffers = [ctypes.create_string_buffer(data, 1) for data in (first, second)]
        return self.calls(nr, fd, ctypes.addressof(buffers[0]), ctypes.addressof(buffers[1]))

    def calls(self, nr: int, arg0: int, first_arg1: int, second_arg1: int) -> tuple[int, int]:
        """Two syscalls `nr` back to back, with (arg0, first_arg1, 1) and then
        (arg0, second_arg1, 1) as their first three arguments; their raw return
        values. (The model test's pair: two marked getppid()s.)"""
        results = (ctypes.c_long * 2)()
        _Function(self.base)(arg0, first_arg1, second_arg1, ctypes.addressof(results), nr)
        return int(results[0]), int(results[1])


@cache
def two_writes() -> TwoWrites:
    """CODE mapped read+exec, once per test process (inherited by its children)."""
    return TwoWrites(map_code(CODE.text, "two-writes"))
