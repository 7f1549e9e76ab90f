"""Fault injection on kernels already built for the matrix: each fault must get
the right failure class, exit code and report entry, other results intact."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import ARCHES, ROOT, MatrixRun

pytestmark = pytest.mark.e2e
FAULT_TESTS = Path(__file__).parent / "faults" / "guest"
ARCH = ARCHES[0]


@dataclass(frozen=True)
class FaultRun:
    exit_code: int
    stderr: str
    cell: dict[str, Any]
    directory: Path

    def outcomes(self) -> dict[str, str]:
        """Test name -> outcome, as the cell's JUnit file reports them."""
        outcomes = {}
        for case in ET.parse(self.directory / "junit.xml").getroot().iter("testcase"):
            kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
            verdict = {"failure": "failed", "error": "error", "skipped": "skipped"}
            outcomes[case.get("name", "")] = verdict[kinds[0]] if kinds else "passed"
        return outcomes


def harness(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip


def run_fault(tmp_path: Path, keyword: str, *extra: str) -> FaultRun:
    results = tmp_path / "run"
    completed = harness(
        "test", "--arch", ARCH, "--variant", "baseline", "--no-selftests",
        "--guest-tests", str(FAULT_TESTS), "-k", keyword, "--results", str(results), *extra,
    )  # fmt: skip
    summary = json.loads((results / "summary.json").read_text())
    return FaultRun(
        completed.returncode, completed.stderr, summary["cells"][0], results / f"{ARCH}-baseline"
    )


def test_panic_is_classified_and_earlier_results_kept(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    run = run_fault(tmp_path, "available_before or sysrq_crash")
    assert run.exit_code == 7, run.stderr
    assert run.cell["status"] == "kernel_panic"
    assert run.outcomes() == {
        "test_sysrq_is_available_before_the_fault": "passed",
        "test_sysrq_crash_panics_the_kernel": "error",
    }
    panics = [r for r in run.cell["kernel_reports"] if r["kind"] == "panic"]
    assert panics and panics[0]["test"].endswith("test_sysrq_crash_panics_the_kernel")
    assert "sysrq triggered crash" in panics[0]["title"]


def test_a_panic_after_the_guest_was_done_fails_the_cell(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    """Every test passed and the guest sent pytest's end; the kernel panicked after
    that, before the guest powered off. The cell is a panic, with no test to blame."""
    run = run_fault(tmp_path, "available_before or panic_after_the_session_ends")
    assert run.exit_code == 7, run.stderr
    assert run.cell["status"] == "kernel_panic"
    assert run.outcomes() == {
        "test_sysrq_is_available_before_the_fault": "passed",
        "test_panic_after_the_session_ends": "passed",
    }
    panics = [r for r in run.cell["kernel_reports"] if r["kind"] == "panic"]
    assert panics and "sysrq triggered crash" in panics[0]["title"], run.cell["kernel_reports"]
    assert not panics[0].get("test"), panics[0]


def test_warning_fails_the_test_that_was_running(matrix_run: MatrixRun, tmp_path: Path) -> None:
    run = run_fault(tmp_path, "available_before or lkdtm_warning or still_works")
    assert run.exit_code == 8, run.stderr
    assert run.cell["status"] == "kernel_warning"
    assert run.outcomes() == {
        "test_sysrq_is_available_before_the_fault": "passed",
        "test_lkdtm_warning": "failed",
        "test_userspace_still_works_after_the_fault": "passed",
    }
    warnings = [r for r in run.cell["kernel_reports"] if r["kind"] == "warning"]
    assert warnings and warnings[0]["test"].endswith("test_lkdtm_warning")
    assert "lkdtm" in warnings[0]["excerpt"].lower()
    assert "lkdtm_WARNING" in warnings[0]["decoded"]
    assert run.cell["tainted"] & 512  # TAINT_WARN, read back from the guest


@pytest.mark.parametrize(
    ("fault", "kind", "title"),
    [
        ("lkdtm_hung_task", "hung_task", "blocked for more than"),
        ("lkdtm_softlockup", "soft_lockup", "soft lockup"),
        ("lkdtm_bug", "bug", "kernel BUG at"),
    ],
)
def test_a_report_class_fails_the_test_that_provoked_it(
    matrix_run: MatrixRun, tmp_path: Path, fault: str, kind: str, title: str
) -> None:
    """Each report class the base config can give, provoked for real: exit 8, the
    report attributed to its test, the tests around it intact."""
    run = run_fault(tmp_path, f"available_before or {fault} or still_works")
    assert run.exit_code == 8, run.stderr
    assert run.cell["status"] == "kernel_warning"
    assert run.outcomes() == {
        "test_sysrq_is_available_before_the_fault": "passed",
        f"test_{fault}": "failed",
        "test_userspace_still_works_after_the_fault": "passed",
    }
    reports = [r for r in run.cell["kernel_reports"] if r["kind"] == kind]
    assert reports, run.cell["kernel_reports"]
    assert reports[0]["test"].endswith(f"test_{fault}")
    assert title in reports[0]["title"]
    keep = Path(__file__).parent / "data" / f"console-{ARCH}-{fault.replace('_', '-')}.log"
    if os.environ.get("HARNESS_RECORD_CONSOLES"):  # how tests/data's copies were made
        shutil.copyfile(run.directory / "console.log", keep)


def test_hang_is_killed_and_reported(matrix_run: MatrixRun, tmp_path: Path) -> None:
    run = run_fault(tmp_path, "available_before or hangs_forever", "--test-timeout", "3")
    assert run.exit_code == 9, run.stderr
    assert run.cell["status"] == "guest_hang"
    assert "test_hangs_forever" in run.cell["reason"]
    assert run.outcomes()["test_sysrq_is_available_before_the_fault"] == "passed"


def test_patch_that_does_not_apply_names_patch_file_and_hunk(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    series = tmp_path / "broken-series"
    shutil.copytree(ROOT / "patches" / "ptrace-seccomp", series)
    first = sorted(series.glob("0001-*.patch"))[0]
    text = first.read_text()
    # Corrupt a context line of the first hunk so that it cannot apply.
    hunk = text.index("\n@@ ")
    context = text.index("\n ", hunk + 1)
    first.write_text(text[: context + 2] + "no such context line" + text[context + 2 :])
    results = tmp_path / "run"
    completed = harness(
        "build", "--arch", ARCH, "--variant", "patched", "--series", str(series),
        "--results", str(results),
    )  # fmt: skip
    assert completed.returncode == 4, completed.stderr
    cell = json.loads((results / "summary.json").read_text())["cells"][0]
    assert cell["status"] == "patch_failed"
    assert f"{first.name}: hunk #1 of " in cell["reason"]
    assert cell["stages"]["build"]["status"] == "not_run"


def test_option_with_unmet_dependency_names_it(matrix_run: MatrixRun, tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "kernel-configs", configs)
    (configs / "selinux.config").write_text("CONFIG_SECURITY_SELINUX=y\n")
    results = tmp_path / "run"
    completed = harness(
        "build", "--arch", ARCH, "--variant", "baseline", "--configs", str(configs),
        "--feature", "seccomp", "--feature", "selinux", "--results", str(results),
    )  # fmt: skip
    assert completed.returncode == 3, completed.stderr
    cell = json.loads((results / "summary.json").read_text())["cells"][0]
    assert cell["status"] == "config_failed"
    assert "CONFIG_SECURITY_SELINUX=y" in cell["reason"]
    # Every cell has NET and INET (the live VM needs them) and AUDIT (seccomp's
    # records): what is missing is this one.
    assert cell["reason"].endswith("(unmet: SECURITY_NETWORK=n)"), cell["reason"]
    assert cell["stages"]["build"]["status"] == "not_run"


def _default_sigint() -> None:
    """Ctrl-C as a terminal gives it, even when this suite runs in the background:
    a shell starts background jobs with SIGINT ignored, and exec keeps that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_interrupt_stops_qemu_and_leaves_nothing_behind(
    matrix_run: MatrixRun, tmp_path: Path
) -> None:
    results = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "test", "--arch", ARCH, "--variant", "baseline",
         "--no-selftests", "--guest-tests", str(FAULT_TESTS), "-k", "hangs_forever",
         "--results", str(results)],
        cwd=ROOT, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
    )  # fmt: skip
    console = results / f"{ARCH}-baseline" / "console.log"
    deadline = time.monotonic() + 180
    while "harness: test-start" not in (
        console.read_text(errors="replace") if console.exists() else ""
    ):
        assert process.poll() is None and time.monotonic() < deadline, "the guest never started"
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    # QEMU's command line names the run directory: nothing of this run is left.
    leftover = subprocess.run(["pgrep", "-f", str(results)], capture_output=True, text=True)
    assert leftover.stdout == ""
    assert not list(results.rglob("*.partial"))
    # The work dir's lock went with the process: the next run is not refused.
    again = harness(
        "test", "--arch", ARCH, "--variant", "baseline", "--no-selftests",
        "--guest-tests", str(FAULT_TESTS), "-k", "available_before",
        "--results", str(tmp_path / "again"),
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
