"""ptrace(2) requests, wait statuses and syscall register access."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .libc import LIBC, ULONG_MASK
from .syscalls import IS_ARM64

# Requests (include/uapi/linux/ptrace.h and asm/ptrace-abi.h).
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_SINGLESTEP = 9
PTRACE_GETREGS = 12  # x86_64 only
PTRACE_SETREGS = 13  # x86_64 only
PTRACE_DETACH = 17
PTRACE_SINGLESTEP = 9
PTRACE_SYSCALL = 24
PTRACE_SYSEMU = 31  # x86 and arm64 alike (asm/ptrace-abi.h, asm/ptrace.h)
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_LISTEN = 0x4208
PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_TRACEME = 0
# The request under test (the PTRACE_SECCOMP series; not in mainline).
PTRACE_SECCOMP = 0x4213

# Options.
PTRACE_O_TRACESYSGOOD = 0x1
PTRACE_O_TRACEFORK = 0x2
PTRACE_O_TRACEVFORK = 0x4
PTRACE_O_TRACECLONE = 0x8
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_O_EXITKILL = 0x100000
PTRACE_O_SUSPEND_SECCOMP = 0x200000

# Events (status >> 16 at an event stop).
PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3
PTRACE_EVENT_SECCOMP = 7
PTRACE_EVENT_STOP = 128

# The event message at a syscall stop (ptrace_report_syscall() stores it in
# ->ptrace_message; PTRACE_GET_SYSCALL_INFO reads the op from it).
PTRACE_EVENTMSG_SYSCALL_ENTRY = 1
PTRACE_EVENTMSG_SYSCALL_EXIT = 2

# PTRACE_GET_SYSCALL_INFO ops.
SYSCALL_INFO_NONE = 0
SYSCALL_INFO_ENTRY = 1
SYSCALL_INFO_EXIT = 2
SYSCALL_INFO_SECCOMP = 3

SYSGOOD_TRAP = signal.SIGTRAP | 0x80
WALL = 0x40000000  # __WALL: wait for threads and clone children too
NT_PRSTATUS = 1
NT_ARM_SYSTEM_CALL = 0x404


def timeout_factor(cmdline: str) -> float:
    """harness.timeout_factor=F from a kernel command line: the host's --timeout-factor,
    so a slow runner stretches the guest's own waits as it stretches the host's."""
    for word in cmdline.split():
        name, _, value = word.partition("=")
        if name == "harness.timeout_factor":
            try:
                factor = float(value)
            except ValueError:
                break
            if 0 < factor <= 100:
                return factor
    return 1.0


def _cmdline() -> str:
    try:
        return Path("/proc/cmdline").read_text()
    except OSError:
        return ""


# Seconds per wait: generous for TCG, times the runner's --timeout-factor.
DEFAULT_TIMEOUT = 5.0 * timeout_factor(_cmdline())
_WAKEUP_SLICE = 0.01  # longest sleep between waitpid() checks

_ptrace = LIBC.ptrace
_ptrace.restype = ctypes.c_long
_ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]


def ptrace(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """Issue a ptrace request; raise OSError with the errno on failure."""
    ctypes.set_errno(0)
    result = int(_ptrace(request, pid, addr or None, data or None))
    err = ctypes.get_errno()
    if result == -1 and err:
        raise OSError(err, f"ptrace({request:#x}, {pid}): {os.strerror(err)}")
    return result


def ptrace_errno(request: int, pid: int, addr: int = 0, data: int = 0) -> int:
    """Issue a ptrace request and return its errno (0 on success)."""
    try:
        ptrace(request, pid, addr, data)
    except OSError as exc:
        return exc.errno or 0
    return 0


# ---------------------------------------------------------------- waiting


@dataclass(frozen=True)
class WaitStatus:
    pid: int
    status: int

    @property
    def exited(self) -> bool:
        return os.WIFEXITED(self.status)

    @property
    def exit_code(self) -> int | None:
        return os.WEXITSTATUS(self.status) if self.exited else None

    @property
    def signaled(self) -> bool:
        return os.WIFSIGNALED(self.status)

    @property
    def term_sig(self) -> int | None:
        return os.WTERMSIG(self.status) if self.signaled else None

    @property
    def stopped(self) -> bool:
        return os.WIFSTOPPED(self.status)

    @property
    def stop_sig(self) -> int | None:
        """WSTOPSIG, including the 0x80 bit of a TRACESYSGOOD syscall stop."""
        return os.WSTOPSIG(self.status) if self.stopped else None

    @property
    def event(self) -> int:
        return (self.status >> 16) & 0xFF if self.stopped else 0

    @property
    def is_syscall_stop(self) -> bool:
        """A syscall stop as reported with PTRACE_O_TRACESYSGOOD."""
        return self.stop_sig == SYSGOOD_TRAP and self.event == 0

    def is_event(self, event: int) -> bool:
        return self.stopped and self.event == event

    def __str__(self) -> str:
        if self.exited:
            return f"pid {self.pid} exited {self.exit_code}"
        if self.signaled:
            return f"pid {self.pid} killed by {signal.Signals(self.term_sig or 0).name}"
        if self.stopped:
            return f"pid {self.pid} stopped sig={self.stop_sig:#x} event={self.event}"
        return f"pid {self.pid} status {self.status:#x}"


def wait_status(pid: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus:
    """waitpid(pid, __WALL) bounded by a timeout, woken by SIGCHLD.

    Every ptrace stop and exit of a child or tracee sends SIGCHLD to us. It is
    blocked (in this thread, only during the wait) so none is lost between
    waitpid(WNOHANG) and sigtimedwait(). The short slice bounds the delay if
    another thread of this process consumes the signal.
    """
    deadline = time.monotonic() + timeout
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        while True:
            got, status = os.waitpid(pid, os.WNOHANG | WALL)
            if got:
                return WaitStatus(got, status)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"pid {pid}: no state change within {timeout} s")
            signal.sigtimedwait({signal.SIGCHLD}, min(remaining, _WAKEUP_SLICE))
    finally:
        if signal.SIGCHLD not in old_mask:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def wait_stop(pid: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus:
    """Wait for a ptrace stop of `pid`; fail if it exits or dies instead."""
    status = wait_status(pid, timeout)
    if not status.stopped:
        raise AssertionError(f"expected a ptrace stop, got: {status}")
    return status


def wait_gone(pid: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus:
    """Wait for `pid` to exit or be killed; fail on any ptrace stop."""
    status = wait_status(pid, timeout)
    if status.stopped:
        raise AssertionError(f"expected {pid} to end, got: {status}")
    return status


# ------------------------------------------------------ attach and resume


def seize_and_interrupt(pid: int, options: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus:
    """PTRACE_SEIZE `pid` and bring it to a PTRACE_EVENT_STOP (a known stop)."""
    ptrace(PTRACE_SEIZE, pid, 0, options)
    ptrace(PTRACE_INTERRUPT, pid)
    status = wait_stop(pid, timeout)
    if not status.is_event(PTRACE_EVENT_STOP):
        raise AssertionError(f"expected the interrupt stop, got: {status}")
    return status


def resume(pid: int, request: int, sig: int = 0) -> None:
    ptrace(request, pid, 0, sig)


def siginfo_code(pid: int) -> int:
    """si_code of the tracee's last siginfo (PTRACE_GETSIGINFO): SIGTRAP or
    SIGTRAP|0x80 at a syscall stop, the signal's own code at a signal-delivery
    stop."""
    buffer = ctypes.create_string_buffer(128)  # sizeof(siginfo_t)
    ptrace(PTRACE_GETSIGINFO, pid, 0, ctypes.addressof(buffer))
    return int(ctypes.c_int.from_buffer(buffer, 8).value)  # si_signo, si_errno, si_code


def event_msg(pid: int) -> int:
    value = ctypes.c_ulong()
    ptrace(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(value))
    return value.value


# ------------------------------------------------- PTRACE_GET_SYSCALL_INFO


class _SyscallInfoRaw(ctypes.Structure):
    _fields_ = [
        ("op", ctypes.c_uint8),
        ("pad", ctypes.c_uint8 * 3),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("stack_pointer", ctypes.c_uint64),
        # union: entry {nr, args[6]}, exit {rval, is_error}, seccomp {nr, args[6], ret_data}
        ("u", ctypes.c_uint64 * 8),
    ]


@dataclass(frozen=True)
class SyscallInfo:
    op: int
    arch: int
    nr: int | None = None  # entry and seccomp stops
    args: tuple[int, ...] = ()
    ret_data: int | None = None  # seccomp stops
    rval: int | None = None  # exit stops
    is_error: bool | None = None


def syscall_info(pid: int) -> SyscallInfo:
    raw = _SyscallInfoRaw()
    ptrace(PTRACE_GET_SYSCALL_INFO, pid, ctypes.sizeof(raw), ctypes.addressof(raw))
    u = list(raw.u)
    if raw.op in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP):
        ret_data = u[7] & 0xFFFFFFFF if raw.op == SYSCALL_INFO_SECCOMP else None
        return SyscallInfo(raw.op, raw.arch, nr=u[0], args=tuple(u[1:7]), ret_data=ret_data)
    if raw.op == SYSCALL_INFO_EXIT:
        rval = u[0] - (1 << 64) if u[0] >> 63 else u[0]
        return SyscallInfo(raw.op, raw.arch, rval=rval, is_error=bool(u[1] & 0xFF))
    return SyscallInfo(raw.op, raw.arch)


# ------------------------------------------------------ register access


_X86_REG_NAMES = [
    "r15",
    "r14",
    "r13",
    "r12",
    "rbp",
    "rbx",
    "r11",
    "r10",
    "r9",
    "r8",
    "rax",
    "rcx",
    "rdx",
    "rsi",
    "rdi",
    "orig_rax",
    "rip",
    "cs",
    "eflags",
    "rsp",
    "ss",
    "fs_base",
    "gs_base",
    "ds",
    "es",
    "fs",
    "gs",
]


class _X86Regs(ctypes.Structure):  # struct user_regs_struct
    _fields_ = [(name, ctypes.c_ulong) for name in _X86_REG_NAMES]


class _Arm64Regs(ctypes.Structure):  # struct user_pt_regs
    _fields_ = [
        ("regs", ctypes.c_ulong * 31),
        ("sp", ctypes.c_ulong),
        ("pc", ctypes.c_ulong),
        ("pstate", ctypes.c_ulong),
    ]


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def _regset(request: int, pid: int, note: int, buffer: ctypes.Structure | ctypes.c_int) -> None:
    iov = _Iovec(ctypes.addressof(buffer), ctypes.sizeof(buffer))
    ptrace(request, pid, note, ctypes.addressof(iov))


def _x86_regs(pid: int) -> _X86Regs:
    regs = _X86Regs()
    ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
    return regs


def _arm64_regs(pid: int) -> _Arm64Regs:
    regs = _Arm64Regs()
    _regset(PTRACE_GETREGSET, pid, NT_PRSTATUS, regs)
    return regs


def _signed(value: int) -> int:
    return value - (1 << 64) if value >> 63 else value


def get_syscall_nr(pid: int) -> int:
    """The syscall number the tracee will run (x86: orig_rax; arm64: NT_ARM_SYSTEM_CALL)."""
    if IS_ARM64:
        nr = ctypes.c_int()
        _regset(PTRACE_GETREGSET, pid, NT_ARM_SYSTEM_CALL, nr)
        return int(nr.value)
    return _signed(_x86_regs(pid).orig_rax)


def get_syscall_arg1(pid: int) -> int:
    """The second syscall argument at a syscall stop (x86: rsi; arm64: x1),
    for stops PTRACE_GET_SYSCALL_INFO cannot name (no TRACESYSGOOD)."""
    if IS_ARM64:
        return int(_arm64_regs(pid).regs[1])
    return int(_x86_regs(pid).rsi)


def get_syscall_arg0(pid: int) -> int:
    """The first syscall argument at a syscall-entry stop (x86: rdi; arm64: x0)."""
    if IS_ARM64:
        return int(_arm64_regs(pid).regs[0])
    return int(_x86_regs(pid).rdi)


def reissue_syscall(pid: int) -> None:
    """At the entry stop of a syscall PTRACE_SYSEMU will not run: make the
    tracee make it again once back in user mode, as the kernel restarts an
    interrupted one (back over the syscall instruction, the number in the
    register that held it; x86 also preset rax to -ENOSYS, arm64 left x0)."""
    if IS_ARM64:
        arm64_regs = _arm64_regs(pid)
        arm64_regs.pc -= 4  # svc #0
        _regset(PTRACE_SETREGSET, pid, NT_PRSTATUS, arm64_regs)
        return
    x86_regs = _x86_regs(pid)
    x86_regs.rip -= 2  # syscall
    x86_regs.rax = x86_regs.orig_rax
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(x86_regs))


def get_pc(pid: int) -> int:
    """Where the stopped tracee will resume (x86: rip; arm64: pc)."""
    if IS_ARM64:
        return int(_arm64_regs(pid).pc)
    return int(_x86_regs(pid).rip)


def rewrite_regs(pid: int) -> None:
    """PTRACE_GETREGSET of NT_PRSTATUS, then PTRACE_SETREGSET of what it gave:
    register access that changes nothing."""
    regs: ctypes.Structure = _Arm64Regs() if IS_ARM64 else _X86Regs()
    _regset(PTRACE_GETREGSET, pid, NT_PRSTATUS, regs)
    _regset(PTRACE_SETREGSET, pid, NT_PRSTATUS, regs)


def set_syscall_nr(pid: int, nr: int) -> None:
    """Change the syscall about to run; -1 skips it."""
    if IS_ARM64:
        _regset(PTRACE_SETREGSET, pid, NT_ARM_SYSTEM_CALL, ctypes.c_int(nr))
        return
    regs = _x86_regs(pid)
    regs.orig_rax = nr & ULONG_MASK
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))


def set_return_value(pid: int, value: int) -> None:
    """Set the syscall return register (x86: rax; arm64: x0)."""
    if IS_ARM64:
        arm64_regs = _arm64_regs(pid)
        arm64_regs.regs[0] = value & ULONG_MASK
        _regset(PTRACE_SETREGSET, pid, NT_PRSTATUS, arm64_regs)
        return
    x86_regs = _x86_regs(pid)
    x86_regs.rax = value & ULONG_MASK
    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(x86_regs))


def skip_syscall(pid: int, return_value: int) -> None:
    """Skip the pending syscall (number -1) and fake its return value."""
    set_syscall_nr(pid, -1)
    set_return_value(pid, return_value)


def get_x7(pid: int) -> int:
    """arm64 only: x7, which the kernel sets to 0/1 at syscall entry/exit stops."""
    if not IS_ARM64:
        raise RuntimeError("x7 is an arm64 register")
    return int(_arm64_regs(pid).regs[7])


def set_x7(pid: int, value: int) -> None:
    """arm64 only: write x7 through NT_PRSTATUS (at a syscall stop the kernel
    gives the tracee its own x7 back and drops this)."""
    if not IS_ARM64:
        raise RuntimeError("x7 is an arm64 register")
    regs = _arm64_regs(pid)
    regs.regs[7] = value & ULONG_MASK
    _regset(PTRACE_SETREGSET, pid, NT_PRSTATUS, regs)


# ------------------------------------------------ PTRACE_SYSCALL walking


def syscall_walk_to_entry(
    pid: int,
    nr: int,
    arg_index: int,
    arg_value: int,
    timeout: float = DEFAULT_TIMEOUT,
    max_stops: int = 2000,
) -> SyscallInfo:
    """Resume with PTRACE_SYSCALL past unrelated syscall stops until the entry
    stop of syscall `nr` with args[arg_index] == arg_value. Needs TRACESYSGOOD.
    The tracee must be in a ptrace stop when called."""
    deadline = time.monotonic() + timeout
    for _ in range(max_stops):
        resume(pid, PTRACE_SYSCALL)
        status = wait_stop(pid, max(deadline - time.monotonic(), 0.01))
        if not status.is_syscall_stop:
            raise AssertionError(f"expected a syscall stop while walking, got: {status}")
        info = syscall_info(pid)
        if info.op == SYSCALL_INFO_ENTRY and info.nr == nr and info.args[arg_index] == arg_value:
            return info
    raise AssertionError(f"no entry stop for syscall {nr} within {max_stops} stops")


def syscall_walk_to_exit(pid: int, timeout: float = DEFAULT_TIMEOUT) -> SyscallInfo:
    """From an entry stop, resume with PTRACE_SYSCALL to the matching exit stop."""
    resume(pid, PTRACE_SYSCALL)
    status = wait_stop(pid, timeout)
    if not status.is_syscall_stop:
        raise AssertionError(f"expected a syscall-exit stop, got: {status}")
    info = syscall_info(pid)
    if info.op != SYSCALL_INFO_EXIT:
        raise AssertionError(f"expected an exit stop, got op {info.op}")
    return info
