"""kcidb.json's test objects: a cell's boot, its kernel's log and every test it ran, and the
text rules every KCIDB object follows (results/kcidb.py writes the document and its
docstring tables the statuses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.core.status import Status
from harness.core.vocabulary import Outcome
from harness.results.excerpts import clip_lines, kernel_report_excerpts
from harness.results.kcidb_paths import test_path
from harness.results.model import GUEST_SUITE, Cell, StageResult, StageState, TestOutcome
from harness.results.rundir import RunRecord

MAX_EXCERPT = 16384  # the schema's maxLength of a log excerpt, in characters
BOOT_PATH = "boot"
KERNEL_LOG_PATH = "kernel_log"

TEST_STATUS = {
    Outcome.PASSED: "PASS",
    Outcome.FAILED: "FAIL",
    Outcome.ERROR: "ERROR",
    Outcome.SKIPPED: "SKIP",
}
# The cell statuses that blame the tested code for a failed boot.
CODE_FAULTS_AT_BOOT = (Status.BOOT_TIMEOUT, Status.KERNEL_PANIC)


def cell_tests(run: RunRecord, cell: Cell, origin: str, build_id: str) -> list[dict[str, Any]]:
    """The boot, the kernel's log and every test of a cell whose guest ran."""
    boot_stage = cell.stage("boot")
    booted = boot_stage.state is not StageState.NOT_RUN
    if not booted and not cell.results:
        return []
    cell_dir = run.directory / cell.directory_name
    console_url = file_url(cell_dir / str(cell.files.get("console_log", "console.log")))
    tap_url = file_url(cell_dir / str(cell.files.get("selftests_tap", "selftests.tap")))
    common = {"build_id": build_id, "origin": origin, "environment": environment(cell)}
    records: list[dict[str, Any]] = []
    if booted:
        records += [
            {"id": f"{build_id}/{BOOT_PATH}", **common, **boot_test(cell, boot_stage, cell_dir)},
            {"id": f"{build_id}/{KERNEL_LOG_PATH}", **common, **kernel_log_test(cell)},
        ]
        for record in records:
            if console_url:
                record["log_url"] = console_url
    for test in cell.results:
        record = {"id": f"{build_id}/{test.nodeid}", **common, **test_record(test)}
        log_url = console_url if test.suite == GUEST_SUITE else tap_url
        if log_url:
            record["log_url"] = log_url
        records.append(record)
    return records


def environment(cell: Cell) -> dict[str, Any]:
    """Where the cell's tests ran: its QEMU, accelerator and booted kernel."""
    facts = cell.facts
    keys = ("qemu", "accel", "kernel_release", "booted_kernel_version")
    misc = {key: facts[key] for key in keys if facts.get(key)}
    misc["toolchain"] = cell.toolchain.name
    accel = f" ({facts['accel']})" if facts.get("accel") else ""
    return {"comment": text(f"QEMU {cell.arch}{accel}"), "misc": misc}


def boot_test(cell: Cell, stage: StageResult, cell_dir: Path) -> dict[str, Any]:
    if stage.state is StageState.PASS:
        status = "PASS"
    else:
        status = "FAIL" if cell.status in CODE_FAULTS_AT_BOOT else "MISS"
    record: dict[str, Any] = {
        "path": BOOT_PATH,
        "status": status,
        "comment": "the guest reached userspace running the kernel built for the cell",
    }
    if stage.seconds > 0:
        record["duration"] = round(stage.seconds, 3)
    if status != "PASS":
        console = cell_dir / "console.log"
        tail = console.read_text(errors="replace") if console.is_file() else ""
        record["log_excerpt"] = excerpt(
            "\n".join([stage.message or "boot failed", clip_lines(tail, 25, True)])
        )
    return record


def kernel_log_test(cell: Cell) -> dict[str, Any]:
    reports = kernel_report_excerpts(cell)
    tainted = cell.facts.get("tainted")
    record: dict[str, Any] = {
        "path": KERNEL_LOG_PATH,
        "status": "FAIL" if reports or tainted else "PASS",
        "comment": "the console held no kernel report (oops, BUG, WARNING, sanitizer, lockdep, "
        "stall, hung task, lockup, panic) and the kernel ended untainted",
    }
    if reports or tainted:
        parts = [
            f"{r.kind}: {r.title}" + (f" during {r.test}" if r.test else "") + f"\n{r.text}"
            for r in reports
        ]
        if tainted:
            parts.append(f"kernel tainted (flags {tainted})")
        record["log_excerpt"] = excerpt("\n\n".join(parts))
        record["misc"] = present(
            {
                "reports": [{"kind": r.kind, "title": r.title, "test": r.test} for r in reports],
                "tainted": tainted,
            }
        )
    return record


def test_record(test: TestOutcome) -> dict[str, Any]:
    outcome = test.outcome
    misc: dict[str, Any] = {"nodeid": test.nodeid, "suite": test.suite, "outcome": str(outcome)}
    if test.expected:
        misc["expected_failure"] = test.expected  # the harness's triage; KCIDB's status stays
    record: dict[str, Any] = {
        "path": test_path(test),
        "status": TEST_STATUS[outcome],
        "comment": text(test.nodeid),
        "misc": misc,
    }
    if test.duration > 0:
        record["duration"] = round(test.duration, 3)
    if test.message.strip():
        record["log_excerpt"] = excerpt(clip_lines(test.message, from_end=True))
    return record


# -- text -------------------------------------------------------------------------------


def present(values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the empty ones: KCIDB reads a missing field as "no data", and
    allows no nulls."""
    return {key: value for key, value in values.items() if value not in (None, "")}


def text(value: str) -> str:
    """A string as the schema takes it: no NUL anywhere."""
    return value.replace("\0", "\\x00")


def excerpt(value: str) -> str:
    """A log excerpt: its end when it is longer than the schema allows."""
    value = text(value)
    if len(value) <= MAX_EXCERPT:
        return value
    marker = "[...]\n"
    return marker + value[-(MAX_EXCERPT - len(marker)) :]


def file_url(path: Path) -> str | None:
    """A file of the run directory as a file:// URL (as it is found now), None when missing."""
    return path.resolve().as_uri() if path.is_file() else None
