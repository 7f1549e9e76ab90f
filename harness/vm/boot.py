"""Boot a cell in QEMU, watch its console, and collect its records.

Two parts: the ConsoleReader (QEMU under pexpect, the console logged whole as
it arrives, turned into named events) and the BootWatcher (from those events
and the clock, when and how the run ends). Stages are recognised from the
guest init's announcements; results come from the virtio port, never from
the console text.
"""

from __future__ import annotations

import enum
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import pexpect

from harness.core.process import die_with
from harness.core.vocabulary import Accel
from harness.vm.kernellog import PANIC_LINE
from harness.vm.records import GuestRun, read_records

# The line end is part of the pattern: without it a line still arriving
# would match with its `uname -v` cut short.
USERSPACE_UP = re.compile(r"HARNESS: userspace up: (?P<release>\S+) (?P<version>[^\r\n]*)\r*\n")
GUEST_DONE = re.compile(r"HARNESS: guest done")
# pexpect matches while a line is still arriving: without its end, "tainted 512"
# delivered as "5" and "12" would read as 5.
TAINTED = re.compile(r"HARNESS: tainted (?P<flags>\d+)\r*\n")
# Only the kernel's own line, behind its printk timestamp: a guest test that
# prints the words does not stop the guest.
PANIC = PANIC_LINE
KERNEL_BANNER = re.compile(r"Linux version \d")
# The results plugin writes each test's start to /dev/kmsg, so it reaches the console.
TEST_START = re.compile(r"harness: test-start ")


class BootEnd(enum.Enum):
    COMPLETED = "completed"  # the guest ran its tests and powered off
    NO_OUTPUT = "no_output"  # the kernel printed nothing in time (a broken accelerator)
    BOOT_TIMEOUT = "boot_timeout"  # no userspace in time
    PANIC = "panic"
    TEST_HANG = "test_hang"  # a test ran past its timeout
    RUN_TIMEOUT = "run_timeout"  # the whole guest run ran past its timeout
    QEMU_EXITED = "qemu_exited"  # QEMU stopped before the tests finished
    TRANSPORT_LOST = "transport_lost"  # test --live: the SSH session ended before pytest did


# Timeouts are given for a guest at KVM speed; emulation takes this much longer.
ACCEL_TIME_FACTOR = {Accel.KVM: 1.0, Accel.TCG: 3.0}


@dataclass(frozen=True)
class Timeouts:
    first_output: float = 20.0  # to the kernel's banner; only enforced when probing an accelerator
    boot: float = 40.0  # QEMU start to userspace
    test: float = 60.0  # one guest test (or the whole selftest binary) without progress
    run: float = 600.0  # QEMU start to power-off

    def scaled(self, factor: float) -> Timeouts:
        """For a slower guest; the KVM probe's own limit stays as it is."""
        return replace(
            self, boot=self.boot * factor, test=self.test * factor, run=self.run * factor
        )


@dataclass
class BootOutcome:
    end: BootEnd
    guest: GuestRun
    boot_seconds: float | None  # QEMU start to userspace
    total_seconds: float
    kernel_release: str = ""
    kernel_version: str = ""
    detail: str = ""
    tainted: int | None = None  # /proc/sys/kernel/tainted at the end of the run
    first_test_seconds: float | None = None  # QEMU start to the first guest test's start


class _FlushingLog:
    """pexpect's logfile_read: every chunk reaches the console log file at once."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, data: str) -> None:
        self.stream.write(data)
        self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


class Event(enum.Enum):
    """What the console reader saw; TICK is half a second of nothing."""

    USERSPACE_UP = "userspace_up"
    GUEST_DONE = "guest_done"
    PANIC = "panic"
    QEMU_GONE = "qemu_gone"
    TICK = "tick"
    KERNEL_BANNER = "kernel_banner"
    TAINTED = "tainted"
    TEST_START = "test_start"


# The reader's patterns, in pexpect's order of preference, each with its event.
PATTERNS: tuple[tuple[Event, re.Pattern[str] | type[pexpect.EOF] | type[pexpect.TIMEOUT]], ...] = (
    (Event.USERSPACE_UP, USERSPACE_UP),
    (Event.GUEST_DONE, GUEST_DONE),
    (Event.PANIC, PANIC),
    (Event.QEMU_GONE, pexpect.EOF),
    (Event.TICK, pexpect.TIMEOUT),
    (Event.KERNEL_BANNER, KERNEL_BANNER),
    (Event.TAINTED, TAINTED),
    (Event.TEST_START, TEST_START),
)


class ConsoleReader:
    """The transport: QEMU under pexpect, its console logged whole as it arrives,
    read as named events. It decides nothing."""

    def __init__(self, command: list[str], stream: TextIO) -> None:
        self.child = pexpect.spawn(
            command[0],
            command[1:],
            encoding="utf-8",
            codec_errors="replace",
            echo=False,
            timeout=None,
            maxread=65536,
            preexec_fn=die_with(os.getpid()),
        )
        self.child.logfile_read = _FlushingLog(stream)

    def next_event(self, wait: float = 0.5) -> tuple[Event, re.Match[str] | None]:
        index = self.child.expect([pattern for _, pattern in PATTERNS], timeout=wait)
        match = self.child.match if isinstance(self.child.match, re.Match) else None
        return PATTERNS[index][0], match

    def drain(self, seconds: float, cancel: threading.Event | None = None) -> None:
        """Let the guest finish powering off, or a panic finish printing; setting `cancel`
        stops the wait within half a second (KeyboardInterrupt)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=min(left, 0.5)) == 0:
                return
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt("the run was interrupted")

    def close(self) -> str:
        """Stop QEMU; how it exited, in words."""
        self.child.close(force=True)
        return f"QEMU exited (status {self.child.exitstatus}, signal {self.child.signalstatus})"


@dataclass
class BootWatcher:
    """The decisions: from the reader's events and the clock, when and how the run ends.

    A guest counts as making progress while any of its `watched` output files grows.
    """

    timeouts: Timeouts
    watched: tuple[Path, ...]
    require_banner: bool = False
    started: float = 0.0
    end: BootEnd | None = None
    detail: str = ""
    boot_seconds: float | None = None
    release: str = ""
    version: str = ""
    banner_seen: bool = False
    tainted: int | None = None
    first_test: float | None = None
    last_progress: float = 0.0
    last_size: int = 0

    def see(self, event: Event, match: re.Match[str] | None, now: float) -> None:
        """Take one event; sets `end` (and `detail`) once the run is over."""
        if event is Event.TEST_START:
            if self.first_test is None:
                self.first_test = now - self.started
        elif event is Event.TAINTED and match is not None:
            self.tainted = int(match["flags"])
        elif event is Event.KERNEL_BANNER:
            self.banner_seen = True
        elif event is Event.USERSPACE_UP and match is not None:
            self.boot_seconds = now - self.started
            self.release, self.version = match["release"], match["version"].strip()
            self.last_progress = now
        elif event is Event.GUEST_DONE:
            self.end = BootEnd.COMPLETED
        elif event is Event.PANIC:
            self.end, self.detail = BootEnd.PANIC, "kernel panic"
        elif event is Event.QEMU_GONE and self.require_banner and not self.banner_seen:
            self.end = BootEnd.NO_OUTPUT
            self.detail = "QEMU quit before the kernel printed anything"
        elif event is Event.QEMU_GONE:
            self.end = BootEnd.QEMU_EXITED
        else:
            self._check_clock(now)

    def _check_clock(self, now: float) -> None:
        elapsed = now - self.started
        if self.require_banner and not self.banner_seen and elapsed > self.timeouts.first_output:
            self.end = BootEnd.NO_OUTPUT
            self.detail = f"no kernel banner in {self.timeouts.first_output:.0f} s"
        elif self.boot_seconds is None and elapsed > self.timeouts.boot:
            self.end = BootEnd.BOOT_TIMEOUT
            self.detail = f"no userspace after {self.timeouts.boot:.0f} s"
        elif elapsed > self.timeouts.run:
            self.end = BootEnd.RUN_TIMEOUT
            self.detail = f"guest still running after {self.timeouts.run:.0f} s"
        elif self.boot_seconds is not None:
            size = sum(path.stat().st_size for path in self.watched)
            if size != self.last_size:
                self.last_size, self.last_progress = size, now
            elif now - self.last_progress > self.timeouts.test:
                running = read_records(self.watched[0]).running
                self.end = BootEnd.TEST_HANG
                self.detail = f"{running or 'the test session'} ran past {self.timeouts.test:.0f} s"


def boot_and_test(
    command: list[str],
    console_log: Path,
    results_path: Path,
    timeouts: Timeouts,
    require_banner: bool = False,
    extra_outputs: tuple[Path, ...] = (),
    cancel: threading.Event | None = None,
    on_progress: Callable[[GuestRun], None] | None = None,
) -> BootOutcome:
    """Run QEMU until the guest powers off, panics, hangs or times out.

    With `require_banner` (probing an accelerator), a guest whose kernel has
    not printed its banner within `timeouts.first_output` - or a QEMU that
    quits before it - ends as NO_OUTPUT, so the caller can try another.
    Setting `cancel` (Ctrl-C in another thread) stops QEMU within a second
    and raises KeyboardInterrupt here. `on_progress` gets the records so far,
    once a second while the tests run.
    """
    watched = (results_path, *extra_outputs)
    for path in watched:
        path.unlink(missing_ok=True)
        path.touch()
    started = time.monotonic()
    watcher = BootWatcher(timeouts, watched, require_banner, started=started, last_progress=started)
    shown = started
    with console_log.open("w", encoding="utf-8", errors="replace") as stream:
        reader = ConsoleReader(command, stream)
        try:
            while watcher.end is None:
                event, match = reader.next_event()
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt("the run was interrupted")
                now = time.monotonic()
                watcher.see(event, match, now)
                testing = watcher.boot_seconds is not None
                if on_progress is not None and testing and now - shown >= 1.0:
                    shown = now
                    on_progress(read_records(results_path))
            if watcher.end in (BootEnd.COMPLETED, BootEnd.PANIC):
                reader.drain(15, cancel)
        finally:
            exited = reader.close()
            stream.flush()
    if watcher.end is BootEnd.QEMU_EXITED:
        watcher.detail = exited
    assert watcher.end is not None
    return BootOutcome(
        end=watcher.end,
        guest=read_records(results_path),
        boot_seconds=watcher.boot_seconds,
        total_seconds=time.monotonic() - started,
        kernel_release=watcher.release,
        kernel_version=watcher.version,
        detail=watcher.detail,
        tainted=watcher.tainted,
        first_test_seconds=watcher.first_test,
    )
