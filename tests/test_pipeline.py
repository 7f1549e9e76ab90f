from __future__ import annotations

import errno
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import one_cell_matrix

from harness.core.arches import ARCHES, get_arch
from harness.core.errors import BadInput
from harness.core.status import Status
from harness.core.toolchains import TOOLCHAINS, Platform
from harness.core.vocabulary import Variant
from harness.kernel import kconfig
from harness.kernel.series import Patch, Series
from harness.kernel.source import KernelSource
from harness.results.model import Cell
from harness.run.cellbuild import BuiltCell
from harness.run.celltest import selects_tests
from harness.run.inputs import fragments_for
from harness.run.keys import build_key, config_key
from harness.run.matrix import Matrix, guest_slots
from harness.vm import records
from harness.vm.boot import BootEnd, BootOutcome

GCC_X86_64 = Platform(get_arch("x86_64"), TOOLCHAINS["gcc"])


@pytest.fixture
def matrix(tmp_path: Path) -> Matrix:
    return one_cell_matrix(tmp_path)


def test_host_error_in_a_cell_is_infra_and_the_cell_is_still_written(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(variant: str) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matrix.builder, "tree_for", disk_full)
    cell = matrix.run_cell(GCC_X86_64, "baseline", tmp_path / "results")
    assert cell.status is Status.INFRA
    assert "No space left on device" in cell.reason
    written = json.loads((tmp_path / "results/x86_64-baseline/cell.json").read_text())
    assert written["status"] == "infra" and written["exit_code"] == 10
    assert written["toolchain"] == "gcc"


def test_a_clang_cell_is_named_and_written_apart_from_the_gcc_one(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(variant: str) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matrix.builder, "tree_for", disk_full)
    clang = Platform(get_arch("x86_64"), TOOLCHAINS["clang"])
    cell = matrix.run_cell(clang, "patched", tmp_path / "results")
    assert cell.name == "x86_64-clang/patched"
    written = json.loads((tmp_path / "results/x86_64-clang-patched/cell.json").read_text())
    assert (written["arch"], written["toolchain"], written["variant"]) == (
        "x86_64",
        "clang",
        "patched",
    )
    assert not (tmp_path / "results/x86_64-patched").exists()


def test_build_key_follows_every_input(tmp_path: Path) -> None:

    source = KernelSource(tmp_path / "linux", "6.12.117", "debian-package", "6.12.117-1")
    merged = kconfig.MergedConfig()
    merged.add(kconfig.Option("SECCOMP", "y", "f:1"))
    key = build_key(source, None, merged, "gcc 12.2.0")
    assert key == build_key(source, None, merged, "gcc 12.2.0")
    assert key != build_key(source, None, merged, "gcc 13.1.0")
    newer = KernelSource(tmp_path / "linux", "6.12.118", "debian-package", "6.12.118-1")
    assert key != build_key(newer, None, merged, "gcc 12.2.0")
    other = kconfig.MergedConfig()
    other.add(kconfig.Option("SECCOMP", "n", "f:1"))
    assert key != build_key(source, None, other, "gcc 12.2.0")


def test_patched_build_dir_is_keyed_by_series_and_config(matrix: Matrix, tmp_path: Path) -> None:
    baseline = matrix.builder.build_dir(GCC_X86_64, "baseline")
    matrix.builder.prepared.series = Series("my-series", tmp_path, ())
    patched = matrix.builder.build_dir(GCC_X86_64, "patched")
    digest = matrix.builder.prepared.merged["x86_64"].digest()[:12]
    # Each a direct child of its variant's tree (kbuild's srctree is then ".."),
    # by the same name: the two cells' compile commands are the same text.
    assert baseline.name == patched.name == f"harness-build-x86_64-{digest}"
    assert baseline.parent.name == "baseline"
    assert patched.parent.name == "series-my-series"
    assert baseline.parent.parent == patched.parent.parent
    # clang's objects differ from gcc's: its own build dir beside gcc's, in the same tree.
    clang = matrix.builder.build_dir(Platform(get_arch("x86_64"), TOOLCHAINS["clang"]), "patched")
    assert clang.name == f"harness-build-x86_64-clang-{digest}"
    assert clang.parent == patched.parent


class _ScheduleProbe:
    """Stands in for a cell's build and test stages, recording when each ran."""

    def __init__(self, matrix: Matrix, build_seconds: float, test_seconds: float) -> None:
        self.matrix = matrix
        self.build_seconds, self.test_seconds = build_seconds, test_seconds
        self.events: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self.guests = 0
        self.most_guests = 0

    def _event(self, what: str, name: str) -> None:

        with self.lock:
            self.events.append((what, name, time.monotonic()))

    def build_cell(self, arch: object, variant: str, run_dir: Path) -> object:

        cell = Cell(ARCHES["x86_64"], variant)
        self._event("build-start", variant)
        time.sleep(self.build_seconds)
        self._event("build-end", variant)
        if variant == "broken":
            return cell  # a failed build: finished, nothing to boot
        return BuiltCell(cell, get_arch("x86_64"), run_dir, run_dir, run_dir, run_dir, [])

    def test_cell(self, built: object) -> object:

        assert isinstance(built, BuiltCell)
        with self.lock:
            self.guests += 1
            self.most_guests = max(self.most_guests, self.guests)
        self._event("test-start", built.cell.variant)
        time.sleep(self.test_seconds)
        self._event("test-end", built.cell.variant)
        with self.lock:
            self.guests -= 1
        return built.cell

    def time_of(self, what: str, name: str) -> float:
        return next(t for w, n, t in self.events if w == what and n == name)


def _probe(matrix: Matrix, monkeypatch: pytest.MonkeyPatch, build: float, test: float,
           jobs: int) -> _ScheduleProbe:  # fmt: skip

    probe = _ScheduleProbe(matrix, build, test)
    matrix.config = replace(matrix.config, jobs=jobs)
    monkeypatch.setattr(matrix.builder, "build_cell", probe.build_cell)
    monkeypatch.setattr(matrix, "test_cell", probe.test_cell)
    return probe


def test_a_built_cell_boots_while_the_next_one_builds(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = _probe(matrix, monkeypatch, build=0.4, test=0.6, jobs=1)
    arch = get_arch("x86_64")
    cells = matrix.run_cells([(arch, "one"), (arch, "broken"), (arch, "two")], tmp_path)
    # The summary keeps the plan's order, whatever finished first.
    assert [cell.variant for cell in cells] == ["one", "broken", "two"]
    # Cell one's guest started before the next build ended: they overlapped.
    assert probe.time_of("test-start", "one") < probe.time_of("build-end", "broken")
    # Builds stay one after another.
    assert probe.time_of("build-start", "broken") >= probe.time_of("build-end", "one")
    assert probe.time_of("build-start", "two") >= probe.time_of("build-end", "broken")
    # -j1: one guest at a time; the failed build was never booted.
    assert probe.most_guests == 1
    assert not [e for e in probe.events if e[0] == "test-start" and e[1] == "broken"]


def test_cells_already_built_boot_side_by_side_within_the_cpu_budget(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    probe = _probe(matrix, monkeypatch, build=0.0, test=0.5, jobs=2)
    arch = get_arch("x86_64")
    matrix.run_cells([(arch, name) for name in ("a", "b", "c", "d")], tmp_path)
    assert probe.most_guests == guest_slots(2) == 2
    assert guest_slots(1) == 1 and guest_slots(0) == 1


def test_interrupt_during_a_build_stops_guests_and_starts_no_more(
    matrix: Matrix, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = _probe(matrix, monkeypatch, build=0.2, test=1.0, jobs=1)
    built = probe.build_cell

    def build_then_interrupt(arch: object, variant: str, run_dir: Path) -> object:
        if variant == "third":
            raise KeyboardInterrupt
        return built(arch, variant, run_dir)

    monkeypatch.setattr(matrix.builder, "build_cell", build_then_interrupt)
    arch = get_arch("x86_64")
    with pytest.raises(KeyboardInterrupt):
        matrix.run_cells([(arch, "first"), (arch, "second"), (arch, "third")], tmp_path)
    assert matrix.cancel.is_set()
    started = [name for what, name, _ in probe.events if what == "test-start"]
    # "first" was booting; "second" was queued behind it and never started.
    assert started == ["first"]


def _series_touching(tmp_path: Path, *files: str) -> Series:
    patch = tmp_path / "0001-edit.patch"
    patch.write_text("".join(f"--- a/{f}\n+++ b/{f}\n@@ -1 +1 @@\n-a\n+b\n" for f in files))
    return Series("s", tmp_path, (Patch(patch),))


def test_config_key_ignores_source_edits_but_not_kconfig_edits(tmp_path: Path) -> None:

    tree = tmp_path / "tree"
    (tree / "kernel").mkdir(parents=True)
    (tree / "kernel/seccomp.c").write_text("int x;\n")
    (tree / "kernel/Kconfig.preempt").write_text("config A\n")
    source = KernelSource(tmp_path / "linux", "6.12.117", "debian-package", "6.12.117-1")
    merged = kconfig.MergedConfig()
    merged.add(kconfig.Option("SECCOMP", "y", "f:1"))
    c_only = _series_touching(tmp_path, "kernel/seccomp.c")
    key = config_key(source, c_only, merged, "gcc 12", tree)
    (tree / "kernel/seccomp.c").write_text("int y;\n")
    assert config_key(source, c_only, merged, "gcc 12", tree) == key
    assert config_key(source, c_only, merged, "gcc 13", tree) != key
    other = kconfig.MergedConfig()
    other.add(kconfig.Option("SECCOMP", "n", "f:1"))
    assert config_key(source, c_only, other, "gcc 12", tree) != key
    with_kconfig = _series_touching(tmp_path, "kernel/seccomp.c", "kernel/Kconfig.preempt")
    before = config_key(source, with_kconfig, merged, "gcc 12", tree)
    (tree / "kernel/Kconfig.preempt").write_text("config B\n")
    assert config_key(source, with_kconfig, merged, "gcc 12", tree) != before


def test_a_selection_of_guest_tests_is_recognised() -> None:
    assert selects_tests(["-k", "detach"]) and selects_tests(["-kdetach"])
    assert selects_tests(["-m", "race"]) and selects_tests(["test_x.py::test_y"])
    assert selects_tests(["test_detach_kill.py"])
    assert not selects_tests([]) and not selects_tests(["--repeat=300", "-x"])


def test_a_feature_takes_its_common_and_its_per_arch_fragment(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    for name in ("base", "x86_64", "arm64", "seccomp", "race", "race.x86_64", "arm.arm64"):
        (configs / f"{name}.config").write_text("CONFIG_SMP=y\n")
    config = replace(one_cell_matrix(tmp_path).config, features=["seccomp", "race"])
    names = [path.name for path in fragments_for(config, get_arch("x86_64"))]
    assert names == [
        "base.config", "x86_64.config", "seccomp.config", "race.config", "race.x86_64.config",
    ]  # fmt: skip
    assert fragments_for(config, get_arch("arm64"))[-1].name == "race.config"
    only_arm = replace(config, features=["arm"])
    assert fragments_for(only_arm, get_arch("arm64"))[-1].name == "arm.arm64.config"
    with pytest.raises(BadInput, match=r"arm\.config: no such config fragment \(nor arm\.x86_64"):
        fragments_for(only_arm, get_arch("x86_64"))


def test_the_race_feature_is_kcsan_on_x86_64_and_kasan_on_arm64(tmp_path: Path) -> None:
    configs = Path(__file__).parent.parent / "kernel-configs"
    config = replace(
        one_cell_matrix(tmp_path).config, config_dir=configs, features=["seccomp", "debug-race"]
    )
    merged = {name: kconfig.merge(fragments_for(config, arch)) for name, arch in ARCHES.items()}
    for options in (merged[name].options for name in ARCHES):
        for common in ("DEBUG_LIST", "PROVE_LOCKING", "DEBUG_ATOMIC_SLEEP", "SECCOMP_FILTER"):
            assert options[common].value == "y", common
    assert "KCSAN" in merged["x86_64"].options and "KASAN" not in merged["x86_64"].options
    assert "KASAN" in merged["arm64"].options and "KCSAN" not in merged["arm64"].options


def test_a_kcsan_report_fails_its_test_and_the_cell_as_a_kernel_warning(
    matrix: Matrix, data_dir: Path, tmp_path: Path
) -> None:
    racy = "test_ptrace_seccomp.py::test_resume_with_seccomp_stays_armed"
    guest = records.GuestRun(
        results=[records.TestResult(f"{racy}[rep{n}]", "passed", 0.5) for n in range(3)],
        exit_status=0,
    )
    outcome = BootOutcome(
        BootEnd.COMPLETED, guest, boot_seconds=3.1, total_seconds=17.0,
        kernel_release="6.12.117", kernel_version="#7 SMP", tainted=0,
    )  # fmt: skip
    console = tmp_path / "console.log"
    console.write_text((data_dir / "console-x86_64-kcsan-race.log").read_text())
    cell = Cell(ARCHES["x86_64"], Variant.PATCHED)
    matrix.tester.record_outcome(cell, outcome, console.parent, 17.0, False)
    assert cell.status is Status.KERNEL_WARNING and cell.status.exit_code == 8
    assert cell.reason == "kernel kcsan: data-race in __seccomp_filter / ptrace_resume"
    assert cell.outcomes == {
        f"{racy}[rep0]": "passed", f"{racy}[rep1]": "failed", f"{racy}[rep2]": "passed",
    }  # fmt: skip
    assert cell.kernel_reports[0]["kind"] == "kcsan"


def test_the_guest_gets_the_timeout_factor_on_its_command_line(tmp_path: Path) -> None:
    matrix = one_cell_matrix(tmp_path, timeout_factor=2.5)
    assert matrix.tester.guest_timeout_factor() == "harness.timeout_factor=2.5"
