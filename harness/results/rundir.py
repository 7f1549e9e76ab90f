"""A finished run directory read back: summary.json and its cells, as results/model.py's
typed Cell (Cell.from_json).

The report, `harness compare`, KTAP, KCIDB and `report --merge` read runs
through here. Per-test outcomes come from each cell's JSON (format 2); a run
written before that format has them only in its junit.xml, which is read
into Cell.results instead. A cell this harness cannot read (an arch, variant
or status it does not know, a newer format) is refused with one line naming
its file. A run directory copied from CI is enough; nothing needs the work dir.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import BadInput
from harness.core.jsonfile import read_json
from harness.core.vocabulary import Outcome
from harness.results.model import GUEST_SUITE, Cell, CellKey, TestOutcome


@dataclass
class RunRecord:
    directory: Path
    summary: dict[str, Any]  # the run's own facts as summary.json holds them; {} without one
    cells: list[Cell]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.directory.name)

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    def cell(self, key: CellKey) -> Cell | None:
        for cell in self.cells:
            if cell.key == key:
                return cell
        return None


def load_run(directory: Path) -> RunRecord:
    """Read a run directory; BadInput when it holds neither summary.json nor any cell.json,
    or a cell this harness cannot read (an unknown arch, a newer format)."""
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such run directory")
    summary_path = directory / "summary.json"
    summary = read_json(summary_path)
    listed = summary.get("cells")
    if isinstance(listed, list):
        entries = [(summary_path, data) for data in listed]
    else:
        paths = sorted(directory.glob("*/cell.json"))
        entries = [(path, data) for path in paths if (data := read_json(path))]
    if not entries:
        raise BadInput(f"{directory}: no summary.json or cell.json; not a run directory")
    cells = [_load_cell(directory, path, data) for path, data in entries if isinstance(data, dict)]
    return RunRecord(directory, summary, cells)


def _load_cell(run_dir: Path, path: Path, data: dict[str, Any]) -> Cell:
    """The cell `data` (read from `path`) records, its results from junit.xml for format 1."""
    try:
        cell = Cell.from_json(data)
    except ValueError as error:
        # Deserialisation: the cell's name as written, since it could not be read.
        name = f"{data.get('arch', '?')}/{data.get('variant', '?')}"
        raise BadInput(
            f"{path}: cell {name}: {error}; a newer harness wrote it, read it with that one"
        ) from None
    if Cell.results_from_json(data) is not None:
        return cell
    # Format 1: the outcomes are in junit.xml only.
    junit_path = run_dir / cell.directory_name / str(cell.files.get("junit", "junit.xml"))
    if not junit_path.is_file():
        return cell
    try:
        return cell.with_results(read_junit(junit_path, cell.key.suite_name))
    except ET.ParseError as error:
        cell.junit_problem = f"{junit_path.name} is not valid XML ({error})"
        return cell


def read_junit(path: Path, suite_prefix: str) -> list[TestOutcome]:
    """The test cases of a cell's JUnit file, their node ids rebuilt as the harness wrote them.

    `suite_prefix` is "arch.variant": a suite named just that holds the guest
    tests, one named "arch.variant.NAME" the upstream suite NAME.
    """
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests: list[TestOutcome] = []
    for suite in suites:
        suite_name = suite.get("name", "")
        upstream = _upstream_suite(suite_name, suite_prefix)
        for case in suite.iter("testcase"):
            outcome, message, expected = _case_outcome(case)
            nodeid = _nodeid(case.get("classname", ""), case.get("name", ""), suite_name, upstream)
            tests.append(
                TestOutcome(
                    nodeid, upstream or GUEST_SUITE, outcome, message, expected, _case_seconds(case)
                )
            )
    return tests


def _case_seconds(case: ET.Element) -> float:
    """A test case's `time`; 0.0 (unknown) when it is missing or not a number."""
    try:
        seconds = float(case.get("time") or 0.0)
    except ValueError:
        return 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def _upstream_suite(suite_name: str, suite_prefix: str) -> str:
    if suite_name.startswith(suite_prefix + "."):
        return suite_name[len(suite_prefix) + 1 :]
    return ""


def _nodeid(classname: str, name: str, suite_name: str, upstream: str) -> str:
    """Undo junit.py's classname: "<suite>.<module path with dots>" back to "<path>.py::name"."""
    module = classname.removeprefix(suite_name + ".") if suite_name else classname
    if not upstream and "::" not in module and module:
        module = module.replace(".", "/") + ".py"
    return f"{module}::{name}" if module else name


# junit.py writes an expected failure as a <skipped> of one of these types.
XFAIL_OUTCOMES = {"xfail": Outcome.FAILED, "xfail-error": Outcome.ERROR}


def _case_outcome(case: ET.Element) -> tuple[Outcome, str, str]:
    """(outcome, message, expected-failure note) of a test case."""
    for tag, outcome in (
        ("failure", Outcome.FAILED),
        ("error", Outcome.ERROR),
        ("skipped", Outcome.SKIPPED),
    ):
        element = case.find(tag)
        if element is None:
            continue
        text = (element.text or "").strip()
        actual = XFAIL_OUTCOMES.get(element.get("type", "")) if tag == "skipped" else None
        if actual is not None:
            return actual, text, element.get("message", "") or "expected failure"
        return outcome, text or element.get("message", ""), ""
    return Outcome.PASSED, "", ""
