"""A model of one tracee thread under PTRACE_SECCOMP, and of mainline without it.

Written from the series' cover letter (patches/ptrace-seccomp/0000-cover-
letter.patch, "Semantics") and from 6.12's syscall entry order, not from the
patch's code: at entry, a PTRACE_SYSCALL tracee first reports its syscall-
entry stop, then the seccomp filters run; SECCOMP_RET_TRACE then stops an
armed thread in a second, seccomp-requested entry stop, an unarmed one with
PTRACE_O_TRACESECCOMP in PTRACE_EVENT_SECCOMP, and fails with ENOSYS
otherwise. After either stop the filters run again and RET_TRACE means allow;
a syscall the tracer skipped (number -1) does not run at all.

On the way back to user mode (after a syscall, or on leaving a stop taken
there) 6.12's get_signal() first takes a pending PTRACE_INTERRUPT trap (an
interrupt stop), then dequeues signals, SIGTRAP first: a traced thread shows
each in a signal-delivery stop, whose resume delivers the resume's signal
instead (or none); an untraced one takes it at once. A signal given to a
resume or a detach is sent to the tracee at a syscall stop
(ptrace_report_syscall()), delivered at a signal-delivery stop, and ignored
at an event stop (PTRACE_EVENT_SECCOMP, interrupt stops); a tracer that exits
gives none (its wait() for the stop cleared the stop's code). The seccomp-
requested stop takes signals as a syscall-entry stop does ("like PTRACE_CONT,
with the same signal handling").

The tracee of the model makes one kind of syscall: getppid() carrying a
marker that the filter sends to SECCOMP_RET_TRACE ("traced") or allows
("plain"); it may also make two traced ones back to back, a few instructions
of machine code apart (a "pair"), with no command between them. A tracer
that single-steps the first call steps on into the second by itself (the
world's tracer answers the step traps in between with PTRACE_SINGLESTEP,
unreported): the one place where what a SINGLESTEP resume left armed shows.
Its one signal is SIGUSR1, which it handles. Between operations it is either
at a ptrace stop (perhaps PTRACE_LISTENing), idle (blocked reading its next
command), or dead; every operation runs the tracee on until it
reaches one of those again, and says what an observer sees on the way: a
stop, the handler and the syscall's result, or a death. `patched=False` is
the unpatched kernel: PTRACE_SECCOMP (0x4213) fails with EIO there, and
everything else is mainline. Architecture differences are data (STEP_CODE,
SYSEMU_RESULT).

New tasks and new programs, from the cover letter ("It survives execve();
a detach or a tracer exit disarms; children start unarmed, and an auto-
attached child is armed or not by the request that resumes it from its first
stop") and mainline's fork: the idle tracee may fork a child or start a
thread, which makes the traced getppid() once and ends. Unless the tracer has
PTRACE_O_TRACEFORK|TRACECLONE the new task is not traced at all (nothing of
the tracee's tracing reaches it: RET_TRACE fails with ENOSYS); with them the
tracee stops in PTRACE_EVENT_FORK/CLONE and the new task is attached with the
tracer's options (PTRACE_O_TRACESECCOMP included) but unarmed, first stopped
in an interrupt stop; the tracer then follows a Plan for it. The fail-closed
kill is of the whole process: a thread's kills the tracee too, a child's
only the child; and it is logged like SECCOMP_RET_KILL_PROCESS, a seccomp
audit record of the SIGKILL, which no other kill of the model writes. The
idle tracee may also execve() a shell (busybox sh) that makes its traced
call as kill -0 on a pid that does not exist: the filter, the tracer, its
options, the armed state and PTRACE_SYSCALL or PTRACE_SYSEMU mode all carry
over (a seized tracee has no exec stop without PTRACE_O_TRACEEXEC); the
SIGUSR1 handler does not, so SIGUSR1 kills it.

PTRACE_SYSEMU is mainline's: a resume request like any other but
PTRACE_SECCOMP (it disarms, and acknowledges a seccomp stop), after which
every syscall stops at its entry and is not run at all: the filters never
see it, so no seccomp stop follows and no fail-closed kill, and it returns
what the tracer left in the return register (x86's entry code presets
-ENOSYS). The world's tracer re-issues the tracee's own reads and writes
that SYSEMU would emulate away, so only the marked call shows it.
"""

from __future__ import annotations

import errno
import signal
from dataclasses import dataclass, field
from enum import Enum

SYSGOOD_SIG = signal.SIGTRAP | 0x80
EVENT_SECCOMP = 7
EVENT_STOP = 128
SIG = signal.SIGUSR1  # the signal the tests inject; the tracee handles it
SI_KERNEL = 0x80  # si_code of a signal the kernel sends (a syscall stop's injected one)
# si_code of the SIGTRAP a single-stepped syscall raises at its exit, per
# machine: x86's user_single_step_report() sends TRAP_BRKPT, arm64 uses the
# generic one, SI_USER.
STEP_CODE = {"x86_64": 1, "aarch64": 0}
EVENT_FORK = 1
EVENT_CLONE = 3

# What an observer sees of the marked syscall: "<call> <result>".
RAN_R = "ran"
ENOSYS_R = "failed ENOSYS"
EPERM_R = "failed EPERM"  # the tracer skips it with -EPERM
# What a syscall PTRACE_SYSEMU emulated returns, per machine, when the tracer
# leaves the return register alone: x86's do_syscall_64() presets -ENOSYS.
# None: the model does not draw PTRACE_SYSEMU there (the issue scopes it to
# x86_64; arm64 has had it since 5.3, and there the emulated call returns its
# own first argument, x0 being left as it was).
SYSEMU_RESULT: dict[str, str | None] = {"x86_64": ENOSYS_R, "aarch64": None}


class Req(Enum):
    """Resume requests the model knows."""

    SECCOMP = "PTRACE_SECCOMP"
    CONT = "PTRACE_CONT"
    SYSCALL = "PTRACE_SYSCALL"
    SINGLESTEP = "PTRACE_SINGLESTEP"
    SYSEMU = "PTRACE_SYSEMU"


class Stop(Enum):
    """Where a stopped tracee is."""

    INTERRUPT = "interrupt stop"  # PTRACE_EVENT_STOP after SEIZE/INTERRUPT
    ENTRY = "syscall-entry stop"  # PTRACE_SYSCALL's, before the filters
    SECCOMP_ENTRY = "seccomp entry stop"  # PTRACE_SECCOMP's: committed, not acknowledged
    EVENT_SECCOMP = "PTRACE_EVENT_SECCOMP stop"
    EXIT = "syscall-exit stop"
    SIGNAL = "signal-delivery stop"
    EMU_ENTRY = "SYSEMU entry stop"  # PTRACE_SYSEMU's: the syscall will not run
    EVENT_FORK = "PTRACE_EVENT_FORK stop"
    EVENT_CLONE = "PTRACE_EVENT_CLONE stop"


# Stops before the syscall runs: it can still be skipped, and single-stepped.
ENTRY_STOPS = (Stop.ENTRY, Stop.SECCOMP_ENTRY, Stop.EVENT_SECCOMP, Stop.EMU_ENTRY)
# Stops in ptrace_report_syscall(): a signal given to their resume is sent.
SYSCALL_STOPS = (Stop.ENTRY, Stop.SECCOMP_ENTRY, Stop.EXIT, Stop.EMU_ENTRY)
# Stops after which the tracee goes on to user mode (its syscall, if any, is over).
RETURN_STOPS = (Stop.INTERRUPT, Stop.SIGNAL, Stop.EXIT, Stop.EVENT_FORK, Stop.EVENT_CLONE)
# A new task's kind -> the tracee's event stop, its event, and the task's name.
SPAWNS = {
    "fork": (Stop.EVENT_FORK, EVENT_FORK, "child"),
    "thread": (Stop.EVENT_CLONE, EVENT_CLONE, "thread"),
}

# What an observer can tell apart: a stop (shown the way wait() reports it),
# the marked syscall's result, a death, or nothing.
QUIET = "nothing"
RAN = f"getppid {RAN_R}"
ENOSYS = f"getppid {ENOSYS_R}"
SKIPPED = f"getppid {EPERM_R}"
KILLED = "killed by SIGKILL"
# The fail-closed kill, "logged like SECCOMP_RET_KILL_PROCESS" (a seccomp
# audit record of the SIGKILL): the kill of a tracee left at its seccomp stop.
KILLED_LOGGED = f"{KILLED}, logged"
TRAPPED = "killed by SIGTRAP"
SIG_KILLED = f"killed by {SIG.name}"  # a program without a handler for it
HANDLED = f"{SIG.name} handled"
EXITED = "exited 0"
EXECED = "execve ran: sh reads commands"


@dataclass(frozen=True)
class Image:
    """The program the tracee runs: its marked call, and whether it handles SIG."""

    name: str
    call: str
    shown: str  # the call as a script shows it
    handles_sig: bool


PYTHON = Image("python", "getppid", "getppid()", handles_sig=True)
SHELL = Image("sh", "kill", "kill -0", handles_sig=False)  # on a pid that does not exist


def stop_text(sig: int, event: int, op: str) -> str:
    """A stop as wait() and PTRACE_GET_SYSCALL_INFO show it ("entry"/"exit"/...;
    "signal code=N" for a signal-delivery stop)."""
    return f"stop sig={sig:#x} event={event} {op}"


@dataclass(frozen=True)
class Options:
    sysgood: bool = False
    traceseccomp: bool = False
    exitkill: bool = False
    tracefork: bool = False  # PTRACE_O_TRACEFORK and PTRACE_O_TRACECLONE

    def __str__(self) -> str:
        names = ("sysgood", "traceseccomp", "exitkill", "tracefork")
        return "|".join(n for n in names if getattr(self, n)) or "0"


def errno_name(err: int) -> str:
    return errno.errorcode.get(err, str(err)) if err else "0"


@dataclass(frozen=True)
class Plan:
    """What the tracer does with an auto-attached task: the request that
    resumes its first stop (the auto-attach interrupt stop), then the one
    that answers its stop at the traced syscall; None: PTRACE_DETACH. A
    request that fails is followed by PTRACE_DETACH."""

    first: Req | None
    answer: Req | None

    def __str__(self) -> str:
        def name(req: Req | None) -> str:
            return req.value if req else "PTRACE_DETACH"

        return f"{name(self.first)} at its first stop, {name(self.answer)} at its next"


@dataclass(frozen=True)
class Outcome:
    """What one operation does: the request's errno (0: success, None: no
    request) and what is seen after it."""

    err: int | None
    seen: str

    def __str__(self) -> str:
        if self.err is None:
            return self.seen
        return f"-> {errno_name(self.err)}; {self.seen}"


@dataclass(frozen=True)
class Spawned:
    """What a fork or a new thread shows: the tracee's own outcome, what the
    tracer sees of an auto-attached task (None: not attached), and what the
    tracee shows after that (QUIET, or its death with the whole process)."""

    parent: Outcome
    child: str | None
    after: str


@dataclass
class TraceeModel:
    """One tracee thread. `attached`: a tracer has it; `armed`: PT_SECCOMP_ARMED;
    `syscall_mode`: resumed by PTRACE_SYSCALL (stops at every entry and exit);
    `emu_mode`: resumed by PTRACE_SYSEMU (stops at every entry, runs none);
    `stepping`: resumed by PTRACE_SINGLESTEP; `then_calls`: traced calls the
    tracee makes right after the current one (a pair's second), `earlier`:
    their results so far, reported with the last one; `pair_call`: which of
    a pair's calls is in flight (1, 2; 0: none), so where a signal-delivery
    stop on its way back finds the tracee; `death`: how it died (once
    dead); `image`: the program it runs
    (execve() replaces it); `stop`: where it is stopped
    (None: idle or dead), `listening`: PTRACE_LISTEN at that stop, `stop_sig`:
    a signal-delivery stop's signal; `traced`: the in-flight syscall is the
    RET_TRACE one, `skip`: the tracer set its number to -1; `result`: what it
    returns, once decided (held until the tracee is back in user mode).
    Pending on the way to user mode: `trap`: an INTERRUPT given at a stop,
    `step_trap`: the SIGTRAP of a single-stepped syscall, `sig_pending`: SIG
    queued, `handler`: SIG delivered, its handler about to run. (The tests
    never single-step with a signal queued or given: a handler's frame set
    up while stepping is arch work the model leaves out.)"""

    patched: bool
    arch: str = "x86_64"
    alive: bool = True
    attached: bool = False
    options: Options = field(default_factory=Options)
    armed: bool = False
    syscall_mode: bool = False
    emu_mode: bool = False
    stepping: bool = False
    then_calls: int = 0
    earlier: list[str] = field(default_factory=list)
    pair_call: int = 0
    death: str = ""
    image: Image = PYTHON
    stop: Stop | None = None
    listening: bool = False
    stop_sig: int = 0
    traced: bool = False
    skip: bool = False
    result: str | None = None
    trap: bool = False
    step_trap: bool = False
    sig_pending: bool = False
    handler: bool = False

    # ---------------------------------------------------------- queries

    @property
    def idle(self) -> bool:
        return self.alive and self.stop is None

    @property
    def stopped(self) -> bool:
        return self.alive and self.stop is not None

    def _said(self, result: str) -> str:
        return f"{self.image.call} {result}"

    # ---------------------------------------------- how the tracee runs on

    def _stop_at(self, stop: Stop) -> str:
        self.stop = stop
        self.trap = False  # "any trap clears pending STOP trap" (ptrace_stop())
        if stop is Stop.INTERRUPT:
            return stop_text(signal.SIGTRAP, EVENT_STOP, "none")
        if stop is Stop.EVENT_SECCOMP:
            return stop_text(signal.SIGTRAP, EVENT_SECCOMP, "seccomp")
        if stop in (Stop.EVENT_FORK, Stop.EVENT_CLONE):
            event = EVENT_FORK if stop is Stop.EVENT_FORK else EVENT_CLONE
            return stop_text(signal.SIGTRAP, event, "none")
        sig = SYSGOOD_SIG if self.options.sysgood else signal.SIGTRAP
        # The seccomp-requested stop looks exactly like PTRACE_SYSCALL's.
        return stop_text(sig, 0, "exit" if stop is Stop.EXIT else "entry")

    def _signal_stop(self, sig: int, code: int) -> str:
        self.stop, self.stop_sig, self.trap = Stop.SIGNAL, sig, False
        # Where the stop finds it shows whether the tracer stepped on through
        # a pair: at the first call's end only if it did not.
        at = f" after pair call {self.pair_call}" if self.pair_call else ""
        return stop_text(sig, 0, f"signal code={code}{at}")

    def _enter(self, traced: bool) -> str:
        self.traced, self.skip, self.result = traced, False, None
        if self.attached and self.syscall_mode:
            return self._stop_at(Stop.ENTRY)
        if self.attached and self.emu_mode:
            return self._stop_at(Stop.EMU_ENTRY)
        return self._filters()

    def _filters(self) -> str:
        if self.skip:  # number -1: the filters allow it, and nothing runs
            return self._finish(self._said(EPERM_R))
        if not self.traced:
            return self._finish(self._said(RAN_R))
        if self.attached and self.armed:
            return self._stop_at(Stop.SECCOMP_ENTRY)
        if self.attached and self.options.traceseccomp:
            return self._stop_at(Stop.EVENT_SECCOMP)
        return self._finish(self._said(ENOSYS_R))  # RET_TRACE with nobody to ask

    def _finish(self, result: str) -> str:
        # A skipped syscall has its exit stop too; a single-stepped one
        # raises SIGTRAP instead (also after its tracer exited: only a
        # detach turns single-stepping off).
        self.result = result
        if self.stepping:
            self.step_trap = True
        elif self.attached and self.syscall_mode:
            return self._stop_at(Stop.EXIT)
        return self._to_user()

    def _to_user(self) -> str:
        """On the way to user mode: get_signal()'s traps and signals, in order."""
        self.stop = None
        if self.attached and self.trap:
            self.trap = False
            return self._stop_at(Stop.INTERRUPT)
        if self.step_trap:
            self.step_trap = False
            if not self.attached:
                return self._die(TRAPPED)
            if not (self.stepping and self.then_calls):
                return self._signal_stop(signal.SIGTRAP, STEP_CODE[self.arch])
            # A pair's first call, single-stepped: the tracer steps on to the
            # second by itself, and this trap does not show.
        if self.sig_pending:
            self.sig_pending = False
            if self.attached:
                return self._signal_stop(SIG, SI_KERNEL)
            self.handler = True
            if not self.image.handles_sig:
                return self._die(SIG_KILLED)
        if self.stepping and not self.attached:
            # Single-stepping outlives a tracer that exits (only a detach
            # turns it off): the first user instruction traps, and SIGTRAP kills.
            return self._die(TRAPPED)
        return self._back_to_idle()

    def _back_to_idle(self) -> str:
        if self.then_calls:  # a pair: its second call, a few instructions on
            self.then_calls -= 1
            self.pair_call += 1
            self.earlier += [self.result] if self.result else []
            self.stop, self.result = None, None
            return self._enter(traced=True)
        seen = [HANDLED] if self.handler else []
        seen += self.earlier + ([self.result] if self.result else [])
        self.stop, self.result, self.handler, self.earlier = None, None, False, []
        self.pair_call = 0
        return ", ".join(seen) or QUIET

    def _take_signal(self, stop: Stop, sig: int) -> None:
        """A resume's or detach's signal, or the code a gone tracer left."""
        if not sig:
            return
        if stop in SYSCALL_STOPS:
            self.sig_pending = True  # send_sig() to itself, taken later
        elif stop is Stop.SIGNAL:
            self.handler = sig == SIG  # delivered in place of the stop's signal
        # event stops (interrupt, PTRACE_EVENT_SECCOMP) ignore it

    def _run_on(self, acknowledged: bool) -> str:
        """Leave the current stop: what happens until the next one."""
        stop, self.stop = self.stop, None
        self.listening = False
        if stop is Stop.SIGNAL and self.handler and not self.image.handles_sig:
            return self._die(SIG_KILLED)  # delivered, and its default action kills
        if stop in (Stop.EVENT_FORK, Stop.EVENT_CLONE) and self.attached and self.syscall_mode:
            # The fork's own exit stop comes first (the tracer steps over it),
            # and like any trap it clears a pending INTERRUPT.
            self.trap = False
        if stop in RETURN_STOPS:
            return self._to_user()
        if stop is Stop.ENTRY:
            return self._filters()
        if stop is Stop.EMU_ENTRY:  # not run, whatever the tracer does; no filter
            emulated = SYSEMU_RESULT[self.arch]
            assert emulated is not None, f"no PTRACE_SYSEMU in the model on {self.arch}"
            return self._finish(self._said(EPERM_R if self.skip else emulated))
        if stop is Stop.SECCOMP_ENTRY and not acknowledged:
            return self._die(KILLED_LOGGED)  # fail closed: the syscall never runs
        # filters again: RET_TRACE now allows
        return self._finish(self._said(EPERM_R if self.skip else RAN_R))

    def _die(self, how: str = KILLED) -> str:
        self.alive, self.attached, self.stop, self.armed = False, False, None, False
        self.death = how
        self.then_calls, self.earlier, self.pair_call = 0, [], 0  # a pair dies with it
        return how

    def _untrace(self) -> None:
        self.attached, self.armed, self.syscall_mode, self.emu_mode = False, False, False, False
        self.trap = self.listening = False  # the unlink clears pending traps

    # -------------------------------------------------------- operations

    def seized(self, options: Options) -> Outcome:
        """A new tracer seizes the idle tracee and interrupts it."""
        self.attached, self.options = True, options
        self.armed = self.syscall_mode = self.emu_mode = self.stepping = False
        return Outcome(0, self._stop_at(Stop.INTERRUPT))

    def second_seize(self) -> Outcome:
        """Another process tries PTRACE_SEIZE while a tracer has it."""
        return Outcome(errno.EPERM, QUIET)

    def syscall(self, traced: bool) -> Outcome:
        """The idle tracee makes the marked getppid()."""
        return Outcome(None, self._enter(traced))

    def syscall_pair(self) -> Outcome:
        """The idle tracee makes two traced getppid()s back to back."""
        self.then_calls, self.pair_call = 1, 1
        return Outcome(None, self._enter(traced=True))

    def _request_err(self) -> int:
        """ptrace_check_attach(): the tracee must be stopped, and not listening."""
        return errno.ESRCH if not self.stopped or self.listening else 0

    def _resume_err(self, req: Req) -> int:
        if self._request_err():
            return errno.ESRCH
        if req is Req.SECCOMP and not self.patched:
            return errno.EIO
        return 0

    def _resumed(self, req: Req, sig: int) -> Stop | None:
        stop = self.stop
        self.armed = req is Req.SECCOMP
        self.syscall_mode = req is Req.SYSCALL
        self.emu_mode = req is Req.SYSEMU
        self.stepping = req is Req.SINGLESTEP
        if stop is not None:
            self._take_signal(stop, sig)
        return stop

    def resume(self, req: Req, sig: int = 0) -> Outcome:
        err = self._resume_err(req)
        if err:
            return Outcome(err, QUIET)
        self._resumed(req, sig)
        return Outcome(0, self._run_on(acknowledged=True))

    def resume_then_gone(self, req: Req) -> Outcome:
        """The tracer resumes and is gone before the tracee runs again."""
        err = self._resume_err(req)
        if err:  # it is gone from wherever the tracee is
            seen = self.tracer_gone().seen
            return Outcome(err, seen)
        self._resumed(req, 0)
        if self.options.exitkill:
            self._untrace()
            return Outcome(0, self._die())
        self._untrace()
        return Outcome(0, self._run_on(acknowledged=True))

    def detach(self, sig: int = 0) -> Outcome:
        if self._request_err():
            return Outcome(errno.ESRCH, QUIET)
        assert self.stop is not None
        self._untrace()
        self.stepping = False  # ptrace_disable()
        self._take_signal(self.stop, sig)
        return Outcome(0, self._run_on(acknowledged=False))

    def tracer_gone(self) -> Outcome:
        """The tracer exits or is killed without resuming."""
        stop = self.stop
        self._untrace()
        if self.options.exitkill:
            # At a seccomp stop the fail-closed kill comes too, logged
            # "also when the SIGKILL of PTRACE_O_EXITKILL is already pending".
            return Outcome(None, self._die(KILLED_LOGGED if stop is Stop.SECCOMP_ENTRY else KILLED))
        if stop is None or not self.alive:
            return Outcome(None, QUIET)
        # No signal: the stop's code, which would be one, was cleared by the
        # tracer's wait() for the stop (wait_task_stopped()).
        return Outcome(None, self._run_on(acknowledged=False))

    def set_options(self, options: Options) -> Outcome:
        if self._request_err():
            return Outcome(errno.ESRCH, QUIET)
        self.options = options
        return Outcome(0, QUIET)

    def interrupt(self) -> Outcome:
        """PTRACE_INTERRUPT: the idle tracee stops; a stopped one stops again
        once the current stop is over; a listening one stops again now."""
        if self.idle:
            return Outcome(0, self._stop_at(Stop.INTERRUPT))
        if self.listening:
            self.listening = False
            return Outcome(0, self._stop_at(Stop.INTERRUPT))
        self.trap = True
        return Outcome(0, QUIET)

    def listen(self) -> Outcome:
        """PTRACE_LISTEN: only at an interrupt stop (EIO at any other); the
        tracee stays stopped, and the armed state is left alone."""
        if self._request_err():
            return Outcome(errno.ESRCH, QUIET)
        if self.stop is not Stop.INTERRUPT:
            return Outcome(errno.EIO, QUIET)
        self.listening = True
        return Outcome(0, QUIET)

    def skip_syscall(self) -> Outcome:
        """The tracer sets the syscall number to -1 (and the return value to
        -EPERM) at a stop before the syscall runs."""
        assert self.stop in ENTRY_STOPS and not self.listening
        self.skip = True
        return Outcome(0, QUIET)

    def spawn(self, kind: str, plan: Plan) -> Spawned:
        """The idle tracee forks a child ("fork") or starts a thread
        ("thread"), which makes the traced getppid() and ends; the tracee
        waits for it and reports what it did."""
        stop, _, name = SPAWNS[kind]
        child = TraceeModel(patched=self.patched, arch=self.arch)
        seen: list[str] = []  # what the tracer sees of the new task
        own: list[str] = []  # what the new task itself sees: its result, its death
        auto = self.attached and self.options.tracefork
        if auto:  # options copied, armed not: the first resume decides
            child.attached, child.options = True, self.options
            seen.append(child._stop_at(Stop.INTERRUPT))
            child._planned(plan.first, seen, own)
            if child.idle:
                after = child.syscall(traced=True).seen
                if child.stopped:
                    seen.append(after)
                    child._planned(plan.answer, seen, own)
                else:
                    own.append(after)
            if child.alive and child.attached:
                seen.append(EXITED)  # its end, reaped by the tracer
        else:
            own.append(child.syscall(traced=True).seen)
        if kind == "fork":
            report = f"{name}: " + ", ".join(own + ([EXITED] if child.alive else []))
        else:
            report = f"{name}: " + ", ".join(own)
        killed_all = kind == "thread" and not child.alive  # the thread's kill is the process's
        self.result = report
        if not auto:
            return Spawned(Outcome(None, self._back_to_idle()), None, QUIET)
        parent = Outcome(None, self._stop_at(stop))
        after = self._die(child.death) if killed_all else QUIET
        return Spawned(parent, ", ".join(seen), after)

    def _planned(self, req: Req | None, seen: list[str], own: list[str]) -> None:
        """The tracer's next request to an auto-attached task at its stop."""
        if req is not None:
            outcome = self.resume(req)
            seen.append(f"{req.value} -> {errno_name(outcome.err or 0)}")
            if not outcome.err:
                if outcome.seen != QUIET:
                    own.append(outcome.seen)
                return
        outcome = self.detach()
        seen.append("PTRACE_DETACH -> 0")
        if outcome.seen != QUIET:
            own.append(outcome.seen)

    def exec_shell(self) -> Outcome:
        """The idle tracee execve()s a shell that makes its marked call as
        kill -0. Everything of its tracing carries over; its handler does not."""
        self.image = SHELL
        return Outcome(None, EXECED)
