"""The result model of `harness bisect`: a line per step, the answer, bisect.json and
bisect.md, written after every step so that an interrupted bisect keeps what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.jsonfile import write_json, write_whole
from harness.core.status import EXIT_INTERRUPTED, Status

JSON_NAME = "bisect.json"
MARKDOWN_NAME = "bisect.md"
SHOWN_DEPARTURES = 2  # on a step's line; the JSON lists every one

# How a bisect ended, and its exit code (the README's "Bisect" says why).
CULPRIT = "culprit"  # a first bad patch or commit: exit 0
NO_DEPARTURE = "no_departure"  # the whole range behaves: exit 1
BASE_DEPARTS = "base_departs"  # the base departs already, the range has nothing to blame: 1
UNDECIDED = "undecided"  # only skipped prefixes are left between last good and first bad
STOPPED = "stopped"  # a step failed for the host (series mode): infra
INTERRUPTED = "interrupted"
RUNNING = "running"


@dataclass
class Departure:
    """What departed at a step, named by its class: a build or boot failure's status, a
    kernel report's kind, or a test with its expected and actual outcome."""

    kind: str  # "build_failed", "kernel warning", "test", "boot_timeout", ...
    text: str  # its one-line form, e.g. "test_x (passed → failed)"
    test: str = ""  # the test's node id, a test departure's or the one a report hit

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "text": self.text, "test": self.test}


@dataclass
class Probe:
    """One step: a prefix built (and booted, and tested), and the predicate's verdict."""

    step: int
    prefix: int  # 0: the base; k: patches 1..k applied
    name: str  # the prefix's last patch file, or "base (no patches)"
    verdict: str = "good"  # "good", "bad", "skip", or "infra" (series mode stops)
    status: Status = Status.PASS
    reason: str = ""  # the cell's reason, or the build's first error
    departures: list[Departure] = field(default_factory=list)
    seconds: float = 0.0
    planned: int = 0  # steps done and still needed at most, once this one was done
    commit: str = ""  # git mode: the commit this prefix ends with
    build_log: str = ""  # relative to the results dir
    boot_dir: str = ""  # console.log, results.jsonl, cell.json; relative to the results dir

    def outcome(self) -> str:
        if self.verdict == "good":
            return "BEHAVES"
        if self.verdict in ("skip", "infra"):
            word = "SKIPPED" if self.verdict == "skip" else "HOST FAILED"
            return f"{word} ({self.status.label}: {self.reason})"
        if not self.departures:
            return f"DEPARTS {self.status.label}: {self.reason}"
        shown = ", ".join(d.text for d in self.departures[:SHOWN_DEPARTURES])
        more = len(self.departures) - SHOWN_DEPARTURES
        return f"DEPARTS {shown}" + (f" +{more} more" if more > 0 else "")

    def label(self) -> str:
        return f"{self.name} ({self.commit[:12]})" if self.commit else self.name

    def line(self) -> str:
        took = f"{self.seconds:.0f} s"
        return f"[{self.step}/{self.planned}] {self.label()}: {self.outcome()} — {took}"

    def to_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "prefix": self.prefix,
            "name": self.name,
            "commit": self.commit,
            "verdict": self.verdict,
            "status": self.status.label,
            "reason": self.reason,
            "departures": [d.to_json() for d in self.departures],
            "seconds": round(self.seconds, 1),
            "build_log": self.build_log,
            "boot_dir": self.boot_dir,
            "line": self.line(),
        }


@dataclass
class Evidence:
    """What the first bad prefix shows, beside the last good one."""

    failure: str = ""  # the departing test's failure text, a kernel report, a compiler error
    failure_title: str = ""
    console_bad: str = ""  # console excerpt at the first bad prefix
    console_good: str = ""  # ... and at the last good one, for the same test or moment
    console_title: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "failure_title": self.failure_title,
            "failure": self.failure,
            "console_title": self.console_title,
            "console_first_bad": self.console_bad,
            "console_last_good": self.console_good,
        }


@dataclass
class BisectReport:
    mode: str  # "series" or "git"
    series: str  # the series' name, or the range "GOOD..BAD"
    series_hash: str
    kernel: str
    arch: str
    predicate: str  # "build", "boot" or "tests"
    patches: list[str]  # prefix k's last patch is patches[k - 1]
    selection: str = ""  # -k, when given
    expectations: str | None = None
    probes: list[Probe] = field(default_factory=list)
    result: str = RUNNING
    culprit: int | None = None  # the first bad prefix
    candidates: list[int] = field(default_factory=list)  # UNDECIDED: where it may be
    last_good: int | None = None
    evidence: Evidence | None = None
    seconds: float = 0.0
    exit_status: Status | None = None  # STOPPED, UNDECIDED: the status that decided the code

    def name_of(self, prefix: int) -> str:
        if prefix == 0:
            return "base (no patches)"
        if prefix > len(self.patches):
            return "none (the whole range behaves)"
        return self.patches[prefix - 1]

    def exit_code(self) -> int:
        if self.result == CULPRIT:
            return 0
        if self.result in (NO_DEPARTURE, BASE_DEPARTS):
            return 1
        if self.result == INTERRUPTED:
            return EXIT_INTERRUPTED
        return (self.exit_status or Status.INFRA).exit_code

    def verdict_line(self) -> str:
        steps = f"after {len(self.probes)} step{'s' if len(self.probes) != 1 else ''}"
        timing = f"{steps}, {self.seconds:.0f} s"
        if self.result == CULPRIT and self.culprit is not None:
            probe = self.probe_at(self.culprit)
            label = probe.label() if probe else self.name_of(self.culprit)
            return f"first bad: {label}, {self.culprit} of {len(self.patches)}, {timing}"
        if self.result == NO_DEPARTURE:
            return f"no departure: the whole range behaves ({self.arch}), {timing}"
        if self.result == BASE_DEPARTS:
            return f"the base (no patches) departs already: nothing in the range to blame, {timing}"
        if self.result == UNDECIDED:
            names = ", ".join(self.name_of(k) for k in self.candidates)
            return f"undecided: the first bad is one of {names} (skipped ones between), {timing}"
        if self.result == INTERRUPTED:
            return f"interrupted {timing}; bisect.json keeps the steps done"
        return f"stopped: the host failed at the last step, {timing}"

    def probe_at(self, prefix: int) -> Probe | None:
        return next((p for p in self.probes if p.prefix == prefix), None)

    def lines(self) -> list[str]:
        """The verdict and, for a culprit, its evidence: what the terminal shows at the end."""
        out = [self.verdict_line()]
        bad = self.probe_at(self.culprit) if self.culprit is not None else None
        if self.result == CULPRIT and bad is not None:
            out.append(f"  {bad.outcome()}")
            if self.last_good is not None:
                out.append(f"  last good: {self.name_of(self.last_good)}")
            evidence = self.evidence or Evidence()
            if evidence.failure:
                out += [f"--- {evidence.failure_title}", evidence.failure]
            if evidence.console_bad:
                out += [f"--- console at first bad, {evidence.console_title}", evidence.console_bad]
            if evidence.console_good:
                out += [
                    f"--- console at last good, {evidence.console_title}",
                    evidence.console_good,
                ]
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "series": self.series,
            "series_hash": self.series_hash,
            "kernel_version": self.kernel,
            "arch": self.arch,
            "predicate": self.predicate,
            "selection": self.selection,
            "expectations": self.expectations,
            "patches": self.patches,
            "result": self.result,
            "exit_code": self.exit_code(),
            "culprit": None
            if self.culprit is None
            else {
                "prefix": self.culprit,
                "name": self.name_of(self.culprit),
                "commit": (p.commit if (p := self.probe_at(self.culprit)) else ""),
            },
            "last_good": None
            if self.last_good is None
            else {
                "prefix": self.last_good,
                "name": self.name_of(self.last_good),
            },
            "candidates": [self.name_of(k) for k in self.candidates],
            "evidence": None if self.evidence is None else self.evidence.to_json(),
            "steps": [probe.to_json() for probe in self.probes],
            "seconds": round(self.seconds, 1),
            "line": self.verdict_line(),
        }

    def markdown(self) -> str:
        judged = f"`{self.expectations}`" if self.expectations else "no expectations file"
        selection = f", `-k {self.selection}`" if self.selection else ""
        out = [
            f"# bisect: {self.series}",
            "",
            f"Kernel {self.kernel}, {self.arch}, predicate `{self.predicate}`{selection}, "
            f"judged by {judged} (the base by its `baseline` entries, a prefix by both "
            f"`baseline` and `patched`); {len(self.patches)} "
            f"{'commits' if self.mode == 'git' else 'patches'}, series sha256 "
            f"`{self.series_hash[:12]}`.",
            "",
            f"**{self.verdict_line()}** (exit {self.exit_code()})",
            "",
            "## Steps",
            "",
            *(f"- `{probe.line()}`" for probe in self.probes),
        ]
        bad = self.probe_at(self.culprit) if self.culprit is not None else None
        if self.result == CULPRIT and bad is not None:
            out += ["", f"## First bad: {bad.label()}", "", bad.outcome(), ""]
            if self.last_good is not None:
                out += [f"Last good: {self.name_of(self.last_good)}.", ""]
            evidence = self.evidence or Evidence()
            for title, text in (
                (evidence.failure_title, evidence.failure),
                (f"console at first bad, {evidence.console_title}", evidence.console_bad),
                (f"console at last good, {evidence.console_title}", evidence.console_good),
            ):
                if text:
                    out += [f"### {title}", "", "```", text, "```", ""]
        out += ["", "## Logs", ""]
        for probe in self.probes:
            logs = [
                log for log in (probe.build_log, probe.boot_dir and f"{probe.boot_dir}/") if log
            ]
            out.append(f"- {probe.label()}: {', '.join(logs) or 'none'}")
        return "\n".join(out).rstrip("\n") + "\n"


def write_report(report: BisectReport, results_dir: Path) -> tuple[Path, Path]:
    """bisect.json and bisect.md, each written whole or not at all."""
    json_path, markdown_path = results_dir / JSON_NAME, results_dir / MARKDOWN_NAME
    write_json(json_path, report.to_json())
    write_whole(markdown_path, report.markdown())
    return json_path, markdown_path
