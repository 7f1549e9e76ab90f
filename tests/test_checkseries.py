"""`harness check-series` on a fake kernel tree (tests/data/fakelinux): real make, patch and
perl, a fake kbuild and checkpatch.pl, seconds per test."""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from harness.checks.seriesreport import BootVerdict, SeriesReport, Step
from harness.cli.main import main
from harness.core.arches import get_arch
from harness.core.status import EXIT_BAD_INPUT, Status
from harness.vm import initramfs, qemu

AUTHOR = "A U Thor <author@example.invalid>"


def diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}",
        f"b/{path}", n=1,
    )  # fmt: skip
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def mail(
    subject: str, body: str, signers: tuple[str, ...] = (AUTHOR,), author: str = AUTHOR
) -> str:
    """A patch as git format-patch writes it, the From: header folded as in our series."""
    name, email = author.split(" <")
    sign_offs = "".join(f"Signed-off-by: {signer}\n" for signer in signers)
    return (
        f"From 0123456789abcdef Mon Sep 17 00:00:00 2001\nFrom: {name}\n <{email}\n"
        f"Subject: [PATCH] {subject}\n\n{subject}.\n\n{sign_offs}---\n{body}"
    )


class SeriesWriter:
    """Patches against the fake tree, each on top of the ones before, as a quilt directory."""

    def __init__(self, tree: Path, directory: Path) -> None:
        self.tree = tree
        self.directory = directory
        self.files: dict[str, str] = {}
        self.patches: list[str] = []

    def change(self, path: str, old: str, new: str, **mail_options: Any) -> None:
        before = self.files.get(path) or (self.tree / path).read_text()
        assert old in before
        self.files[path] = before.replace(old, new, 1)
        self.patches.append(mail(f"change {path}", diff(path, before, self.files[path]),
                                 **mail_options))  # fmt: skip

    def write(self) -> Path:
        self.directory.mkdir()
        names = [f"{number:04d}-change.patch" for number in range(1, len(self.patches) + 1)]
        for name, text in zip(names, self.patches, strict=True):
            (self.directory / name).write_text(text)
        (self.directory / "series").write_text("".join(f"{name}\n" for name in names))
        return self.directory


@pytest.fixture
def writer(tmp_path: Path, linux: Path) -> SeriesWriter:
    return SeriesWriter(linux, tmp_path / "series")


def check_series(
    tmp_path: Path,
    linux: Path,
    configs: Path,
    series: Path,
    capsys: pytest.CaptureFixture[str],
    arches: tuple[str, ...] = ("x86_64",),
) -> tuple[int, list[str], dict[str, Any]]:
    code = main([
        "check-series", *(f"--arch={arch}" for arch in arches), "--source", str(linux),
        "--series", str(series),
        "--configs", str(configs), "--work-dir", str(tmp_path / "work"),
        "--results", str(tmp_path / "results"), "-j", "2",
    ])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    path = tmp_path / "results" / "check-series.json"
    return code, lines, json.loads(path.read_text()) if path.is_file() else {}


def test_clean_series_passes_with_one_line_per_patch(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    writer.change("kernel/b.c", "int b_three;", "int b_three = 3;")
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == 0, lines
    assert lines[0].startswith("base (no patches): builds x86_64 (")
    for number, line in enumerate(lines[1:3], start=1):
        assert line.startswith(f"{number:04d}-change.patch: applies, builds x86_64 (")
        assert line.endswith(", checkpatch 0/0/0, signed-off, W=1 no new warnings")
    assert lines[3].startswith("check-series series: 2 of 2 patches clean; pass (exit 0)")
    assert report["status"] == "pass" and report["exit_code"] == 0
    # b.c's old W=1 warning was there on the pristine tree already: it is not new.
    assert report["base"]["x86_64"]["w1_warnings"] == 1
    assert report["base"]["x86_64"]["w1_sources"] == ["kernel/a.c", "kernel/b.c"]
    assert (tmp_path / "results/check-series.md").read_text().count("patch: applies") == 2
    # The pristine tree is never modified; the checked tree ends with the whole series.
    assert "int a_two;\n" in (linux / "kernel/a.c").read_text()
    checked = next((tmp_path / "work/trees").glob("*/check-series-series"))
    assert "int b_three = 3;\n" in (checked / "kernel/b.c").read_text()


def test_prefix_that_does_not_build_although_the_full_series_does(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "#error fake_four undeclared")
    writer.change("kernel/a.c", "#error fake_four undeclared", "int a_two;")
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == Status.BUILD_FAILED.exit_code == 5
    first, second = report["patches"]
    assert first["status"] == "build_failed"
    assert first["builds"]["x86_64"]["state"] == "failed"
    # The first compiler error, its path relative to the tree.
    assert first["builds"]["x86_64"]["message"] == (
        "kernel/a.c:3:2: error: #error fake_four undeclared"
    )
    assert "x86_64 DOES NOT BUILD: kernel/a.c:3:2: error: #error fake_four undeclared" in lines[1]
    assert lines[1].endswith(", W=1 not checked")
    assert second["status"] == "pass"
    assert lines[2].startswith("0002-change.patch: applies, builds x86_64 (")


@pytest.mark.skipif(
    shutil.which(f"{get_arch('arm64').compiler_prefix()}gcc") is None,
    reason="the arm64 cross compiler is not installed",
)
def test_patch_that_breaks_one_arch_and_a_base_that_does_not_build(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "#error-arm64 no arm64 hook")
    writer.change("kernel/a.c", "#error-arm64 no arm64 hook", "int a_two;")
    series = writer.write()
    arches = ("x86_64", "arm64")
    code, lines, report = check_series(tmp_path, linux, configs, series, capsys, arches)
    assert code == 5
    assert lines[0].startswith("base (no patches): builds x86_64 (") and " arm64 (" in lines[0]
    assert ", arm64 DOES NOT BUILD: kernel/a.c:3:2: error: #error-arm64 no arm64 hook," in lines[1]
    assert lines[1].endswith("W=1 no new warnings (arm64 not checked)")
    assert "DOES NOT BUILD" not in lines[2]
    # A base that does not build says nothing about the series: that arch is skipped.
    (linux / "kernel/b.c").write_text("#error-arm64 broken before the series\n")
    shutil.rmtree(tmp_path / "results")
    code, lines, report = check_series(tmp_path, linux, configs, series, capsys, arches)
    assert code == 5
    assert lines[0].endswith("arm64 DOES NOT BUILD: kernel/b.c:1:2: error: #error-arm64 broken "
                             "before the series")  # fmt: skip
    assert "arm64 not built (the base failed)" in lines[1]
    assert report["base"]["arm64"]["status"] == "build_failed"
    assert report["patches"][1]["status"] == "pass"


def test_patch_without_a_sign_off_or_without_its_authors(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;", signers=())
    writer.change("kernel/a.c", "int a_two = 2;", "int a_two = 22;",
                  signers=("Some One Else <else@example.invalid>",))  # fmt: skip
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == Status.HYGIENE_FAILED.exit_code == 11
    assert "checkpatch 0/0/0, NOT SIGNED OFF: no Signed-off-by, W=1" in lines[1]
    assert "NOT SIGNED OFF: no Signed-off-by from its author author@example.invalid," in lines[2]
    assert report["patches"][0]["signoff"]["signed_off_by"] == []
    assert report["patches"][1]["signoff"]["author"] == AUTHOR
    assert [patch["status"] for patch in report["patches"]] == ["hygiene_failed"] * 2


def test_checkpatch_issues_are_counted_per_patch(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    writer.change(
        "kernel/a.c", "int a_two = 2;", "int a_two; /* checkpatch-warning checkpatch-check */"
    )
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == 11
    assert ", checkpatch 0/0/0," in lines[1]
    assert ", checkpatch 0/1/1," in lines[2]
    sloppy = report["patches"][1]["checkpatch"]
    assert sloppy["issues"] == [
        "WARNING:FAKE_WARNING: fake warning (kernel/a.c:1)",
        "CHECK:FAKE_CHECK: fake check (kernel/a.c:1)",
    ]
    assert (tmp_path / "results" / sloppy["log"]).is_file()
    assert [patch["status"] for patch in report["patches"]] == ["pass", "hygiene_failed"]


def test_new_w1_warning_is_blamed_on_the_patch_that_adds_it(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two; // w1-warning: a_two unused")
    writer.change("kernel/b.c", "int b_one;\n", "int b_zero;\nint b_half;\nint b_one;\n")
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == 11
    assert lines[1].endswith("W=1 1 NEW: x86_64 kernel/a.c: warning: a_two unused [-Wfake]")
    assert report["patches"][0]["builds"]["x86_64"]["new_w1_warnings"] == [
        "kernel/a.c: warning: a_two unused [-Wfake]"
    ]
    # Line numbers are no part of a warning: b.c's old one, two lines down, is not new.
    assert lines[2].endswith("W=1 no new warnings")
    assert report["patches"][1]["builds"]["x86_64"]["w1_warnings"] == 2


def test_patch_that_does_not_apply_stops_the_walk_and_writes_nothing(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    b_text = (linux / "kernel/b.c").read_text()
    half = diff("kernel/b.c", b_text, b_text.replace("int b_one;", "int b_1;")) + diff(
        "kernel/a.c", "int a_absent;\n", "int a_present;\n"
    )
    writer.patches.append(mail("half of it applies", half))
    writer.change("kernel/a.c", "int a_two = 2;", "int a_two = 22;")
    code, lines, report = check_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == Status.PATCH_FAILED.exit_code == 4
    assert lines[2].startswith(
        "0002-change.patch: DOES NOT APPLY: 0002-change.patch: hunk #1 of kernel/a.c"
    )
    assert lines[3].startswith("0003-change.patch: not tried (0002-change.patch does not apply)")
    assert [p["applies"] for p in report["patches"]] == [True, False, None]
    checked = next((tmp_path / "work/trees").glob("*/check-series-series"))
    # b.c's hunk, which would have applied, was not written either.
    assert "int b_one;" in (checked / "kernel/b.c").read_text()


def test_second_run_resets_the_tree_and_gives_the_same_lines(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two; // w1-warning: a_two unused")
    series = writer.write()
    first_code, first, _ = check_series(tmp_path, linux, configs, series, capsys)
    second_code, second, report = check_series(tmp_path, linux, configs, series, capsys)
    assert first_code == second_code == 11
    assert first[1].split(", checkpatch")[1] == second[1].split(", checkpatch")[1]
    assert report["base"]["x86_64"]["w1_warnings"] == 0  # a.c is pristine again, no warning


def run_check(tmp_path: Path, configs: Path, *options: str) -> int:
    return main([
        "check-series", "--arch", "x86_64", "--configs", str(configs),
        "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"), *options,
    ])  # fmt: skip


def test_tree_without_checkpatch_is_refused_before_any_build(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (linux / "scripts/checkpatch.pl").unlink()
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    series = writer.write()
    code = run_check(tmp_path, configs, "--source", str(linux), "--series", str(series))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT
    assert err == (
        f"harness: error: {linux}/scripts/checkpatch.pl: missing; check-series runs the tree's "
        "own checkpatch, so pass a complete kernel tree"
    )
    assert not (tmp_path / "work/builds").exists()
    assert not (tmp_path / "work/trees").exists()


def test_missing_series_and_wrong_tree_are_one_line_exit_2(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code = run_check(tmp_path, configs, "--source", str(linux), "--series", str(tmp_path / "no"))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and err.endswith("no/series: no series file; list the "
                                                  "patches there, one per line")  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    code = run_check(tmp_path, configs, "--source", str(configs), "--series", str(writer.write()))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT and "not a Linux kernel tree" in err
    assert len(err.splitlines()) == 1


def test_check_series_takes_no_variant(tmp_path: Path, configs: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_check(tmp_path, configs, "--variant", "baseline")
    assert exit_info.value.code == EXIT_BAD_INPUT


# -- --boot: every prefix that builds boots in a fake QEMU, judged by the expectations ----

FAKE_QEMU = Path(__file__).parent / "fake_qemu.py"
PTRACE_SKIPPED = "test_changing_the_syscall.py::test_skip_with_faked_return[value-ptrace_seccomp]"


class FakeGuests:
    """QEMU and the guest userspace, faked: boot k replays the k-th recorded guest
    (a console log and a result stream of tests/data), whatever kernel it is given."""

    def __init__(self, data_dir: Path, monkeypatch: pytest.MonkeyPatch, *guests: str) -> None:
        self.data_dir = data_dir
        self.guests = list(guests)  # "CONSOLE-NAME RESULTS-NAME"
        self.kernels: list[Path] = []
        self.objects: list[str] = []  # kernel/a.o of each kernel booted, as it was at its boot
        monkeypatch.setattr(qemu, "qemu_command", self.command)
        monkeypatch.setattr(initramfs, "build_base", self.base)
        monkeypatch.setattr(initramfs, "assemble", self.assemble)
        which, faked = shutil.which, {"qemu-system-x86_64", "mmdebstrap"}
        monkeypatch.setattr(shutil, "which", lambda tool: "/bin/true" if tool in faked
                            else which(tool))  # fmt: skip

    def command(self, setup: qemu.QemuSetup) -> list[str]:
        assert self.guests, f"booted more kernels than expected: {setup.kernel}"
        console, results = self.guests.pop(0).split()
        self.kernels.append(setup.kernel)
        build_dir = Path(str(setup.kernel).removesuffix(get_arch("x86_64").image_path))
        self.objects.append((build_dir / "kernel/a.o").read_text())
        return [sys.executable, str(FAKE_QEMU), "replay", str(self.data_dir / console),
                str(self.data_dir / results), str(setup.results)]  # fmt: skip

    @staticmethod
    def base(arch: object, cache_dir: Path, log_path: Path) -> initramfs.Initramfs:
        return initramfs.Initramfs(cache_dir / "fake-base.cpio", "fake")

    @staticmethod
    def assemble(
        base: object, tests: Path, args: list[str], destination: Path, *_: object, **__: object
    ) -> None:
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(b"fake initrd")


BASELINE = "console-x86_64-pass.log results-x86_64-baseline.jsonl"  # PTRACE_SECCOMP tests skip
PATCHED = "console-x86_64-pass.log results-x86_64-patched.jsonl"  # ... and pass
WARNING = "console-x86_64-lkdtm-warning.log results-x86_64-patched.jsonl"  # a kernel WARNING


def lenient_expectations(tmp_path: Path) -> Path:
    """The checked-in entries without `unlisted = "passed"` and the [[count]] tables, for
    records made before today's suite (the one-failure run: 94 tests, one skip)."""
    text = (ROOT / "expectations.toml").read_text().replace('unlisted = "passed"\n', "")
    text = re.sub(r"\[\[count\]\]\n(?:[a-z]+ = .*\n)+", "", text)
    path = tmp_path / "expectations.toml"
    path.write_text(text)
    return path


def boot_series(
    tmp_path: Path,
    linux: Path,
    configs: Path,
    series: Path,
    capsys: pytest.CaptureFixture[str],
    expectations: Path = ROOT / "expectations.toml",
) -> tuple[int, list[str], dict[str, Any]]:
    code = main([
        "check-series", "--boot", "--arch=x86_64", "--source", str(linux),
        "--series", str(series), "--configs", str(configs),
        "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"), "-j", "2",
        "--accel", "tcg", "--no-selftests", "--expectations", str(expectations),
        "--guest-tests", str(ROOT / "guest-tests"),
    ])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    return code, lines, json.loads((tmp_path / "results/check-series.json").read_text())


def test_boot_every_prefix_behaving_passes_with_behaves_lines(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = FakeGuests(data_dir, monkeypatch, BASELINE, PATCHED, PATCHED)
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    writer.change("kernel/a.c", "int a_two = 2;", "int a_two = 22;")
    code, lines, report = boot_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == 0, lines
    # The base by the baseline expectations (its PTRACE_SECCOMP tests skip), the patches by
    # the patched ones (they pass).
    assert lines[0].startswith("base (no patches): builds x86_64 (")
    assert lines[0].endswith(" s), BEHAVES: 0 departures"), lines[0]
    for line in lines[1:3]:
        assert line.endswith(", W=1 no new warnings, BEHAVES: 0 departures"), line
    assert len(guests.kernels) == 3 and not guests.guests
    # Each prefix's kernel booted right after its build, before the next patch rebuilt it.
    booted = [next(line for line in text.splitlines() if "a_two" in line)
              for text in guests.objects]  # fmt: skip
    assert booted == ["int a_two;", "int a_two = 2;", "int a_two = 22;"]
    assert report["boot"] is True
    assert report["expectations"] == str(ROOT / "expectations.toml")
    base_boot = report["base"]["x86_64"]["boot"]
    assert (base_boot["judged_as"], base_boot["status"]) == ("baseline", "pass")
    boot = report["patches"][0]["builds"]["x86_64"]["boot"]
    assert (boot["judged_as"], boot["status"], boot["departures"]) == ("patched", "pass", [])
    cell = json.loads((tmp_path / "results" / boot["dir"] / "cell.json").read_text())
    assert cell["variant"] == "patched" and cell["tests"]["passed"] == 160
    assert "BEHAVES: 0 departures" in (tmp_path / "results/check-series.md").read_text()


def test_boot_prefix_whose_series_tests_still_skip_behaves(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Patch 1 does not make PTRACE_SECCOMP work yet: its tests still skip, as they do
    # without the series. That is no departure: a prefix may stand where the baseline does.
    FakeGuests(data_dir, monkeypatch, BASELINE, BASELINE, PATCHED)
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    writer.change("kernel/b.c", "int b_three;", "int b_three = 3;")
    code, lines, _report = boot_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == 0, lines
    assert all(line.endswith("BEHAVES: 0 departures") for line in lines[:3]), lines


def test_boot_prefix_whose_tests_depart_is_departs_and_exit_1(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Patch 1 breaks a test that both the baseline and the whole series pass.
    failing = "console-x86_64-pass.log results-x86_64-one-failure.jsonl"
    FakeGuests(data_dir, monkeypatch, BASELINE, failing, PATCHED)
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    writer.change("kernel/b.c", "int b_three;", "int b_three = 3;")
    code, lines, report = boot_series(
        tmp_path, linux, configs, writer.write(), capsys, lenient_expectations(tmp_path)
    )
    assert code == Status.TEST_FAILED.exit_code == 1, lines
    assert lines[0].endswith("BEHAVES: 0 departures")
    broken = "test_boot_smoke.py::test_two_cpus_online_for_races"
    assert lines[1].endswith(f"W=1 no new warnings, DEPARTS: {broken}"), lines[1]
    assert lines[2].endswith("BEHAVES: 0 departures")
    first, second = report["patches"]
    assert (first["status"], second["status"]) == ("test_failed", "pass")
    boot = first["builds"]["x86_64"]["boot"]
    assert boot["status"] == "test_failed" and boot["departures"] == [broken]
    assert boot["reason"].startswith("test: 1 test(s) departed from expectations.toml: ")
    assert lines[3].startswith("check-series series: 1 of 2 patches clean; test_failed (exit 1)")
    markdown = (tmp_path / "results/check-series.md").read_text()
    assert "- x86_64 boot, judged by the patched expectations: test: 1 test(s)" in markdown


def test_boot_kernel_report_departs_naming_its_class(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    FakeGuests(data_dir, monkeypatch, BASELINE, WARNING)
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    code, lines, report = boot_series(tmp_path, linux, configs, writer.write(), capsys)
    # The matrix's own verdict: a kernel WARNING ranks above a test that departs.
    assert code == Status.KERNEL_WARNING.exit_code == 8, lines
    assert ", DEPARTS: kernel warning" in lines[1]
    assert report["patches"][0]["builds"]["x86_64"]["boot"]["departures"][0] == "kernel warning"


def test_boot_prefix_that_does_not_build_is_not_booted(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, data_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    guests = FakeGuests(data_dir, monkeypatch, BASELINE, PATCHED)
    writer.change("kernel/a.c", "int a_two;", "#error fake_four undeclared")
    writer.change("kernel/a.c", "#error fake_four undeclared", "int a_two;")
    code, lines, report = boot_series(tmp_path, linux, configs, writer.write(), capsys)
    assert code == Status.BUILD_FAILED.exit_code == 5, lines
    assert len(guests.kernels) == 2  # the base and patch 2
    assert lines[1].endswith("W=1 not checked, not booted (does not build)"), lines[1]
    assert report["patches"][0]["builds"]["x86_64"]["boot"]["booted"] is False
    assert lines[2].endswith("BEHAVES: 0 departures")
    assert not (tmp_path / "results/boots/01-x86_64").exists()


def test_boot_verdicts_name_their_arch_when_there_are_several() -> None:
    departed = BootVerdict("baseline", status=Status.TEST_FAILED, departures=list("abcde"))
    report = SeriesReport("s", "0" * 64, "6.12.0", ["x86_64", "arm64"], base={
        "x86_64": Step(state="built", boot=BootVerdict("baseline")),
        "arm64": Step(state="built", boot=departed),
    })  # fmt: skip
    assert report.base_line() == (
        "base (no patches): builds x86_64 (0 s) arm64 (0 s), x86_64 BEHAVES: 0 departures, "
        "arm64 DEPARTS: a, b, c +2 more"
    )
    assert report.status() is Status.TEST_FAILED


# -- verdict integrity: what a patch may name, and that it changes something ---------------


def _escape_patch(path: str, old: str, new: str) -> str:
    return mail("reach out", f"--- a/{path}\n+++ b/{path}\n@@ -1 +1 @@\n-{old}\n+{new}\n")


def _write_series(directory: Path, patches: dict[str, str]) -> Path:
    directory.mkdir()
    for name, text in patches.items():
        (directory / name).write_text(text)
    (directory / "series").write_text("".join(f"{name}\n" for name in patches))
    return directory


def test_patch_naming_a_path_outside_the_tree_is_refused_before_any_tree(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"  # outside the work dir, reached from the checked tree
    victim.write_text("precious\n")
    before = victim.stat()
    good = diff("kernel/a.c", "int a_two;\n", "int a_two = 2;\n")
    series = _write_series(tmp_path / "series", {
        "0001-good.patch": mail("good", good),
        "0002-escape.patch": _escape_patch("../../../../../victim.txt", "precious", "pwned"),
    })  # fmt: skip
    code = run_check(tmp_path, configs, "--source", str(linux), "--series", str(series))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert len(err.splitlines()) == 1
    assert "0002-escape.patch" in err and "../../../../../victim.txt" in err
    assert victim.read_text() == "precious\n" and victim.stat().st_ino == before.st_ino
    assert not (tmp_path / "work/trees").exists()  # nothing was applied, not even 0001
    assert not (tmp_path / "work/builds").exists()


def test_patch_writing_through_a_symlink_out_of_the_tree_is_refused(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    (linux / "kernel/out").symlink_to(outside)
    (linux / "kernel/victim.txt").symlink_to(victim)
    inode = victim.stat().st_ino
    for name, path in (("0001-dir.patch", "kernel/out/victim.txt"),
                       ("0001-file.patch", "kernel/victim.txt")):  # fmt: skip
        series = _write_series(
            tmp_path / f"series-{name}", {name: _escape_patch(path, "precious", "pwned")}
        )
        code = run_check(tmp_path, configs, "--source", str(linux), "--series", str(series))
        err = capsys.readouterr().err.strip()
        assert code == EXIT_BAD_INPUT, err
        assert name in err and path in err and "symlink" in err and len(err.splitlines()) == 1
        assert victim.read_text() == "precious\n" and victim.stat().st_ino == inode
        assert (linux / "kernel/victim.txt").is_symlink()
        assert not (tmp_path / "work/trees").exists()


def test_mbox_naming_a_path_outside_the_tree_is_refused(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    mbox = tmp_path / "escape.mbox"
    body = "--- a/kernel/a.c\n+++ b/../../../victim.txt\n@@ -1 +1 @@\n-precious\n+pwned\n"
    mbox.write_text(mail("reach out", "diff --git a/kernel/a.c b/../../../victim.txt\n" + body))
    code = run_check(tmp_path, configs, "--source", str(linux), "--mbox", str(mbox))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert ".patch" in err and "../../../victim.txt" in err and len(err.splitlines()) == 1
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "work/trees").exists()


def test_matrix_patch_stage_refuses_a_path_outside_the_tree(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    series = _write_series(tmp_path / "series", {
        "0001-escape.patch": _escape_patch("/" + str(victim).lstrip("/"), "precious", "pwned"),
    })  # fmt: skip
    code = main([
        "build", "--arch", "x86_64", "--variant", "patched", "--source", str(linux),
        "--series", str(series), "--configs", str(configs), "--feature", "seccomp",
        "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"),
    ])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert "0001-escape.patch" in err and str(victim) in err
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "work/trees").exists()


NO_OP_BODY = "--- a/kernel/a.c\n+++ b/kernel/a.c\n@@ -2 +2 @@\n-int a_one;\n+int a_one;\n"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Just a note, no diff in it.\n",
        mail("no-op", NO_OP_BODY),
    ],
    ids=["empty", "no-diff", "changes-nothing"],
)
def test_series_entry_that_changes_nothing_is_refused(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter, text: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    series = writer.write()
    (series / "0002-nothing.patch").write_text(text)
    with (series / "series").open("a") as listing:
        listing.write("0002-nothing.patch\n")
    code = run_check(tmp_path, configs, "--source", str(linux), "--series", str(series))
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert "0002-nothing.patch" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "work/trees").exists()


def test_commit_range_creating_a_symlink_out_of_the_tree_is_refused(
    tmp_path: Path, linux: Path, configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import subprocess

    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "A U Thor",
           "GIT_AUTHOR_EMAIL": "author@example.invalid", "GIT_COMMITTER_NAME": "A U Thor",
           "GIT_COMMITTER_EMAIL": "author@example.invalid"}  # fmt: skip

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(linux), *args], env=env, check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "base")
    git("tag", "base")
    (linux / "kernel/out").symlink_to("../../../../../outside")
    git("add", "-A")
    git("commit", "-qm", "kernel: a way out\n\nSigned-off-by: A U Thor <author@example.invalid>")
    code = run_check(tmp_path, configs, "--source", str(linux), "--commits", "base..HEAD")
    err = capsys.readouterr().err.strip()
    assert code == EXIT_BAD_INPUT, err
    assert "kernel/out: a symlink to ../../../../../outside, outside the tree" in err
    assert ".patch" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "work/trees").exists()


def test_check_series_walks_each_toolchain_in_its_own_build_dir(
    tmp_path: Path, linux: Path, configs: Path, writer: SeriesWriter,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    writer.change("kernel/a.c", "int a_two;", "int a_two = 2;")
    code = main([
        "check-series", "--arch=x86_64", "--toolchain=gcc", "--toolchain=clang",
        "--source", str(linux), "--series", str(writer.write()), "--configs", str(configs),
        "--work-dir", str(tmp_path / "work"), "--results", str(tmp_path / "results"), "-j", "2",
    ])  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0, lines
    assert re.match(r"base \(no patches\): builds x86_64 \(\d+ s\) x86_64-clang \(", lines[0])
    report = json.loads((tmp_path / "results/check-series.json").read_text())
    assert report["arches"] == ["x86_64", "x86_64-clang"]
    assert set(report["patches"][0]["builds"]) == {"x86_64", "x86_64-clang"}
    logs = tmp_path / "results/logs"
    # Every make of the clang build dir says LLVM=1 (kbuild would re-sync .config on a
    # make that named another compiler); none of gcc's does.
    for number in ("00", "01"):
        clang_log = (logs / f"{number}-x86_64-clang-build.log").read_text()
        gcc_log = (logs / f"{number}-x86_64-build.log").read_text()
        make_lines = [line for line in clang_log.splitlines() if " make -C " in f" {line}"]
        assert make_lines and all(" LLVM=1" in line for line in make_lines)
        assert all("harness-build-x86_64-clang-" in line for line in make_lines)
        assert " LLVM=1" not in gcc_log
