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
