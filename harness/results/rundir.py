"""A finished run directory read back: summary.json, each cell's facts and its tests.

The report, `harness compare` and KTAP read runs through here. Per-test
outcomes come from each cell's JSON (results/model.py, format 2); a run
written before that format has them only in its junit.xml, which is read
instead. A run directory copied from CI is enough; nothing needs the work dir.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import BadInput
from harness.core.jsonfile import read_json
from harness.core.toolchains import DEFAULT_TOOLCHAIN, TOOLCHAINS
from harness.core.vocabulary import Outcome
from harness.results.model import GUEST_SUITE, Cell, TestOutcome

NOT_RUN = "not run"  # the outcome of a test a cell never reported


@dataclass
class CellRecord:
    data: dict[str, Any]  # the cell as summary.json (or cell.json) records it
    tests: list[TestOutcome] = field(default_factory=list)
    junit_problem: str = ""  # why junit.xml could not be read, when it could not

    @property
    def arch(self) -> str:
        return str(self.data.get("arch", "?"))

    @property
    def variant(self) -> str:
        return str(self.data.get("variant", "?"))

    @property
    def toolchain(self) -> str:
        """gcc for a cell written before the toolchain axis (its "toolchain" was gcc's
        version line; results/model.py reads it so too)."""
        name = str(self.data.get("toolchain", DEFAULT_TOOLCHAIN))
        return name if name in TOOLCHAINS else DEFAULT_TOOLCHAIN

    @property
    def platform(self) -> str:
        suffix = "" if self.toolchain == DEFAULT_TOOLCHAIN else f"-{self.toolchain}"
        return f"{self.arch}{suffix}"

    @property
    def name(self) -> str:
        return f"{self.platform}/{self.variant}"

    @property
    def directory_name(self) -> str:
        return f"{self.platform}-{self.variant}"

    @property
    def status(self) -> str:
        return str(self.data.get("status", "unknown"))

    def outcomes(self) -> dict[str, str]:
        return {test.nodeid: test.outcome for test in self.tests}


@dataclass
class RunRecord:
    directory: Path
    summary: dict[str, Any]
    cells: list[CellRecord]

    @property
    def run_id(self) -> str:
        return str(self.summary.get("run_id") or self.directory.name)

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    def cell(self, platform: str, variant: str) -> CellRecord | None:
        """The cell of `platform` ("x86_64", "x86_64-clang") and `variant`, if the run has it."""
        for cell in self.cells:
            if (cell.platform, cell.variant) == (platform, variant):
                return cell
        return None


def load_run(directory: Path) -> RunRecord:
    """Read a run directory; BadInput when it holds neither summary.json nor any cell.json."""
    if not directory.is_dir():
        raise BadInput(f"{directory}: no such run directory")
    summary = read_json(directory / "summary.json")
    cell_data = summary.get("cells")
    if not isinstance(cell_data, list):
        cell_data = [read_json(path) for path in sorted(directory.glob("*/cell.json"))]
        cell_data = [data for data in cell_data if data]
    if not cell_data:
        raise BadInput(f"{directory}: no summary.json or cell.json; not a run directory")
    cells = [_load_cell(directory, data) for data in cell_data if isinstance(data, dict)]
    return RunRecord(directory, summary, cells)


def _load_cell(run_dir: Path, data: dict[str, Any]) -> CellRecord:
    cell = CellRecord(data)
    results = Cell.results_from_json(data)
    if results is not None:
        cell.tests = results
        return cell
    # Format 1: the outcomes are in junit.xml only.
    junit_name = str(data.get("files", {}).get("junit", "junit.xml"))
    junit_path = run_dir / cell.directory_name / junit_name
    if not junit_path.is_file():
        return cell
    try:
        cell.tests = read_junit(junit_path, f"{cell.arch}.{cell.variant}")
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
