"""What the report shows of a failed cell: the failed stage's excerpt, the kernel's reports,
failed tests' messages and the console's tail, each clipped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.results.model import Cell, StageState

EXCERPT_LINES = 40  # longest failure or kernel report excerpt shown


CONSOLE_TAIL_LINES = 25  # console lines shown for a cell that did not boot or finish


EXCERPTS_PER_CELL = 30  # test failures shown per cell; the rest are counted


@dataclass(frozen=True)
class Excerpt:
    cell: str  # "arch/variant"
    kind: str  # "test failed", "test error", "kernel warning", "build stage", "console tail"...
    title: str
    text: str
    test: str = ""


def clip_lines(text: str, limit: int = EXCERPT_LINES, from_end: bool = False) -> str:
    """At most `limit` lines of `text`, saying how many were left out."""
    lines = text.rstrip().splitlines()
    if len(lines) <= limit:
        return "\n".join(lines)
    left_out = len(lines) - limit
    if from_end:
        return "\n".join([f"[... {left_out} earlier lines]", *lines[-limit:]])
    return "\n".join([*lines[:limit], f"[... {left_out} more lines]"])


def cell_excerpts(run_dir: Path, cell: Cell) -> list[Excerpt]:
    return [
        *stage_excerpts(cell),
        *kernel_report_excerpts(cell),
        *failed_test_excerpts(cell),
        *console_tail_excerpt(run_dir, cell),
    ]


def stage_excerpts(cell: Cell) -> list[Excerpt]:
    """The excerpts a failed stage kept (compiler errors, a patch's rejected hunk)."""
    excerpts = cell.facts.get("excerpts") or {}
    messages = {name: stage.message for name, stage in cell.stages.items()}
    return [
        Excerpt(
            cell.name,
            f"{stage} stage",
            messages.get(stage) or f"{stage} failed",
            clip_lines(str(text), from_end=True),
        )
        for stage, text in excerpts.items()
    ]


def kernel_report_excerpts(cell: Cell) -> list[Excerpt]:
    excerpts = []
    for report in cell.kernel_reports:
        decoded = report.get("decoded")
        text = str(decoded or report.get("excerpt", ""))
        where = f" (console line {report['line']})" if report.get("line") else ""
        label = "decoded" if decoded else "raw"
        excerpts.append(
            Excerpt(
                cell=cell.name,
                kind=f"kernel {report.get('kind', 'report')}",
                title=f"{report.get('title', '')}{where}, {label}",
                text=clip_lines(text),
                test=str(report.get("test") or ""),
            )
        )
    return excerpts


def failed_test_excerpts(cell: Cell) -> list[Excerpt]:
    failing = [test for test in cell.results if test.outcome.failing]
    excerpts = [
        Excerpt(
            cell.name,
            "expected failure" if test.expected else f"test {test.outcome}",
            f"{test.nodeid} ({test.expected})" if test.expected else test.nodeid,
            clip_lines(test.message or "(no message)"),
            test.nodeid,
        )
        for test in failing[:EXCERPTS_PER_CELL]
    ]
    if len(failing) > EXCERPTS_PER_CELL:
        more = len(failing) - EXCERPTS_PER_CELL
        excerpts.append(Excerpt(cell.name, "tests", f"{more} more failing tests", "see junit.xml"))
    return excerpts


def console_tail_excerpt(run_dir: Path, cell: Cell) -> list[Excerpt]:
    """The console's last lines when the guest did not boot or finish and no report says why."""
    stopped = any(cell.stage(name).state is StageState.FAIL for name in ("boot", "test"))
    failed_tests = any(test.outcome.failing for test in cell.results)
    if not stopped or cell.kernel_reports or failed_tests:
        return []
    console = run_dir / cell.directory_name / "console.log"
    if not console.is_file():
        return []
    text = console.read_text(errors="replace")
    return [
        Excerpt(
            cell.name,
            "console tail",
            "last console lines",
            clip_lines(text, CONSOLE_TAIL_LINES, from_end=True),
        )
    ]
