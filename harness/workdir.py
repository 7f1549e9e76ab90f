"""The harness's work dir (sources, trees, builds, caches) and its lock.

Work that takes long (unpacking a tarball, extracting an initramfs or a
sysroot, writing a series) happens in a scratch directory named
`.<kind>-<pid>-...` next to its result and renamed into place when done. A run
killed meanwhile leaves it behind; the next run, once it holds the lock,
removes every one whose process is gone (see remove_stale_scratch).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import BadInput


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def trees(self) -> Path:
        return self.root / "trees"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def initramfs(self) -> Path:
        return self.root / "initramfs"

    @property
    def ccache(self) -> Path:
        return self.root / "ccache"

    @property
    def live(self) -> Path:
        """Live VMs' state, keys and consoles (see live.py)."""
        return self.root / "live"

    @property
    def verdicts(self) -> Path:
        return self.root / "accel-verdicts.json"

    def build_dir(self, source_key: str, arch: str, variant: str, config_digest: str) -> Path:
        """Keyed by config too: a config experiment never clobbers another build."""
        return self.builds / source_key / f"{arch}-{variant}-{config_digest[:12]}"


# Where scratch directories are made (relative to the work dir), and their kinds.
SCRATCH_PARENTS = ("sources", "series", "initramfs")
_SCRATCH = re.compile(r"^\.(?:unpack|export|series|base|live|sysroot)-(?:(?P<pid>\d+)-)?")


def scratch_prefix(kind: str) -> str:
    """The name prefix of a scratch directory of `kind`, carrying this process's id."""
    return f".{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's, but alive
    return True


def remove_stale_scratch(root: Path) -> list[Path]:
    """Remove the scratch directories of processes that are gone; return them.

    A name without a pid (made before scratch_prefix) counts as gone: the
    caller holds the work dir's lock.
    """
    removed = []
    for parent in (root / name for name in SCRATCH_PARENTS):
        if not parent.is_dir():
            continue
        for entry in sorted(parent.iterdir()):
            match = _SCRATCH.match(entry.name)
            if match is None or entry.is_symlink() or not entry.is_dir():
                continue
            if match["pid"] is not None and _alive(int(match["pid"])):
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


class WorkDirLock:
    """One run per work dir at a time: a second one is refused, not queued.

    Taking the lock also removes what an interrupted run left half-made.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / "lock"
        self._handle: IO[str] | None = None

    def __enter__(self) -> WorkDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise BadInput(
                f"work dir {self.path.parent} is in use by {holder}; wait for it, "
                "or pass another --work-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle
        remove_stale_scratch(self.path.parent)  # an interrupted run's half-made work
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock; the kernel drops it on death too
            self._handle = None
