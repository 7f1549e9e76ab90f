from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
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


# -- several collections ------------------------------------------------------------------

PTRACE = COLLECTIONS["ptrace"]


def test_each_binary_names_its_cases_by_its_collection_and_its_exit_status_counts() -> None:
    tap = "\n".join([
        "# harness-selftest: ptrace/get_syscall_info", "TAP version 13", "1..1",
        "ok 1 global.get_syscall_info", "# harness-selftest-exit: 0",
        "# harness-selftest: ptrace/peeksiginfo", "PASS", "# harness-selftest-exit: 0",
        "# harness-selftest: ptrace/vmaccess", "TAP version 13", "1..2",
        "ok 1 global.vmaccess", "# attach: Test terminated by timeout",
        "not ok 2 global.attach", "# harness-selftest-exit: 1",
        "# harness-selftest: seccomp/seccomp_bpf", "TAP version 13", "1..1",
        "ok 1 global.kcmp", "# harness-selftest-exit: 0",
        "# harness-selftest: ptrace/series/vmaccess", "TAP version 13", "1..1",
        "ok 1 global.vmaccess", "# harness-selftest-exit: 0",
        "# harness-selftest: seccomp/series/seccomp_bpf", "TAP version 13", "1..1",
        "ok 1 global.kcmp", "# harness-selftest-exit: 0",
    ])  # fmt: skip
    outputs = parse_tap(tap)
    assert [o.binary.guest_path for o in outputs] == [
        "ptrace/get_syscall_info", "ptrace/peeksiginfo", "ptrace/vmaccess",
        "seccomp/seccomp_bpf", "ptrace/series/vmaccess", "seccomp/series/seccomp_bpf",
    ]  # fmt: skip
    assert [o.exit_status for o in outputs] == [0, 0, 1, 0, 0, 0]
    assert [(r.nodeid, r.outcome) for r in results_of(outputs)] == [
        ("ptrace::get_syscall_info.global.get_syscall_info", "passed"),
        ("ptrace::peeksiginfo", "passed"),  # no TAP: its exit status is its one case
        ("ptrace::vmaccess.global.vmaccess", "passed"),
        ("ptrace::vmaccess.global.attach", "failed"),
        ("seccomp_bpf::global.kcmp", "passed"),
        ("ptrace::series:vmaccess.global.vmaccess", "passed"),
        ("seccomp_bpf::series:global.kcmp", "passed"),
    ]
    series = [is_series_case(r.nodeid) for r in results_of(outputs)]
    assert series == [False] * 5 + [True] * 2


@pytest.mark.parametrize(
    ("lines", "outcome", "message"),
    [
        (["PASS", "# harness-selftest-exit: 0"], "passed", ""),
        (["Only 3 signals were read", "# harness-selftest-exit: 1"], "failed",
         "exit status 1, no TAP result (see the cell's selftests.tap)"),
        (["# harness-selftest-exit: 139"], "failed",
         "killed by signal 11, no TAP result (see the cell's selftests.tap)"),
        (["# harness-selftest-exit: 4"], "skipped", "SKIP: exit status 4 (KSFT_SKIP)"),
        (["TAP version 13", "1..0 # SKIP no PTRACE_GET_SYSCALL_INFO here",
          "# harness-selftest-exit: 4"], "skipped", "SKIP: no PTRACE_GET_SYSCALL_INFO here"),
    ],
)  # fmt: skip
def test_a_binary_that_prints_no_result_is_decided_by_its_exit_status(
    lines: list[str], outcome: str, message: str
) -> None:
    [output] = parse_tap("\n".join(["# harness-selftest: ptrace/peeksiginfo", *lines]))
    [result] = results_of([output])
    assert (result.nodeid, result.outcome, result.message) == (
        "ptrace::peeksiginfo", outcome, message
    )  # fmt: skip


def test_a_binary_the_guest_never_saw_end_is_no_case_but_its_missing_ones() -> None:
    tap = "# harness-selftest: ptrace/vmaccess\nTAP version 13\n1..2\nok 1 global.vmaccess\n"
    [output] = parse_tap(tap)
    assert output.exit_status is None and output.missing() == 1
    assert [r.nodeid for r in results_of([output])] == ["ptrace::vmaccess.global.vmaccess"]
    silent = parse_tap("# harness-selftest: ptrace/peeksiginfo\n")
    assert results_of(silent) == []  # no exit status: the verdict sees nothing reported


def test_the_series_binaries_stand_for_the_baseline_cases_of_every_suite() -> None:
    baseline = {
        "ptrace::vmaccess.global.attach": "failed",
        "ptrace::series:vmaccess.global.attach": "passed",
        "seccomp_bpf::series:global.kcmp": "passed",
        "test_a.py::test_b[series:x]": "passed",  # a guest test is never a series case
    }
    assert comparable_outcomes(baseline) == {
        "ptrace::vmaccess.global.attach": "passed",
        "seccomp_bpf::global.kcmp": "passed",
        "test_a.py::test_b[series:x]": "passed",
    }


INIT = ROOT / "harness" / "guest" / "init"


def guest_selftest_loop(root: Path, port: Path) -> str:
    """The guest init's own selftest loop, as a script for the host's sh: /selftests is
    `root`, the TAP port the file `port`."""
    lines = INIT.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("selftests_port="))
    last = next(i for i, line in enumerate(lines) if "exec 3>&-" in line)
    loop = "\n".join(lines[first : last + 1]).replace("/selftests/", f"{root}/")
    return f'port_named() {{ echo "{port}"; }}\n{loop}\n'


def test_the_guest_runs_every_binary_and_marks_its_output_and_exit_status(
    tmp_path: Path,
) -> None:
    """The init's loop itself, on the host: each binary's mark, output and exit status
    come out in the order the host parses them, the series tree's after the own."""
    root = tmp_path / "selftests"
    scripts = {
        "ptrace/get_syscall_info": "echo 'TAP version 13'; echo \"# args: $*\"; echo 1..1; "
        "echo 'ok 1 global.a'",
        "ptrace/peeksiginfo": "echo 'Only 3 signals were read' >&2; exit 1",
        "seccomp/seccomp_bpf": "echo 1..1; echo 'ok 1 global.kcmp'",
        "seccomp/series/seccomp_bpf": "echo 1..1; echo 'ok 1 global.kcmp # SKIP no'",
    }
    for path, body in scripts.items():
        binary = root / path
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text(f"#!/bin/sh\n{body}\n")
        binary.chmod(0o755)
    (root / "ptrace" / "README").write_text("not a binary\n")
    (root / "ptrace" / "get_syscall_info.args").write_text("-T\nthe attach\n")
    port = tmp_path / "port"
    script = tmp_path / "loop.sh"
    script.write_text(guest_selftest_loop(root, port))
    console = subprocess.run(["sh", str(script)], capture_output=True, text=True, check=True)
    assert "HARNESS: selftest ptrace/peeksiginfo done: exit status 1" in console.stdout
    # A binary's .args file is its command line, one argument per line; the others get none.
    assert "# args: -T the attach\n" in port.read_text()
    assert port.read_text().count("# args:") == 1
    outputs = parse_tap(port.read_text())
    assert [(o.binary.guest_path, o.exit_status) for o in outputs] == [
        ("ptrace/get_syscall_info", 0), ("ptrace/peeksiginfo", 1),
        ("seccomp/seccomp_bpf", 0), ("seccomp/series/seccomp_bpf", 0),
    ]  # fmt: skip
    assert [(r.nodeid, r.outcome) for r in results_of(outputs)] == [
        ("ptrace::get_syscall_info.global.a", "passed"),
        ("ptrace::peeksiginfo", "failed"),
        ("seccomp_bpf::global.kcmp", "passed"),
        ("seccomp_bpf::series:global.kcmp", "skipped"),
    ]
