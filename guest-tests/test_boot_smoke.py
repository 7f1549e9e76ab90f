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


def cpu_list(text: str) -> set[int]:
    """The kernel's cpulist format ("0-1,4") as a set of CPU numbers."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def read_cpu_list(name: str) -> set[int]:
    return cpu_list(Path(f"/sys/devices/system/cpu/{name}").read_text())


def test_two_cpus_online_for_races() -> None:
    """Every CPU the harness gave the guest (QEMU -smp: the present CPUs) is
    online and ours, and there are at least two: the race tests run tracer
    and tracee on different CPUs. Not a fixed "0-1", so -smp may change."""
    present = read_cpu_list("present")
    assert read_cpu_list("online") == present, f"present CPUs {sorted(present)} not all online"
    assert os.sched_getaffinity(0) == present, "the tests may not run on every CPU"
    assert len(present) >= 2, f"the race tests need two CPUs, the guest has {sorted(present)}"


def test_cpu_list_format() -> None:
    assert cpu_list("0-1\n") == {0, 1}
    assert cpu_list("0") == {0}
    assert cpu_list("0-2,4,6-7") == {0, 1, 2, 4, 6, 7}


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


def test_the_guest_waits_as_long_as_the_host_asks() -> None:
    """The host's --timeout-factor reaches the guest tests' own waits."""
    from seccomplib.ptrace import DEFAULT_TIMEOUT, timeout_factor

    cmdline = Path("/proc/cmdline").read_text()
    assert "harness.timeout_factor=" in cmdline, cmdline
    assert 5.0 * timeout_factor(cmdline) == DEFAULT_TIMEOUT
    assert timeout_factor("x harness.timeout_factor=2.5 y") == 2.5
    assert timeout_factor("harness.timeout_factor=nan") == 1.0  # nonsense is ignored
