"""`harness bisect`: the first patch (or commit) at which one arch's cell departs from its
expectations, by binary search over the prefixes of the series.

Every probe is what `check-series --boot` does to one prefix, in check-series' own tree
(`trees/<source>/check-series-<series>/`, one link farm patched in place, one build dir
per arch, ccache): the tree is walked forward with `patch` and back with `patch -R`
to the prefix probed, so a step recompiles only what the patches between two probes
changed. The prefix is configured (again only when a patch on the way touched a
Kconfig file), built, booted and its guest tests judged exactly as check-series judges
it (`PrefixBooter`: the base by the `baseline` expectations, a prefix by both), and
the predicate (`--predicate build|boot|tests`) makes a verdict of it.

Series mode: a step the host failed stops the bisect (infra). Git mode (a commit
range, `--good`/`--bad`): such a step, or a prefix whose config cannot be met, is
skipped as `git bisect skip` would, not blamed.
"""

from __future__ import annotations

import time
from pathlib import Path

from harness.checks.bisectevidence import departures_of, gather
from harness.checks.bisectreport import (
    BASE_DEPARTS,
    CULPRIT,
    INTERRUPTED,
    NO_DEPARTURE,
    STOPPED,
    UNDECIDED,
    BisectReport,
    Probe,
    write_report,
)
from harness.checks.bisectsearch import Search, Verdict
from harness.checks.checkseries import headline, touches_kconfig
from harness.checks.seriesboot import PrefixBooter
from harness.core.arches import ArchSpec
from harness.core.errors import InfraError, PatchError, StageFailure
from harness.core.progress import Progress
from harness.core.status import Status
from harness.core.toolchains import Platform
from harness.core.vocabulary import Variant
from harness.kernel import build
from harness.kernel.buildmeter import metered_build
from harness.kernel.series import Series
from harness.kernel.trees import apply_patch, build_dir_in, reset_tree, revert_patch
from harness.results.model import Cell
from harness.run.config import Prepared, RunConfig
from harness.run.keys import source_key

PREDICATES = ("build", "boot", "tests")
LOGS = "logs"
BEFORE_BOOT = (Status.PATCH_FAILED, Status.CONFIG_FAILED, Status.BUILD_FAILED)


def verdict_for(status: Status, predicate: str, git: bool) -> str:
    """good, bad, skip (git mode: says nothing about the commit) or infra (series mode:
    the bisect stops). `boot` blames everything but a test's departure; `build` only
    what stops the build."""
    if status is Status.INFRA:
        return "skip" if git else "infra"
    if status is Status.CONFIG_FAILED and git:
        return "skip"
    if status is Status.PASS:
        return "good"
    if predicate == "boot" and status is Status.TEST_FAILED:
        return "good"
    return "bad"


class PrefixTree:
    """check-series' tree, at one prefix at a time: moved there patch by patch."""

    def __init__(self, config: RunConfig, prepared: Prepared, series: Series) -> None:
        self.series = series
        self.pristine = prepared.source.tree
        key = source_key(prepared.source)
        self.path = config.work.trees / key / f"check-series-{series.dir_name}"
        self.at = 0
        self.kconfig_changed = True  # the next build configures first
        self.unappliable: int | None = None  # the first patch that does not apply

    def reset(self) -> None:
        reset_tree(self.pristine, self.path, self.series.touched_files())
        self.at, self.kconfig_changed = 0, True

    def move_to(self, prefix: int) -> None:
        """Patches 1..prefix applied, nothing more; PatchError when one does not apply
        (the tree stays at the prefix before it)."""
        patches = self.series.patches
        while self.at < prefix:
            patch = patches[self.at]
            try:
                apply_patch(patch, self.path)
            except PatchError:
                self.unappliable = self.at + 1
                raise
            self.kconfig_changed |= touches_kconfig(patch.touched_files())
            self.at += 1
        while self.at > prefix:
            patch = patches[self.at - 1]
            try:
                revert_patch(patch, self.path)
            except PatchError as failure:
                raise InfraError(
                    f"cannot take {patch.name} back off {self.path}: {failure}",
                    excerpt=failure.excerpt,
                ) from None
            self.kconfig_changed |= touches_kconfig(patch.touched_files())
            self.at -= 1


class Bisector:
    def __init__(
        self,
        config: RunConfig,
        prepared: Prepared,
        progress: Progress,
        report: BisectReport,
        git: bool = False,
        commits: list[str] | None = None,
    ) -> None:
        if prepared.series is None:
            raise AssertionError("bisect needs a series")  # the command checks it first
        self.config = config
        self.prepared = prepared
        self.progress = progress
        self.report = report
        self.git = git
        self.commits = commits or []
        self.platform: Platform = config.platforms[0]  # the command gives one of each
        self.arch: ArchSpec = self.platform.arch
        self.series = prepared.series
        self.tree = PrefixTree(config, prepared, self.series)
        self.logs = config.results_dir / LOGS
        boots = report.predicate != "build"
        self.booter = PrefixBooter(config, prepared, progress) if boots else None
        self.cells: dict[int, Cell] = {}  # booted prefixes' cells
        self.build_errors: dict[int, str] = {}  # a prefix that did not build: its errors
        self.started = time.monotonic()

    @property
    def build_dir(self) -> Path:
        digest = self.prepared.merged[self.arch.name].digest()
        return build_dir_in(self.tree.path, self.platform.name, digest)

    def run(self) -> BisectReport:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self.booter is not None:
            self.booter.reset()
        search = Search(len(self.series.patches))
        try:
            with self.progress.stage("bisect", "link farm"):
                self.tree.reset()
            while (prefix := search.next_probe()) is not None:
                probe = self.probe(prefix, len(self.report.probes) + 1)
                if probe.verdict == "infra":
                    self.report.result, self.report.exit_status = STOPPED, probe.status
                    probe.planned = probe.step
                    self.report.probes.append(probe)
                    self.progress.line(probe.line())
                    return self.finish()
                verdict: Verdict = (
                    "skip"
                    if probe.verdict == "skip"
                    else ("good" if probe.verdict == "good" else "bad")
                )
                search.mark(prefix, verdict)
                probe.planned = probe.step + search.left()
                self.report.probes.append(probe)
                self.progress.line(probe.line())
                self.save()
            self.conclude(search)
        except KeyboardInterrupt:
            self.report.result = INTERRUPTED
            self.finish()
            raise
        return self.finish()

    def save(self) -> None:
        self.report.seconds = time.monotonic() - self.started
        write_report(self.report, self.config.results_dir)

    def finish(self) -> BisectReport:
        self.save()
        return self.report

    def conclude(self, search: Search) -> None:
        report = self.report
        candidates = search.candidates()
        last = len(self.series.patches)
        if len(candidates) > 1:
            report.result, report.candidates = UNDECIDED, candidates
            skipped = [p.status for p in report.probes if p.verdict == "skip"]
            report.exit_status = Status.INFRA if Status.INFRA in skipped else Status.CONFIG_FAILED
            return
        first = candidates[0]
        if first > last:
            report.result = NO_DEPARTURE
            return
        if first == 0:
            report.result, report.culprit = BASE_DEPARTS, 0
            return
        report.result, report.culprit, report.last_good = CULPRIT, first, search.good
        bad, good = report.probe_at(first), report.probe_at(search.good)
        report.evidence = gather(
            self.config.results_dir,
            self.cells.get(first),
            bad.boot_dir if bad else "",
            good.boot_dir if good else "",
            self.build_errors.get(first, ""),
        )

    def _name(self, prefix: int) -> str:
        return self.report.name_of(prefix)

    def probe(self, prefix: int, step: int) -> Probe:
        """Prefix `prefix` made, built and (unless --predicate build) booted and judged."""
        started = time.monotonic()
        probe = Probe(step=step, prefix=prefix, name=self._name(prefix))
        if self.git and 0 < prefix <= len(self.commits):
            probe.commit = self.commits[prefix - 1]
        unit = "commit" if self.git else "patch"
        where = "base" if prefix == 0 else f"{unit} {prefix}/{len(self.series.patches)}"
        label = f"{self.platform.name} {where}"
        unappliable = self.tree.unappliable
        try:
            if unappliable is not None and prefix >= unappliable:
                # Known already: this prefix cannot be made.
                raise PatchError(f"{self._name(unappliable)} does not apply")
            with self.progress.stage(label, "patch"):
                self.tree.move_to(prefix)
            self.build(probe, prefix, label)
        except StageFailure as failure:
            probe.status = failure.status
            probe.reason = headline(failure, self.tree.path, self.build_dir)
            self.build_errors[prefix] = failure.excerpt or str(failure)
        except OSError as error:
            probe.status, probe.reason = Status.INFRA, f"host error: {error}"
        if probe.status is not Status.PASS and probe.status in BEFORE_BOOT:
            probe.departures = departures_of(
                Cell(
                    self.arch,
                    Variant.PATCHED,
                    probe.status,
                    probe.reason,
                    toolchain=self.platform.toolchain,
                )
            )
        probe.verdict = verdict_for(probe.status, self.report.predicate, self.git)
        probe.seconds = time.monotonic() - started
        return probe

    def build(self, probe: Probe, prefix: int, label: str) -> None:
        """Configure when needed, build, and boot unless the predicate is `build`."""
        log = self.logs / f"{prefix:02d}-{self.platform.name}-build.log"
        log.unlink(missing_ok=True)
        probe.build_log = str(log.relative_to(self.config.results_dir))
        build_dir, work = self.build_dir, self.config.work
        merged = self.prepared.merged[self.arch.name]
        try:
            if self.tree.kconfig_changed:
                with self.progress.stage(label, "config"):
                    build.configure(
                        self.arch,
                        self.platform.toolchain,
                        self.tree.path,
                        build_dir,
                        merged,
                        self.prepared.index,
                        log,
                        work.ccache,
                    )
                self.tree.kconfig_changed = False
            with self.progress.stage(label, "build") as meter:
                metered_build(
                    self.arch,
                    self.platform.toolchain,
                    self.tree.path,
                    build_dir,
                    merged.digest(),
                    self.config.jobs,
                    log,
                    work,
                    meter,
                    self.config.build_timeout,
                )
        except StageFailure:
            self.tree.kconfig_changed = True  # configure again: a half-made .config may be left
            raise
        if self.booter is None:
            return
        cell, relative = self.booter.boot_cell(
            self.platform, prefix, label, self.tree.path, build_dir
        )
        self.cells[prefix] = cell
        probe.boot_dir = relative
        probe.status, probe.reason = cell.status, cell.reason
        probe.departures = departures_of(cell, kernel_only=self.report.predicate == "boot")
