"""The result model of `harness check-series`: one line per patch, JSON and Markdown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.extrawarn import CompilerWarning
from harness.hygiene import CheckpatchResult, SignOff
from harness.jsonfile import write_json
from harness.status import Status, worst

JSON_NAME = "check-series.json"
MARKDOWN_NAME = "check-series.md"


@dataclass
class Step:
    """One arch at one prefix of the series: configure, build, W=1 compile."""

    state: str = "skipped"  # "built", "failed" or "skipped"
    status: Status = Status.PASS
    message: str = ""  # why it failed or was skipped
    build_seconds: float = 0.0
    w1_seconds: float = 0.0
    log: str = ""  # relative to the results dir
    w1_log: str = ""
    w1_sources: list[str] = field(default_factory=list)
    warnings: Counter[CompilerWarning] | None = None  # None: no W=1 compile at this prefix
    new_warnings: list[CompilerWarning] = field(default_factory=list)

    def fail(self, status: Status, message: str) -> None:
        if status.rank > self.status.rank or self.state != "failed":
            self.state, self.status, self.message = "failed", status, message

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "status": self.status.label,
            "message": self.message,
            "build_seconds": round(self.build_seconds, 1),
            "w1_seconds": round(self.w1_seconds, 1),
            "log": self.log,
            "w1_log": self.w1_log,
            "w1_sources": self.w1_sources,
            "w1_warnings": None if self.warnings is None else self.warnings.total(),
            "new_w1_warnings": [warning.describe() for warning in self.new_warnings],
        }


def _builds(steps: dict[str, Step]) -> str:
    built = [f"{arch} ({step.build_seconds:.0f} s)" for arch, step in steps.items()
             if step.state == "built"]  # fmt: skip
    parts = ["builds " + " ".join(built)] if built else []
    for arch, step in steps.items():
        if step.state == "failed":
            parts.append(f"{arch} DOES NOT BUILD: {step.message}")
        elif step.state == "skipped":
            parts.append(f"{arch} not built ({step.message})")
    return ", ".join(parts)


@dataclass
class PatchCheck:
    name: str
    signoff: SignOff
    checkpatch: CheckpatchResult
    checkpatch_log: str
    applies: bool | None = None  # None: not tried, an earlier patch does not apply
    apply_message: str = ""
    steps: dict[str, Step] = field(default_factory=dict)

    def new_warnings(self) -> list[tuple[str, CompilerWarning]]:
        return [(arch, w) for arch, step in self.steps.items() for w in step.new_warnings]

    def hygiene_problems(self) -> list[str]:
        problems = []
        if not self.checkpatch.clean:
            problems.append(f"checkpatch {self.checkpatch.counts()}")
        if signoff := self.signoff.problem():
            problems.append(signoff)
        if new := len(self.new_warnings()):
            problems.append(f"{new} new W=1 warning{'s' if new > 1 else ''}")
        return problems

    def status(self) -> Status:
        statuses = [step.status for step in self.steps.values()]
        if self.applies is False:
            statuses.append(Status.PATCH_FAILED)
        if self.hygiene_problems():
            statuses.append(Status.HYGIENE_FAILED)
        return worst(statuses)

    def line(self) -> str:
        parts = []
        if self.applies is None:
            parts.append(f"not tried ({self.apply_message})")
        elif not self.applies:
            parts.append(f"DOES NOT APPLY: {self.apply_message}")
        else:
            parts += ["applies", _builds(self.steps)]
        parts.append(f"checkpatch {self.checkpatch.counts()}")
        parts.append(f"NOT SIGNED OFF: {problem}" if (problem := self.signoff.problem())
                     else "signed-off")  # fmt: skip
        if self.applies:
            parts.append(self._w1())
        return f"{self.name}: " + ", ".join(part for part in parts if part)

    def _w1(self) -> str:
        unchecked = [arch for arch, step in self.steps.items() if step.warnings is None]
        if len(unchecked) == len(self.steps):
            return "W=1 not checked"
        new = self.new_warnings()
        if new:
            arch, first = new[0]
            more = f" (+{len(new) - 1} more)" if len(new) > 1 else ""
            text = f"W=1 {len(new)} NEW: {arch} {first.describe()}{more}"
        else:
            text = "W=1 no new warnings"
        if unchecked:
            text += f" ({' '.join(unchecked)} not checked)"
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status().label,
            "line": self.line(),
            "applies": self.applies,
            "apply_message": self.apply_message,
            "builds": {arch: step.to_json() for arch, step in self.steps.items()},
            "checkpatch": {
                "errors": self.checkpatch.errors,
                "warnings": self.checkpatch.warnings,
                "checks": self.checkpatch.checks,
                "issues": list(self.checkpatch.issues),
                "log": self.checkpatch_log,
            },
            "signoff": {
                "signed_off_by": list(self.signoff.signers),
                "author": self.signoff.author,
                "problem": self.signoff.problem(),
            },
        }


@dataclass
class SeriesReport:
    series: str
    series_hash: str
    kernel: str
    arches: list[str]
    base: dict[str, Step] = field(default_factory=dict)  # the pristine tree, per arch
    patches: list[PatchCheck] = field(default_factory=list)
    seconds: float = 0.0

    def status(self) -> Status:
        return worst([step.status for step in self.base.values()]
                     + [patch.status() for patch in self.patches])  # fmt: skip

    def base_line(self) -> str:
        return f"base (no patches): {_builds(self.base)}"

    def lines(self) -> list[str]:
        """What the terminal shows: the base, one line per patch, the verdict."""
        clean = sum(patch.status() is Status.PASS for patch in self.patches)
        status = self.status()
        return [
            self.base_line(),
            *(patch.line() for patch in self.patches),
            f"check-series {self.series}: {clean} of {len(self.patches)} patches clean; "
            f"{status.label} (exit {status.exit_code}) after {self.seconds:.0f} s",
        ]

    def to_json(self) -> dict[str, Any]:
        status = self.status()
        return {
            "series": self.series,
            "series_hash": self.series_hash,
            "kernel_version": self.kernel,
            "arches": self.arches,
            "status": status.label,
            "exit_code": status.exit_code,
            "seconds": round(self.seconds, 1),
            "base": {arch: step.to_json() for arch, step in self.base.items()},
            "patches": [patch.to_json() for patch in self.patches],
        }

    def markdown(self) -> str:
        status = self.status()
        out = [
            f"# check-series: {self.series}",
            "",
            f"Kernel {self.kernel}, arches {', '.join(self.arches)}, series sha256 "
            f"`{self.series_hash[:12]}`: **{status.label}** (exit {status.exit_code}) after "
            f"{self.seconds:.0f} s. checkpatch counts are errors/warnings/checks of "
            "`checkpatch.pl --strict`; W=1 warnings are new against the prefix before.",
            "",
            *(f"- {line}" for line in [self.base_line(), *(p.line() for p in self.patches)]),
        ]
        details = [self._details(patch) for patch in self.patches]
        if any(details):
            out += ["", "## Problems"]
            out += [text for text in details if text]
        out += ["", "## Logs", ""]
        for arch, step in self.base.items():
            out.append(f"- base {arch}: {step.log}" + (f", {step.w1_log}" if step.w1_log else ""))
        for patch in self.patches:
            logs = [patch.checkpatch_log] + [
                log for step in patch.steps.values() for log in (step.log, step.w1_log) if log
            ]
            out.append(f"- {patch.name}: {', '.join(logs)}")
        return "\n".join(out) + "\n"

    @staticmethod
    def _details(patch: PatchCheck) -> str:
        items = [f"- checkpatch: `{issue}`" for issue in patch.checkpatch.issues]
        if problem := patch.signoff.problem():
            items.append(f"- sign-off: {problem}")
        items += [f"- {arch} W=1: `{w.describe()}`" for arch, w in patch.new_warnings()]
        items += [f"- {arch}: {step.message} ({step.log})"
                  for arch, step in patch.steps.items() if step.state == "failed"]  # fmt: skip
        if patch.applies is False:
            items.append(f"- does not apply: {patch.apply_message}")
        return f"\n### {patch.name}\n\n" + "\n".join(items) if items else ""


def write_report(report: SeriesReport, results_dir: Path) -> tuple[Path, Path]:
    """check-series.json and check-series.md, each written whole or not at all."""
    json_path, markdown_path = results_dir / JSON_NAME, results_dir / MARKDOWN_NAME
    write_json(json_path, report.to_json())
    partial = markdown_path.with_name(markdown_path.name + ".partial")
    partial.write_text(report.markdown())
    partial.replace(markdown_path)
    return json_path, markdown_path
