"""The real processes behind the model test: a tracee and its tracer.

The test process forks both. The tracee (pinned to one CPU) installs a filter
that sends getppid() with MAGIC_TRACE in args[1], and kill(ABSENT_PID, 0),
to SECCOMP_RET_TRACE and allows everything else, then loops: it reads a
one-byte command ("t": the traced getppid, "p": the plain one, "2": two
traced ones back to back in machine code (seccomplib.twowrites); "f": fork a
child, "T": start a thread, either of which makes the traced getppid once
(the child on x86_64 through int $0x80, the ia32 entry: seccomplib.int80call);
"x": execve the shell of SHELL_LOOP) and writes the result as a JSON line,
with the signals its SIGUSR1 handler saw on the way; a SIGUSR1 that comes
while it waits for a command gets a JSON line of its own. On arm64 its "t"
and "p" calls carry a marker in x7, which every syscall stop borrows and
must give back: a result whose x7 came back changed says so. The shell takes the
same "t" and "p" commands and makes them kill -0 ABSENT_PID (traced) and
kill -0 ABSENT_PID + 1, writing the error message and a JSON status line.
The tracer is a separate child so that it can exit, and a thread of that
child traces, so that the tracer can also exit alone (a thread's exit, not
the process's: the tracer is the task that attached); it seizes the tracee,
reports every stop and the tracee's end as JSON events, and carries out
ptrace requests the test sends it as JSON lines, answering with the errno.
Auto-attached children and threads it handles by itself, following the plan
the test gave it, and reports what it saw of them as "child" events. Under
PTRACE_SYSCALL it steps over the tracee's own syscalls; under PTRACE_SYSEMU
it makes the tracee make them again (they would not run otherwise). Under
PTRACE_SINGLESTEP it steps a pair on from its first call to its second by
itself, without reporting the step traps in between.

Every child also holds the only write end of an "alive" pipe: its end of
file tells the test that the child is gone, without polling waitpid().
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import resource
import select
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bpf import ArgEq, Rule, install_filter, trace_action
from .child import (
    MAGIC_PLAIN,
    MAGIC_TRACE,
    TRACE_DATA,
    X7_MARKER,
    block_sigchld,
    getppid_marked,
)
from .compat import COMPAT
from .int80call import HAVE_INT80, int80_getppid
from .kmsg import KmsgCursor, seccomp_kill_of
from .libc import LIBC, SyscallResult
from .model import (
    EXECED,
    KILLED,
    KILLED_LOGGED,
    QUIET,
    RAN_R,
    Options,
    errno_name,
    stop_text,
)
from .proc import fork_child
from .ptrace import (
    DEFAULT_TIMEOUT,
    PTRACE_DETACH,
    PTRACE_EVENT_CLONE,
    PTRACE_EVENT_FORK,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACECLONE,
    PTRACE_O_TRACEFORK,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SEIZE,
    PTRACE_SETOPTIONS,
    PTRACE_SINGLESTEP,
    PTRACE_SYSCALL,
    PTRACE_SYSEMU,
    SYSCALL_INFO_ENTRY,
    SYSCALL_INFO_EXIT,
    SYSCALL_INFO_NONE,
    SYSCALL_INFO_SECCOMP,
    SYSGOOD_TRAP,
    WALL,
    WaitStatus,
    event_msg,
    get_pc,
    get_syscall_arg0,
    get_syscall_arg1,
    get_syscall_nr,
    ptrace_errno,
    reissue_syscall,
    siginfo_code,
    skip_syscall,
    syscall_info,
)
from .race import become_fifo, pin_to_cpu
from .syscalls import ARCH, NR
from .twowrites import CODE, two_writes
from .x7call import x7_syscall

# Seconds to wait for something the model predicts. Only a disagreement waits
# it out, so a long wait costs a passing run nothing; and like every other
# guest wait it scales with --timeout-factor (a fixed 3 s did not).
TIMEOUT = DEFAULT_TIMEOUT
# Seconds a SIGKILL the model says is not logged gets for its audit record
# to come anyway (kauditd prints records after the kill that follows them).
# Short: a default run sees about a dozen such kills, and 0.1 s each cost it
# 1.4 s of its 3 s budget. A missing record is caught regardless: where the
# model predicts one, the world waits the full TIMEOUT.
LOG_GRACE = 0.02
OP_NAMES = {0: "none", 1: "entry", 2: "exit", 3: "seccomp"}
SIGNAL_STOP = -1  # classify()'s kind for a signal-delivery stop
MARKERS = (MAGIC_TRACE & 0xFFFFFFFFFFFFFFFF, MAGIC_PLAIN & 0xFFFFFFFFFFFFFFFF)
# kill(2) on a pid above any pid_max: ESRCH when it runs. The shell's marked call.
ABSENT_PID = 2_000_000_000
KILL_MARKERS = (ABSENT_PID, ABSENT_PID + 1)
SHELL = "/bin/sh"  # busybox: its read, kill and echo are builtins (no fork)
CMD_FD, RES_FD = 8, 9  # the shell's command and result pipes
_KILL = 'kill -0 {pid} 2>&{res}; echo "{{\\"kill\\": $?}}" >&{res};;'
SHELL_LOOP = (
    f'echo \'{{"exec": "sh"}}\' >&{RES_FD}; '
    f"while read -n 1 c <&{CMD_FD}; do case $c in "
    f"t) {_KILL.format(pid=ABSENT_PID, res=RES_FD)} "
    f"p) {_KILL.format(pid=ABSENT_PID + 1, res=RES_FD)} "
    "esac; done"
)
# The shell's kill reports its errno as strerror() text (glibc's, as Python's).
KILL_ERRNOS = (errno.ESRCH, errno.ENOSYS, errno.EPERM)
_THREAD_START = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


def options_bits(options: Options) -> int:
    return (
        (PTRACE_O_TRACESYSGOOD if options.sysgood else 0)
        | (PTRACE_O_TRACESECCOMP if options.traceseccomp else 0)
        | (PTRACE_O_EXITKILL if options.exitkill else 0)
        | (PTRACE_O_TRACEFORK | PTRACE_O_TRACECLONE if options.tracefork else 0)
    )


def call_text(call: str, ret: int, err: int, expect: int) -> str:
    """A marked call's result as the model says it: ran (returned `expect`), or failed."""
    if err:
        return f"{call} failed {errno_name(err)}"
    return f"{call} {RAN_R}" if ret == expect else f"{call} returned {ret}"


class LineReader:
    """JSON lines from a non-blocking pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def read_ready(self) -> list[dict[str, Any]]:
        """The complete lines so far; one that is no JSON (the shell's error
        messages) as {"text": line}."""
        while not self.eof:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [_parse(line) for line in lines if line]


def _parse(line: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(line)
    except ValueError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"text": line.decode(errors="replace")}


def _pipe(nonblocking_read: bool = True) -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, not nonblocking_read)
    return r, w


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# ------------------------------------------------------------- the tracee


def _call_plain(marker: int) -> dict[str, Any]:
    result = getppid_marked(marker)
    return {"ret": result.value, "errno": result.errno}


def _call_keeping_x7(marker: int) -> dict[str, Any]:
    """arm64: the call made with X7_MARKER in x7, and the x7 it returns with.
    Its syscall stops borrow x7 and must give it back (the cover letter:
    PTRACE_SECCOMP's stop too), so any other value is a register the kernel
    left changed."""
    raw, x7 = x7_syscall(NR.getppid, 0, marker, X7_MARKER)
    result = SyscallResult.from_raw(raw)
    return {"ret": result.value, "errno": result.errno, "x7": x7}


# The tracee's own marked call, per machine: where a stop borrows a register,
# the call watches it.
MARKED_CALL: dict[str, Callable[[int], dict[str, Any]]] = {
    "x86_64": _call_plain,
    "aarch64": _call_keeping_x7,
}


def _child_call() -> SyscallResult:
    """The forked child's traced getppid(): through the ia32 entry where a
    64-bit process has one (x86_64's int $0x80), so that the series' stop is
    checked on the compat path too; the model predicts the same for both."""
    return int80_getppid(MAGIC_TRACE) if HAVE_INT80 else getppid_marked(MAGIC_TRACE)


def _fork_child() -> dict[str, Any]:
    """Fork a child that makes the traced getppid() and exits; wait for it."""
    parent = os.getpid()
    result_r, result_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # nothing of the tracee's but this pipe: its end must not wait on us
        os.closerange(3, result_w)
        os.closerange(result_w + 1, 65536)
        try:
            result = _child_call()
            line = {"ret": result.value, "errno": result.errno, "expect": parent}
            os.write(result_w, json.dumps(line).encode())
        finally:
            os._exit(0)
    os.close(result_w)
    _, status = os.waitpid(pid, 0)
    data = os.read(result_r, 4096)
    os.close(result_r)
    child = json.loads(data) if data else None
    return {"spawned": "fork", "child": child, "status": status, "pid": pid}


def _start_thread(test_pid: int) -> dict[str, Any]:
    """A thread that makes the traced getppid(); joined. Started through
    ctypes, which lets go of the GIL while pthread_create() is stopped in
    PTRACE_EVENT_CLONE, so the thread can run its Python meanwhile."""
    box: list[dict[str, Any]] = []

    def body(_arg: int | None) -> None:
        result = getppid_marked(MAGIC_TRACE)
        box.append({"ret": result.value, "errno": result.errno, "expect": test_pid})

    start = _THREAD_START(body)
    thread = ctypes.c_ulong()
    err = LIBC.pthread_create(ctypes.byref(thread), None, start, None)
    if err:
        raise OSError(err, "pthread_create")
    LIBC.pthread_join(thread, None)
    return {"spawned": "thread", "child": box[0] if box else None}


def _exec_shell(cmd_r: int, res_w: int, alive_w: int) -> None:
    """Become SHELL_LOOP: the command pipe on CMD_FD, the results on RES_FD;
    the alive pipe stays open across the execve."""
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in (cmd_r, res_w)]
    os.dup2(high[0], CMD_FD)
    os.dup2(high[1], RES_FD)
    os.set_inheritable(alive_w, True)
    os.execv(SHELL, ["sh", "-c", SHELL_LOOP])  # busybox: argv[0] names the applet


def _tracee_main(cpu: int, cmd_r: int, res_w: int, alive_w: int, test_pid: int) -> int:
    pin_to_cpu(cpu)
    block_sigchld()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGTRAP may kill it
    waiting = [False]  # in its read: a handled signal is reported at once
    handled: set[str] = set()  # a set: Python may run the handler once for two

    def on_signal(signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if waiting[0]:
            os.write(res_w, json.dumps({"signals": [name]}).encode() + b"\n")
        else:
            handled.add(name)

    signal.signal(signal.SIGUSR1, on_signal)
    kill_args = (ArgEq(0, ABSENT_PID, wide=False), ArgEq(1, 0, wide=False))
    # The forked child's ia32 getppid() carries the marker's low half.
    compat_rule = Rule(COMPAT.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE, False),))
    install_filter(
        [
            Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),)),
            Rule(NR.kill, trace_action(TRACE_DATA), kill_args),
        ],
        other_arches={COMPAT.audit_arch: [compat_rule]} if HAVE_INT80 else None,
    )
    while True:
        waiting[0] = True
        command = os.read(cmd_r, 1)
        waiting[0] = False
        if not command:
            return 0
        if command == b"x":
            _exec_shell(cmd_r, res_w, alive_w)
        if command == b"f":
            line = _fork_child()
        elif command == b"T":
            line = _start_thread(test_pid)
        elif command == b"2":
            pair = two_writes().calls(NR.getppid, 0, MAGIC_TRACE, MAGIC_TRACE)
            line = {"rets": list(pair), "expect": test_pid}
        else:
            line = MARKED_CALL[ARCH.machine](MAGIC_TRACE if command == b"t" else MAGIC_PLAIN)
            line["expect"] = test_pid
        line["signals"] = sorted(handled)
        handled.clear()
        os.write(res_w, json.dumps(line).encode() + b"\n")


# ------------------------------------------------------------- the tracer


class _Tracer:
    """Runs in the tracer child: reports stops, obeys commands."""

    def __init__(self, tracee: int, cpu: int, cmd_r: int, evt_w: int) -> None:
        self.tracee, self.cpu, self.cmd_r, self.evt_w = tracee, cpu, cmd_r, evt_w
        self.walking = False  # last resume was PTRACE_SYSCALL: step over foreign syscalls
        self.emulating = False  # last resume was PTRACE_SYSEMU: re-issue foreign syscalls
        self.stepping = False  # last resume was PTRACE_SINGLESTEP
        # A step trap in a pair's code before the end of its second call: the
        # tracer steps on to the second call by itself.
        pair = two_writes()
        self.stepped_on = range(pair.address(0), pair.address(CODE.after_second))
        # Where a signal-delivery stop finds the tracee, if at a pair's call's end.
        self.pair_ends = {pair.address(CODE.after_first): 1, pair.address(CODE.after_second): 2}
        self.reissuing = 0  # stops left of a re-issue: the skipped call's exit, the new entry
        self.ours_entered = False  # the last entry stop was the marked call's
        self.in_syscall = False  # between an entry stop and its exit stop
        self.gone = False
        self.left_alone = False  # the tracing thread exited, its process did not
        self.commands = LineReader(cmd_r)
        # What to do with auto-attached tasks: their first request, then their answer.
        self.plan: dict[str, Any] = {"first": None, "answer": None}
        self.children: set[int] = set()  # auto-attached tasks past their first stop
        # A new task's first stop and the tracee's fork or clone event stop come
        # in either order; the task waits until the tracee's has been reaped,
        # lest the task's kill take the tracee before its stop was seen.
        self.announced: set[int] = set()  # new tasks the tracee's event stop named
        self.waiting: set[int] = set()  # new tasks stopped before their announcement

    def send(self, **values: Any) -> None:
        os.write(self.evt_w, json.dumps(values).encode() + b"\n")

    def on_status(self, status: WaitStatus) -> None:
        if not status.stopped:
            self.gone = True
            self.send(ev="gone", status=status.status)
            return
        if self.reissuing and not status.event:
            # SYSEMU skipped one of the tracee's own syscalls, and it is on its
            # way to make it again: step over the skipped call's exit stop, then
            # let the new call run, and stop at the next entry again.
            self.reissuing -= 1
            ptrace_errno(PTRACE_SYSEMU if not self.reissuing else PTRACE_SYSCALL, self.tracee)
            return
        kind, nr, args = self.classify(self.tracee, status, self.walking)
        if kind == SIGNAL_STOP:  # taken on the way to user mode
            pc = get_pc(self.tracee)
            if self.stepping and status.stop_sig == signal.SIGTRAP and pc in self.stepped_on:
                ptrace_errno(PTRACE_SINGLESTEP, self.tracee)
                return
            self.in_syscall = False
            at = f" after pair call {self.pair_ends[pc]}" if pc in self.pair_ends else ""
            self.send(ev="stop", sig=status.stop_sig, event=0, op=f"signal code={args[0]}{at}")
            return
        ours = False
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP):
            ours = is_marked(nr, args)
            self.ours_entered = ours
        elif kind == SYSCALL_INFO_EXIT:
            ours, self.ours_entered = self.ours_entered, False
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP, SYSCALL_INFO_EXIT):
            self.in_syscall = kind != SYSCALL_INFO_EXIT
        elif status.event == PTRACE_EVENT_STOP:
            self.in_syscall = False
        elif status.event in (PTRACE_EVENT_FORK, PTRACE_EVENT_CLONE):
            # In the middle of the fork or clone: its exit stop is no marked call's.
            self.in_syscall, self.ours_entered = True, False
        if self.walking and kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT) and not ours:
            # The tracee's own reads and writes under PTRACE_SYSCALL.
            ptrace_errno(PTRACE_SYSCALL, self.tracee)
            return
        if self.emulating and kind == SYSCALL_INFO_ENTRY and not ours:
            # ... and under PTRACE_SYSEMU, which would not run them.
            reissue_syscall(self.tracee)
            self.reissuing = 2
            ptrace_errno(PTRACE_SYSCALL, self.tracee)
            return
        op = OP_NAMES.get(kind, str(kind))
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT) and not ours:
            op += f"(foreign nr={nr})"
        self.send(ev="stop", sig=status.stop_sig, event=status.event, op=op)
        if status.event in (PTRACE_EVENT_FORK, PTRACE_EVENT_CLONE):
            self.announce(event_msg(self.tracee))

    def on_child(self, status: WaitStatus) -> None:
        """An auto-attached task's stop or end: report it, and follow the plan."""
        pid = status.pid
        if not status.stopped:
            self.children.discard(pid)
            self.send(ev="child", text=describe_status(status.status))
            self.send(ev="child-done")
            return
        kind, _, args = self.classify(pid, status, walking=False)
        op = f"signal code={args[0]}" if kind == SIGNAL_STOP else OP_NAMES.get(kind, str(kind))
        self.send(ev="child", text=stop_text(status.stop_sig or 0, status.event, op))
        if pid in self.children:
            self.follow(pid, "answer")
            return
        self.children.add(pid)
        if pid in self.announced:
            self.announced.discard(pid)
            self.follow(pid, "first")
        else:
            self.waiting.add(pid)

    def announce(self, pid: int) -> None:
        """The tracee's event stop named its new task: follow it from its first stop."""
        if pid in self.waiting:
            self.waiting.discard(pid)
            self.follow(pid, "first")
        else:
            self.announced.add(pid)

    def follow(self, pid: int, step: str) -> None:
        """The plan's next request to a new task at a stop."""
        request = self.plan[step]
        if request is not None:
            err = ptrace_errno(request[0], pid)
            self.send(ev="child", text=f"{request[1]} -> {errno_name(err)}")
            if not err:
                return
        err = ptrace_errno(PTRACE_DETACH, pid)
        self.send(ev="child", text=f"PTRACE_DETACH -> {errno_name(err)}")
        self.children.discard(pid)
        self.send(ev="child-done")

    def classify(
        self, pid: int, status: WaitStatus, walking: bool
    ) -> tuple[int, int | None, tuple[int | None, int | None]]:
        """The stop's PTRACE_GET_SYSCALL_INFO op, syscall number and args[0:2];
        for a signal-delivery stop SIGNAL_STOP, None and (its si_code, None).

        A syscall stop's siginfo has si_code SIGTRAP (or SIGTRAP|0x80), a
        signal's has its own. Without TRACESYSGOOD the kernel cannot tell a
        syscall-entry stop from an exit stop (op "none"): an exit stop only if
        the tracer resumed an entry with PTRACE_SYSCALL, else an entry stop
        (PTRACE_SECCOMP's and PTRACE_SYSEMU's included)."""
        if not status.event:
            code = siginfo_code(pid)
            if code not in (signal.SIGTRAP, SYSGOOD_TRAP):
                return SIGNAL_STOP, None, (code, None)
        info = syscall_info(pid)
        if info.op != SYSCALL_INFO_NONE or status.stop_sig != signal.SIGTRAP or status.event:
            nr = info.nr if info.op in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP) else None
            return info.op, nr, (info.args[0], info.args[1]) if info.args else (None, None)
        if walking and self.in_syscall:
            return SYSCALL_INFO_EXIT, None, (None, None)
        args = (get_syscall_arg0(pid), get_syscall_arg1(pid))
        return SYSCALL_INFO_ENTRY, get_syscall_nr(pid), args

    def reap(self) -> None:
        while True:
            try:
                got, status = os.waitpid(-1, os.WNOHANG | WALL)
            except ChildProcessError:
                return
            if not got:
                return
            if got != self.tracee:
                self.on_child(WaitStatus(got, status))
            elif not self.gone:
                self.on_status(WaitStatus(got, status))

    def obey(self, command: dict[str, Any]) -> None:
        op = command["op"]
        if op == "resume":
            if command["then"] != "stay":  # be gone before the tracee runs on
                pin_to_cpu(self.cpu)
                become_fifo()
            err = ptrace_errno(command["req"], self.tracee, 0, command.get("sig", 0))
            if not err:
                self.walking = command["req"] == PTRACE_SYSCALL
                self.emulating = command["req"] == PTRACE_SYSEMU
                self.stepping = command["req"] == PTRACE_SINGLESTEP
            self.send(reply=err)
            if command["then"] == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if command["then"] == "exit":
                os._exit(0)
        elif op == "detach":
            self.send(reply=ptrace_errno(PTRACE_DETACH, self.tracee, 0, command.get("sig", 0)))
        elif op == "listen":
            self.send(reply=ptrace_errno(PTRACE_LISTEN, self.tracee))
        elif op == "skip":
            try:
                skip_syscall(self.tracee, -errno.EPERM)
                self.send(reply=0)
            except OSError as exc:
                self.send(reply=exc.errno or errno.EINVAL)
        elif op == "setoptions":
            self.send(reply=ptrace_errno(PTRACE_SETOPTIONS, self.tracee, 0, command["bits"]))
        elif op == "interrupt":
            self.send(reply=ptrace_errno(PTRACE_INTERRUPT, self.tracee))
        elif op == "plan":
            self.plan = {"first": command["first"], "answer": command["answer"]}
            self.send(reply=0)
        elif op == "exit" and command.get("alone"):
            raise _ExitAlone
        elif op == "exit":
            os._exit(0)  # exit_group(): the whole tracer process
        else:
            self.send(reply=errno.EINVAL)

    def main(self, options: int, wake_r: int) -> None:
        """The tracing thread's loop; `wake_r` gets a byte for every SIGCHLD."""
        self.send(reply=ptrace_errno(PTRACE_SEIZE, self.tracee, 0, options))
        ptrace_errno(PTRACE_INTERRUPT, self.tracee)
        while True:
            self.reap()
            readable, _, _ = select.select([self.cmd_r, wake_r], [], [], 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            if self.cmd_r in readable:
                try:
                    for command in self.commands.read_ready():
                        self.obey(command)
                except _ExitAlone:
                    self.left_alone = True
                    return  # the thread ends; its process lives on
                if self.commands.eof:
                    return


class _ExitAlone(Exception):
    """The tracing thread is told to exit by itself."""


def _tracer_process(tracer: _Tracer, options: int) -> int:
    """The tracer child. A thread of its own traces, so that the tracer can
    also be a thread that exits while its process lives on (no group exit),
    which the cover letter counts as the tracer exiting. The main thread only
    sets up SIGCHLD's wake-up (a main thread's job in Python) and waits."""
    wake_r, wake_w = _pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)  # written by whichever thread takes the signal
    thread = threading.Thread(target=tracer.main, args=(options, wake_r))
    thread.start()
    thread.join()
    while tracer.left_alone:  # until the test kills what is left of it
        signal.pause()
    return 0


def is_marked(nr: int | None, args: tuple[int | None, int | None]) -> bool:
    """The tracee's marked call: getppid() with a marker, or the shell's kill -0."""
    if nr == NR.getppid:
        return args[1] in MARKERS
    return nr == NR.kill and args[0] is not None and args[0] & 0xFFFFFFFF in KILL_MARKERS


# ---------------------------------------------------------- the test's side


class Child:
    """A child of the test: its pid and the read end of its alive pipe."""

    def __init__(self, pid: int, alive_r: int) -> None:
        self.pid, self.alive_r = pid, alive_r
        self.status: int | None = None

    def gone(self) -> bool:
        if self.status is not None:
            return True
        readable, _, _ = select.select([self.alive_r], [], [], 0)
        return bool(readable) and not os.read(self.alive_r, 1)

    def reap(self, timeout: float = TIMEOUT) -> int | None:
        """Collect the exit status (waitpid may have to wait for a tracer's wait)."""
        deadline = time.monotonic() + timeout
        while self.status is None:
            try:
                got, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return None
            if got:
                self.status = status
                break
            if time.monotonic() > deadline:
                return None
            time.sleep(0.001)
        return self.status

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.reap()
        _close(self.alive_r)


def _spawn(body: Callable[[int], int | None], close_in_parent: tuple[int, ...]) -> Child:
    """Fork `body` (given the write end of its alive pipe), then close the
    parent's copies of the fds made for the child."""
    alive_r, alive_w = _pipe()

    def child() -> int | None:
        _close(alive_r)
        return body(alive_w)

    pid = fork_child(child)
    _close(alive_w, *close_in_parent)
    return Child(pid, alive_r)


def describe_status(status: int | None) -> str:
    if status is None:
        return "gone (status unknown)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return KILLED if sig == signal.SIGKILL else f"killed by {signal.Signals(sig).name}"
    return f"exited {os.WEXITSTATUS(status)}"


class World:
    """The tracee, its tracer (if any) and what they have reported."""

    def __init__(self, cpu: int) -> None:
        self.cpu = cpu
        self.tracee: Child | None = None
        self.tracer: Child | None = None
        self.events: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []  # the tracee's result lines not yet seen
        self.kill_message = ""  # the shell's last error message
        self.child_seen: list[str] = []  # what the tracer saw of an auto-attached task
        self.child_done = False
        self.tracee_dead = False
        # The kernel log since this tracee started: only its own kills' records.
        self.kernel_log: KmsgCursor | None = None
        self.expecting = QUIET  # what the model predicts for what is observed now
        two_writes()  # mapped before the tracee and tracer fork: both know where

    # -- tracee

    def start_tracee(self) -> None:
        cmd_r, self.cmd_w = _pipe(nonblocking_read=False)
        self.res_r, res_w = _pipe()
        self.results = LineReader(self.res_r)
        self.lines = []
        test_pid = os.getpid()
        self.kernel_log = KmsgCursor()
        self.tracee = _spawn(
            lambda alive_w: _tracee_main(self.cpu, cmd_r, res_w, alive_w, test_pid),
            (cmd_r, res_w),
        )
        self.tracee_dead = False

    def settle(self) -> None:
        """Wait until the idle tracee sleeps in its read ("S"): under PTRACE_SYSCALL
        it passes through stops the tracer steps over on its way there."""
        assert self.tracee is not None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                stat = Path(f"/proc/{self.tracee.pid}/stat").read_text()
            except OSError:
                return
            if stat.rsplit(")", 1)[1].split()[0] == "S":
                return
            time.sleep(0.001)

    def tracee_syscall(self, traced: bool) -> None:
        os.write(self.cmd_w, b"t" if traced else b"p")

    def tracee_pair(self) -> None:
        """Two traced getppid()s back to back."""
        os.write(self.cmd_w, b"2")

    def tracee_spawn(self, kind: str) -> None:
        """A fork ("fork") or a thread ("thread") that makes the traced call."""
        os.write(self.cmd_w, b"f" if kind == "fork" else b"T")

    def tracee_exec(self) -> None:
        os.write(self.cmd_w, b"x")

    # -- tracer

    def start_tracer(self, options: int) -> int:
        assert self.tracee is not None
        cmd_r, self.tr_cmd_w = _pipe()
        self.evt_r, evt_w = _pipe()
        self.tracer_events = LineReader(self.evt_r)
        tracee = self.tracee.pid
        self.tracer = _spawn(
            lambda _alive_w: _tracer_process(_Tracer(tracee, self.cpu, cmd_r, evt_w), options),
            (cmd_r, evt_w),
        )
        return self._reply()

    def command(self, **command: Any) -> int | None:
        """Send a command to the tracer; its errno, None if it is gone."""
        assert self.tracer is not None
        os.write(self.tr_cmd_w, json.dumps(command).encode() + b"\n")
        if command["op"] == "exit":
            self.tracer_gone()
            return None
        return self._reply()

    def tracer_thread_exits(self) -> None:
        """The tracing thread exits alone; once it is gone (its task with it,
        which exit_notify() releases after the ptrace unlink), the rest of the
        tracer process is killed."""
        assert self.tracer is not None
        os.write(self.tr_cmd_w, json.dumps({"op": "exit", "alone": True}).encode() + b"\n")
        tasks = Path(f"/proc/{self.tracer.pid}/task")
        deadline = time.monotonic() + TIMEOUT
        while sum(1 for _ in tasks.iterdir()) > 1:
            if time.monotonic() > deadline:
                raise TimeoutError("the tracing thread did not end")
            time.sleep(0.001)
        self.kill_tracer()

    def kill_tracer(self) -> None:
        assert self.tracer is not None
        os.kill(self.tracer.pid, signal.SIGKILL)
        self.tracer_gone()

    def tracer_gone(self) -> None:
        """Wait for the tracer to be gone; keep what it said before."""
        assert self.tracer is not None
        readable, _, _ = select.select([self.tracer.alive_r], [], [], TIMEOUT)
        if not readable:
            raise TimeoutError("the tracer did not end")
        self.tracer.reap()
        self._route(self.tracer_events.read_ready())
        self.tracer.kill()
        _close(self.tr_cmd_w, self.evt_r)
        self.tracer = None

    def _reply(self) -> int:
        assert self.tracer is not None
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = None
            for message in self.tracer_events.read_ready():
                if "reply" in message and reply is None:
                    reply = int(message["reply"])
                else:
                    self._route([message])  # a stop may come in the same read
            if reply is not None:
                return reply
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.tracer_events.eof:
                raise TimeoutError("the tracer did not answer")
            select.select([self.evt_r], [], [], remaining)

    # -- what happened

    def _sources(self) -> list[int]:
        fds = []
        if self.tracee is not None and not self.tracee_dead:
            fds += [self.res_r, self.tracee.alive_r]
        if self.tracer is not None:
            fds.append(self.evt_r)
        return fds

    def _route(self, messages: list[dict[str, Any]]) -> None:
        """The tracer's reports: the tracee's, or an auto-attached task's."""
        for message in messages:
            if "reply" in message:
                continue
            if message["ev"] == "child":
                self.child_seen.append(message["text"])
            elif message["ev"] == "child-done":
                self.child_done = True
            else:
                self.events.append(message)

    def _next_seen(self) -> str | None:
        """The first thing already reported, if any (does not wait)."""
        if self.tracer is not None:
            self._route(self.tracer_events.read_ready())
        while self.events:
            event = self.events.pop(0)
            if event["ev"] == "gone":
                if self.tracee_dead:
                    continue  # already seen through the alive pipe
                return self._tracee_died()
            return stop_text(event["sig"], event["event"], event["op"])
        if self.tracee is None or self.tracee_dead:
            return None
        self.lines += self.results.read_ready()
        while self.lines:
            text = self._result_text(self.lines.pop(0))
            if text is not None:
                return text
        if self.tracee.gone():
            return self._tracee_died()
        return None

    def _result_text(self, result: dict[str, Any]) -> str | None:
        """A result line as the model says it; None for the shell's error
        message, which goes with the status line after it."""
        if "text" in result:
            self.kill_message = result["text"]
            return None
        if "exec" in result:
            return EXECED
        if "kill" in result:
            return self._kill_text(result["kill"])
        seen = [f"{name} handled" for name in result.get("signals", [])]
        if "spawned" in result:
            seen.append(self._spawn_text(result))
        elif "ret" in result:
            seen.append(call_text("getppid", result["ret"], result["errno"], result["expect"]))
            if result.get("x7", X7_MARKER) != X7_MARKER:
                seen[-1] += f" with x7 changed to {result['x7']:#x}"
        elif "rets" in result:  # a pair's raw return values: -errno on failure
            for raw in result["rets"]:
                call = SyscallResult.from_raw(raw)
                seen.append(call_text("getppid", call.value, call.errno, result["expect"]))
        # else: a signal handled while waiting for a command
        return ", ".join(seen)

    def _spawn_text(self, result: dict[str, Any]) -> str:
        parts = []
        if result["child"]:  # a child killed first has no result
            child = result["child"]
            parts.append(call_text("getppid", child["ret"], child["errno"], child["expect"]))
        if result["spawned"] == "fork":
            parts.append(self._death_text(result["pid"], result["status"]))
            return "child: " + ", ".join(parts)
        return "thread: " + ", ".join(parts)

    def _kill_text(self, status: int) -> str:
        message, self.kill_message = self.kill_message, ""
        if status == 0:
            return "kill returned 0"
        for code in KILL_ERRNOS:
            if os.strerror(code) in message:  # ESRCH: it ran, on a pid that does not exist
                return f"kill {RAN_R}" if code == errno.ESRCH else f"kill failed {errno_name(code)}"
        return f"kill failed: {message or status}"

    def _tracee_died(self) -> str:
        assert self.tracee is not None
        self.tracee_dead = True
        return self._death_text(self.tracee.pid, self.tracee.reap())

    def _death_text(self, pid: int, status: int | None) -> str:
        """How a process ended; for a SIGKILL, also whether seccomp logged it."""
        text = describe_status(status)
        if text != KILLED or self.kernel_log is None:
            return text
        # Waiting out the full timeout only where the model predicts a record.
        timeout = TIMEOUT if KILLED_LOGGED in self.expecting else LOG_GRACE
        return KILLED_LOGGED if self.kernel_log.wait_for(seccomp_kill_of(pid), timeout) else text

    def observe_child(self) -> str:
        """What the tracer saw of an auto-attached task, until it was done with it."""
        deadline = time.monotonic() + TIMEOUT
        while not self.child_done:
            assert self.tracer is not None
            self._route(self.tracer_events.read_ready())
            remaining = deadline - time.monotonic()
            if self.child_done or remaining <= 0:
                break
            select.select([self.evt_r], [], [], remaining)
        seen = ", ".join(self.child_seen) if self.child_done else f"{QUIET} within {TIMEOUT} s"
        if not self.child_done and self.child_seen:
            seen = ", ".join(self.child_seen) + f", then {seen}"
        self.child_seen, self.child_done = [], False
        return seen

    def stray_child(self) -> str | None:
        """Anything the tracer saw of a new task when none was expected."""
        if self.tracer is not None:
            self._route(self.tracer_events.read_ready())
        if not self.child_seen:
            return None
        seen = "new task: " + ", ".join(self.child_seen)
        self.child_seen, self.child_done = [], False
        return seen

    def plan(self, first: tuple[int, str] | None, answer: tuple[int, str] | None) -> int:
        """How the tracer handles an auto-attached task: (request, its name) or None: detach."""
        return self.command(op="plan", first=first, answer=answer) or 0

    def observe(self, expect: str) -> str:
        """What the kernel did: wait for the next thing if the model expects
        one, else only look at what is already there."""
        self.expecting = expect
        seen = self._next_seen()
        if seen is not None or expect == QUIET:
            return seen or QUIET
        deadline = time.monotonic() + TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"{QUIET} within {TIMEOUT} s"
            select.select(self._sources(), [], [], remaining)
            seen = self._next_seen()
            if seen is not None:
                return seen

    def close(self) -> None:
        # nothing of these processes may be blamed on the next ones
        self.events.clear()
        self.lines.clear()
        self.child_seen, self.child_done, self.kill_message = [], False, ""
        if self.tracer is not None:
            self.tracer.kill()
            _close(self.tr_cmd_w, self.evt_r)
            self.tracer = None
        if self.tracee is not None:
            self.tracee.kill()
            _close(self.cmd_w, self.res_r)
            self.tracee = None
        if self.kernel_log is not None:
            self.kernel_log.close()
            self.kernel_log = None
