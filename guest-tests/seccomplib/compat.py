"""32-bit tracees: /compat/tracee32 (built by the harness from compat/tracee32.c
for ia32 on x86_64 and AArch32 on arm64), and what a 64-bit tracer sees of them.

The program installs its own filter (the action for getppid(), ALLOW for the
rest), says "ready", waits at the test's gate, makes getppid() and prints
"ret=<value> mark=<hex>", or "sigsys nr=.. arch=.. errno=.." from its SIGSYS
handler. Its syscalls take the kernel's compat entry paths, which no 64-bit
Python can reach.
"""

from __future__ import annotations

import ctypes
import os
import platform
import re
import resource
import select
import time
from dataclasses import dataclass, field
from pathlib import Path

from .proc import Gate, Lab, Pipe
from .ptrace import (
    DEFAULT_TIMEOUT,
    NT_PRSTATUS,
    PTRACE_GETREGSET,
    PTRACE_SETREGSET,
    ptrace,
    set_return_value,
    set_syscall_nr,
)

TRACEE32 = Path("/compat/tracee32")
MARK = 0x5EED  # what the AArch32 tracee puts in r12 right before its svc


@dataclass(frozen=True)
class CompatArch:
    name: str
    audit_arch: int  # seccomp_data.arch and PTRACE_GET_SYSCALL_INFO's arch of its syscalls
    getppid: int
    getpid: int
    entry_stop_register: int | None  # the GPR syscall-entry stops borrow (r12 on AArch32)


COMPAT_ARCHES = {
    "x86_64": CompatArch("ia32", 0x40000003, getppid=64, getpid=20, entry_stop_register=None),
    "aarch64": CompatArch("AArch32", 0x40000028, getppid=64, getpid=20, entry_stop_register=12),
}
COMPAT = COMPAT_ARCHES[platform.machine()]

_RESULT = re.compile(r"^ret=(?P<ret>-?\d+) mark=(?P<mark>0x[0-9a-f]+|0)$", re.M)
_SIGSYS = re.compile(
    r"^sigsys nr=(?P<nr>-?\d+) arch=(?P<arch>0x[0-9a-f]+) errno=(?P<errno>\d+)$", re.M
)


@dataclass(frozen=True)
class Result:
    ret: int
    mark: int


@dataclass(frozen=True)
class Sigsys:
    nr: int
    arch: int
    errno: int


@dataclass
class Tracee32:
    pid: int
    gate: Gate
    out: Pipe
    text: str = field(default="")

    def go(self) -> None:
        self.gate.open()

    def read_until(self, pattern: re.Pattern[str], timeout: float = DEFAULT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not pattern.search(self.text):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                printed = f"tracee32 {self.pid} printed {self.text!r}"
                raise TimeoutError(f"{printed}, not {pattern.pattern!r}")
            select.select([self.out.r], [], [], min(remaining, 0.05))
            self.text += self.out.drain().decode(errors="replace")

    def output(self) -> str:
        """Everything it printed so far (after it is gone: everything)."""
        self.text += self.out.drain().decode(errors="replace")
        return self.text

    def result(self) -> Result | None:
        """Its getppid() outcome; None when it never got one (killed before)."""
        found = _RESULT.search(self.output())
        return Result(int(found["ret"]), int(found["mark"], 16)) if found else None

    def sigsys(self) -> Sigsys | None:
        found = _SIGSYS.search(self.output())
        if not found:
            return None
        return Sigsys(int(found["nr"]), int(found["arch"], 16), int(found["errno"]))


def spawn_tracee32(lab: Lab, action: int) -> Tracee32:
    """Start tracee32 with its filter returning `action` for getppid(), and wait
    until it is installed; it then waits at its gate (a read of stdin)."""
    if not TRACEE32.is_file():
        raise AssertionError(
            f"{TRACEE32} is missing: the harness builds it from compat/tracee32.c "
            "into every initramfs"
        )
    gate, out = lab.gate(), lab.pipe()

    def child() -> None:
        os.dup2(gate.r, 0)
        os.dup2(out.w, 1)
        # A tracee killed by SIGSYS must not spend seconds of TCG on a core dump.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.execv(TRACEE32, [str(TRACEE32), hex(action)])

    tracee = Tracee32(lab.spawn(child), gate, out)
    tracee.read_until(re.compile(r"^ready$", re.M))
    return tracee


# --------------------------------------------------- registers of a compat task


class _Arm32Regs(ctypes.Structure):  # the compat NT_PRSTATUS: r0-r15, cpsr, orig_r0
    _fields_ = [("r", ctypes.c_uint32 * 18)]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _arm32_regset(request: int, pid: int, regs: _Arm32Regs) -> None:
    iov = _Iovec(ctypes.addressof(regs), ctypes.sizeof(regs))
    ptrace(request, pid, NT_PRSTATUS, ctypes.addressof(iov))


def get_gpr(pid: int, index: int) -> int:
    """AArch32 only: general register r<index> of a stopped compat tracee."""
    regs = _Arm32Regs()
    _arm32_regset(PTRACE_GETREGSET, pid, regs)
    return int(regs.r[index])


def set_gpr(pid: int, index: int, value: int) -> None:
    regs = _Arm32Regs()
    _arm32_regset(PTRACE_GETREGSET, pid, regs)
    regs.r[index] = value & 0xFFFFFFFF
    _arm32_regset(PTRACE_SETREGSET, pid, regs)


def set_return_value32(pid: int, value: int) -> None:
    """The return register of a compat syscall: r0 on AArch32; eax (through rax)
    on ia32, which 64-bit PTRACE_SETREGS reaches."""
    if COMPAT.entry_stop_register is not None:
        set_gpr(pid, 0, value)
    else:
        set_return_value(pid, value)


def skip_syscall32(pid: int, return_value: int) -> None:
    """Number -1 (NT_ARM_SYSTEM_CALL or orig_rax serve compat tasks too), and a
    faked return value."""
    set_syscall_nr(pid, -1)
    set_return_value32(pid, return_value)
