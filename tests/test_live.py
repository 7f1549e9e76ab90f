"""The live VM for real: boot a matrix kernel with --ssh, run a few guest tests
in it, edit a test and run again without a reboot, then stop it, leaving no QEMU."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ARCHES, ROOT, MatrixRun

pytestmark = pytest.mark.e2e
ARCH = ARCHES[0]
VARIANT = "patched"
SMOKE = "runs_on_a_supported_arch or two_cpus_online or filter_mode_is_built_in"
WORK = Path(os.environ.get("HARNESS_WORK_DIR", ROOT / ".work"))


def harness(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv, "--arch", ARCH, "--variant", VARIANT],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip


def qemu_alive(pid: int) -> bool:
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


@pytest.fixture
def live_vm(matrix_run: MatrixRun, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A live VM of the matrix's kernel booted with a copy of the guest tests; stopped after."""
    tests = tmp_path / "guest-tests"
    shutil.copytree(ROOT / "guest-tests", tests, ignore=shutil.ignore_patterns("__pycache__"))
    booted = harness("boot", "--ssh", "--guest-tests", str(tests))
    # A boot that fails stops its own QEMU; one that worked leaves its pid here.
    assert booted.returncode == 0, booted.stderr[-3000:]
    pid = int(json.loads((WORK / "live" / f"{ARCH}-{VARIANT}" / "state.json").read_text())["pid"])
    try:
        assert booted.stdout.startswith("ssh -i "), booted.stdout
        yield tests, pid
    finally:
        stopped = harness("boot", "--stop")
        assert stopped.returncode == 0, stopped.stderr
        assert not qemu_alive(pid)


def outcomes(results: Path) -> dict[str, str]:
    records = (results / f"{ARCH}-{VARIANT}" / "results.jsonl").read_text().splitlines()
    return {
        r["nodeid"].split("::")[-1]: r["outcome"]
        for r in map(json.loads, records)
        if r["type"] == "result"
    }


def test_live_run_sees_an_edited_test_without_a_reboot(
    live_vm: tuple[Path, int], tmp_path: Path
) -> None:
    tests, pid = live_vm
    first = harness("test", "--live", "--guest-tests", str(tests), "-k", SMOKE,
                    "--results", str(tmp_path / "first"))  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert outcomes(tmp_path / "first") == {
        "test_runs_on_a_supported_arch": "passed",
        "test_two_cpus_online_for_races": "passed",
        "test_seccomp_filter_mode_is_built_in": "passed",
    }
    assert (tmp_path / "first" / f"{ARCH}-{VARIANT}" / "junit.xml").is_file()
    # Edit one test so that it fails, and add a new one: only that file goes in.
    smoke = tests / "test_boot_smoke.py"
    smoke.write_text(
        smoke.read_text().replace("len(present) >= 2", "len(present) >= 8")
        + "\n\ndef test_added_while_the_vm_runs() -> None:\n    assert True\n"
    )
    second = harness("test", "--live", "--guest-tests", str(tests), "-k",
                     f"{SMOKE} or added_while", "--results", str(tmp_path / "second"))  # fmt: skip
    assert second.returncode == 1, second.stderr[-3000:]
    assert "copied 1 changed file(s), removed 0" in second.stderr
    assert outcomes(tmp_path / "second") == {
        "test_runs_on_a_supported_arch": "passed",
        "test_two_cpus_online_for_races": "failed",
        "test_seccomp_filter_mode_is_built_in": "passed",
        "test_added_while_the_vm_runs": "passed",
    }
    assert "FAILED  test_boot_smoke.py::test_two_cpus_online_for_races" in second.stderr
    assert qemu_alive(pid)  # the same VM: no reboot in between
