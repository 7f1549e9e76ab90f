"""`harness check-series`: would a maintainer take every prefix of the series?

Per patch k: it applies on top of patches 1..k-1; that prefix configures
(with the matrix's merged config) and builds for every arch, so the series is
bisectable; the C files the series touches compile with no W=1 warning the
prefix before did not have; `checkpatch.pl --strict` of the tree is clean;
it carries a Signed-off-by, by its author when it names one.

The tree is one link farm patched in place one patch at a time, and each arch
keeps one build dir for check-series, so prefix k+1 recompiles only what
patch k+1 changed. The pristine tree (prefix 0) is built first: W=1 warnings
are new against it, and when it does not build, the arch says nothing about
the series and is skipped.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from pathlib import Path

from harness.checks.extrawarn import (
    CompilerWarning,
    built_sources,
    compile_with_extra_warnings,
    tree_relative,
)
from harness.checks.hygiene import CHECKPATCH, read_signoff, run_checkpatch
from harness.checks.seriesboot import PrefixBooter, not_booted
from harness.checks.seriesreport import PatchCheck, SeriesReport, Step, write_report
from harness.core.errors import BadInput, BuildError, PatchError, StageFailure
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.toolchains import Platform
from harness.kernel import build
from harness.kernel.buildmeter import metered_build
from harness.kernel.series import Series
from harness.kernel.trees import apply_patch, build_dir_in, reset_tree
from harness.run.config import Prepared, RunConfig
from harness.run.keys import source_key

LOGS = "logs"
_LOCATED = re.compile(r"^(?P<path>[^\s:]+)(?P<rest>:\d+:.*)$")  # "file:line:col: error: ..."


def check_inputs(prepared: Prepared) -> Series:
    """What check-series needs beyond the matrix's inputs, checked before any build."""
    if prepared.series is None:
        raise BadInput("check-series needs a series: give --series, --mbox or --commits")
    checkpatch = prepared.source.tree / CHECKPATCH
    if not checkpatch.is_file():
        raise BadInput(
            f"{checkpatch}: missing; check-series runs the tree's own checkpatch, "
            "so pass a complete kernel tree"
        )
    if shutil.which("perl") is None:
        raise BadInput(
            "perl not found (checkpatch.pl needs it); install it with 'apt-get install perl'"
        )
    return prepared.series


def headline(failure: StageFailure, tree: Path, build_dir: Path) -> str:
    """A build's first compiler error rather than its message, its file relative to the tree."""
    if isinstance(failure, BuildError) and failure.excerpt:
        text = failure.excerpt.splitlines()[0].strip()
        if located := _LOCATED.match(text):
            text = tree_relative(located["path"], tree, build_dir) + located["rest"]
    else:
        text = str(failure)
    return text.replace(f"{tree.resolve()}/", "").replace(f"{tree}/", "")


def touches_kconfig(files: list[str]) -> bool:
    return any(Path(name).name.startswith("Kconfig") for name in files)


class SeriesChecker:
    def __init__(self, config: RunConfig, prepared: Prepared, progress: Progress) -> None:
        self.config = config
        self.prepared = prepared
        self.progress = progress
        self.series = check_inputs(prepared)
        self.pristine = prepared.source.tree
        key = source_key(prepared.source)
        self.tree = config.work.trees / key / f"check-series-{self.series.dir_name}"
        self.logs = config.results_dir / LOGS
        self.sources = [name for name in self.series.touched_files() if name.endswith(".c")]
        self.configured: set[str] = set()
        # Per arch, the W=1 warnings of the last prefix that built: what is new is new to it.
        self.last_warnings: dict[str, Counter[CompilerWarning]] = {}
        # --boot: every prefix that builds is booted and judged by the expectations.
        self.booter = PrefixBooter(config, prepared, progress) if config.do_test else None

    def build_dir(self, platform: Platform) -> Path:
        """One per source, arch, toolchain, series and config, kept from one check-series
        run to the next."""
        digest = self.prepared.merged[platform.arch.name].digest()
        return build_dir_in(self.tree, platform.name, digest)

    def run(self) -> SeriesReport:
        started = time.monotonic()
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.booter is not None:
            self.booter.reset()
        report = SeriesReport(
            series=self.series.name,
            series_hash=self.series.content_hash(),
            kernel=self.prepared.source.kernel_version,
            arches=[platform.name for platform in self.config.platforms],
            boot=self.booter is not None,
        )
        if self.booter is not None and self.config.expectations.path is not None:
            report.expectations = str(self.config.expectations.path.resolve())
        with self.progress.stage("check-series", "checkpatch and sign-offs"):
            report.patches = [
                self.static_checks(number, patch.path)
                for number, patch in enumerate(self.series.patches, start=1)
            ]
        with self.progress.stage("check-series", "link farm"):
            reset_tree(self.pristine, self.tree, self.series.touched_files())
        for platform in self.config.platforms:
            report.base[platform.name] = self.step(platform, 0, configure=True)
        self.progress.line(report.base_line())
        not_applied: str | None = None
        for number, (patch, check) in enumerate(
            zip(self.series.patches, report.patches, strict=True), start=1
        ):
            if not_applied is not None:
                check.apply_message = f"{not_applied} does not apply"
                self.progress.line(check.line())
                continue
            try:
                apply_patch(patch, self.tree)
            except PatchError as failure:
                check.applies, check.apply_message = False, str(failure)
                not_applied = patch.name
                self.progress.line(check.line())
                continue
            check.applies = True
            reconfigure = touches_kconfig(patch.touched_files())
            for platform in self.config.platforms:
                base = report.base[platform.name]
                if base.state == "built":
                    check.steps[platform.name] = self.step(platform, number, reconfigure)
                else:
                    check.steps[platform.name] = self.unbuilt(number, "the base failed")
            self.progress.line(check.line())
        report.seconds = time.monotonic() - started
        write_report(report, self.config.results_dir)
        return report

    def static_checks(self, number: int, patch: Path) -> PatchCheck:
        log = self.logs / f"{number:02d}-checkpatch.log"
        return PatchCheck(
            name=patch.name,
            signoff=read_signoff(patch.read_text(errors="replace")),
            checkpatch=run_checkpatch(self.pristine, patch, log),
            checkpatch_log=str(log.relative_to(self.config.results_dir)),
        )

    def _relative(self, path: Path) -> str:
        return str(path.relative_to(self.config.results_dir))

    def _headline(self, failure: StageFailure, build_dir: Path) -> str:
        return headline(failure, self.tree, build_dir)

    def _label(self, platform: Platform, number: int) -> str:
        prefix = "base" if number == 0 else f"patch {number}/{len(self.series.patches)}"
        return f"{platform.name} {prefix}"

    def step(self, platform: Platform, number: int, configure: bool) -> Step:
        """Configure (when needed), build and W=1-compile the tree as it is now, for one
        arch and toolchain."""
        arch, toolchain = platform.arch, platform.toolchain
        label = self._label(platform, number)
        build_dir = self.build_dir(platform)
        log = self.logs / f"{number:02d}-{platform.name}-build.log"
        log.unlink(missing_ok=True)
        step = Step(log=self._relative(log))
        work = self.config.work
        try:
            if configure or platform.name not in self.configured:
                self.configured.discard(platform.name)
                merged = self.prepared.merged[arch.name]
                with self.progress.stage(label, "config"):
                    build.configure(
                        arch,
                        toolchain,
                        self.tree,
                        build_dir,
                        merged,
                        self.prepared.index,
                        log,
                        work.ccache,
                    )
                self.configured.add(platform.name)
            digest = self.prepared.merged[arch.name].digest()
            with self.progress.stage(label, "build") as meter:
                outputs = metered_build(
                    arch,
                    toolchain,
                    self.tree,
                    build_dir,
                    digest,
                    self.config.jobs,
                    log,
                    work,
                    meter,
                    self.config.build_timeout,
                )
            step.state, step.build_seconds = "built", outputs.seconds
        except StageFailure as failure:
            step.fail(failure.status, self._headline(failure, build_dir))
            return self.not_booted(step, number, "does not build")
        except OSError as error:
            step.fail(Status.INFRA, f"host error: {error}")
            return self.not_booted(step, number, "does not build")
        self.extra_warnings(platform, number, build_dir, step)
        if self.booter is not None:
            # Now, before the next patch changes the tree and this build dir's kernel.
            step.boot = self.booter.boot(platform, number, label, self.tree, build_dir)
        return step

    def unbuilt(self, number: int, message: str) -> Step:
        """An arch not built at this prefix, and so not booted either."""
        return self.not_booted(Step(message=message), number, message)

    def not_booted(self, step: Step, number: int, reason: str) -> Step:
        if self.booter is not None:
            step.boot = not_booted(number, reason)
        return step

    def extra_warnings(self, platform: Platform, number: int, build_dir: Path, step: Step) -> None:
        """W=1 warnings of the series' C files the config builds, and which of them are new."""
        step.w1_sources = built_sources(self.tree, build_dir, self.sources)
        if not step.w1_sources:
            step.warnings = Counter()
        else:
            log = self.logs / f"{number:02d}-{platform.name}-w1.log"
            log.unlink(missing_ok=True)
            step.w1_log = self._relative(log)
            started = time.monotonic()
            count = len(step.w1_sources)
            stage = f"W=1 compile of {count} file{'s' if count > 1 else ''}"
            try:
                with self.progress.stage(self._label(platform, number), stage):
                    step.warnings = compile_with_extra_warnings(
                        platform.arch,
                        platform.toolchain,
                        self.tree,
                        build_dir,
                        step.w1_sources,
                        self.config.jobs,
                        log,
                        self.config.work.ccache,
                    )
            except StageFailure as failure:
                # The normal build passed, so this is the harness's or the host's doing.
                step.fail(Status.INFRA, self._headline(failure, build_dir))
                return
            step.w1_seconds = time.monotonic() - started
        previous = self.last_warnings.get(platform.name)
        if previous is not None:
            step.new_warnings = sorted((step.warnings - previous).elements())
        self.last_warnings[platform.name] = step.warnings


def run_check_series(config: RunConfig, prepared: Prepared, progress: Progress) -> SeriesReport:
    return SeriesChecker(config, prepared, progress).run()
