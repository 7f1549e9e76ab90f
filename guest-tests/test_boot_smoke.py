"""Smoke tests: the guest runs the kernel under test with a working userspace."""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

PR_GET_SECCOMP = 21


def _status_fields() -> dict[str, str]:
    with open("/proc/self/status") as status:
        return dict(line.rstrip("\n").split(":\t", 1) for line in status if ":\t" in line)


def test_runs_on_a_supported_arch() -> None:
    assert platform.machine() in ("x86_64", "aarch64")


def test_two_cpus_online_for_races() -> None:
    with open("/sys/devices/system/cpu/online") as online:
        assert online.read().strip() == "0-1"


def test_seccomp_filter_mode_is_built_in() -> None:
    fields = _status_fields()
    assert fields["Seccomp"].strip() == "0"
    assert "Seccomp_filters" in fields, "CONFIG_SECCOMP_FILTER is off"


def test_prctl_reports_no_seccomp_for_init_children() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) == 0


def test_runs_as_root_in_the_initramfs() -> None:
    assert os.getuid() == 0
    assert Path("/guest-tests").is_dir()
