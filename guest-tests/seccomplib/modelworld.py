"""The real processes behind the model test: a tracee and its tracer.

The test process forks both. The tracee (pinned to one CPU) installs a filter
that sends getppid() with MAGIC_TRACE in args[1] to SECCOMP_RET_TRACE and
allows everything else, then loops: it reads a one-byte command ("t": the
traced getppid, "p": the plain one) and writes the result as a JSON line,
with the signals its SIGUSR1 handler saw on the way; a SIGUSR1 that comes
while it waits for a command gets a JSON line of its own.
The tracer is a separate child so that it can exit; it seizes the tracee,
reports every stop and the tracee's end as JSON events, and carries out
ptrace requests the test sends it as JSON lines, answering with the errno.

Every child also holds the only write end of an "alive" pipe: its end of
file tells the test that the child is gone, without polling waitpid().
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .bpf import ArgEq, Rule, install_filter, trace_action
from .child import MAGIC_PLAIN, MAGIC_TRACE, TRACE_DATA, block_sigchld, getppid_marked
from .model import KILLED, QUIET, RAN, stop_text
from .proc import fork_child
from .ptrace import (
    PTRACE_DETACH,
    PTRACE_EVENT_STOP,
    PTRACE_INTERRUPT,
    PTRACE_LISTEN,
    PTRACE_O_EXITKILL,
    PTRACE_O_TRACESECCOMP,
    PTRACE_O_TRACESYSGOOD,
    PTRACE_SEIZE,
    PTRACE_SETOPTIONS,
    PTRACE_SYSCALL,
    SYSCALL_INFO_ENTRY,
    SYSCALL_INFO_EXIT,
    SYSCALL_INFO_NONE,
    SYSCALL_INFO_SECCOMP,
    SYSGOOD_TRAP,
    WALL,
    WaitStatus,
    get_syscall_arg1,
    get_syscall_nr,
    ptrace_errno,
    siginfo_code,
    skip_syscall,
    syscall_info,
)
from .race import become_fifo, pin_to_cpu
from .syscalls import NR

TIMEOUT = 3.0  # seconds to wait for something the model predicts (TCG is slow)
OP_NAMES = {0: "none", 1: "entry", 2: "exit", 3: "seccomp"}
SIGNAL_STOP = -1  # classify()'s kind for a signal-delivery stop
MARKERS = (MAGIC_TRACE & 0xFFFFFFFFFFFFFFFF, MAGIC_PLAIN & 0xFFFFFFFFFFFFFFFF)


def options_bits(sysgood: bool, traceseccomp: bool, exitkill: bool) -> int:
    return (
        (PTRACE_O_TRACESYSGOOD if sysgood else 0)
        | (PTRACE_O_TRACESECCOMP if traceseccomp else 0)
        | (PTRACE_O_EXITKILL if exitkill else 0)
    )


class LineReader:
    """JSON lines from a non-blocking pipe."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""
        self.eof = False

    def read_ready(self) -> list[dict[str, Any]]:
        while not self.eof:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        return [json.loads(line) for line in lines if line]


def _pipe(nonblocking_read: bool = True) -> tuple[int, int]:
    r, w = os.pipe()
    os.set_blocking(r, not nonblocking_read)
    return r, w


def _close(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# ------------------------------------------------------------- the tracee


def _tracee_main(cpu: int, cmd_r: int, res_w: int) -> int:
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
    install_filter([Rule(NR.getppid, trace_action(TRACE_DATA), (ArgEq(1, MAGIC_TRACE),))])
    while True:
        waiting[0] = True
        command = os.read(cmd_r, 1)
        waiting[0] = False
        if not command:
            return 0
        result = getppid_marked(MAGIC_TRACE if command == b"t" else MAGIC_PLAIN)
        line = {"ret": result.value, "errno": result.errno, "signals": sorted(handled)}
        handled.clear()
        os.write(res_w, json.dumps(line).encode() + b"\n")


# ------------------------------------------------------------- the tracer


class _Tracer:
    """Runs in the tracer child: reports stops, obeys commands."""

    def __init__(self, tracee: int, cpu: int, cmd_r: int, evt_w: int) -> None:
        self.tracee, self.cpu, self.cmd_r, self.evt_w = tracee, cpu, cmd_r, evt_w
        self.walking = False  # last resume was PTRACE_SYSCALL: step over foreign syscalls
        self.ours_entered = False  # the last entry stop was the marked getppid's
        self.in_syscall = False  # between an entry stop and its exit stop
        self.gone = False
        self.commands = LineReader(cmd_r)

    def send(self, **values: Any) -> None:
        os.write(self.evt_w, json.dumps(values).encode() + b"\n")

    def on_status(self, status: WaitStatus) -> None:
        if not status.stopped:
            self.gone = True
            self.send(ev="gone", status=status.status)
            return
        kind, nr, arg1 = self.classify(status)
        if kind == SIGNAL_STOP:  # taken on the way to user mode
            self.in_syscall = False
            self.send(ev="stop", sig=status.stop_sig, event=0, op=f"signal code={arg1}")
            return
        ours = False
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP):
            ours = nr == NR.getppid and arg1 in MARKERS
            self.ours_entered = ours
        elif kind == SYSCALL_INFO_EXIT:
            ours, self.ours_entered = self.ours_entered, False
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP, SYSCALL_INFO_EXIT):
            self.in_syscall = kind != SYSCALL_INFO_EXIT
        elif status.event == PTRACE_EVENT_STOP:
            self.in_syscall = False
        if self.walking and kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT) and not ours:
            # The tracee's own reads and writes under PTRACE_SYSCALL.
            ptrace_errno(PTRACE_SYSCALL, self.tracee)
            return
        op = OP_NAMES.get(kind, str(kind))
        if kind in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_EXIT) and not ours:
            op += f"(foreign nr={nr})"
        self.send(ev="stop", sig=status.stop_sig, event=status.event, op=op)

    def classify(self, status: WaitStatus) -> tuple[int, int | None, int | None]:
        """The stop's PTRACE_GET_SYSCALL_INFO op, syscall number and args[1];
        for a signal-delivery stop SIGNAL_STOP, None and its si_code.

        A syscall stop's siginfo has si_code SIGTRAP (or SIGTRAP|0x80), a
        signal's has its own. Without TRACESYSGOOD the kernel cannot tell a
        syscall-entry stop from an exit stop (op "none"): an exit stop only if
        the tracer resumed an entry with PTRACE_SYSCALL, else an entry stop
        (PTRACE_SECCOMP's included)."""
        if not status.event:
            code = siginfo_code(self.tracee)
            if code not in (signal.SIGTRAP, SYSGOOD_TRAP):
                return SIGNAL_STOP, None, code
        info = syscall_info(self.tracee)
        if info.op != SYSCALL_INFO_NONE or status.stop_sig != signal.SIGTRAP or status.event:
            nr = info.nr if info.op in (SYSCALL_INFO_ENTRY, SYSCALL_INFO_SECCOMP) else None
            return info.op, nr, info.args[1] if info.args else None
        if self.walking and self.in_syscall:
            return SYSCALL_INFO_EXIT, None, None
        return SYSCALL_INFO_ENTRY, get_syscall_nr(self.tracee), get_syscall_arg1(self.tracee)

    def reap(self) -> None:
        while not self.gone:
            try:
                got, status = os.waitpid(self.tracee, os.WNOHANG | WALL)
            except ChildProcessError:
                return
            if not got:
                return
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
        elif op == "exit":
            os._exit(0)
        else:
            self.send(reply=errno.EINVAL)

    def main(self, options: int) -> int:
        wake_r, wake_w = _pipe()
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        self.send(reply=ptrace_errno(PTRACE_SEIZE, self.tracee, 0, options))
        ptrace_errno(PTRACE_INTERRUPT, self.tracee)
        while True:
            self.reap()
            readable, _, _ = select.select([self.cmd_r, wake_r], [], [], 1.0)
            if wake_r in readable:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
            if self.cmd_r in readable:
                for command in self.commands.read_ready():
                    self.obey(command)
                if self.commands.eof:
                    return 0


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


def _spawn(body: Callable[[], int | None], close_in_parent: tuple[int, ...]) -> Child:
    """Fork `body`, then close the parent's copies of the fds made for the child."""
    alive_r, alive_w = _pipe()

    def child() -> int | None:
        _close(alive_r)
        return body()

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
        self.tracee_dead = False

    # -- tracee

    def start_tracee(self) -> None:
        cmd_r, self.cmd_w = _pipe(nonblocking_read=False)
        self.res_r, res_w = _pipe()
        self.results = LineReader(self.res_r)
        self.tracee = _spawn(lambda: _tracee_main(self.cpu, cmd_r, res_w), (cmd_r, res_w))
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

    # -- tracer

    def start_tracer(self, options: int) -> int:
        assert self.tracee is not None
        cmd_r, self.tr_cmd_w = _pipe()
        self.evt_r, evt_w = _pipe()
        self.tracer_events = LineReader(self.evt_r)
        tracee = self.tracee.pid
        self.tracer = _spawn(
            lambda: _Tracer(tracee, self.cpu, cmd_r, evt_w).main(options),
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
        self.events.extend(self.tracer_events.read_ready())
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
                    self.events.append(message)  # a stop may come in the same read
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

    def _next_seen(self) -> str | None:
        """The first thing already reported, if any (does not wait)."""
        if self.tracer is not None:
            self.events.extend(m for m in self.tracer_events.read_ready() if "reply" not in m)
        while self.events:
            event = self.events.pop(0)
            if event["ev"] == "gone":
                if self.tracee_dead:
                    continue  # already seen through the alive pipe
                return self._tracee_died()
            return stop_text(event["sig"], event["event"], event["op"])
        if self.tracee is None or self.tracee_dead:
            return None
        for result in self.results.read_ready():
            return self._result_text(result)
        if self.tracee.gone():
            return self._tracee_died()
        return None

    def _result_text(self, result: dict[str, Any]) -> str:
        seen = [f"{name} handled" for name in result.get("signals", [])]
        if "ret" not in result:  # a signal handled while waiting for a command
            return ", ".join(seen)
        if result["errno"]:
            seen.append(f"getppid failed {errno.errorcode.get(result['errno'], result['errno'])}")
        elif result["ret"] == os.getpid():
            seen.append(RAN)
        else:
            seen.append(f"getppid returned {result['ret']}")
        return ", ".join(seen)

    def _tracee_died(self) -> str:
        assert self.tracee is not None
        self.tracee_dead = True
        return describe_status(self.tracee.reap())

    def observe(self, expect: str) -> str:
        """What the kernel did: wait for the next thing if the model expects
        one, else only look at what is already there."""
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
        self.events.clear()  # nothing of these processes may be blamed on the next ones
        if self.tracer is not None:
            self.tracer.kill()
            _close(self.tr_cmd_w, self.evt_r)
            self.tracer = None
        if self.tracee is not None:
            self.tracee.kill()
            _close(self.cmd_w, self.res_r)
            self.tracee = None
