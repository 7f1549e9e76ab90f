"""`harness bisect` on the fake kernel tree (tests/data/fakelinux) and a fake QEMU that
replays a recorded guest chosen by the prefix booted: the binary search's order, the
verdicts, the output lines and files, and the exit codes; seconds per test."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_checkseries import (
    BASELINE,
    FAKE_QEMU,
    PATCHED,
    WARNING,
    FakeGuests,
    SeriesWriter,
    diff,
    lenient_expectations,
    mail,
)

from harness.checks import bisect
from harness.checks.bisectsearch import Search
from harness.cli.main import main
from harness.core.arches import get_arch
from harness.core.status import EXIT_BAD_INPUT, EXIT_INTERRUPTED, Status
from harness.vm import qemu

FAILING = "console-x86_64-pass.log results-x86_64-one-failure.jsonl"  # one test fails
BROKEN = "test_boot_smoke.py::test_two_cpus_online_for_races"


# -- the search alone ----------------------------------------------------------------------


def search_for(last: int, first_bad: int, skipped: frozenset[int] = frozenset()) -> list[int]:
    """The prefixes probed, in order, when every prefix from `first_bad` on departs."""
    search, probed = Search(last), []
    while (prefix := search.next_probe()) is not None:
        probed.append(prefix)
        if prefix in skipped:
            search.mark(prefix, "skip")
        else:
            search.mark(prefix, "bad" if prefix >= first_bad else "good")
    return probed


@pytest.mark.parametrize("last", range(1, 12))
def test_search_finds_every_first_bad_in_log2_probes(last: int) -> None:
    for first_bad in range(0, last + 2):  # 0: the base departs; last + 1: nothing does
        probed = search_for(last, first_bad)
        search = Search(last)
        for prefix in probed:
            search.mark(prefix, "bad" if prefix >= first_bad else "good")
        assert search.candidates() == [first_bad]
        assert len(probed) <= math.ceil(math.log2(last + 2)), (first_bad, probed)
        assert len(set(probed)) == len(probed)
        # The answer's neighbours were probed: the first bad and the last good.
        if 0 < first_bad <= last:
            assert {first_bad - 1, first_bad} <= set(probed)


def test_search_probes_the_middle_first_and_halves() -> None:
    assert search_for(6, 4) == [3, 5, 4]
    assert search_for(6, 2) == [3, 1, 2]
    assert search_for(6, 7) == [3, 5, 6]  # no departure: the tip is probed last
    assert search_for(6, 0) == [3, 1, 0]  # the base departs too


def test_search_steps_around_a_skip_and_may_end_undecided() -> None:
    assert search_for(6, 5, frozenset({3})) == [3, 2, 4, 5]
    search = Search(6)
    for prefix, verdict in ((3, "good"), (5, "bad"), (4, "skip")):
        search.mark(prefix, verdict)  # type: ignore[arg-type]
    assert search.next_probe() is None
    assert search.candidates() == [4, 5]


def test_search_counts_the_steps_left() -> None:
    search = Search(6)
    assert search.left() == 3
    search.mark(3, "good")
    assert search.left() == 2
    search.mark(4, "bad")
    assert search.left() == 0


# -- the command on the fake tree ------------------------------------------------------------


@pytest.fixture
def writer(tmp_path: Path, linux: Path) -> SeriesWriter:
    return SeriesWriter(linux, tmp_path / "series")


class PrefixGuests(FakeGuests):
    """Boots the guest of the prefix it is given a kernel of: prefix k's kernel/a.o says
    `int a_two = k;` (the base's `int a_two;`), and `guest(k)` names its recording."""

    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, guest: Any) -> None:
        super().__init__(data_dir, monkeypatch)
        self.guest = guest
        self.prefixes: list[int] = []

    def command(self, setup: qemu.QemuSetup) -> list[str]:
        build_dir = Path(str(setup.kernel).removesuffix(get_arch("x86_64").image_path))
        line = next(x for x in (build_dir / "kernel/a.o").read_text().splitlines() if "a_two" in x)
        prefix = 0 if line == "int a_two;" else int(line.split("= ")[1].rstrip(";"))
        self.prefixes.append(prefix)
        console, results = self.guest(prefix).split()
        return [sys.executable, str(FAKE_QEMU), "replay", str(self.data_dir / console),
                str(self.data_dir / results), str(setup.results)]  # fmt: skip


def numbered_series(writer: SeriesWriter, count: int, extra: dict[int, tuple[str, str, str]]
                    ) -> Path:  # fmt: skip
    """`count` patches, patch k setting a_two to k; `extra[k]` (path, old, new) changes
    another file in patch k too."""
    before = "int a_two;"
    for number in range(1, count + 1):
        after = f"int a_two = {number};"
        writer.change("kernel/a.c", before, after)
        if number in extra:
            path, old, new = extra[number]
            text = writer.files.get(path) or (writer.tree / path).read_text()
            writer.files[path] = text.replace(old, new, 1)
            writer.patches[-1] += diff(path, text, writer.files[path])
        before = after
    return writer.write()


def run_bisect(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str],
    *options: str, expectations: Path | None = None,
) -> tuple[int, list[str], dict[str, Any]]:  # fmt: skip
    code = main([
        "bisect", "--arch=x86_64", "--source", str(linux), "--configs", str(configs),
        "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"), "-j", "2",
        "--accel", "tcg", "--no-selftests",
        "--expectations", str(expectations or lenient_expectations(tmp_path)),
        *options,
    ])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "results" / "bisect.json"
    return code, lines, json.loads(path.read_text()) if path.is_file() else {}


def test_patch_4_of_6_breaking_a_test_is_found_in_3_steps(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = PrefixGuests(data_dir, monkeypatch, lambda k: FAILING if k >= 4 else PATCHED)
    series = numbered_series(writer, 6, {})
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == 0, lines
    assert guests.prefixes == [3, 5, 4]
    assert [step["prefix"] for step in report["steps"]] == [3, 5, 4]
    assert lines[0].startswith("[1/3] 0003-change.patch: BEHAVES — ")
    # The lenient expectations list no entry for it: it must pass or skip.
    departs = f"DEPARTS {BROKEN} (passed or skipped → failed) — "
    assert lines[1].startswith(f"[2/3] 0005-change.patch: {departs}"), lines[1]
    assert lines[2].startswith(f"[3/3] 0004-change.patch: {departs}"), lines[2]
    assert lines[2].endswith(" s")
    assert lines[3].startswith("first bad: 0004-change.patch, 4 of 6, after 3 steps, ")
    assert lines[4] == f"  DEPARTS {BROKEN} (passed or skipped → failed)"
    assert lines[5] == "  last good: 0003-change.patch"
    out = "\n".join(lines)
    assert "AssertionError: assert '0' == '0-1'" in out  # the departing test's failure text
    assert out.count(f"harness: test-start {BROKEN}") == 2  # console at first bad, last good
    assert report["result"] == "culprit" and report["exit_code"] == 0
    assert report["culprit"] == {"prefix": 4, "name": "0004-change.patch", "commit": ""}
    assert report["last_good"] == {"prefix": 3, "name": "0003-change.patch"}
    step = report["steps"][2]
    assert (step["verdict"], step["status"]) == ("bad", "test_failed")
    assert step["departures"] == [
        {"kind": "test", "text": f"{BROKEN} (passed or skipped → failed)", "test": BROKEN}
    ]
    assert (tmp_path / "results" / step["boot_dir"] / "console.log").is_file()
    evidence = report["evidence"]
    assert "test_two_cpus_online_for_races" in evidence["failure"]
    assert evidence["console_first_bad"] and evidence["console_last_good"]
    markdown = (tmp_path / "results/bisect.md").read_text()
    assert "## First bad: 0004-change.patch" in markdown
    assert "console at last good" in markdown
    # The tree is check-series' own, left at the last prefix probed.
    tree = next((tmp_path / "work/trees").glob("*/check-series-series"))
    assert "int a_two = 4;" in (tree / "kernel/a.c").read_text()
    assert "int a_two;" in (linux / "kernel/a.c").read_text()  # the source is untouched


def test_patch_2_that_does_not_build_is_found_and_named_by_its_error(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = PrefixGuests(data_dir, monkeypatch, lambda k: PATCHED)
    series = numbered_series(writer, 6, {2: ("kernel/b.c", "int b_three;", "#error b_four")})
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == 0, lines
    assert [step["prefix"] for step in report["steps"]] == [3, 1, 2]
    assert guests.prefixes == [1]  # a prefix that does not build is not booted
    error = "kernel/b.c:4:2: error: #error b_four"
    assert lines[0].startswith(f"[1/3] 0003-change.patch: DEPARTS build_failed: {error} — ")
    assert lines[2].startswith(f"[3/3] 0002-change.patch: DEPARTS build_failed: {error} — ")
    assert report["culprit"]["prefix"] == 2
    assert report["steps"][2]["departures"][0]["kind"] == "build_failed"
    assert "#error b_four" in report["evidence"]["failure"]


def test_predicate_build_never_boots(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = PrefixGuests(data_dir, monkeypatch, lambda k: FAILING)
    series = numbered_series(writer, 3, {3: ("kernel/b.c", "int b_three;", "#error b_four")})
    code, lines, report = run_bisect(
        tmp_path, linux, configs, capsys, "--series", str(series), "--predicate", "build"
    )
    assert code == 0, lines
    assert guests.prefixes == []
    assert report["predicate"] == "build" and report["culprit"]["prefix"] == 3
    assert all(step["boot_dir"] == "" for step in report["steps"])


def test_range_without_departure_exits_1_after_probing_the_tip(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = PrefixGuests(data_dir, monkeypatch, lambda k: BASELINE if k == 0 else PATCHED)
    series = numbered_series(writer, 6, {})
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == 1, lines
    assert guests.prefixes == [3, 5, 6]
    assert lines[3].startswith("no departure: the whole range behaves (x86_64), after 3 steps")
    assert report["result"] == "no_departure" and report["culprit"] is None


def test_base_that_departs_already_exits_1(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    PrefixGuests(data_dir, monkeypatch, lambda k: FAILING)
    series = numbered_series(writer, 6, {})
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == 1, lines
    assert [step["prefix"] for step in report["steps"]] == [3, 1, 0]
    assert report["result"] == "base_departs"
    assert lines[3].startswith("the base (no patches) departs already")
    assert report["steps"][2]["name"] == "base (no patches)"


def test_kernel_report_departs_by_class_and_boot_predicate_ignores_tests(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Patch 2 breaks a test, patch 5 makes the kernel WARN: by the boot predicate only
    # the WARNING departs.
    def guest(prefix: int) -> str:
        return WARNING if prefix >= 5 else FAILING if prefix >= 2 else PATCHED

    PrefixGuests(data_dir, monkeypatch, guest)
    series = numbered_series(writer, 6, {})
    code, lines, report = run_bisect(
        tmp_path, linux, configs, capsys, "--series", str(series), "--predicate", "boot"
    )
    assert code == 0, lines
    assert report["culprit"]["prefix"] == 5
    bad = next(step for step in report["steps"] if step["prefix"] == 5)
    assert bad["status"] == "kernel_warning"
    assert bad["departures"][0]["kind"] == "kernel warning"
    assert all(d["kind"] != "test" for d in bad["departures"])
    assert ": DEPARTS kernel warning" in bad["line"]
    assert report["evidence"]["failure_title"].startswith("kernel warning: ")
    assert report["evidence"]["console_first_bad"]


def test_patch_that_does_not_apply_is_the_culprit_by_class(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    PrefixGuests(data_dir, monkeypatch, lambda k: PATCHED)
    series = numbered_series(writer, 4, {})
    # Patch 3 now expects a line that is not there.
    (series / "0003-change.patch").write_text(
        mail("stale", diff("kernel/b.c", "int b_absent;\n", "int b_present;\n"))
    )
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == 0, lines
    assert report["culprit"]["prefix"] == 3
    steps = {step["prefix"]: step for step in report["steps"]}
    assert steps[3]["status"] == "patch_failed"
    assert "0003-change.patch: hunk #1 of kernel/b.c" in steps[3]["reason"]


def test_host_failure_stops_a_series_bisect_with_infra(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    PrefixGuests(data_dir, monkeypatch, lambda k: PATCHED)
    series = numbered_series(writer, 6, {3: ("kernel/b.c", "int b_three;", "#enospc")})
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == Status.INFRA.exit_code, lines
    assert report["result"] == "stopped" and len(report["steps"]) == 1
    assert report["steps"][0]["verdict"] == "infra"
    assert "HOST FAILED (infra: disk full" in lines[0]


def test_interrupt_keeps_the_steps_done(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    PrefixGuests(data_dir, monkeypatch, lambda k: FAILING if k >= 4 else PATCHED)
    series = numbered_series(writer, 6, {})
    probe = bisect.Bisector.probe

    def interrupted_second(self: bisect.Bisector, prefix: int, step: int) -> Any:
        if step == 2:
            raise KeyboardInterrupt
        return probe(self, prefix, step)

    monkeypatch.setattr(bisect.Bisector, "probe", interrupted_second)
    code, _lines, report = run_bisect(tmp_path, linux, configs, capsys, "--series", str(series))
    assert code == EXIT_INTERRUPTED
    assert report["result"] == "interrupted" and report["exit_code"] == EXIT_INTERRUPTED
    assert [step["prefix"] for step in report["steps"]] == [3]
    assert "interrupted after 1 step" in (tmp_path / "results/bisect.md").read_text()


@pytest.mark.parametrize(
    "options, message",
    [
        (("--arch", "arm64"), "give one --arch, not 2"),
        (("--bad", "HEAD"), "--bad needs --good"),
        (("--good", "HEAD~1", "--series", "x"), "leave out --series, --mbox and --commits"),
        (("--good", "HEAD~1"), "--source must be a git checkout"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, linux: Path, configs: Path, options: tuple[str, ...], message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code = main(["bisect", "--arch", "x86_64", "--source", str(linux), "--configs", str(configs),
                 "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
                 *options])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "work/trees").exists() and not (tmp_path / "results").exists()


# -- git mode: commits of a range, a host failure skipped --------------------------------------


def git_commits(linux: Path, changes: list[tuple[str, str, str]]) -> list[str]:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "A U Thor",
           "GIT_AUTHOR_EMAIL": "author@example.invalid", "GIT_COMMITTER_NAME": "A U Thor",
           "GIT_COMMITTER_EMAIL": "author@example.invalid"}  # fmt: skip

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(linux), *args], env=env, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    git("tag", "good")
    for number, (path, old, new) in enumerate(changes, start=1):
        file = linux / path
        file.write_text(file.read_text().replace(old, new, 1))
        sign_off = "Signed-off-by: A U Thor <author@example.invalid>"
        git("commit", "-qam", f"change {number}\n\n{sign_off}")
    return git("rev-list", "--reverse", "good..HEAD").split()


def test_git_mode_skips_a_commit_the_host_fails_and_names_commits(
    tmp_path: Path, linux: Path, configs: Path, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    changes = [("kernel/a.c", "int a_two;", "int a_two = 1;")]
    changes += [("kernel/a.c", f"int a_two = {k - 1};", f"int a_two = {k};") for k in range(2, 7)]
    # Commit 3 fills the disk (for the fake kbuild: infra); commit 5 takes that back.
    changes.insert(2, ("kernel/b.c", "int b_three;", "#enospc"))
    changes.insert(4, ("kernel/b.c", "#enospc", "int b_three;"))
    shas = git_commits(linux, changes)
    # The commits: a_two=1, a_two=2, enospc, a_two=3, un-enospc, a_two=4, a_two=5, a_two=6.
    # Prefix k of 8 commits; the one setting a_two = 5 (commit 7) breaks a test.
    guests = PrefixGuests(data_dir, monkeypatch, lambda a_two: FAILING if a_two >= 5 else PATCHED)
    code, lines, report = run_bisect(tmp_path, linux, configs, capsys, "--good", "good",
                                     "--bad", "HEAD")  # fmt: skip
    assert code == 0, lines
    assert report["mode"] == "git" and report["series"] == "good..HEAD"
    assert report["culprit"]["prefix"] == 7
    assert report["culprit"]["commit"] == shas[6]
    skipped = [step for step in report["steps"] if step["verdict"] == "skip"]
    assert skipped and all(step["status"] == "infra" for step in skipped)
    assert any(f"({shas[6][:12]}): DEPARTS {BROKEN}" in line for line in lines)
    assert 5 in guests.prefixes  # a_two = 5: commit 7's kernel booted
    assert subprocess.run(["git", "-C", str(linux), "status", "--porcelain"], capture_output=True,
                          text=True, check=True).stdout == ""  # fmt: skip
