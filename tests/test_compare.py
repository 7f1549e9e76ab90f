"""`harness compare RUN_A RUN_B`: regressions first, exit 1 only when there is one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from run_samples import (
    copy_sample_run,
    fail_stage,
    remove_test,
    set_test_outcome,
    update_cell,
)

from harness.cli.main import main
from harness.core.status import EXIT_BAD_INPUT
from harness.results.compare import classify_test_change, compare_runs, format_comparison

FLAKY = "test_detach_at_stop_kills[SIGUSR1]"
FLAKY_ID = f"test_detach_kill.py::{FLAKY}"


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    return copy_sample_run(tmp_path / "a"), copy_sample_run(tmp_path / "b")


def break_patched_x86(run_dir: Path) -> None:
    set_test_outcome(run_dir, "x86_64-patched", FLAKY, "failed",
                     "assert 0 == 9\nE   AssertionError: the tracee survived")  # fmt: skip
    fail_stage(run_dir, "x86_64-patched", "test", "test_failed", "1 guest test(s) failed")


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        ("passed", "passed", ""),
        ("passed", "failed", "regression"),
        ("passed", "error", "regression"),
        ("skipped", "failed", "regression"),
        ("not run", "error", "regression"),
        ("failed", "passed", "fix"),
        ("error", "passed", "fix"),
        ("failed", "error", "other"),
        ("passed", "skipped", "other"),
        ("passed", "not run", "other"),
        ("failed", "skipped", "other"),
    ],
)
def test_change_kinds(old: str, new: str, kind: str) -> None:
    assert classify_test_change(old, new) == kind


def test_same_run_twice_has_no_change(runs: tuple[Path, Path]) -> None:
    comparison = compare_runs(*runs)
    assert (comparison.regressions, comparison.fixes, comparison.others) == ([], [], [])
    assert comparison.exit_code == 0
    assert format_comparison(comparison).endswith("no regression")


def test_worse_cell_then_failed_test_come_first(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    break_patched_x86(run_b)
    update_cell(run_b, "arm64-patched", config_hash="f" * 64)
    comparison = compare_runs(run_a, run_b)
    assert comparison.regressions == [
        "cell x86_64/patched: pass -> test_failed (test: 1 guest test(s) failed)",
        f"test x86_64/patched {FLAKY_ID}: passed -> failed "
        "(E   AssertionError: the tracee survived)",
    ]
    assert comparison.fixes == []
    assert comparison.others == ["cell arm64/patched: config hash 41d631f95b0e -> ffffffffffff"]
    assert comparison.exit_code == 1
    text = format_comparison(comparison).splitlines()
    assert text[2] == "regressions (2):"
    assert text.index("fixes (0):") < text.index("other changes (1):")
    assert text[-1] == "2 regression(s)"


def test_the_way_back_is_a_fix(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    break_patched_x86(run_a)
    comparison = compare_runs(run_a, run_b)
    assert comparison.regressions == [] and comparison.exit_code == 0
    assert comparison.fixes == [
        "cell x86_64/patched: test_failed -> pass",
        f"test x86_64/patched {FLAKY_ID}: failed -> passed",
    ]


def test_new_failing_test_and_new_cell_status(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    remove_test(run_a, "arm64-baseline", "test_runs_on_a_supported_arch")
    set_test_outcome(run_b, "arm64-baseline", "test_runs_on_a_supported_arch", "error", "boom")
    comparison = compare_runs(run_a, run_b)
    assert comparison.regressions == [
        "test arm64/baseline test_boot_smoke.py::test_runs_on_a_supported_arch: "
        "not run -> error (boom)"
    ]


def test_skips_and_missing_suites_are_other_changes_grouped(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    set_test_outcome(run_b, "x86_64-baseline", "test_runs_as_root_in_the_initramfs", "skipped")
    (run_b / "arm64-patched" / "junit.xml").unlink()
    comparison = compare_runs(run_a, run_b)
    assert comparison.regressions == [] and comparison.exit_code == 0
    assert comparison.others == [
        "test x86_64/baseline test_boot_smoke.py::test_runs_as_root_in_the_initramfs: "
        "passed -> skipped",
        "tests arm64/patched: 94 guest tests passed -> not run",
        "tests arm64/patched: 99 seccomp_bpf tests passed -> not run",
    ]


def drop_cell(run_dir: Path, cell: str) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["cells"] = [c for c in summary["cells"] if f"{c['arch']}-{c['variant']}" != cell]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    shutil.rmtree(run_dir / cell)


def test_cells_only_in_one_run(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    drop_cell(run_b, "arm64-patched")
    drop_cell(run_a, "x86_64-baseline")
    comparison = compare_runs(run_a, run_b)
    assert "cell arm64/patched: not in RUN_B (was pass)" in comparison.others
    assert "cell x86_64/baseline: new in RUN_B (pass)" in comparison.others


def test_a_cell_of_a_variant_this_harness_does_not_know_is_refused(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    run_a, run_b = runs
    update_cell(run_b, "arm64-patched", variant="nightly")
    assert main(["compare", str(run_a), str(run_b)]) == EXIT_BAD_INPUT
    [line] = capsys.readouterr().err.splitlines()
    assert line == (
        f"harness: error: {run_b / 'summary.json'}: cell arm64/nightly: unknown variant "
        "'nightly'; a newer harness wrote it, read it with that one"
    )


def test_cli_compare_exit_codes(
    runs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_a, run_b = runs
    assert main(["compare", str(run_a), str(run_b)]) == 0
    assert capsys.readouterr().out.strip().endswith("no regression")
    break_patched_x86(run_b)
    assert main(["compare", str(run_a), str(run_b)]) == 1
    out = capsys.readouterr().out
    assert out.index("regressions (2)") < out.index("cell x86_64/patched: pass -> test_failed")
    assert main(["compare", str(run_a), str(tmp_path / "missing")]) == EXIT_BAD_INPUT
    assert "no such run directory" in capsys.readouterr().err


def test_a_failure_run_b_expected_is_listed_but_not_a_regression(runs: tuple[Path, Path]) -> None:
    run_a, run_b = runs
    set_test_outcome(run_b, "x86_64-patched", FLAKY, "skipped")
    junit = run_b / "x86_64-patched" / "junit.xml"
    junit.write_text(junit.read_text().replace(
        '<skipped message="" />',
        '<skipped type="xfail" message="expected failure: flaky under TCG">assert 0 == 9</skipped>',
    ))  # fmt: skip
    comparison = compare_runs(run_a, run_b)
    assert comparison.regressions == []
    assert comparison.others == [
        f"test x86_64/patched {FLAKY_ID}: passed -> failed (expected failure: flaky under TCG)"
    ]
    assert comparison.exit_code == 0
