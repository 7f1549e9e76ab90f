"""JUnit XML for one cell, readable by GitHub's and GitLab's test reporting."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.records import TestResult


def write_junit(
    path: Path, suite_name: str, results: list[TestResult], properties: dict[str, str]
) -> None:
    counts = {outcome: sum(r.outcome == outcome for r in results) for outcome in
              ("failed", "error", "skipped")}  # fmt: skip
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(counts["failed"]),
        errors=str(counts["error"]),
        skipped=str(counts["skipped"]),
        time=f"{sum(r.duration for r in results):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for name, value in properties.items():
        ET.SubElement(props, "property", name=name, value=value)
    for result in results:
        module, _, name = result.nodeid.rpartition("::")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{suite_name}.{module.replace('/', '.').removesuffix('.py')}",
            name=name or result.nodeid,
            time=f"{result.duration:.3f}",
        )
        if result.outcome in ("failed", "error"):
            tag = "failure" if result.outcome == "failed" else "error"
            element = ET.SubElement(case, tag, message=result.message.splitlines()[-1:][0]
                                    if result.message else result.outcome)  # fmt: skip
            element.text = result.message
        elif result.outcome == "skipped":
            ET.SubElement(case, "skipped", message=result.message)
    ET.indent(suites)
    partial = path.with_suffix(".partial")
    ET.ElementTree(suites).write(partial, encoding="utf-8", xml_declaration=True)
    partial.replace(path)
