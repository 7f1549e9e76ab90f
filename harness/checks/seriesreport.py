"""The result model of `harness check-series`: one line per patch, JSON and Markdown."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks.extrawarn import CompilerWarning
from harness.checks.hygiene import CheckpatchResult, SignOff
from harness.core.jsonfile import write_json, write_whole
from harness.core.status import Status, worst

JSON_NAME = "check-series.json"
MARKDOWN_NAME = "check-series.md"


SHOWN_DEPARTURES = 3  # on a patch's line; the JSON lists every one


@dataclass
class BootVerdict:
    """One prefix's kernel booted on one arch (`--boot`): did its guest tests behave?

    `judged_as` is the variant of the expectations it was judged by: `baseline`
    for the base, `patched` for every prefix of the series.
    """

    judged_as: str
    booted: bool = True
    status: Status = Status.PASS
    reason: str = ""  # the booted cell's reason, or why it was not booted
    departures: list[str] = field(default_factory=list)  # kernel report classes, then tests
    directory: str = ""  # its console.log, results.jsonl, junit.xml; relative to the results

    def text(self) -> str:
        if not self.booted:
            return f"not booted ({self.reason})"
        if not self.departures:
            return "BEHAVES: 0 departures"
        shown = ", ".join(self.departures[:SHOWN_DEPARTURES])
        more = len(self.departures) - SHOWN_DEPARTURES
        return f"DEPARTS: {shown}" + (f" +{more} more" if more > 0 else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "judged_as": self.judged_as,
            "booted": self.booted,
            "status": self.status.label,
            "reason": self.reason,
            "departures": self.departures,
            "dir": self.directory,
            "line": self.text(),
        }


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
    boot: BootVerdict | None = None  # None: --boot not given

    def fail(self, status: Status, message: str) -> None:
        if status.outranks(self.status) or self.state != "failed":
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
            "boot": None if self.boot is None else self.boot.to_json(),
        }

    def statuses(self) -> list[Status]:
        """The build's status, and the boot's when the prefix was booted."""
        return [self.status] + ([self.boot.status] if self.boot is not None else [])


def _builds(steps: dict[str, Step]) -> str:
    built = [
        f"{arch} ({step.build_seconds:.0f} s)"
        for arch, step in steps.items()
        if step.state == "built"
    ]
    parts = ["builds " + " ".join(built)] if built else []
    for arch, step in steps.items():
        if step.state == "failed":
            parts.append(f"{arch} DOES NOT BUILD: {step.message}")
        elif step.state == "skipped":
            parts.append(f"{arch} not built ({step.message})")
    return ", ".join(parts)


def _boots(steps: dict[str, Step]) -> str:
    """How each arch's kernel behaved, the arch named when there are several."""
    verdicts = {arch: step.boot for arch, step in steps.items() if step.boot is not None}
    if len(steps) == 1:
        return "".join(verdict.text() for verdict in verdicts.values())
    return ", ".join(f"{arch} {verdict.text()}" for arch, verdict in verdicts.items())


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
        statuses = [status for step in self.steps.values() for status in step.statuses()]
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
        parts.append(
            f"NOT SIGNED OFF: {problem}" if (problem := self.signoff.problem()) else "signed-off"
        )
        if self.applies:
            parts += [self._w1(), _boots(self.steps)]
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
    boot: bool = False  # --boot: every prefix that built was booted and judged
    expectations: str | None = None  # the file it was judged by, None without one

    def status(self) -> Status:
        return worst(
            [status for step in self.base.values() for status in step.statuses()]
            + [patch.status() for patch in self.patches]
        )

    def base_line(self) -> str:
        boots = _boots(self.base)
        return f"base (no patches): {_builds(self.base)}" + (f", {boots}" if boots else "")

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
            "boot": self.boot,
            "expectations": self.expectations,
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
            "`checkpatch.pl --strict`; W=1 warnings are new against the prefix before."
            + (self._boot_note() if self.boot else ""),
            "",
            *(f"- {line}" for line in [self.base_line(), *(p.line() for p in self.patches)]),
        ]
        base_boots = _boot_problems(self.base)
        details = ["\n### base (no patches)\n\n" + "\n".join(base_boots) if base_boots else ""]
        details += [self._details(patch) for patch in self.patches]
        if any(details):
            out += ["", "## Problems"]
            out += [text for text in details if text]
        out += ["", "## Logs", ""]
        for arch, step in self.base.items():
            out.append(f"- base {arch}: {', '.join(_logs(step))}")
        for patch in self.patches:
            logs = [patch.checkpatch_log] + [
                log for step in patch.steps.values() for log in _logs(step)
            ]
            out.append(f"- {patch.name}: {', '.join(logs)}")
        return "\n".join(out) + "\n"

    def _boot_note(self) -> str:
        judged = f"`{self.expectations}`" if self.expectations else "no expectations file"
        return (
            " Every prefix that built was booted and its guest tests judged by "
            f"{judged}: the base by its `baseline` entries, every patch by its `patched` ones."
        )

    @staticmethod
    def _details(patch: PatchCheck) -> str:
        items = [f"- checkpatch: `{issue}`" for issue in patch.checkpatch.issues]
        if problem := patch.signoff.problem():
            items.append(f"- sign-off: {problem}")
        items += [f"- {arch} W=1: `{w.describe()}`" for arch, w in patch.new_warnings()]
        items += [
            f"- {arch}: {step.message} ({step.log})"
            for arch, step in patch.steps.items()
            if step.state == "failed"
        ]
        if patch.applies is False:
            items.append(f"- does not apply: {patch.apply_message}")
        items += _boot_problems(patch.steps)
        return f"\n### {patch.name}\n\n" + "\n".join(items) if items else ""


def _logs(step: Step) -> list[str]:
    logs = [log for log in (step.log, step.w1_log) if log]
    if step.boot is not None and step.boot.booted:
        logs.append(f"{step.boot.directory}/")
    return logs


def _boot_problems(steps: dict[str, Step]) -> list[str]:
    """A Markdown item per booted kernel that did not behave: why, and where its console is."""
    problems = []
    for arch, step in steps.items():
        boot = step.boot
        if boot is not None and boot.status is not Status.PASS:
            where = f"{boot.directory}/console.log" if boot.booted else f"{boot.directory}/"
            problems.append(
                f"- {arch} boot, judged by the {boot.judged_as} expectations: "
                f"{boot.reason} ({where})"
            )
    return problems


def write_report(report: SeriesReport, results_dir: Path) -> tuple[Path, Path]:
    """check-series.json and check-series.md, each written whole or not at all."""
    json_path, markdown_path = results_dir / JSON_NAME, results_dir / MARKDOWN_NAME
    write_json(json_path, report.to_json())
    write_whole(markdown_path, report.markdown())
    return json_path, markdown_path
