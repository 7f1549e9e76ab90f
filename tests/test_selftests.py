from __future__ import annotations

from pathlib import Path

from conftest import ROOT

from harness.core.kselftests import COLLECTIONS
from harness.kernel.selftest_tap import comparable_outcomes, is_series_case, parse_tap, results_of
from harness.kernel.selftests import selftest_sections, series_directory
from harness.kernel.series import Patch

SECCOMP = COLLECTIONS["seccomp"]
SOURCE = SECCOMP.directory / "seccomp_bpf.c"


def test_recorded_seccomp_bpf_tap(data_dir: Path) -> None:
    outputs = parse_tap((data_dir / "seccomp_bpf-one-failure.tap").read_text())
    results = results_of(outputs)
    assert [o.planned for o in outputs] == [99]
    assert len(results) == 99
    outcomes = {r.nodeid: r.outcome for r in results}
    assert outcomes["seccomp_bpf::global.kcmp"] == "passed"
    assert outcomes["seccomp_bpf::global.user_notification_addfd_send_interrupted"] == "failed"
    assert sum(o == "passed" for o in outcomes.values()) == 98


def test_directives_and_truncated_output() -> None:
    text = (
        "TAP version 13\n1..4\n"
        "ok 1 global.a\n"
        "ok 2 global.b # SKIP needs CONFIG_X\n"
        "ok 3 TRACE_syscall.ptrace.skip # XFAIL arm32 does not support it\n"
        "# RUN global.d ...\n"
    )
    [output] = parse_tap(text)
    assert (output.planned, output.missing()) == (4, 1)
    results = results_of([output])
    assert [(r.nodeid, r.outcome) for r in results] == [
        ("seccomp_bpf::global.a", "passed"),
        ("seccomp_bpf::global.b", "skipped"),
        ("seccomp_bpf::TRACE_syscall.ptrace.skip", "skipped"),
    ]
    assert results[1].message == "SKIP: needs CONFIG_X"


def test_each_binary_names_its_cases_by_the_mark_before_its_output() -> None:
    tap = "\n".join([
        "# harness-selftest: seccomp_bpf", "TAP version 13", "1..2",
        "ok 1 global.kcmp", "ok 2 global.mode_strict_support",
        "# harness-selftest: seccomp_bpf.series", "TAP version 13", "1..2",
        "ok 1 global.kcmp", "ok 2 ptrace_seccomp.request # SKIP no PTRACE_SECCOMP (EIO)",
    ])  # fmt: skip
    outputs = parse_tap(tap)
    assert [o.planned for o in outputs] == [2, 2]
    results = results_of(outputs)
    assert [(r.nodeid, r.outcome) for r in results] == [
        ("seccomp_bpf::global.kcmp", "passed"),
        ("seccomp_bpf::global.mode_strict_support", "passed"),
        ("seccomp_bpf::series:global.kcmp", "passed"),
        ("seccomp_bpf::series:ptrace_seccomp.request", "skipped"),
    ]
    assert [is_series_case(r.nodeid) for r in results] == [False, False, True, True]


SERIES = ROOT / "patches" / "ptrace-seccomp"


def test_only_the_selftest_hunks_of_a_patch_are_kept() -> None:
    patches = {p.name[:4]: p.read_text() for p in SERIES.glob("000[1-6]-*.patch")}
    kselftests = selftest_sections(patches["0005"], 1, SECCOMP.directory)
    assert kselftests.startswith("diff --git a/tools/testing/selftests/seccomp/seccomp_bpf.c")
    assert "kernel/seccomp.c" not in kselftests and not kselftests.endswith("-- \n")
    assert selftest_sections(patches["0002"], 1, SECCOMP.directory) == ""
    assert selftest_sections(patches["0005"], 1, COLLECTIONS["ptrace"].directory) == ""


def _fake_patch(path: Path, old: str, new: str) -> Patch:
    path.write_text(
        "Subject: a change\n---\n"
        "diff --git a/kernel/a.c b/kernel/a.c\n--- a/kernel/a.c\n+++ b/kernel/a.c\n"
        "@@ -1 +1 @@\n-int a;\n+int a = 1;\n"
        f"diff --git a/{SOURCE} b/{SOURCE}\n--- a/{SOURCE}\n+++ b/{SOURCE}\n"
        f"@@ -1 +1 @@\n-{old}\n+{new}\n-- \n2.39.5\n"
    )
    return Patch(path)


def test_the_series_source_is_the_pristine_file_with_the_series_hunks(tmp_path: Path) -> None:
    pristine = tmp_path / "linux"
    (pristine / SOURCE).parent.mkdir(parents=True)
    (pristine / SOURCE).write_text("int cases;\n")
    first = _fake_patch(tmp_path / "0001.patch", "int cases;", "int cases = 1;")
    second = _fake_patch(tmp_path / "0002.patch", "int cases = 1;", "int cases = 2;")
    scratch, log = tmp_path / "scratch", tmp_path / "log"
    directory = series_directory(pristine, [first, second], SECCOMP, scratch, log)
    assert directory is not None
    made = directory / "seccomp_bpf.c"
    assert made.read_text() == "int cases = 2;\n"
    assert (pristine / SOURCE).read_text() == "int cases;\n"  # the tree is never touched
    # The same content again keeps the file, and so the binary, as it was.
    stamp = made.stat().st_mtime_ns
    assert series_directory(pristine, [first, second], SECCOMP, scratch, log) == directory
    assert made.stat().st_mtime_ns == stamp
    assert series_directory(pristine, [], SECCOMP, scratch, log) is None


def test_the_series_binary_stands_for_the_baseline_case_beside_the_patched_cell() -> None:
    baseline = {
        "seccomp_bpf::global.kcmp": "passed",
        "seccomp_bpf::series:global.kcmp": "passed",
        "seccomp_bpf::series:ptrace_seccomp.request": "skipped",
        "test_a.py::test_b": "skipped",
    }
    assert comparable_outcomes(baseline) == {
        "seccomp_bpf::global.kcmp": "passed",
        "seccomp_bpf::ptrace_seccomp.request": "skipped",
        "test_a.py::test_b": "skipped",
    }
    # Without the series binary nothing changes.
    own = {"seccomp_bpf::global.kcmp": "failed"}
    assert comparable_outcomes(own) == own
