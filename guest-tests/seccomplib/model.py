"""A model of one tracee thread under PTRACE_SECCOMP, and of mainline without it.

Written from the series' cover letter (patches/ptrace-seccomp/0000-cover-
letter.patch, "Semantics") and from 6.12's syscall entry order, not from the
patch's code: at entry, a PTRACE_SYSCALL tracee first reports its syscall-
entry stop, then the seccomp filters run; SECCOMP_RET_TRACE then stops an
armed thread in a second, seccomp-requested entry stop, an unarmed one with
PTRACE_O_TRACESECCOMP in PTRACE_EVENT_SECCOMP, and fails with ENOSYS
otherwise. After either stop the filters run again and RET_TRACE means allow.

The tracee of the model makes one kind of syscall: getppid() carrying a
marker that the filter sends to SECCOMP_RET_TRACE ("traced") or allows
("plain"). Between operations it is either at a ptrace stop, idle (blocked
reading its next command), or dead; every operation runs the tracee on
until it reaches one of those again, and says what an observer sees on the
way: a stop, the syscall's result, or a death. `patched=False` is the
unpatched kernel: PTRACE_SECCOMP (0x4213) fails with EIO there, and
everything else is mainline.
"""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass, field
from enum import Enum

SYSGOOD_SIG = signal.SIGTRAP | 0x80
EVENT_SECCOMP = 7
EVENT_STOP = 128


class Req(Enum):
    """Resume requests the model knows."""

    SECCOMP = "PTRACE_SECCOMP"
    CONT = "PTRACE_CONT"
    SYSCALL = "PTRACE_SYSCALL"


class Stop(Enum):
    """Where a stopped tracee is."""

    INTERRUPT = "interrupt stop"  # PTRACE_EVENT_STOP after SEIZE/INTERRUPT
    ENTRY = "syscall-entry stop"  # PTRACE_SYSCALL's, before the filters
    SECCOMP_ENTRY = "seccomp entry stop"  # PTRACE_SECCOMP's: committed, not acknowledged
    EVENT_SECCOMP = "PTRACE_EVENT_SECCOMP stop"
    EXIT = "syscall-exit stop"


# What an observer can tell apart: a stop (shown the way wait() reports it),
# the marked syscall's result, a death, or nothing.
QUIET = "nothing"
RAN = "getppid ran"
ENOSYS = "getppid failed ENOSYS"
KILLED = "killed by SIGKILL"


def stop_text(sig: int, event: int, op: str) -> str:
    """A stop as wait() and PTRACE_GET_SYSCALL_INFO show it ("entry"/"exit"/...)."""
    return f"stop sig={sig:#x} event={event} {op}"


@dataclass(frozen=True)
class Options:
    sysgood: bool = False
    traceseccomp: bool = False
    exitkill: bool = False

    def __str__(self) -> str:
        names = [n for n in ("sysgood", "traceseccomp", "exitkill") if getattr(self, n)]
        return "|".join(names) or "0"


@dataclass(frozen=True)
class Outcome:
    """What one operation does: the request's errno (0: success, None: no
    request) and what is seen after it."""

    err: int | None
    seen: str

    def __str__(self) -> str:
        if self.err is None:
            return self.seen
        name = errno.errorcode.get(self.err, str(self.err)) if self.err else "0"
        return f"-> {name}; {self.seen}"


@dataclass
class TraceeModel:
    """One tracee thread. `attached`: a tracer has it; `armed`: PT_SECCOMP_ARMED;
    `syscall_mode`: resumed by PTRACE_SYSCALL (stops at every entry and exit);
    `stop`: where it is stopped (None: idle or dead); `traced`: the in-flight
    syscall is the RET_TRACE one; `result`: what it returns, once decided."""

    patched: bool
    alive: bool = True
    attached: bool = False
    options: Options = field(default_factory=Options)
    armed: bool = False
    syscall_mode: bool = False
    stop: Stop | None = None
    traced: bool = False
    result: str | None = None

    # ---------------------------------------------------------- queries

    @property
    def idle(self) -> bool:
        return self.alive and self.stop is None

    @property
    def stopped(self) -> bool:
        return self.alive and self.stop is not None

    # ---------------------------------------------- how the tracee runs on

    def _stop_at(self, stop: Stop) -> str:
        self.stop = stop
        if stop is Stop.INTERRUPT:
            return stop_text(signal.SIGTRAP, EVENT_STOP, "none")
        if stop is Stop.EVENT_SECCOMP:
            return stop_text(signal.SIGTRAP, EVENT_SECCOMP, "seccomp")
        sig = SYSGOOD_SIG if self.options.sysgood else signal.SIGTRAP
        # The seccomp-requested stop looks exactly like PTRACE_SYSCALL's.
        return stop_text(sig, 0, "exit" if stop is Stop.EXIT else "entry")

    def _enter(self, traced: bool) -> str:
        self.traced, self.result = traced, None
        if self.attached and self.syscall_mode:
            return self._stop_at(Stop.ENTRY)
        return self._filters()

    def _filters(self) -> str:
        if not self.traced:
            return self._finish(RAN)
        if self.attached and self.armed:
            return self._stop_at(Stop.SECCOMP_ENTRY)
        if self.attached and self.options.traceseccomp:
            return self._stop_at(Stop.EVENT_SECCOMP)
        return self._finish(ENOSYS)  # RET_TRACE with nobody to ask

    def _finish(self, result: str) -> str:
        # A skipped syscall (ENOSYS) has its exit stop too.
        self.result = result
        if self.attached and self.syscall_mode:
            return self._stop_at(Stop.EXIT)
        return self._back_to_idle()

    def _back_to_idle(self) -> str:
        result = self.result or QUIET
        self.stop, self.result = None, None
        return result

    def _run_on(self, acknowledged: bool) -> str:
        """Leave the current stop: what happens until the next one."""
        stop, self.stop = self.stop, None
        if stop is Stop.INTERRUPT:
            return QUIET
        if stop is Stop.ENTRY:
            return self._filters()
        if stop is Stop.SECCOMP_ENTRY and not acknowledged:
            return self._die()  # fail closed: the syscall never runs
        if stop in (Stop.SECCOMP_ENTRY, Stop.EVENT_SECCOMP):
            return self._finish(RAN)  # filters again: RET_TRACE now allows
        return self._back_to_idle()  # EXIT: the syscall returns

    def _die(self, how: str = KILLED) -> str:
        self.alive, self.attached, self.stop, self.armed = False, False, None, False
        return how

    def _untrace(self) -> None:
        self.attached, self.armed, self.syscall_mode = False, False, False

    # -------------------------------------------------------- operations

    def seized(self, options: Options) -> Outcome:
        """A new tracer seizes the idle tracee and interrupts it."""
        self.attached, self.options = True, options
        self.armed = self.syscall_mode = False
        return Outcome(0, self._stop_at(Stop.INTERRUPT))

    def second_seize(self) -> Outcome:
        """Another process tries PTRACE_SEIZE while a tracer has it."""
        return Outcome(errno.EPERM, QUIET)

    def syscall(self, traced: bool) -> Outcome:
        """The idle tracee makes the marked getppid()."""
        return Outcome(None, self._enter(traced))

    def _resume_err(self, req: Req) -> int:
        if not self.stopped:
            return errno.ESRCH
        if req is Req.SECCOMP and not self.patched:
            return errno.EIO
        return 0

    def resume(self, req: Req) -> Outcome:
        err = self._resume_err(req)
        if err:
            return Outcome(err, QUIET)
        self.armed = req is Req.SECCOMP
        self.syscall_mode = req is Req.SYSCALL
        return Outcome(0, self._run_on(acknowledged=True))

    def resume_then_gone(self, req: Req) -> Outcome:
        """The tracer resumes and is gone before the tracee runs again."""
        err = self._resume_err(req)
        if err:  # it is gone from wherever the tracee is
            seen = self.tracer_gone().seen
            return Outcome(err, seen)
        if self.options.exitkill:
            self._untrace()
            return Outcome(0, self._die())
        self._untrace()
        return Outcome(0, self._run_on(acknowledged=True))

    def detach(self) -> Outcome:
        if not self.stopped:
            return Outcome(errno.ESRCH, QUIET)
        self._untrace()
        return Outcome(0, self._run_on(acknowledged=False))

    def tracer_gone(self) -> Outcome:
        """The tracer exits or is killed without resuming."""
        self._untrace()
        if self.options.exitkill:
            return Outcome(None, self._die())
        if not self.stopped:
            return Outcome(None, QUIET)
        return Outcome(None, self._run_on(acknowledged=False))

    def set_options(self, options: Options) -> Outcome:
        if not self.stopped:
            return Outcome(errno.ESRCH, QUIET)
        self.options = options
        return Outcome(0, QUIET)

    def interrupt(self) -> Outcome:
        """PTRACE_INTERRUPT of the idle tracee."""
        return Outcome(0, self._stop_at(Stop.INTERRUPT))
