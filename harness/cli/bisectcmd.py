"""`harness bisect`: its options, the inputs it checks before any build, and the run."""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
from pathlib import Path

from harness.checks.bisect import PREDICATES, Bisector
from harness.checks.bisectreport import BisectReport
from harness.cli import settings
from harness.cli.options import add_guest_options, add_matrix_options
from harness.core.errors import BadInput
from harness.core.progress import Progress
from harness.core.vocabulary import Variant
from harness.core.workdir import WorkDirLock, nothing_left_on_bad_input
from harness.kernel.series import Series
from harness.run import inputs
from harness.run.config import RunConfig

_FROM_SHA = re.compile(r"^From (?P<sha>[0-9a-f]{40}) ")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "bisect",
        help="the first patch (or commit) at which one arch's cell departs from its "
        "expectations, by binary search over the series' prefixes",
    )
    add_matrix_options(parser, ["x86_64"], variants=False)
    group = parser.add_argument_group("bisect")
    group.add_argument(
        "--predicate",
        choices=PREDICATES,
        default="tests",
        help="how far each step goes: build (a build failure departs), boot (also a boot "
        "failure or kernel report), tests (also a guest test's departure; default)",
    )
    group.add_argument(
        "--good", metavar="REV", help="git mode: a commit of the --source git tree that behaves"
    )
    group.add_argument(
        "--bad", metavar="REV", help="git mode: a later commit that departs (default: HEAD)"
    )
    add_guest_options(parser, ktap_option=False)
    parser.set_defaults(handler=cmd_bisect)


def _git(tree: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
    )


def git_range(args: argparse.Namespace) -> str | None:
    """--good/--bad as the BASE..TIP range the series input reads, checked: a git
    --source, no other series, good an ancestor of bad, no merge between them."""
    if args.good is None and args.bad is None:
        return None
    if args.good is None:
        raise BadInput("--bad needs --good: the commit the range starts from, which behaves")
    if args.series or args.mbox or args.commits:
        raise BadInput(
            "--good/--bad bisect the --source git tree's commits: leave out "
            "--series, --mbox and --commits"
        )
    if args.source is None or _git(args.source, "rev-parse", "--git-dir").returncode != 0:
        raise BadInput("--good/--bad: --source must be a git checkout of the kernel")
    bad = args.bad or "HEAD"
    for name in (args.good, bad):
        if _git(args.source, "rev-parse", "--verify", f"{name}^{{commit}}").returncode != 0:
            raise BadInput(f"{name}: no such commit in {args.source}")
    if _git(args.source, "merge-base", "--is-ancestor", args.good, bad).returncode != 0:
        raise BadInput(f"--good {args.good} is not an ancestor of --bad {bad}")
    merges = _git(args.source, "rev-list", "--merges", f"{args.good}..{bad}").stdout.split()
    if merges:
        raise BadInput(
            f"{args.good}..{bad} holds {len(merges)} merge commit(s), e.g. "
            f"{merges[0][:12]}; bisect a linear range"
        )
    return f"{args.good}..{bad}"


def commits_of(series: Series) -> list[str]:
    """Each patch's commit, from the `From <sha>` line git format-patch starts it with."""
    shas = []
    for patch in series.patches:
        first = patch.path.read_text(errors="replace").split("\n", 1)[0]
        match = _FROM_SHA.match(first)
        shas.append(match["sha"] if match else "")
    return shas


def _config(args: argparse.Namespace) -> RunConfig:
    if args.arch is not None and len(args.arch) > 1:
        raise BadInput(f"bisect follows one cell: give one --arch, not {len(args.arch)}")
    if args.toolchain is not None and len(args.toolchain) > 1:
        raise BadInput(f"bisect follows one cell: give one --toolchain, not {len(args.toolchain)}")
    commits = git_range(args)
    do_test = args.predicate != "build"
    config = settings.make_config(args, True, do_test)
    return dataclasses.replace(
        config, variants=[Variant.PATCHED], commits=commits or config.commits
    )


def cmd_bisect(args: argparse.Namespace) -> int:
    git = args.good is not None or args.bad is not None
    config = _config(args)
    progress = Progress(quiet=args.quiet)
    with (
        settings.fresh_run_dir(config, args.results) as config,
        nothing_left_on_bad_input(config.work.root, config.results_dir),
        WorkDirLock(config.work.root),
    ):
        args.run_dir = config.results_dir
        prepared = inputs.prepare(config, progress.line)
        series = prepared.series
        if series is None:
            raise BadInput("bisect needs a series: give --series, --mbox, --commits or --good")
        arch = config.arches[0].name
        report = BisectReport(
            mode="git" if git else "series",
            series=config.commits if git and config.commits else series.name,
            series_hash=series.content_hash(),
            kernel=prepared.source.kernel_version,
            arch=arch,
            predicate=args.predicate,
            patches=[p.name for p in series.patches],
            selection=args.keyword or "",
        )
        if args.predicate != "build" and config.expectations.path is not None:
            report.expectations = str(config.expectations.path.resolve())
        progress.line(
            f"kernel {prepared.source.kernel_version} ({prepared.source.origin}); bisect of "
            f"{report.series} ({len(series.patches)} {'commits' if git else 'patches'}) on "
            f"{arch}, predicate {args.predicate}; results: {config.results_dir}"
        )
        bisector = Bisector(
            config, prepared, progress, report, git=git, commits=commits_of(series) if git else None
        )
        result = bisector.run()
    for probe in result.probes:
        print(probe.line())
    for line in result.lines():
        print(line)
    progress.line(f"see {config.results_dir}/bisect.md and bisect.json")
    return result.exit_code()
