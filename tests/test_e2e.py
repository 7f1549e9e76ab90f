"""End to end: really patch, build, boot and test the matrix, once per session.

Every test here reads the one run made by the `matrix_run` fixture (in
conftest.py); set HARNESS_E2E_ARCHES (e.g. "x86_64") to run fewer arches,
or deselect the end-to-end tests with `-m "not e2e"`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import ARCHES, MatrixRun

from harness.core.kselftests import COLLECTIONS
from harness.kernel.selftest_tap import is_series_case, parse_tap, results_of

pytestmark = pytest.mark.e2e


def test_every_cell_builds_boots_and_passes(matrix_run: MatrixRun) -> None:
    statuses = {f"{c['arch']}/{c['variant']}": c["status"] for c in matrix_run.summary["cells"]}
    assert statuses == {f"{a}/{v}": "pass" for a in ARCHES for v in ("baseline", "patched")}, (
        matrix_run.output[-3000:]
    )
    assert matrix_run.exit_code == 0
    assert matrix_run.summary["status"] == "pass"


@pytest.mark.parametrize("arch", ARCHES)
def test_summary_records_versions_hashes_and_stage_times(matrix_run: MatrixRun, arch: str) -> None:
    for variant in ("baseline", "patched"):
        cell = matrix_run.cell(arch, variant)
        assert cell["kernel_version"].startswith("6.12")
        assert cell["kernel_release"] == cell["kernel_version"]
        assert len(cell["config_hash"]) == 64
        assert cell["toolchain"].startswith(("gcc", "aarch64-linux-gnu-gcc", "x86_64"))
        assert cell["qemu"].startswith("QEMU emulator")
        for stage in ("patch", "boot", "test"):
            assert cell["stages"][stage]["status"] == "pass", (stage, cell["stages"][stage])
        # With a warm work dir the kernel of the same build key is reused.
        for stage in ("config", "build"):
            assert cell["stages"][stage]["status"] in ("pass", "reused"), cell["stages"][stage]
        assert len(cell["build_key"]) == 64
        assert cell["accel"] in ("kvm", "tcg")
        assert cell["tainted"] == 0
    assert matrix_run.cell(arch, "baseline")["series_hash"] is None
    assert len(matrix_run.cell(arch, "patched")["series_hash"]) == 64


@pytest.mark.parametrize("arch", ARCHES)
def test_guest_results_reach_the_host_as_junit(matrix_run: MatrixRun, arch: str) -> None:
    for variant in ("baseline", "patched"):
        cell_dir = matrix_run.directory / f"{arch}-{variant}"
        suite = ET.parse(cell_dir / "junit.xml").getroot().find("testsuite")
        assert suite is not None
        assert suite.get("name") == f"{arch}.{variant}"
        assert int(suite.get("tests", "0")) == matrix_run.cell(arch, variant)["tests"]["total"] > 0
        assert suite.get("failures") == "0" and suite.get("errors") == "0"
        console = (cell_dir / "console.log").read_text(errors="replace")
        assert "HARNESS: userspace up" in console
        assert (cell_dir / "qemu.sh").read_text().startswith("#!/bin/sh")
        assert (cell_dir / "build.log").stat().st_size > 0


@pytest.mark.parametrize("arch", ARCHES)
def test_ptrace_seccomp_runs_on_patched_and_skips_on_baseline(
    matrix_run: MatrixRun, arch: str
) -> None:
    baseline = matrix_run.outcomes(arch, "baseline")
    patched = matrix_run.outcomes(arch, "patched")
    patch_only = [n for n in patched if n.startswith("test_ptrace_seccomp.py::")]
    assert patch_only
    assert all(baseline[n] == "skipped" for n in patch_only)
    assert all(patched[n] in ("passed", "skipped") for n in patch_only)
    # All pass but the arm64-only x7 tests, which skip on x86_64.
    arm64_only = [n for n in patch_only if "arm64_x7" in n]
    assert len(arm64_only) == 2
    skipped = arm64_only if arch == "x86_64" else []
    assert [n for n in patch_only if patched[n] != "passed"] == skipped
    # Mainline behaviour is the same on both kernels.
    mainline = [n for n in baseline if n.startswith("test_return_values.py::")]
    assert mainline and all(baseline[n] == patched[n] for n in mainline)
    # ... and passes, the audit record of SECCOMP_RET_LOG included (CONFIG_AUDIT).
    assert all(baseline[n] == "passed" for n in mainline)
    assert baseline["test_return_values.py::test_log_writes_an_audit_record"] == "passed"


@pytest.mark.parametrize("arch", ARCHES)
def test_upstream_selftests_agree_between_baseline_and_patched(
    matrix_run: MatrixRun, arch: str
) -> None:
    baseline, patched = matrix_run.cell(arch, "baseline"), matrix_run.cell(arch, "patched")
    assert baseline["selftests"]["total"] > 50
    # The seccomp fragment enables everything the suite needs: nothing skipped.
    assert baseline["selftests"]["skipped"] == patched["selftests"]["skipped"] == 0
    # Each tree's own seccomp_bpf: the patched one has the series' cases too.
    tap = (matrix_run.directory / f"{arch}-patched" / "selftests.tap").read_text()
    added = [
        result.nodeid
        for result in results_of(parse_tap(tap))
        if result.nodeid.startswith("seccomp_bpf::ptrace_seccomp.") and result.outcome == "passed"
    ]
    assert len(added) >= 6
    for count in ("total", "passed"):
        assert patched["selftests"][count] == baseline["selftests"][count] + len(added)
    changed = [d["test"] for d in matrix_run.summary["differences"][arch]]
    upstream = [
        name for name in changed if name.startswith("seccomp_bpf::") and not is_series_case(name)
    ]
    assert sorted(upstream) == sorted(added)
    assert all(name.startswith(("test_", "seccomp_bpf::")) for name in changed)


@pytest.mark.parametrize("arch", ARCHES)
def test_the_series_kselftests_skip_on_the_baseline_kernel_and_agree_elsewhere(
    matrix_run: MatrixRun, arch: str
) -> None:
    """The baseline cell also runs the patched tree's seccomp_bpf: its new cases skip
    with the fixture's reason, every other case as in the baseline tree's own run."""
    tap = (matrix_run.directory / f"{arch}-baseline" / "selftests.tap").read_text()
    every = results_of(parse_tap(tap))
    results = {r.nodeid: r for r in every if r.nodeid.startswith("seccomp_bpf::")}
    own = {n: r.outcome for n, r in results.items() if not is_series_case(n)}
    series = {n.replace("::series:", "::"): r for n, r in results.items() if is_series_case(n)}
    new = {n: r for n, r in series.items() if n.startswith("seccomp_bpf::ptrace_seccomp.")}
    assert len(new) >= 6
    assert all(r.outcome == "skipped" and "PTRACE_SECCOMP" in r.message for r in new.values())
    assert {n: r.outcome for n, r in series.items() if n not in new} == own
    counts = matrix_run.cell(arch, "baseline")["selftests_series"]
    assert counts["total"] == len(own) + len(new) and counts["skipped"] == len(new)


@pytest.mark.parametrize("arch", ARCHES)
def test_every_ptrace_selftest_runs_and_agrees_between_baseline_and_patched(
    matrix_run: MatrixRun, arch: str
) -> None:
    """The ptrace collection beside seccomp_bpf: each of its binaries reports, nothing
    skips, and the two kernels give the same outcome to every case (the series changes
    ptrace paths but must keep what mainline's own tests check)."""
    ptrace: dict[str, dict[str, str]] = {}
    for variant in ("baseline", "patched"):
        cell = json.loads((matrix_run.directory / f"{arch}-{variant}" / "cell.json").read_text())
        results = [r for r in cell["results"] if r["suite"] == "ptrace"]
        ptrace[variant] = {r["nodeid"]: r["outcome"] for r in results}
        assert cell["selftest_suites"]["ptrace"]["own"]["total"] == len(results)
    assert ptrace["baseline"] == ptrace["patched"]
    binaries = {name.removeprefix("ptrace::").split(".")[0] for name in ptrace["patched"]}
    assert binaries == set(COLLECTIONS["ptrace"].binaries)
    assert "skipped" not in ptrace["patched"].values()
