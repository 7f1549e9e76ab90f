"""kcidb.json from recorded runs, validated by KCIDB's own library (kcidb-io from PyPI)."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import ROOT
from kcidb_io import schema
from run_samples import CELLS, copy_sample_run, fail_stage, set_test_outcome, update_cell

from harness.cli.main import main
from harness.core.arches import ARCHES, get_arch
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.vocabulary import Outcome, Variant
from harness.core.workdir import WorkDir
from harness.kernel import kconfig
from harness.kernel.series import parse_series
from harness.kernel.source import KernelSource
from harness.results import kcidb, kcidb_paths, kcidb_tests
from harness.results.model import GUEST_SUITE, Cell, StageState
from harness.results.model import TestOutcome as Result
from harness.results.rundir import load_run, read_junit
from harness.run.cellbuild import CellBuilder
from harness.run.config import Prepared, RunConfig
from harness.run.summary import run_matrix

ORIGIN = "test_lab"
TESTS_PER_CELL = 193  # 94 guest tests and 99 upstream selftests in the sample run
NEWEST = schema.LATEST  # the newest schema version the installed kcidb-io ships
SERIES = ROOT / "patches" / "ptrace-seccomp"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return copy_sample_run(tmp_path / "run")


def document(run_dir: Path, origin: str = ORIGIN) -> dict[str, Any]:
    """kcidb.json written for the run directory, after validating it against the newest
    schema: every test here checks a valid document."""
    written = json.loads(kcidb.write_kcidb(run_dir, origin).read_text())
    NEWEST.validate_exactly(written)
    return written


def by_key(data: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Objects by their id without the origin and run key."""
    return {item["id"].split("/", 1)[1]: item for item in data[kind]}


def test_the_document_declares_the_newest_schema_kcidb_io_ships() -> None:
    assert (kcidb.SCHEMA_VERSION["major"], kcidb.SCHEMA_VERSION["minor"]) == (
        NEWEST.major, NEWEST.minor
    )  # fmt: skip
    assert NEWEST.is_compatible_exactly({"version": kcidb.SCHEMA_VERSION})


def test_a_real_run_is_two_checkouts_four_builds_and_every_test(run_dir: Path) -> None:
    data = document(run_dir)
    assert NEWEST.is_compatible_exactly(data)
    assert [len(data[kind]) for kind in ("checkouts", "builds", "tests")] == [
        2, 4, 4 * (TESTS_PER_CELL + 2)  # each cell's tests, its boot and its kernel log
    ]  # fmt: skip
    checkout_ids = [c["id"] for c in data["checkouts"]]
    build_ids = [b["id"] for b in data["builds"]]
    assert {b["checkout_id"] for b in data["builds"]} == set(checkout_ids)
    assert {t["build_id"] for t in data["tests"]} == set(build_ids)
    for kind in ("checkouts", "builds", "tests"):
        ids = [item["id"] for item in data[kind]]
        assert len(set(ids)) == len(ids)
        assert all(item["origin"] == ORIGIN and item["id"].startswith(f"{ORIGIN}:")
                   for item in data[kind])  # fmt: skip
    assert [b["id"].split("/", 1)[1] for b in data["builds"]] == list(CELLS)
    assert [b["architecture"] for b in data["builds"]] == ["x86_64", "x86_64", "arm64", "arm64"]
    assert all(b["status"] == "PASS" for b in data["builds"])
    statuses = {t["status"] for t in data["tests"]}
    assert statuses == {"PASS", "SKIP"}
    skips = sum(t["status"] == "SKIP" for t in data["tests"])
    assert skips == 41 + 1 + 41 + 0  # as the sample's JUnit files say


def test_checkouts_carry_the_tree_the_version_and_the_series(run_dir: Path) -> None:
    baseline, patched = document(run_dir)["checkouts"]
    assert baseline["id"].endswith("/baseline") and patched["id"].endswith("/patched")
    assert baseline["patchset_hash"] == ""  # no patches applied
    assert "patchset_hash" not in patched  # the sample's summary.json predates it
    assert baseline["tree_name"] == patched["tree_name"] == "debian"
    assert patched["comment"] == (
        "Linux 6.12.117 (debian-package 6.12.117-1~deb12u1) + ptrace-seccomp (6 patches)"
    )
    assert patched["misc"]["series_hash"] == (
        "7c31b9646e0e55f2912bf3cf9e5230f357652924e56ccc4d4228019a36d79b55"
    )
    assert len(patched["misc"]["patches"]) == 6
    assert baseline["valid"] is patched["valid"] is True


def test_builds_carry_config_hash_config_file_compiler_and_duration(run_dir: Path) -> None:
    (run_dir / "x86_64-patched" / "config").write_text("CONFIG_SECCOMP=y\n")
    builds = by_key(document(run_dir), "builds")
    patched = builds["x86_64-patched"]
    config_url = (run_dir / "x86_64-patched" / "config").resolve().as_uri()
    assert patched["output_files"] == [{"name": ".config", "url": config_url}]
    assert patched["config_url"] == config_url
    assert patched["misc"]["config_hash"] == (
        "9209773a175850cc8296fc3784e48f0b61dcf638f2af0e32c033f51792e10cff"
    )
    assert patched["compiler"] == "gcc (Debian 12.2.0-14+deb12u1) 12.2.0"
    assert patched["duration"] == pytest.approx(5.896 + 206.647)  # config and build stages
    assert patched["log_url"].endswith("/x86_64-patched/build.log")
    assert "output_files" not in builds["arm64-patched"]  # no config kept: no output file


def test_tests_have_stable_paths_durations_and_environment(run_dir: Path) -> None:
    tests = by_key(document(run_dir), "tests")
    detach = tests["x86_64-patched/test_detach_kill.py::test_detach_at_stop_kills[SIGCHLD]"]
    assert detach["path"] == "ptrace_seccomp.detach_kill.test_detach_at_stop_kills.SIGCHLD"
    assert detach["status"] == "PASS" and detach["duration"] == pytest.approx(0.021)
    assert detach["environment"]["comment"] == "QEMU x86_64 (tcg)"
    assert detach["environment"]["misc"]["qemu"].startswith("QEMU emulator version 7.2")
    assert detach["log_url"].endswith("/x86_64-patched/console.log")
    skipped = tests["x86_64-baseline/test_detach_kill.py::test_detach_at_stop_kills[SIGCHLD]"]
    assert skipped["status"] == "SKIP"
    assert skipped["log_excerpt"] == "Skipped: kernel has no PTRACE_SECCOMP (0x4213 -> EIO)"
    kcmp = tests["arm64-baseline/seccomp_bpf::global.kcmp"]
    assert kcmp["path"] == "kselftest.seccomp.seccomp_bpf.global.kcmp"
    assert "duration" not in kcmp  # TAP gives no time: none is better than a false 0
    boot = tests["arm64-patched/boot"]
    assert (boot["path"], boot["status"]) == ("boot", "PASS") and boot["duration"] > 0
    assert tests["arm64-patched/kernel_log"]["status"] == "PASS"


def test_the_same_run_dir_gives_the_same_ids_wherever_it_is(tmp_path: Path) -> None:
    first = document(copy_sample_run(tmp_path / "here"))
    second = document(copy_sample_run(tmp_path / "there" / "copied"))
    for kind in ("checkouts", "builds", "tests"):
        assert [i["id"] for i in first[kind]] == [i["id"] for i in second[kind]]
    assert first["checkouts"][0]["id"].startswith(f"{ORIGIN}:e2e-")


def test_another_run_with_the_same_run_id_gets_other_ids(run_dir: Path, tmp_path: Path) -> None:
    """CI names every job's run dir after its cell: the run id alone would collide."""
    other = copy_sample_run(tmp_path / "other")
    stages = json.loads((other / "x86_64-patched" / "cell.json").read_text())["stages"]
    stages["build"]["seconds"] = 198.5
    update_cell(other, "x86_64-patched", stages=stages)
    assert load_run(run_dir).run_id == load_run(other).run_id == "e2e"
    ids, other_ids = ({b["id"] for b in document(d)["builds"]} for d in (run_dir, other))
    assert not ids & other_ids


def test_the_origin_names_every_object(run_dir: Path) -> None:
    data = document(run_dir, "my_ci_2")
    for kind in ("checkouts", "builds", "tests"):
        assert all(i["origin"] == "my_ci_2" and i["id"].startswith("my_ci_2:") for i in data[kind])
    assert kcidb.origin_problem("my_ci_2") == ""
    for bad in ("My-CI", "", "a:b", "lab ci"):
        assert "lower-case letters, digits and '_'" in kcidb.origin_problem(bad)


# -- the schema's library refuses what is not KCIDB ----------------------------------------


def test_a_broken_document_fails_validation(run_dir: Path) -> None:
    valid = document(run_dir)
    breakages = {
        "a status KCIDB does not know": ("tests", 0, "status", "XFAIL"),
        "an id without its origin": ("builds", 0, "id", "x86_64-patched"),
        "a path with a parameter's brackets": ("tests", 5, "path", "a.test_x[SIGUSR1]"),
        "an origin with a dash": ("checkouts", 0, "origin", "kernel-series-harness"),
    }
    for why, (kind, index, key, value) in breakages.items():
        broken = copy.deepcopy(valid)
        broken[kind][index][key] = value
        with pytest.raises(jsonschema.exceptions.ValidationError):
            NEWEST.validate_exactly(broken)
        assert not NEWEST.is_valid(broken), why
    broken = copy.deepcopy(valid)
    del broken["builds"][0]["checkout_id"]  # a build must name its checkout
    assert not NEWEST.is_valid(broken)


# -- statuses, deliberately mapped ----------------------------------------------------------


def test_test_outcomes_map_to_kcidb_statuses(run_dir: Path) -> None:
    failure = "def test_x():\n>       assert status == 9\nE       AssertionError: #9"
    set_test_outcome(run_dir, "x86_64-patched", "test_detach_at_stop_kills[SIGUSR1]", "failed",
                     failure)  # fmt: skip
    set_test_outcome(run_dir, "x86_64-patched", "global.kcmp", "error", "no result: guest hang")
    junit = run_dir / "arm64-patched" / "junit.xml"
    set_test_outcome(run_dir, "arm64-patched", "global.kcmp", "skipped")
    junit.write_text(junit.read_text().replace(
        '<skipped message="" />',
        '<skipped type="xfail" message="expected failure: known bug #12">kcmp failed</skipped>',
    ))  # fmt: skip
    tests = by_key(document(run_dir), "tests")
    failed = tests["x86_64-patched/test_detach_kill.py::test_detach_at_stop_kills[SIGUSR1]"]
    assert failed["status"] == "FAIL"
    assert failed["log_excerpt"] == failure
    assert tests["x86_64-patched/seccomp_bpf::global.kcmp"]["status"] == "ERROR"
    expected = tests["arm64-patched/seccomp_bpf::global.kcmp"]
    assert expected["status"] == "FAIL"  # the code failed; that it was known is triage
    assert expected["misc"]["expected_failure"] == "expected failure: known bug #12"
    assert expected["log_excerpt"] == "kcmp failed"


def test_a_build_failure_fails_the_build_and_runs_no_tests(run_dir: Path) -> None:
    fail_stage(run_dir, "arm64-baseline", "build", "build_failed", "build failed: make: error 2")
    errors = "kernel/seccomp.c:12:1: error: expected ';' before '}' token"
    update_cell(run_dir, "arm64-baseline", excerpts={"build": errors}, tests={})
    for name in ("boot", "test"):
        stages = json.loads((run_dir / "arm64-baseline" / "cell.json").read_text())["stages"]
        stages[name] = {"status": "not_run", "seconds": 0.0, "message": ""}
        update_cell(run_dir, "arm64-baseline", stages=stages)
    (run_dir / "arm64-baseline" / "junit.xml").unlink()
    fail_stage(run_dir, "arm64-patched", "build", "infra",
               "build timed out after 3600 s (--build-timeout)")  # fmt: skip
    data = document(run_dir)
    builds = by_key(data, "builds")
    failed = builds["arm64-baseline"]
    assert failed["status"] == "FAIL"
    assert failed["log_excerpt"] == f"build failed: make: error 2\n{errors}"
    assert failed["misc"]["cell_status"] == "build_failed"
    assert builds["arm64-patched"]["status"] == "ERROR"  # infra: the code's state is unknown
    assert not [t for t in data["tests"] if "/arm64-baseline/" in t["id"]]


def test_a_series_that_does_not_apply_invalidates_its_checkout(run_dir: Path) -> None:
    message = "0003-ptrace.patch does not apply: kernel/ptrace.c, hunk 2"
    for cell in ("x86_64-patched", "arm64-patched"):
        fail_stage(run_dir, cell, "patch", "patch_failed", message)
        stages = json.loads((run_dir / cell / "cell.json").read_text())["stages"]
        for name in ("config", "build", "boot", "test"):
            stages[name] = {"status": "not_run", "seconds": 0.0, "message": ""}
        update_cell(run_dir, cell, stages=stages, tests={}, config_hash=None)
        (run_dir / cell / "junit.xml").unlink()
    data = document(run_dir)
    checkouts = by_key(data, "checkouts")
    assert checkouts["patched"]["valid"] is False
    assert checkouts["patched"]["log_excerpt"] == message
    assert checkouts["baseline"]["valid"] is True
    builds = by_key(data, "builds")
    assert builds["x86_64-patched"]["status"] == "SKIP"  # nothing to build
    assert "duration" not in builds["x86_64-patched"]
    assert builds["x86_64-baseline"]["status"] == "PASS"
    assert len(data["tests"]) == 2 * (TESTS_PER_CELL + 2)  # the baseline cells' only


def test_boot_failures_and_kernel_reports(run_dir: Path) -> None:
    fail_stage(run_dir, "x86_64-baseline", "boot", "boot_timeout", "no userspace in 120 s")
    fail_stage(run_dir, "arm64-baseline", "boot", "infra", "QEMU exited before the banner")
    report = {"kind": "warning", "title": "WARNING: CPU: 0 PID: 1 at kernel/ptrace.c:99",
              "test": "", "line": 42, "excerpt": "WARNING: CPU: 0 PID: 1 at kernel/ptrace.c:99"
              "\nCall Trace:\n ptrace_request+0x1/0x2"}  # fmt: skip
    update_cell(run_dir, "x86_64-patched", status="kernel_warning", kernel_reports=[report])
    update_cell(run_dir, "arm64-patched", tainted=512)
    tests = by_key(document(run_dir), "tests")
    timed_out = tests["x86_64-baseline/boot"]
    assert timed_out["status"] == "FAIL"
    assert timed_out["log_excerpt"].startswith("no userspace in 120 s\n")  # then the console
    assert tests["arm64-baseline/boot"]["status"] == "MISS"  # QEMU's fault, not the kernel's
    warned = tests["x86_64-patched/kernel_log"]
    assert warned["status"] == "FAIL" and tests["x86_64-patched/boot"]["status"] == "PASS"
    assert warned["log_excerpt"].startswith("kernel warning: WARNING: CPU: 0 PID: 1 at")
    assert "ptrace_request+0x1/0x2" in warned["log_excerpt"]
    assert tests["arm64-patched/kernel_log"]["status"] == "FAIL"
    assert "kernel tainted (flags 512)" in tests["arm64-patched/kernel_log"]["log_excerpt"]
    assert tests["x86_64-baseline/kernel_log"]["status"] == "PASS"


def test_build_statuses_for_stages_that_never_ran(run_dir: Path) -> None:
    never = {"status": "not_run", "seconds": 0.0, "message": ""}
    reused = {"status": "reused", "seconds": 0.0, "message": ""}
    stages = json.loads((run_dir / "x86_64-patched" / "cell.json").read_text())["stages"]
    update_cell(run_dir, "x86_64-patched", stages={**stages, "config": reused, "build": reused})
    # `harness test`: the kernel was built by an earlier run; its config hash says so.
    update_cell(run_dir, "arm64-patched", stages={**stages, "config": never, "build": never})
    update_cell(run_dir, "x86_64-baseline", status="interrupted", config_hash=None,
                stages={name: never for name in stages})  # fmt: skip
    builds = by_key(document(run_dir), "builds")
    assert builds["x86_64-patched"]["status"] == "PASS"
    assert builds["arm64-patched"]["status"] == "PASS"
    assert builds["x86_64-baseline"]["status"] == "MISS"


# -- paths and text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodeid", "suite", "path"),
    [
        ("test_ptrace_seccomp.py::test_entry_stop[plain-sigtrap]", GUEST_SUITE,
         "ptrace_seccomp.ptrace_seccomp.test_entry_stop.plain-sigtrap"),
        ("test_model.py::test_model_generated", GUEST_SUITE,
         "ptrace_seccomp.model.test_model_generated"),
        ("races/test_fail_closed_races.py::TestRace::test_exit[rep3-SIGUSR1]", GUEST_SUITE,
         "ptrace_seccomp.races.fail_closed_races.TestRace.test_exit.rep3-SIGUSR1"),
        ("seccomp_bpf::TRACE_syscall.ptrace.syscall_faked", "seccomp_bpf",
         "kselftest.seccomp.seccomp_bpf.TRACE_syscall.ptrace.syscall_faked"),
        ("seccomp_bpf::series:global.ptrace_seccomp", "seccomp_bpf",
         "kselftest.seccomp.seccomp_bpf_series.global.ptrace_seccomp"),
        ("ptrace::vmaccess.global.attach", "ptrace", "kselftest.ptrace.vmaccess.global.attach"),
        ("ptrace::peeksiginfo", "ptrace", "kselftest.ptrace.peeksiginfo"),
        ("ptrace::series:get_syscall_info.global.get_syscall_info", "ptrace",
         "kselftest.ptrace.get_syscall_info_series.global.get_syscall_info"),
        ("ptrace::vmaccess.<missing>", "ptrace", "kselftest.ptrace.vmaccess.missing-769b89"),
    ],
)  # fmt: skip
def test_paths_of_guest_tests_and_selftests(nodeid: str, suite: str, path: str) -> None:
    assert kcidb_paths.test_path(Result(nodeid, suite, Outcome.PASSED)) == path


def test_odd_names_become_valid_paths_that_stay_apart() -> None:
    names = ["test_x.py::test_y[1.5]", "test_x.py::test_y[1 5]", "test_x.py::test_y[a/b]",
             "test_x.py::test_y[]", "seccomp_bpf::<missing>", "test_ü.py::test_ß[ü]"]  # fmt: skip
    paths = [kcidb_paths.test_path(Result(n, "seccomp_bpf" if n.startswith("seccomp") else
                                         GUEST_SUITE, Outcome.PASSED)) for n in names]  # fmt: skip
    assert all(NEWEST.path_re.fullmatch(path) for path in paths), paths
    assert len(set(paths)) == len(paths)
    assert paths[0].startswith("ptrace_seccomp.x.test_y.1_5-")
    assert paths[4].startswith("kselftest.seccomp.seccomp_bpf.missing-")


def test_a_long_failure_keeps_its_end_within_the_schema_limit(run_dir: Path) -> None:
    lines = "\n".join(f"line {n} " + "x" * 1000 for n in range(39)) + "\nE   the last line"
    set_test_outcome(run_dir, "x86_64-patched", "global.kcmp", "failed", lines)
    tests = by_key(document(run_dir), "tests")  # validated: maxLength holds
    text = tests["x86_64-patched/seccomp_bpf::global.kcmp"]["log_excerpt"]
    assert len(text) == kcidb_tests.MAX_EXCERPT and text.startswith("[...]\n")
    assert text.endswith("E   the last line")


def test_patchset_hash_is_kcidbs_sha256_of_the_patches_sha256s(tmp_path: Path) -> None:
    patches = []
    for name, body in (("0001-a.patch", b"--- a\n+++ b\n"), ("0002-b.patch", b"diff\n")):
        (tmp_path / name).write_bytes(body)
        patches.append(tmp_path / name)
    # sha256sum *.patch | cut -c-64 | sha256sum
    lines = "".join(hashlib.sha256(p.read_bytes()).hexdigest() + "\n" for p in patches)
    assert kcidb.patchset_hash(patches) == hashlib.sha256(lines.encode()).hexdigest()
    assert kcidb.patchset_hash([]) == ""


def test_a_recorded_patchset_hash_goes_into_the_patched_checkout(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["series"]["patchset_hash"] = "ab" * 32
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert by_key(document(run_dir), "checkouts")["patched"]["patchset_hash"] == "ab" * 32


def test_a_cell_json_with_results_nul_and_all(run_dir: Path) -> None:
    """A cell written with every result in its JSON (format 2), as runs write them now;
    a NUL a test printed is escaped, since KCIDB's text fields refuse it."""
    results = [
        Result("test_x.py::test_nul", GUEST_SUITE, Outcome.FAILED, "E   got \x00 back", "",
               0.5).to_json(),
        Result("seccomp_bpf::global.kcmp", "seccomp_bpf", Outcome.PASSED).to_json(),
    ]  # fmt: skip
    update_cell(run_dir, "arm64-patched", results=results, format=2)
    tests = by_key(document(run_dir), "tests")
    cell_tests = sorted(key for key in tests if key.startswith("arm64-patched/"))
    assert cell_tests == ["arm64-patched/boot", "arm64-patched/kernel_log",
                          "arm64-patched/seccomp_bpf::global.kcmp",
                          "arm64-patched/test_x.py::test_nul"]  # fmt: skip
    failed = tests["arm64-patched/test_x.py::test_nul"]
    assert failed["log_excerpt"] == "E   got \\x00 back" and failed["duration"] == 0.5


# -- written at the end of a run (--kcidb) --------------------------------------------------


@pytest.fixture
def one_cell_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[RunConfig, Prepared]:
    """A run of x86_64 patched whose build is faked from the sample: nothing is built or
    booted, the end of the run is real."""
    sample = copy_sample_run(tmp_path / "sample")

    def fake_build_cell(self: CellBuilder, arch: object, variant: str, run_dir: Path) -> Cell:
        data = json.loads((sample / f"x86_64-{variant}" / "cell.json").read_text())
        cell = Cell(ARCHES["x86_64"], Variant(variant), status=Status.PASS)
        for name, stage in cell.stages.items():
            stage.state, stage.seconds = StageState.PASS, data["stages"][name]["seconds"]
        cell.facts.update(toolchain=data["toolchain"], config_hash=data["config_hash"])
        cell_dir = run_dir / f"x86_64-{variant}"
        cell_dir.mkdir(parents=True)
        shutil.copy(sample / f"x86_64-{variant}" / "junit.xml", cell_dir)
        cell.results = read_junit(cell_dir / "junit.xml", f"x86_64.{variant}")
        (cell_dir / "cell.json").write_text(json.dumps(cell.to_json()))
        return cell

    monkeypatch.setattr(CellBuilder, "build_cell", fake_build_cell)
    config = RunConfig(
        arches=[get_arch("x86_64")], variants=[Variant.PATCHED], series_dir=SERIES,
        config_dir=tmp_path / "configs", guest_tests=tmp_path / "guest-tests",
        work=WorkDir(tmp_path / "work"), results_dir=tmp_path / "results",
    )  # fmt: skip
    prepared = Prepared(
        source=KernelSource(tmp_path / "linux", "6.12.117", "debian-package", "6.12.117-1"),
        series=parse_series(SERIES), merged={"x86_64": kconfig.MergedConfig()},
        index=kconfig.KconfigIndex(tmp_path),
    )  # fmt: skip
    return config, prepared


def test_a_run_with_kcidb_writes_kcidb_json(
    one_cell_run: tuple[RunConfig, Prepared], tmp_path: Path
) -> None:
    config, prepared = one_cell_run
    config = dataclasses.replace(config, kcidb=True, kcidb_origin="nightly_lab")
    stream = io.StringIO()
    run_matrix(config, prepared, "20250101-120000", Progress(stream, live=False))
    path = tmp_path / "results" / kcidb.KCIDB_NAME
    assert f"KCIDB: {path}" in stream.getvalue() and "warning" not in stream.getvalue()
    data = json.loads(path.read_text())
    NEWEST.validate_exactly(data)
    assert [len(data[kind]) for kind in ("checkouts", "builds", "tests")] == [1, 1, 195]
    assert data["builds"][0]["id"].startswith("nightly_lab:20250101-120000-")
    assert data["builds"][0]["id"].endswith("/x86_64-patched")
    # summary.json records KCIDB's patchset hash of the series the run applied:
    # sha256sum patches/ptrace-seccomp/0*.patch | cut -c-64 | sha256sum
    series = parse_series(SERIES)
    lines = "".join(hashlib.sha256(p.path.read_bytes()).hexdigest() + "\n" for p in series.patches)
    assert data["checkouts"][0]["patchset_hash"] == hashlib.sha256(lines.encode()).hexdigest()
    assert data["checkouts"][0]["misc"]["series_hash"] == series.content_hash()


def test_a_run_without_kcidb_writes_none(
    one_cell_run: tuple[RunConfig, Prepared], tmp_path: Path
) -> None:
    config, prepared = one_cell_run
    run_matrix(config, prepared, "r1", Progress(io.StringIO(), live=False))
    assert (tmp_path / "results" / "summary.json").is_file()
    assert not (tmp_path / "results" / kcidb.KCIDB_NAME).exists()


def test_a_merge_of_cells_run_apart_writes_the_one_runs_kcidb_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report --merge --kcidb`: the four cells run as four jobs, merged, give the objects
    the one run gives (under the merged run's own ids)."""
    whole = copy_sample_run(tmp_path / "whole")
    summary = json.loads((whole / "summary.json").read_text())
    parts = []
    for cell in summary["cells"]:
        name = f"{cell['arch']}-{cell['variant']}"
        part = tmp_path / "jobs" / name  # as CI names it: --results results/<cell>
        shutil.copytree(whole / name, part / name)
        alone = {
            **summary,
            "run_id": name,
            "status": cell["status"],
            "differences": {},
            "arches": [cell["arch"]],
            "variants": [cell["variant"]],
            "cells": [cell],
        }
        (part / "summary.json").write_text(json.dumps(alone))
        parts.append(str(part))
    merged = tmp_path / "merged"
    argv = [
        "report",
        "--merge",
        *parts,
        "--results",
        str(merged),
        "--kcidb",
        "--kcidb-origin",
        "ci_verdict",
    ]
    assert main(argv) == 0
    assert str(merged / kcidb.KCIDB_NAME) in capsys.readouterr().out.splitlines()
    merged_data = json.loads((merged / kcidb.KCIDB_NAME).read_text())
    NEWEST.validate_exactly(merged_data)
    one_run = document(whole, "ci_verdict")

    def content(data: dict[str, Any], kind: str) -> list[tuple[str, str, str]]:
        return sorted(
            (
                item["id"].split("/", 1)[1],
                item.get("path", ""),
                item.get("status", str(item.get("valid"))),
            )
            for item in data[kind]
        )

    for kind in ("checkouts", "builds", "tests"):
        assert content(merged_data, kind) == content(one_run, kind)
    assert merged_data["builds"][0]["id"].startswith("ci_verdict:merged-")
