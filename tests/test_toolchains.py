"""The toolchain axis: what make is told per toolchain, how clang cells are named,
and that a run dir holding gcc and clang cells reads, reports, compares and
exports to KCIDB as eight cells, not four twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from kcidb_io import schema
from run_samples import CELLS, copy_sample_run

from harness.cli.main import main
from harness.core.arches import get_arch
from harness.core.errors import BadInput
from harness.core.status import EXIT_BAD_INPUT
from harness.core.toolchains import TOOLCHAINS, Platform, get_toolchain, platforms
from harness.core.vocabulary import Variant
from harness.kernel.build import make_command
from harness.results import compare, kcidb
from harness.results.model import Cell, CellKey
from harness.results.report import differing_tests, write_reports
from harness.results.rundir import load_run
from harness.run import matrixfile

GCC, CLANG = TOOLCHAINS["gcc"], TOOLCHAINS["clang"]
X86_64, ARM64 = get_arch("x86_64"), get_arch("arm64")
CLANG_VERSION = "Debian clang version 14.0.6"


def variables(command: list[str]) -> dict[str, str]:
    return dict(word.split("=", 1) for word in command if "=" in word)


def test_gcc_builds_as_before_and_clang_with_llvm_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    tree, build_dir = Path("/t"), Path("/t/b")
    gcc = variables(make_command(X86_64, GCC, tree, build_dir, ["bzImage"], 2))
    assert gcc["CC"] == "ccache gcc" and gcc["HOSTCC"] == "ccache gcc"
    assert "LLVM" not in gcc
    clang = variables(make_command(X86_64, CLANG, tree, build_dir, ["bzImage"], 2))
    assert clang["LLVM"] == "1"
    # CC= on the command line wins over LLVM=1's: ccache stays in front of clang.
    assert clang["CC"] == "ccache clang" and clang["HOSTCC"] == "ccache clang"
    assert "CROSS_COMPILE" not in clang  # native on an x86_64 host


def test_clang_cross_compiles_arm64_from_its_target_not_a_cross_gcc(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)  # no ccache
    clang = variables(make_command(ARM64, CLANG, Path("/t"), Path("/t/b"), ["Image"], 2))
    # scripts/Makefile.clang turns CROSS_COMPILE into --target=aarch64-linux-gnu.
    assert clang == {
        "O": "/t/b",
        "ARCH": "arm64",
        "LLVM": "1",
        "CROSS_COMPILE": "aarch64-linux-gnu-",
    }
    assert ("clang", "clang") in CLANG.needed_tools(ARM64)
    assert ("ld.lld", "lld") in CLANG.needed_tools(ARM64)
    assert ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu") in GCC.needed_tools(ARM64)
    assert not any(tool.endswith("gcc") for tool, _ in CLANG.needed_tools(ARM64))


def test_only_a_non_default_toolchain_shows_in_a_cell_name() -> None:
    assert [p.name for p in platforms([X86_64, ARM64], [GCC, CLANG])] == [
        "x86_64",
        "x86_64-clang",
        "arm64",
        "arm64-clang",
    ]
    cell = Cell(ARM64, Variant.PATCHED, toolchain=CLANG)
    assert (cell.name, cell.directory_name) == ("arm64-clang/patched", "arm64-clang-patched")
    assert Cell(ARM64, Variant.PATCHED).name == "arm64/patched"


def test_a_cell_json_round_trips_its_toolchain_and_an_old_one_is_gcc() -> None:
    cell = Cell(X86_64, Variant.BASELINE, toolchain=CLANG)
    cell.facts["compiler"] = CLANG_VERSION
    again = Cell.from_json(cell.to_json())
    assert (again.toolchain, again.facts["compiler"]) == (CLANG, CLANG_VERSION)
    # Before the axis, "toolchain" held gcc's --version line.
    old = {"arch": "x86_64", "variant": "patched", "status": "pass", "toolchain": "gcc (Debian 12)"}
    read = Cell.from_json(old)
    assert (read.toolchain, read.facts["compiler"]) == (GCC, "gcc (Debian 12)")
    with pytest.raises(ValueError, match="unknown toolchain 'icc'"):
        Cell.from_json({**old, "toolchain": "icc", "compiler": "icc 2021"})


def test_an_unknown_toolchain_is_refused_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BadInput, match="--toolchain icc: unknown toolchain; choose one of gcc"):
        get_toolchain("icc")
    assert main(["build", "--toolchain", "icc", "--work-dir", str(tmp_path / "w")]) == (
        EXIT_BAD_INPUT
    )
    error = capsys.readouterr().err.strip()
    assert "--toolchain icc: unknown toolchain; choose one of gcc, clang" in error
    assert "\n" not in error
    assert not (tmp_path / "w").exists()  # refused before anything was made
    toml = tmp_path / "harness.toml"
    toml.write_text('toolchains = ["gcc", "icc"]\n')
    with pytest.raises(BadInput, match="toolchains"):
        matrixfile.load(toml)
    toml.write_text('toolchains = ["clang"]\n')
    assert matrixfile.load(toml).toolchains == ["clang"]


def with_clang_cells(run_dir: Path) -> Path:
    """The sample run (gcc, four cells) with a clang twin of every cell, as a run of
    `--toolchain gcc --toolchain clang` writes it; one clang test outcome differs."""
    summary_path = run_dir / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    cells: list[dict[str, Any]] = []
    for data in summary["cells"]:
        gcc_version = data.pop("toolchain")
        cells.append({**data, "toolchain": "gcc", "compiler": gcc_version})
    for data in list(cells):
        twin = {**data, "toolchain": "clang", "compiler": CLANG_VERSION}
        name = f"{data['arch']}-{data['variant']}"
        shutil.copytree(run_dir / name, run_dir / f"{data['arch']}-clang-{data['variant']}")
        cells.append(twin)
    summary["cells"] = cells
    summary["toolchains"] = ["gcc", "clang"]
    summary_path.write_text(json.dumps(summary, indent=2))
    return run_dir


@pytest.fixture
def mixed_run(tmp_path: Path) -> Path:
    return with_clang_cells(copy_sample_run(tmp_path / "run"))


def test_a_mixed_run_reads_as_eight_cells(mixed_run: Path) -> None:
    run = load_run(mixed_run)
    assert [cell.name for cell in run.cells] == [
        *(name.replace("-", "/") for name in CELLS),
        *(name.replace("-", "-clang/") for name in CELLS),
    ]
    clang = run.cell(CellKey(X86_64, Variant.PATCHED, CLANG))
    gcc = run.cell(CellKey(X86_64, Variant.PATCHED))
    assert clang is not None and gcc is not None and clang is not gcc
    assert clang.tests and clang.directory_name == "x86_64-clang-patched"


def test_differences_are_per_platform(mixed_run: Path) -> None:
    run = load_run(mixed_run)
    found = differing_tests(run)
    # The sample's baseline and patched differ on each arch; the clang twins do too,
    # each under its own platform, never merged into gcc's.
    platforms_seen = set().union(*found.values())
    assert platforms_seen == {"x86_64", "arm64", "x86_64-clang", "arm64-clang"}


def test_the_report_shows_clang_cells_apart(mixed_run: Path) -> None:
    write_reports(mixed_run)
    markdown = (mixed_run / "report.md").read_text()
    # The cells table: one row per cell, each named as the cell is.
    rows = [line.split(" | ")[0] for line in markdown.splitlines() if "**pass**" in line]
    assert rows == [
        "| x86_64/baseline",
        "| x86_64/patched",
        "| arm64/baseline",
        "| arm64/patched",
        "| x86_64-clang/baseline",
        "| x86_64-clang/patched",
        "| arm64-clang/baseline",
        "| arm64-clang/patched",
    ]
    # The outcomes table's header names every cell apart too.
    header = next(line for line in markdown.splitlines() if line.startswith("| test |"))
    assert header.count("x86_64-clang/patched") == 1 and header.count("x86_64/patched") == 1
    html = (mixed_run / "report.html").read_text()
    assert "x86_64-clang-patched/console.log" in html
    assert '<th scope="row">x86_64-clang / patched</th>' in html


def test_compare_pairs_cells_by_toolchain_too(mixed_run: Path, tmp_path: Path) -> None:
    gcc_only = copy_sample_run(tmp_path / "gcc-only")
    comparison = compare.compare_runs(gcc_only, mixed_run)
    assert comparison.regressions == []
    new = [line for line in comparison.others if "new in RUN_B" in line]
    assert len(new) == 4 and all("-clang/" in line for line in new)


def test_kcidb_has_a_build_per_toolchain_with_its_compiler(mixed_run: Path) -> None:
    data = json.loads(kcidb.write_kcidb(mixed_run, "test_lab").read_text())
    schema.LATEST.validate_exactly(data)
    builds = {item["id"].split("/", 1)[1]: item for item in data["builds"]}
    assert len(builds) == 8 and len(data["checkouts"]) == 2  # one source, two variants
    assert builds["x86_64-clang-patched"]["compiler"] == CLANG_VERSION
    assert builds["x86_64-patched"]["compiler"].startswith("gcc")
    assert builds["arm64-clang-baseline"]["architecture"] == "arm64"
    ids = [test["id"] for test in data["tests"]]
    assert len(ids) == len(set(ids))
    clang_tests = [t for t in data["tests"] if "-clang-" in t["build_id"]]
    assert clang_tests and all(
        t["environment"]["misc"]["toolchain"] == "clang" for t in clang_tests
    )


def test_platform_of_a_cell_is_its_arch_and_toolchain() -> None:
    cell = Cell(X86_64, Variant.BASELINE, toolchain=CLANG)
    assert cell.platform == Platform(X86_64, CLANG)
    assert str(cell.platform) == "x86_64-clang"
