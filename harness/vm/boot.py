"""Boot a cell in QEMU, watch its console with pexpect, and collect its records.

The console is logged whole as it arrives. Stages are recognised from the
guest init's announcements; results come from the virtio port, never from
the console text.
"""

from __future__ import annotations

import enum
import re
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TextIO

import pexpect

from harness.vm.kernellog import PANIC_LINE
from harness.vm.records import GuestRun, read_records

# The line end is part of the pattern: without it a line still arriving
# would match with its `uname -v` cut short.
USERSPACE_UP = re.compile(r"HARNESS: userspace up: (?P<release>\S+) (?P<version>[^\r\n]*)\r*\n")
GUEST_DONE = re.compile(r"HARNESS: guest done")
TAINTED = re.compile(r"HARNESS: tainted (?P<flags>\d+)")
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
ACCEL_TIME_FACTOR = {"kvm": 1.0, "tcg": 3.0}


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


def boot_and_test(
    command: list[str],
    console_log: Path,
    results_path: Path,
    timeouts: Timeouts,
    require_banner: bool = False,
    extra_outputs: tuple[Path, ...] = (),
    cancel: threading.Event | None = None,
) -> BootOutcome:
    """Run QEMU until the guest powers off, panics, hangs or times out.

    With `require_banner` (probing an accelerator), a guest whose kernel has
    not printed its banner within `timeouts.first_output` - or a QEMU that
    quits before it - ends as NO_OUTPUT, so the caller can try another.
    A guest counts as making progress while any of its output files grows.
    Setting `cancel` (Ctrl-C in another thread) stops QEMU within a second
    and raises KeyboardInterrupt here.
    """
    watched = (results_path, *extra_outputs)
    for path in watched:
        path.unlink(missing_ok=True)
        path.touch()
    started = time.monotonic()
    boot_seconds: float | None = None
    release = version = ""
    end: BootEnd | None = None
    detail = ""
    last_progress = started
    last_record_size = 0
    banner_seen = False
    tainted: int | None = None
    first_test: float | None = None
    with console_log.open("w", encoding="utf-8", errors="replace") as stream:
        log = _FlushingLog(stream)
        child = pexpect.spawn(
            command[0], command[1:], encoding="utf-8", codec_errors="replace",
            echo=False, timeout=None, maxread=65536,
        )  # fmt: skip
        child.logfile_read = log
        try:
            while end is None:
                index = child.expect(
                    [USERSPACE_UP, GUEST_DONE, PANIC, pexpect.EOF, pexpect.TIMEOUT, KERNEL_BANNER,
                     TAINTED, TEST_START],
                    timeout=0.5,
                )  # fmt: skip
                now = time.monotonic()
                if cancel is not None and cancel.is_set():
                    raise KeyboardInterrupt("the run was interrupted")
                if index == 7:
                    if first_test is None:
                        first_test = now - started
                elif index == 6:
                    tainted = int(child.match["flags"])
                elif index == 5:
                    banner_seen = True
                elif index == 0:
                    boot_seconds = now - started
                    release, version = child.match["release"], child.match["version"].strip()
                    last_progress = now
                elif index == 1:
                    end = BootEnd.COMPLETED
                elif index == 2:
                    end, detail = BootEnd.PANIC, "kernel panic"
                elif index == 3 and require_banner and not banner_seen:
                    end, detail = BootEnd.NO_OUTPUT, "QEMU quit before the kernel printed anything"
                elif index == 3:
                    end = BootEnd.QEMU_EXITED
                elif require_banner and not banner_seen and now - started > timeouts.first_output:
                    end = BootEnd.NO_OUTPUT
                    detail = f"no kernel banner in {timeouts.first_output:.0f} s"
                elif boot_seconds is None and now - started > timeouts.boot:
                    end = BootEnd.BOOT_TIMEOUT
                    detail = f"no userspace after {timeouts.boot:.0f} s"
                elif now - started > timeouts.run:
                    end = BootEnd.RUN_TIMEOUT
                    detail = f"guest still running after {timeouts.run:.0f} s"
                elif boot_seconds is not None:
                    size = sum(path.stat().st_size for path in watched)
                    if size != last_record_size:
                        last_record_size, last_progress = size, now
                    elif now - last_progress > timeouts.test:
                        running = read_records(results_path).running
                        end = BootEnd.TEST_HANG
                        detail = f"{running or 'the test session'} ran past {timeouts.test:.0f} s"
            # Let the guest finish powering off, or the panic finish printing.
            if end in (BootEnd.COMPLETED, BootEnd.PANIC):
                child.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=15)
        finally:
            child.close(force=True)
            stream.flush()
    guest = read_records(results_path)
    if end is BootEnd.QEMU_EXITED:
        detail = f"QEMU exited (status {child.exitstatus}, signal {child.signalstatus})"
    return BootOutcome(
        end=end,
        guest=guest,
        boot_seconds=boot_seconds,
        total_seconds=time.monotonic() - started,
        kernel_release=release,
        kernel_version=version,
        detail=detail,
        tainted=tainted,
        first_test_seconds=first_test,
    )
