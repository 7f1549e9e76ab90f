"""JUnit XML for one cell, readable by GitHub's and GitLab's test reporting.

An expected failure (see verdict/judge.py) is written as pytest writes an
xfail: a <skipped> of type "xfail" ("xfail-error" for an expected error),
whose message gives the reason and whose text is the failure, so a CI
dashboard shows it as it counts: not failing.

Test output may hold characters XML 1.0 cannot (a terminal's escape codes, a
NUL): they are written as visible `\\xNN` escapes, so any XML parser reads
the file.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.vocabulary import Outcome
from harness.vm.records import TestResult


@dataclass(frozen=True)
class Suite:
    name: str  # e.g. "x86_64.patched" or "x86_64.patched.seccomp_bpf"
    results: list[TestResult]
    properties: dict[str, str]
    expected_failures: dict[str, str] = field(default_factory=dict)  # nodeid -> message

    def counts_as(self, result: TestResult) -> str:
        """The outcome JUnit counts: an expected failure counts as skipped."""
        return Outcome.SKIPPED if result.nodeid in self.expected_failures else result.outcome


XFAIL_TYPES = {
    Outcome.FAILED: "xfail",
    Outcome.ERROR: "xfail-error",
}  # <skipped type=...> per outcome


def _suite_element(parent: ET.Element, suite: Suite) -> None:
    results = suite.results
    element = ET.SubElement(
        parent,
        "testsuite",
        name=suite.name,
        tests=str(len(results)),
        failures=str(sum(suite.counts_as(r) is Outcome.FAILED for r in results)),
        errors=str(sum(suite.counts_as(r) is Outcome.ERROR for r in results)),
        skipped=str(sum(suite.counts_as(r) is Outcome.SKIPPED for r in results)),
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
        expected = suite.expected_failures.get(result.nodeid)
        if expected is not None and result.outcome in XFAIL_TYPES:
            skipped = ET.SubElement(
                case, "skipped", type=XFAIL_TYPES[result.outcome], message=expected
            )
            skipped.text = result.message
        elif result.outcome.failing:
            tag = "failure" if result.outcome is Outcome.FAILED else "error"
            lines = result.message.strip().splitlines()
            failure = ET.SubElement(case, tag, message=lines[-1] if lines else result.outcome)
            failure.text = result.message
        elif result.outcome is Outcome.SKIPPED:
            ET.SubElement(case, "skipped", message=result.message)


# What XML 1.0 cannot hold, even as a character reference: most C0 controls (a
# test's colour codes, a NUL from the console), lone surrogates, U+FFFE, U+FFFF.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def xml_safe(text: str) -> str:
    """`text` with every character XML cannot hold written as a visible \\xNN or \\uNNNN."""
    return _NOT_XML.sub(_escape_char, text)


def write_junit(path: Path, suites: list[Suite]) -> None:
    root = ET.Element("testsuites")
    for suite in suites:
        _suite_element(root, suite)
    for element in root.iter():
        if element.text:
            element.text = xml_safe(element.text)
        for key, value in element.attrib.items():
            element.set(key, xml_safe(value))
    ET.indent(root)
    partial = path.with_suffix(".partial")
    ET.ElementTree(root).write(partial, encoding="utf-8", xml_declaration=True)
    partial.replace(path)
