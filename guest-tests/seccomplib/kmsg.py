"""Kernel log records (/dev/kmsg) written while a test runs, e.g. seccomp's
audit records ("audit: type=1326 ... code=0x7ffc0000")."""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .ptrace import DEFAULT_TIMEOUT

AUDIT_SECCOMP = 1326  # the audit record type of seccomp_log()
_RATELIMIT = Path("/proc/sys/kernel/printk_ratelimit")


def seccomp_record_of(pid: int, syscall_nr: int) -> Callable[[str], bool]:
    """Matches seccomp_log()'s audit record for syscall `syscall_nr` of `pid`."""
    return lambda message: (
        f"type={AUDIT_SECCOMP} " in message
        and f" pid={pid} " in message
        and f" syscall={syscall_nr} " in message
    )


def seccomp_kill_of(pid: int) -> Callable[[str], bool]:
    """Matches a seccomp audit record of a SIGKILL for process `pid`, of any syscall."""
    return lambda message: (
        f"type={AUDIT_SECCOMP} " in message and f" pid={pid} " in message and " sig=9 " in message
    )


def have_audit() -> bool:
    """/proc/PID/loginuid exists only in kernels built with CONFIG_AUDIT."""
    return Path("/proc/self/loginuid").exists()


class KmsgCursor:
    """The messages of the records logged after it was opened, in order."""

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)  # only what comes after this point
        self.seen: list[str] = []

    def _read_new(self) -> None:
        while True:
            try:
                record = os.read(self.fd, 8192)  # one record per read
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten under us: go on
                    continue
                raise
            _prefix, _sep, message = record.decode(errors="replace").partition(";")
            self.seen.append(message.split("\n", 1)[0])

    def wait_for(self, wanted: Callable[[str], bool], timeout: float = DEFAULT_TIMEOUT) -> str:
        """The first new message `wanted` accepts; "" if none came in time."""
        found = self.wait_for_count(wanted, 1, timeout)
        return found[0] if found else ""

    def wait_for_count(
        self, wanted: Callable[[str], bool], count: int, timeout: float = DEFAULT_TIMEOUT
    ) -> list[str]:
        """The new messages `wanted` accepts, once there are `count` of them or
        `timeout` seconds have passed, whichever comes first."""
        deadline = time.monotonic() + timeout
        while True:
            self._read_new()
            found = [message for message in self.seen if wanted(message)]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.01)

    def close(self) -> None:
        os.close(self.fd)


@contextlib.contextmanager
def no_ratelimit() -> Iterator[None]:
    """printk's rate limit off meanwhile.

    Audit records reach the console through printk_ratelimit() (10 per 5 s)
    while no auditd listens, and the kill tests before this one log plenty.
    """
    old = _RATELIMIT.read_text()
    _RATELIMIT.write_text("0")
    try:
        yield
    finally:
        _RATELIMIT.write_text(old)


@contextlib.contextmanager
def watching() -> Iterator[KmsgCursor]:
    """A cursor, with printk's rate limit off meanwhile."""
    with no_ratelimit():
        cursor = KmsgCursor()
        try:
            yield cursor
        finally:
            cursor.close()
