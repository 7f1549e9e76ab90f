from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import doctor
from harness.cli.main import main
from harness.core.arches import ARCHES


def test_package_list_names_every_tool_the_arch_table_needs() -> None:
    packages = {r.package for r in doctor.read_requirements()}
    for arch in ARCHES.values():
        assert arch.qemu_package in packages
        if not arch.native:
            assert arch.cross_package in packages
        assert set(arch.compat.packages) <= packages
    assert {"mmdebstrap", "linux-source-6.12", "ccache", "patch"} <= packages


def test_missing_tools_give_one_install_command(tmp_path: Path) -> None:
    listing = tmp_path / "packages.txt"
    listing.write_text(
        "# comment\nsh-package sh  the shell\nghost-pkg /nonexistent/tool  nothing\n"
    )
    requirements = doctor.read_requirements(listing)
    assert doctor.missing_packages(requirements) == ["ghost-pkg"]
    assert doctor.install_command(["ghost-pkg"]) == [
        "apt-get", "install", "-y", "--no-install-recommends", "ghost-pkg",
    ]  # fmt: skip


def test_doctor_prints_the_command_without_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "packages.txt"
    listing.write_text("ghost-pkg /nonexistent/tool  nothing\n")
    monkeypatch.setattr(doctor, "PACKAGE_LIST", listing)
    assert main(["doctor"]) == 10
    out = capsys.readouterr().out
    assert "MISSING ghost-pkg" in out
    assert "apt-get install -y --no-install-recommends ghost-pkg" in out
