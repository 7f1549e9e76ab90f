"""The live VM's copy logic: only what changed goes, against a temp dir standing in
for the guest's root, unpacked by the same shell command the guest runs."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.live import sync as livesync
from harness.vm.initramfs import GUEST_DIR


@pytest.fixture
def tests_dir(tmp_path: Path) -> Path:
    tests = tmp_path / "guest-tests"
    (tests / "seccomplib").mkdir(parents=True)
    (tests / "test_a.py").write_text("def test_a():\n    assert True\n")
    (tests / "seccomplib/__init__.py").write_text("")
    (tests / "seccomplib/ptrace.py").write_text("PTRACE_SECCOMP = 0x4213\n")
    (tests / "__pycache__").mkdir()
    (tests / "__pycache__/test_a.cpython-311.pyc").write_bytes(b"host byte-code")
    return tests


def apply(sync: livesync.SyncPlan, guest_root: Path) -> None:
    """Carry out a plan the way the guest does: its command, the tar on stdin."""
    if shutil.which("tar") is None:
        pytest.skip("no tar on this host")
    command = livesync.apply_command(sync, str(guest_root))
    subprocess.run(["sh", "-c", command], input=livesync.tar_stream(sync), check=True)


def test_first_copy_sends_every_file_but_byte_code(tests_dir: Path, tmp_path: Path) -> None:
    sync = livesync.plan(tests_dir, {})
    assert sync.changed == [
        "/guest-tests/seccomplib/__init__.py", "/guest-tests/seccomplib/ptrace.py",
        "/guest-tests/test_a.py", "/harness/harness_results.py", "/harness/pytest_zygote.py",
        "/harness/run-pytest",
    ]  # fmt: skip
    assert sync.removed == []
    guest = tmp_path / "guest"
    guest.mkdir()
    apply(sync, guest)
    assert (guest / "guest-tests/seccomplib/ptrace.py").read_text() == "PTRACE_SECCOMP = 0x4213\n"
    assert (guest / "harness/run-pytest").read_bytes() == (GUEST_DIR / "run-pytest").read_bytes()
    assert (guest / "harness/run-pytest").stat().st_mode & 0o111
    assert not (guest / "guest-tests/__pycache__").exists()


def test_only_changes_and_removals_go_and_stale_byte_code_is_dropped(
    tests_dir: Path, tmp_path: Path
) -> None:
    guest = tmp_path / "guest"
    guest.mkdir()
    first = livesync.plan(tests_dir, {})
    apply(first, guest)
    assert livesync.plan(tests_dir, first.manifest).empty
    # The guest compiled both modules; then one is edited and one deleted on the host.
    cache = guest / "guest-tests/seccomplib/__pycache__"
    cache.mkdir()
    (cache / "ptrace.cpython-311.pyc").write_bytes(b"old")
    (cache / "__init__.cpython-311.pyc").write_bytes(b"kept")
    (guest / "guest-tests/__pycache__").mkdir()
    (guest / "guest-tests/__pycache__/test_a.cpython-311-pytest-7.2.1.pyc").write_bytes(b"old")
    (tests_dir / "seccomplib/ptrace.py").write_text("PTRACE_SECCOMP = 0x4214\n")
    (tests_dir / "test_a.py").unlink()
    second = livesync.plan(tests_dir, first.manifest)
    assert second.changed == ["/guest-tests/seccomplib/ptrace.py"]
    assert second.removed == ["/guest-tests/test_a.py"]
    with tarfile.open(fileobj=io.BytesIO(livesync.tar_stream(second))) as archive:
        sent = [member.name for member in archive.getmembers() if member.isfile()]
    assert sent == ["guest-tests/seccomplib/ptrace.py"]
    apply(second, guest)
    assert (guest / "guest-tests/seccomplib/ptrace.py").read_text() == "PTRACE_SECCOMP = 0x4214\n"
    assert not (guest / "guest-tests/test_a.py").exists()
    assert not (cache / "ptrace.cpython-311.pyc").exists()
    assert (cache / "__init__.cpython-311.pyc").read_bytes() == b"kept"
    assert list((guest / "guest-tests/__pycache__").iterdir()) == []


def test_copied_files_carry_the_time_of_the_copy(tests_dir: Path, tmp_path: Path) -> None:
    guest = tmp_path / "guest"
    guest.mkdir()
    sync = livesync.plan(tests_dir, {})
    command = livesync.apply_command(sync, str(guest))
    stream = livesync.tar_stream(sync, now=2_000_000_000)
    subprocess.run(["sh", "-c", command], input=stream, check=True)
    assert int((guest / "guest-tests/test_a.py").stat().st_mtime) == 2_000_000_000


def test_nothing_to_do_is_a_no_op_command(tests_dir: Path) -> None:
    sync = livesync.plan(tests_dir, livesync.plan(tests_dir, {}).manifest)
    assert livesync.apply_command(sync) == "true"


def test_paths_are_quoted_for_the_guest_shell(tmp_path: Path) -> None:
    tests = tmp_path / "guest-tests"
    tests.mkdir()
    gone = livesync.SyncPlan({}, {}, [], ["/guest-tests/it's here.py"])
    command = livesync.apply_command(gone)
    assert command.startswith("rm -f '/guest-tests/it'\"'\"'s here.py' ")
    assert "'/guest-tests/__pycache__/it'\"'\"'s here'.*.pyc" in command
