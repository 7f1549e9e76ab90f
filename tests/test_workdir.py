"""The work dir: what an interrupted run left behind is removed by the next one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.core.workdir import WorkDirLock


def _dead_pid() -> int:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    return int(child.stdout)


def test_scratch_dirs_of_an_interrupted_run_are_removed_by_the_next(tmp_path: Path) -> None:
    root = tmp_path / "work"
    dead = _dead_pid()
    stale = [
        root / "sources/.unpack-k3j2h1g0",  # names as tempfile made them before pids
        root / "sources/.export-abcdefgh",
        root / "series/.series-q1w2e3r4",
        root / "initramfs/.base-x86_64-zxcvbnm1",
        root / "initramfs/.live-arm64-poiuytre",
        root / "initramfs/.sysroot-asdfghjk",
        root / f"initramfs/.base-{dead}-x86_64-12345678",  # its process is gone
        root / f"sources/.unpack-{dead}-abcdefgh",
    ]
    busy = root / f"initramfs/.base-{os.getppid()}-arm64-lkjhgfds"  # a live `harness boot`'s
    kept = [
        root / "sources/debian-6.12.117/Makefile",
        root / "initramfs/base-x86_64-0123456789abcdef.cpio",
        root / "initramfs/sysroot-arm64-0123456789abcdef/lib/libcap.a",
        root / "series/commits-0123-4567/series",
        busy / "root/init",
    ]
    for directory in stale:
        (directory / "root/usr/bin").mkdir(parents=True)
        (directory / "root/usr/bin/python3").write_text("half-extracted")
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("kept")
    with WorkDirLock(root):
        pass
    assert [path for path in stale if path.exists()] == []
    assert all(path.read_text() == "kept" for path in kept)
