"""Guest tests that break the guest on purpose, for the harness's own fault tests.

tests/test_faults.py boots kernels already built for the matrix with this
directory as the guest tests and selects a few of these with -k. They are
never part of guest-tests/.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

LKDTM = Path("/sys/kernel/debug/provoke-crash/DIRECT")


def test_sysrq_is_available_before_the_fault() -> None:
    assert Path("/proc/sysrq-trigger").exists()


def test_lkdtm_warning() -> None:
    # LKDTM prints a WARN with a full report; the write itself succeeds.
    LKDTM.write_text("WARNING\n")
    assert LKDTM.exists()


def test_sysrq_crash_panics_the_kernel() -> None:
    Path("/proc/sysrq-trigger").write_text("c")
    raise AssertionError("the kernel survived sysrq c")


def test_hangs_forever() -> None:
    time.sleep(3600)
    raise AssertionError("woke up after an hour")


def test_userspace_still_works_after_the_fault() -> None:
    assert os.uname().sysname == "Linux"


def _provoke_in_a_child(fault: str, sysctl: str, value: str, wanted: str) -> None:
    """LKDTM's `fault` in a child pinned to CPU 1, which it never leaves; this test
    stays on CPU 0 and returns once the kernel has reported it (`wanted` in kmsg),
    with the detector's threshold lowered through `sysctl` so that takes seconds."""
    Path(f"/proc/sys/kernel/{sysctl}").write_text(value)
    os.sched_setaffinity(0, {0})
    kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(kmsg, 0, os.SEEK_END)
    child = os.fork()
    if child == 0:
        os.sched_setaffinity(0, {1})
        LKDTM.write_text(f"{fault}\n")
        os._exit(0)  # never reached: the write does not return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            line = os.read(kmsg, 8192).decode(errors="replace")
        except BlockingIOError:
            time.sleep(0.2)
            continue
        if wanted in line:
            return
    raise AssertionError(f"no '{wanted}' in the kernel log within 60 s")


def test_lkdtm_hung_task() -> None:
    # The child sleeps in D state for ever; the detector names it after 1 s.
    _provoke_in_a_child("HUNG_TASK", "hung_task_timeout_secs", "1", "blocked for more than")


def test_lkdtm_softlockup() -> None:
    # The child spins with preemption off on CPU 1; a soft lockup is 2 x 1 s there.
    _provoke_in_a_child("SOFTLOCKUP", "watchdog_thresh", "1", "soft lockup")


def test_lkdtm_bug() -> None:
    # BUG() oopses the writing task; the child dies of it, this test goes on.
    child = os.fork()
    if child == 0:
        LKDTM.write_text("BUG\n")
        os._exit(0)
    _pid, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status), "the child survived BUG()"


def test_panic_after_the_session_ends() -> None:
    # The conftest panics the kernel once pytest has reported its end.
    PANIC_AT_END = Path("/run/harness-fault-panic-at-end")
    PANIC_AT_END.parent.mkdir(exist_ok=True)
    PANIC_AT_END.touch()
