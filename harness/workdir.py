"""The harness's work dir (sources, trees, builds, caches) and its lock."""

from __future__ import annotations

import fcntl
import os
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


class WorkDirLock:
    """One run per work dir at a time: a second one is refused, not queued."""

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
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._handle is not None:
            self._handle.close()  # closing releases the flock; the kernel drops it on death too
            self._handle = None
