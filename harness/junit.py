"""JUnit XML for one cell, readable by GitHub's and GitLab's test reporting."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from harness.records import TestResult


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. "x86_64.patched" or "x86_64.patched.seccomp_bpf"
    results: list[TestResult]
    properties: dict[str, str]


def _suite_element(parent: ET.Element, suite: Suite) -> None:
    results = suite.results
    element = ET.SubElement(
        parent,
        "testsuite",
        name=suite.name,
        tests=str(len(results)),
        failures=str(sum(r.outcome == "failed" for r in results)),
        errors=str(sum(r.outcome == "error" for r in results)),
        skipped=str(sum(r.outcome == "skipped" for r in results)),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    props = ET.SubElement(element, "properties")
    for name, value in suite.properties.items():
        ET.SubElement(props, "property", name=name, value=value)
    for result in results:
        module, _, name = result.nodeid.rpartition("::")
        case = ET.SubElement(
            element,
            "testcase",
            classname=f"{suite.name}.{module.replace('/', '.').removesuffix('.py')}",
            name=name or result.nodeid,
            time=f"{result.duration:.3f}",
        )
        if result.outcome in ("failed", "error"):
            tag = "failure" if result.outcome == "failed" else "error"
            lines = result.message.strip().splitlines()
            failure = ET.SubElement(case, tag, message=lines[-1] if lines else result.outcome)
            failure.text = result.message
        elif result.outcome == "skipped":
            ET.SubElement(case, "skipped", message=result.message)


def write_junit(path: Path, suites: list[Suite]) -> None:
    root = ET.Element("testsuites")
    for suite in suites:
        _suite_element(root, suite)
    ET.indent(root)
    partial = path.with_suffix(".partial")
    ET.ElementTree(root).write(partial, encoding="utf-8", xml_declaration=True)
    partial.replace(path)
