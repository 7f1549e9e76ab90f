"""Small run directories for the report and compare tests, made from a trimmed real run.

tests/data/run-sample is a real two-arch run (x86_64 and arm64, baseline and
patched, all passing) with its console and build logs cut to a few KB. The
helpers below copy it and then break it in the ways a test needs.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SAMPLE_RUN = Path(__file__).parent / "data" / "run-sample"
CELLS = ("x86_64-baseline", "x86_64-patched", "arm64-baseline", "arm64-patched")


def copy_sample_run(destination: Path) -> Path:
    shutil.copytree(SAMPLE_RUN, destination)
    return destination


def update_cell(run_dir: Path, cell: str, **changes: Any) -> None:
    """Change a cell's facts in both summary.json and its cell.json."""
    arch, variant = cell.split("-")
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text())
    for data in summary["cells"]:
        if (data["arch"], data["variant"]) == (arch, variant):
            data.update(changes)
            (run_dir / cell / "cell.json").write_text(json.dumps(data, indent=2))
    summary_path.write_text(json.dumps(summary, indent=2))


def update_summary(run_dir: Path, **changes: Any) -> None:
    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    summary.update(changes)
    path.write_text(json.dumps(summary, indent=2))


def fail_stage(run_dir: Path, cell: str, stage: str, status: str, message: str) -> None:
    """Mark `stage` failed with `message` and give the cell (and the run) `status`."""
    arch, variant = cell.split("-")
    summary = json.loads((run_dir / "summary.json").read_text())
    data = next(c for c in summary["cells"] if (c["arch"], c["variant"]) == (arch, variant))
    stages = data["stages"]
    stages[stage] = {**stages[stage], "status": "fail", "message": message}
    update_cell(run_dir, cell, stages=stages, status=status, reason=f"{stage}: {message}")
    update_summary(run_dir, status=status)


def set_test_outcome(run_dir: Path, cell: str, name: str, outcome: str, message: str = "") -> None:
    """Rewrite one test case of a cell's junit.xml (matched by its name) to `outcome`."""
    path = run_dir / cell / "junit.xml"
    tree = ET.parse(path)
    case = next(case for case in tree.iter("testcase") if case.get("name") == name)
    for child in list(case):
        case.remove(child)
    tag = {"failed": "failure", "error": "error", "skipped": "skipped"}.get(outcome)
    if tag is not None:
        element = ET.SubElement(case, tag, message=message.splitlines()[-1] if message else "")
        element.text = message if tag != "skipped" else None
    tree.write(path, encoding="utf-8", xml_declaration=True)


def remove_test(run_dir: Path, cell: str, name: str) -> None:
    path = run_dir / cell / "junit.xml"
    tree = ET.parse(path)
    for suite in tree.iter("testsuite"):
        for case in list(suite):
            if case.tag == "testcase" and case.get("name") == name:
                suite.remove(case)
    tree.write(path, encoding="utf-8", xml_declaration=True)
