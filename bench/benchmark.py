"""The developer-loop benchmark: one command, one table.

usage: python bench/benchmark.py [--work-dir DIR] [--skip NAME ...] [-j N]

Rows (NAME for --skip in brackets): the cold build through the harness
against plain make of the same config [cold]; the default x86_64 cell's
config fragments, one cold build more per fragment [fragments]; a newcomer's first run, the
cold main job then check-series [first]; a no-op `harness run --arch
x86_64` [noop]; the rebuild, boot and guest suite after editing the series'
kernel/seccomp.c patch [edit]; boot to the first guest test and the
guest suite per arch [boot]; the full 2 x 2 matrix from fresh build dirs
sharing one warm ccache, with its hit rate [matrix]; the live VM's re-run
of the guest suite after a test edit [live]; and, as references, the
kernel's own kunit.py [kunit] and virtme-ng, where installed [vng].

It needs the kernels of the matrix built once (it runs `harness run` first,
untimed, to make sure), and the machine to itself: it times wall clocks.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import measures
from measures import ROOT, BenchError, Timed, harness_run

ARCHES = ("x86_64", "arm64")


@dataclass
class Row:
    measure: str
    harness: str  # the harness's figure
    reference: str = ""  # what it is compared with
    comparison: str = ""  # overhead or ratio
    target: str = ""
    met: bool | None = None  # None: no target

    def cells(self) -> list[str]:
        verdict = {True: "met", False: "**missed**", None: ""}[self.met]
        return [self.measure, self.harness, self.reference, self.comparison, self.target, verdict]


@dataclass
class Bench:
    work: Path
    scratch: Path
    log: Path
    jobs: int
    rows: list[Row]
    facts: dict[str, float] = field(default_factory=dict)  # figures one row hands another

    def results(self, name: str) -> Path:
        path = self.scratch / "results" / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(" | ".join(cell for cell in row.cells() if cell), file=sys.stderr, flush=True)


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


# Rows that time the work dir's own kernels, which warm_up brings up to date first.
NEED_BUILT = ("noop", "edit", "boot", "live", "matrix")


def warm_up(bench: Bench, rows: list[str]) -> None:
    """Bring the matrix's kernels up to date (untimed) when a row needs them; else only
    unpack the source and make the guest userspace, as the cold rows assume."""
    if any(name in NEED_BUILT for name in rows):
        harness_run(["run", "--work-dir", str(bench.work)], bench.results("warm-up"), bench.log)
    else:
        measures.set_up(bench.work, bench.log)


def measure_cold(bench: Bench) -> None:
    pristine = measures.pristine_tree(bench.work)
    scratch_work = measures.scratch_work_dir(bench.scratch / "cold-work", bench.work, False)
    harness = harness_run(
        ["build", "--arch", "x86_64", "--variant", "baseline", "--work-dir", str(scratch_work),
         "-j", str(bench.jobs)], bench.results("cold"), bench.log,
    )  # fmt: skip
    cell = harness.cell("x86_64", "baseline")
    built = "trees/*/baseline/harness-build-x86_64-*/harness-fragment.config"
    fragment = next(scratch_work.glob(built))
    make = measures.plain_make_build(
        pristine, bench.scratch / "plain-make", fragment.read_text(),
        bench.scratch / "plain-make-ccache", bench.jobs, bench.log,
    )  # fmt: skip
    overhead = harness.seconds - make
    bench.facts["plain_make"] = make
    bench.add(Row(
        "cold build, x86_64 baseline (empty ccache both)", seconds(harness.seconds),
        f"plain make {seconds(make)} (config {cell['stages']['config']['seconds']:.0f} s in"
        " the harness)",
        f"overhead {overhead:+.1f} s ({100 * overhead / make:+.1f} %)", "<= 5 %",
        overhead <= 0.05 * make,
    ))  # fmt: skip
    shutil.rmtree(scratch_work, ignore_errors=True)
    shutil.rmtree(bench.scratch / "plain-make", ignore_errors=True)


def measure_fragments(bench: Bench) -> None:
    """What each config fragment of the default x86_64 cell costs: plain cold
    builds (empty ccache) of tinyconfig and then one more fragment each time,
    in the harness's merge order. A row per fragment: its build and what it
    added over the build before it, in seconds and in objects."""
    pristine = measures.pristine_tree(bench.work)
    build_dir, ccache_dir = bench.scratch / "fragments", bench.scratch / "fragments-ccache"
    text, before = "", None
    for name, fragment in [("tinyconfig", ""), *measures.cell_layers(pristine, "x86_64")]:
        text += fragment + "\n"
        took = measures.plain_make_build(pristine, build_dir, text, ccache_dir, bench.jobs,
                                         bench.log)  # fmt: skip
        objects = measures.object_count(build_dir)
        added = (f"{took - before[0]:+.0f} s, {objects - before[1]:+d} objects"
                 if before else "")  # fmt: skip
        bench.add(Row(f"cold build, x86_64: tinyconfig{' + ... + ' + name if before else ''}",
                      seconds(took), f"{objects} objects", added))  # fmt: skip
        before = (took, objects)
    shutil.rmtree(build_dir, ignore_errors=True)
    shutil.rmtree(ccache_dir, ignore_errors=True)


def measure_first(bench: Bench) -> None:
    """The first run a newcomer makes: the main job from an empty work dir and ccache
    (the source unpacked and the guest userspace made: set-up), then check-series."""
    scratch_work = measures.scratch_work_dir(bench.scratch / "first-work", bench.work, False)
    work = ["--work-dir", str(scratch_work), "-j", str(bench.jobs)]
    run = harness_run(["run", "--arch", "x86_64", *work], bench.results("first"), bench.log)
    variants = ("baseline", "patched")
    builds = {v: run.cell("x86_64", v)["stages"]["build"]["seconds"] for v in variants}
    make = bench.facts.get("plain_make")
    ratio = run.seconds / make if make else None
    bench.add(Row(
        "cold main job `harness run --arch x86_64` (empty work dir and ccache): 2 builds, 2 boots",
        seconds(run.seconds), f"builds {builds['baseline']:.0f} s + {builds['patched']:.0f} s",
        f"{ratio:.2f}x plain cold make of one cell" if ratio else "run the cold row too",
        "<= 1.2x", ratio is not None and ratio <= 1.2,
    ))  # fmt: skip
    share = builds["patched"] / builds["baseline"]
    bench.add(Row(
        "patched cell's build right after baseline's (same run)", seconds(builds["patched"]),
        f"baseline's {seconds(builds['baseline'])}", f"{share:.2f}x", "<= 0.15x", share <= 0.15,
    ))  # fmt: skip
    check = harness_run(["check-series", "--arch", "x86_64", *work], bench.results("first-check"),
                        bench.log)  # fmt: skip
    bench.add(Row(
        "cold `check-series --arch x86_64` right after that run", seconds(check.seconds),
        "every prefix built, checkpatch, W=1", "", "<= 180 s", check.seconds <= 180,
    ))  # fmt: skip
    shutil.rmtree(scratch_work, ignore_errors=True)


def measure_noop(bench: Bench) -> Timed:
    run = harness_run(["run", "--arch", "x86_64", "--work-dir", str(bench.work)],
                      bench.results("noop"), bench.log)  # fmt: skip
    reused = all(c["stages"]["build"]["status"] == "reused" for c in run.summary["cells"])
    bench.add(Row(
        "no-op `harness run --arch x86_64` (2 cells, guest tests + selftests)",
        seconds(run.seconds), "", "" if reused else "a kernel was rebuilt", "<= 20 s",
        reused and run.seconds <= 20,
    ))  # fmt: skip
    return run


def measure_edit(bench: Bench) -> None:
    token = int(time.time())
    pristine = measures.pristine_tree(bench.work) / "kernel" / "seccomp.c"
    edited = measures.edited_series(bench.scratch / "edited", token, pristine)
    argv = ["run", "--arch", "x86_64", "--variant", "patched", "--no-selftests",
            "--work-dir", str(bench.work)]  # fmt: skip
    run = harness_run([*argv, "--series", str(edited)], bench.results("edit"), bench.log)
    stages = run.cell("x86_64", "patched")["stages"]
    breakdown = ", ".join(
        f"{name} {stage['seconds']:.1f} s" if stage["status"] == "pass" else f"{name} reused"
        for name, stage in stages.items()
    )
    bench.add(Row(
        "edit the series' kernel/seccomp.c patch: rebuild, boot, guest suite (x86_64 patched)",
        seconds(run.seconds), breakdown, "", "<= 30 s",
        run.seconds <= 30 and run.exit_code == 0,
    ))  # fmt: skip
    # Back to the real series (the next run would do it anyway): not a target.
    back = harness_run(argv, bench.results("edit-back"), bench.log)
    bench.add(Row("the same, back to the checked-in series", seconds(back.seconds)))


BOOT_TARGETS = {"x86_64": 3.0, "arm64": 5.0}


def measure_boot(bench: Bench) -> None:
    """One guest alone (-j1) per arch: boot to the first guest test, and the suite."""
    for arch in ARCHES:
        run = harness_run(
            ["test", "--arch", arch, "--variant", "patched", "--no-selftests", "-j", "1",
             "--work-dir", str(bench.work)], bench.results(f"boot-{arch}"), bench.log,
        )  # fmt: skip
        cell = run.cell(arch, "patched")
        first = cell.get("first_test_seconds")
        bench.add(Row(
            f"boot to first guest test, {arch} (TCG)", seconds(first),
            f"userspace at {seconds(cell['stages']['boot']['seconds'])}", "",
            f"<= {BOOT_TARGETS[arch]:.0f} s", first is not None and first <= BOOT_TARGETS[arch],
        ))  # fmt: skip
        bench.add(Row(
            f"guest suite, {arch} patched ({cell['tests'].get('total', 0)} tests, pytest time)",
            seconds(cell.get("guest_tests_seconds")),
            f"the whole `harness test` command: {seconds(run.seconds)}",
        ))  # fmt: skip


def measure_matrix(bench: Bench) -> None:
    scratch_work = measures.scratch_work_dir(bench.scratch / "matrix-work", bench.work, True)
    before = measures.ccache_counters(bench.work / "ccache")
    run = harness_run(["run", "--work-dir", str(scratch_work), "-j", str(bench.jobs)],
                      bench.results("matrix"), bench.log)  # fmt: skip
    hits, misses, rate = measures.hit_rate(before, measures.ccache_counters(bench.work / "ccache"))
    builds = sum(c["stages"]["build"]["seconds"] for c in run.summary["cells"])
    bench.add(Row(
        "full 2 x 2 matrix, fresh build dirs, one shared warm ccache",
        seconds(run.seconds), f"builds {builds:.0f} s of it",
        f"ccache hit rate {100 * rate:.1f} % ({hits} hits, {misses} misses)" if rate is not None
        else "no compiler calls",
    ))  # fmt: skip
    shutil.rmtree(scratch_work, ignore_errors=True)


def measure_live(bench: Bench) -> None:
    harness = [sys.executable, "-m", "harness"]
    vm = ["--arch", "x86_64", "--variant", "patched", "--work-dir", str(bench.work)]
    if "--ssh" not in measures.timed([*harness, "boot", "--help"], bench.log).output:
        bench.add(Row("live VM re-run after a test edit", "n/a", "harness has no --ssh yet"))
        return
    started = measures.timed([*harness, "boot", "--ssh", *vm], bench.log)
    try:
        measures.timed([*harness, "test", "--live", *vm], bench.log)
        edited = ROOT / "guest-tests" / "test_boot_smoke.py"
        original = edited.read_text()
        try:
            edited.write_text(original + "\n# bench: an edit\n")
            rerun = measures.timed([*harness, "test", "--live", *vm], bench.log)
        finally:
            edited.write_text(original)
    finally:
        measures.timed([*harness, "boot", "--stop", *vm], bench.log, allowed=(0, 1, 2))
    bench.add(Row(
        "live VM: re-run of the guest suite after a test edit (x86_64)", seconds(rerun.seconds),
        f"`boot --ssh` to SSH ready {seconds(started.seconds)}", "", "<= 10 s",
        rerun.seconds <= 10,
    ))  # fmt: skip


def measure_kunit(bench: Bench) -> None:
    figures = measures.kunit_run(
        measures.pristine_tree(bench.work), bench.scratch / "kunit", bench.jobs, bench.log
    )
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in figures.items() if k not in ("wall", "total"))
    bench.add(Row("reference: `kunit.py run --arch=x86_64`, cold", seconds(figures["wall"]),
                  parts or "no Elapsed line"))  # fmt: skip
    shutil.rmtree(bench.scratch / "kunit", ignore_errors=True)


def measure_vng(bench: Bench) -> None:
    if shutil.which("vng") is None:
        bench.add(Row("reference: virtme-ng (`vng --disable-kvm`)", "not installed"))
        return
    tree = measures.pristine_tree(bench.work)
    run = measures.timed(["vng", "--disable-kvm", "--run", str(tree), "--", "true"], bench.log,
                         allowed=(0, 1, 2, 255))  # fmt: skip
    bench.add(Row("reference: virtme-ng `vng --disable-kvm -- true`", seconds(run.seconds),
                  f"exit {run.exit_code}"))  # fmt: skip


MEASURES: dict[str, Callable[[Bench], object]] = {
    "noop": measure_noop, "edit": measure_edit, "boot": measure_boot, "live": measure_live,
    "cold": measure_cold, "fragments": measure_fragments, "first": measure_first,
    "matrix": measure_matrix,
    "kunit": measure_kunit, "vng": measure_vng,
}  # fmt: skip


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.machine(),
    )  # fmt: skip
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, guests under TCG"


def markdown(rows: list[Row], header: str) -> str:
    names = ["measure", "harness", "reference / detail", "comparison", "target", ""]
    lines = [header, "", "| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".work")
    parser.add_argument("--skip", action="append", default=[], choices=list(MEASURES))
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench")
    args = parser.parse_args()
    scratch = args.work_dir.resolve() / "bench"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args.work_dir.resolve(), scratch, args.out / "bench.log", args.jobs, [])
    bench.log.write_text("")
    started = time.monotonic()
    try:
        rows = [name for name in MEASURES if name not in args.skip]
        warm_up(bench, rows)
        for name in rows:
            MEASURES[name](bench)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    header = (f"Benchmark of {time.strftime('%Y-%m-%d')} on {machine()}; "
              f"{(time.monotonic() - started) / 60:.0f} min in all.")  # fmt: skip
    table = markdown(bench.rows, header)
    (args.out / "bench.md").write_text(table)
    (args.out / "bench.json").write_text(json.dumps([asdict(r) for r in bench.rows], indent=2))
    print(table)
    missed = [row.measure for row in bench.rows if row.met is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
