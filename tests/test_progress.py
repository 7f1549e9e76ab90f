"""Progress on long work: the build meter, the guest-suite meter and how lines go out."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from harness.core.progress import PLAIN_EVERY, Progress, clock
from harness.kernel import buildmeter
from harness.kernel.buildmeter import BuildMeter, Expected, expected_objects, record_objects
from harness.vm.records import parse_records

KBUILD_LINES = [
    "  HOSTCC  scripts/basic/fixdep\n",
    "  CC      kernel/seccomp.o\n",
    "  AS      arch/x86/entry/entry_64.o\n",
    "  AR      kernel/built-in.a\n",
    "  CC [M]  drivers/demo/demo.o\n",
    "  LD      vmlinux.o\n",
    "kernel/seccomp.c:12:1: warning: CC      not an object line\n",
]


def meter(tmp_path: Path, expected: Expected | None, incremental: bool = False) -> BuildMeter:
    # No ccache dir: the hit rate stays out of the line.
    return BuildMeter(expected, incremental, tmp_path / "no-ccache", started=100.0)


def test_objects_are_counted_from_kbuild_compile_lines_only(tmp_path: Path) -> None:
    build = meter(tmp_path, None)
    for line in KBUILD_LINES:
        build.see(line)
    assert build.objects == 3
    assert build.describe(now=160.0) == "3 objects, 1:00"


def test_exact_total_gives_eta_and_estimate_is_marked(tmp_path: Path) -> None:
    exact = meter(tmp_path, Expected(400, estimated=False))
    exact.objects = 100
    assert exact.describe(now=160.0) == "100/400 objects, 1:00, ETA 3:00"
    guessed = meter(tmp_path, Expected(400, estimated=True))
    guessed.objects = 300
    assert guessed.describe(now=160.0) == "300/~400 objects, 1:00, ETA ~0:20"


def test_incremental_build_shows_only_what_it_recompiled(tmp_path: Path) -> None:
    rebuild = meter(tmp_path, Expected(400, estimated=False), incremental=True)
    rebuild.objects = 2
    assert rebuild.describe(now=103.0) == "2 objects recompiled, 0:03"


def test_totals_remembered_per_arch_and_config(tmp_path: Path) -> None:
    counts = tmp_path / "build-objects.json"
    assert expected_objects(counts, "x86_64", "aaa") is None
    record_objects(counts, "x86_64", "aaa", 3500)
    assert expected_objects(counts, "x86_64", "aaa") == Expected(3500, False)
    # Another config of the arch: the last count, as an estimate.
    assert expected_objects(counts, "x86_64", "bbb") == Expected(3500, True)
    assert expected_objects(counts, "arm64", "aaa") is None


def test_only_a_full_build_sets_the_total(tmp_path: Path) -> None:
    counts = tmp_path / "build-objects.json"
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    first = buildmeter.meter_for(counts, "x86_64", "aaa", build_dir, tmp_path / "no-ccache")
    assert not first.incremental
    first.objects = 3500
    buildmeter.remember(first, counts, "x86_64", "aaa")
    (build_dir / "vmlinux").write_text("")
    again = buildmeter.meter_for(counts, "x86_64", "aaa", build_dir, tmp_path / "no-ccache")
    assert again.incremental and again.expected == Expected(3500, False)
    again.objects = 2
    buildmeter.remember(again, counts, "x86_64", "aaa")
    assert expected_objects(counts, "x86_64", "aaa") == Expected(3500, False)


def test_guest_suite_progress_from_the_records() -> None:
    records = (
        '{"type": "session", "time": 1.0}\n'
        '{"type": "collected", "count": 5}\n'
        '{"type": "result", "nodeid": "t::a", "outcome": "passed"}\n'
        '{"type": "result", "nodeid": "t::b", "outcome": "failed"}\n'
    )
    assert parse_records(records).progress() == "2/5 tests, 1 failed"
    # Before collection ends (or from an older guest): the count alone.
    assert parse_records('{"type": "session"}\n').progress() == "0 tests"


def test_plain_lines_at_most_every_30_s_and_only_with_a_detail() -> None:
    stream = io.StringIO()
    progress = Progress(stream, live=False, quiet=True)  # no ticker thread: show() by hand
    with (
        progress.stage("x86_64-baseline", "build") as build,
        progress.stage("x86_64-patched", "config"),
    ):
        begun = build.begun
        progress.show(begun + PLAIN_EVERY - 1)
        build.report("10/400 objects")
        progress.show(begun + PLAIN_EVERY - 1)
        assert "10/400" not in stream.getvalue()
        progress.show(begun + PLAIN_EVERY + 1)
        progress.show(begun + PLAIN_EVERY + 2)
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines if "objects" in line][:1] == [
        "x86_64-baseline: build 10/400 objects"
    ]
    assert sum("x86_64-baseline: build 10/400" in line for line in lines) == 1
    assert not any("x86_64-patched: config" in line and "finished" not in line and "..." not in line
                   for line in lines)  # fmt: skip
    # The stage's last word keeps its detail.
    assert lines[-1].endswith(", 10/400 objects")


def test_live_line_shows_every_stage_under_way(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    stream = io.StringIO()
    progress = Progress(stream, live=True, quiet=True)
    with (
        progress.stage("x86_64-baseline", "build") as build,
        progress.stage("arm64-patched", "boot+test (tcg)") as boot,
    ):
        build.report("10/400 objects")
        boot.report("40/121 tests")
        progress.show(build.begun + 5)
    shown = stream.getvalue().split("\r\033[K")
    assert any(
        "x86_64-baseline: build 10/400 objects | arm64-patched: boot+test (tcg) 40/121 tests"
        in part
        for part in shown
    )
    # Cut to the terminal's width: a wrapped line could not be redrawn in place.
    monkeypatch.setenv("COLUMNS", "40")
    with progress.stage("x86_64-baseline", "build") as build:
        build.report("10/400 objects, 1:00, ETA 3:00, ccache 97% hits")
        progress.show(build.begun + 5)
    drawn = stream.getvalue().split("\r\033[K")[-2]
    assert len(drawn) == 39 and drawn.startswith("[")


def test_clock() -> None:
    assert (clock(0), clock(61.9), clock(3725)) == ("0:00", "1:01", "1:02:05")
