from __future__ import annotations

import io
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from harness.vm.cpio import CpioWriter


def test_archive_round_trips_through_gnu_cpio(tmp_path: Path) -> None:
    if shutil.which("cpio") is None:
        pytest.skip("GNU cpio not installed")
    source = tmp_path / "src"
    (source / "usr/bin").mkdir(parents=True)
    (source / "usr/bin/tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (source / "usr/bin/tool").chmod(0o755)
    (source / "bin").symlink_to("usr/bin")
    buffer = io.BytesIO()
    archive = CpioWriter(buffer)
    archive.tree(source)
    archive.file("init", b"x" * 5, mode=0o700)
    archive.char_device("dev/console", 5, 1)
    archive.finish()
    listing = subprocess.run(
        ["cpio", "-itv"], input=buffer.getvalue(), capture_output=True, check=True
    ).stdout.decode()
    assert "usr/bin/tool" in listing
    assert "bin -> usr/bin" in listing
    console = next(line for line in listing.splitlines() if line.endswith("dev/console"))
    assert console.startswith("crw-------") and "5,   1" in console
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(
        ["cpio", "-id", "--no-absolute-filenames", "--nonmatching", "dev/console"],
        input=buffer.getvalue(), cwd=out, capture_output=True, check=True,
    )  # fmt: skip
    assert (out / "usr/bin/tool").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((out / "usr/bin/tool").stat().st_mode) == 0o755
    assert (out / "init").read_bytes() == b"xxxxx"
