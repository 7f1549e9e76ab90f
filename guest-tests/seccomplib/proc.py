"""Forked children, pipes between them and the test, and cleanup.

Children are plain os.fork() copies of the test process that run a Python
callable and leave with os._exit(): no new interpreter is ever started, so a
test costs a fork, not an interpreter start-up (TCG guests are slow).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import json
import os
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .ptrace import DEFAULT_TIMEOUT, WALL, WaitStatus, wait_gone

CHILD_CRASHED = 113  # exit code of a child whose body raised


def run_child_body(body: Callable[[], int | None]) -> None:
    """Run `body` in a freshly forked child and never return into the caller."""
    code = CHILD_CRASHED
    # A short-lived child needs no collector, and a collection would touch
    # (and so copy) most of the parent's heap pages.
    gc.disable()
    try:
        result = body()
        code = 0 if result is None else result
    except BaseException:
        with contextlib.suppress(OSError):
            os.write(2, traceback.format_exc().encode())
    finally:
        os._exit(code)


def fork_child(body: Callable[[], int | None]) -> int:
    # Flush so buffered test output is not written twice by the child.
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        run_child_body(body)
    return pid


class Pipe:
    """A pipe the test reads without blocking (children write into it)."""

    def __init__(self, nonblocking_read: bool = True) -> None:
        self.r, self.w = os.pipe()
        if nonblocking_read:
            flags = fcntl.fcntl(self.r, fcntl.F_GETFL)
            fcntl.fcntl(self.r, fcntl.F_SETFL, flags | os.O_NONBLOCK)

    def drain(self) -> bytes:
        """Everything written so far (does not wait)."""
        chunks = []
        while True:
            try:
                chunk = os.read(self.r, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in (self.r, self.w):
            with contextlib.suppress(OSError):
                os.close(fd)


class Gate(Pipe):
    """A one-way start signal: the child blocks in wait() until the test opens it."""

    def __init__(self) -> None:
        super().__init__(nonblocking_read=False)

    def wait(self) -> None:
        # A plain blocking read(2): a ptrace interrupt restarts it transparently.
        if not os.read(self.r, 1):
            raise EOFError("gate closed without opening")

    def open(self, count: int = 1) -> None:
        os.write(self.w, b"g" * count)


class Reporter(Pipe):
    """Child-to-test results as JSON lines, merged into one dict by the test."""

    def __init__(self) -> None:
        super().__init__()
        self._buffer = b""
        self.values: dict[str, Any] = {}

    def send(self, **values: Any) -> None:
        os.write(self.w, json.dumps(values).encode() + b"\n")

    def _absorb(self) -> None:
        self._buffer += self.drain()
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self.values.update(json.loads(line))

    def collect(self) -> dict[str, Any]:
        self._absorb()
        return self.values

    def wait_for(self, key: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            self._absorb()
            if key in self.values:
                return self.values[key]
            if "child_error" in self.values:
                raise AssertionError(self.values["child_error"])
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"child never reported {key!r}; got {self.values}")
            select.select([self.r], [], [], remaining)


def _reap(pid: int, deadline: float) -> str:
    """SIGKILL `pid` if it is still ours and collect every status it owes us.

    waitpid() first: once it says ECHILD the pid is no longer our child or
    tracee (maybe reaped by the test and reused), so it must not be killed.
    Returns "" once that is so, else (at the deadline) what /proc says of it.
    """
    killed = False
    while time.monotonic() < deadline:
        try:
            got, status = os.waitpid(pid, os.WNOHANG | WALL)
        except ChildProcessError:
            return ""
        if got and not os.WIFSTOPPED(status):
            continue  # it ended; the next waitpid() says ECHILD
        if not killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            killed = True
        if not got:
            time.sleep(0.001)
    return describe_task(pid)


def _proc_text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace").strip()
    except OSError as exc:
        return f"<{exc.strerror}>"


def describe_task(pid: int) -> str:
    """pid, state, wchan and kernel stack: where a task that will not die is stuck."""
    status = _proc_text(f"/proc/{pid}/status")
    states = [line for line in status.splitlines() if line.startswith("State:")]
    state = states[0].split(":", 1)[1].strip() if states else status
    wchan = _proc_text(f"/proc/{pid}/wchan") or "0"
    stack = " <- ".join(
        line.split("] ", 1)[-1] for line in _proc_text(f"/proc/{pid}/stack").splitlines()
    )
    return f"pid {pid}: state {state}, wchan {wchan}, stack: {stack or '<empty>'}"


PipeT = TypeVar("PipeT", bound=Pipe)


class Lab:
    """Per-test bookkeeping: children, traced threads and pipes to clean up."""

    def __init__(self) -> None:
        self.pids: list[int] = []
        self.extra: list[int] = []  # traced threads and auto-attached children
        self.pipes: list[Pipe] = []

    def spawn(self, body: Callable[[], int | None]) -> int:
        pid = fork_child(body)
        self.pids.append(pid)
        return pid

    def track(self, tid: int) -> None:
        """Remember a traced thread or grandchild so teardown reaps it."""
        self.extra.append(tid)

    def pipe(self) -> Pipe:
        return self._keep(Pipe())

    def gate(self) -> Gate:
        return self._keep(Gate())

    def reporter(self) -> Reporter:
        return self._keep(Reporter())

    def _keep(self, pipe: PipeT) -> PipeT:
        self.pipes.append(pipe)
        return pipe

    def wait_gone(self, pid: int, timeout: float = DEFAULT_TIMEOUT) -> WaitStatus:
        return wait_gone(pid, timeout)

    def cleanup(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Kill and reap every child; fail naming those still there after `timeout`.

        A tracee that SIGKILL cannot end in time is stuck in the kernel, which
        is how a broken ptrace patch fails: that must fail the test, not leak.
        """
        deadline = time.monotonic() + timeout
        stuck = [
            text
            for pid in [*reversed(self.extra), *reversed(self.pids)]
            if (text := _reap(pid, deadline))
        ]
        for pipe in self.pipes:
            pipe.close()
        if stuck:
            raise AssertionError(
                f"{len(stuck)} task(s) not reaped {timeout} s after SIGKILL: " + "; ".join(stuck)
            )


def thread_gone(tid: int, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """In a child: wait until thread `tid` of this process has disappeared."""
    deadline = time.monotonic() + timeout
    path = Path(f"/proc/self/task/{tid}")
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


def errno_name(err: int) -> str:
    return errno.errorcode.get(err, str(err))
