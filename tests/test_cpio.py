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


def test_tests_overlay_carries_byte_code_for_helpers_only(tmp_path: Path) -> None:
    """The helper modules' byte-code is made on the host (the guest would compile them
    under emulation on every boot); pytest rewrites test modules and conftest itself."""
    from harness.vm.cpio import member_names
    from harness.vm.initramfs import write_tests_cpio

    tests = tmp_path / "guest-tests"
    (tests / "lib").mkdir(parents=True)
    (tests / "lib/__init__.py").write_text("")
    (tests / "lib/helper.py").write_text("VALUE = 1\n")
    (tests / "lib/broken.py").write_text("def (:\n")
    (tests / "conftest.py").write_text("")
    (tests / "test_a.py").write_text("def test_a():\n    assert True\n")
    overlay = tmp_path / "overlay.cpio"
    write_tests_cpio(tests, [], overlay, [])
    names = member_names(overlay)
    assert "guest-tests/lib/__pycache__/helper.cpython-311.pyc" in names
    assert not [name for name in names if "broken" in name and name.endswith(".pyc")]
    assert not [name for name in names if name.startswith("guest-tests/__pycache__")]
    assert not (tests / "lib/__pycache__").exists()  # the host's tree is left as it was


def test_selftest_binaries_go_under_their_collection_with_every_directory(tmp_path: Path) -> None:
    """The guest's init runs /selftests/<collection>/<binary> and .../series/<binary>;
    the kernel's initramfs unpacker makes no parent directory by itself."""
    from harness.vm.cpio import member_names
    from harness.vm.initramfs import GuestBinary, write_tests_cpio

    tests = tmp_path / "guest-tests"
    tests.mkdir()
    binary = tmp_path / "built"
    binary.write_bytes(b"\x7fELF")
    overlay = tmp_path / "overlay.cpio"
    binaries = [GuestBinary(binary, "ptrace/vmaccess", ("-T", "attach")),
                GuestBinary(binary, "ptrace/peeksiginfo"),
                GuestBinary(binary, "seccomp/series/seccomp_bpf")]  # fmt: skip
    write_tests_cpio(tests, [], overlay, binaries)
    listed = subprocess.run(["cpio", "-t", "--quiet"], stdin=overlay.open("rb"),
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    in_order = [name for name in listed.splitlines() if name.startswith("selftests")]
    assert in_order == [
        "selftests", "selftests/ptrace", "selftests/ptrace/vmaccess",
        "selftests/ptrace/vmaccess.args", "selftests/ptrace/peeksiginfo", "selftests/seccomp",
        "selftests/seccomp/series",
        "selftests/seccomp/series/seccomp_bpf",
    ]  # fmt: skip
    assert set(in_order) <= member_names(overlay)
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    subprocess.run(["cpio", "-id", "--quiet", "selftests/ptrace/vmaccess.args"],
                   stdin=overlay.open("rb"), cwd=unpacked, check=True)  # fmt: skip
    assert (unpacked / "selftests/ptrace/vmaccess.args").read_text() == "-T\nattach\n"
