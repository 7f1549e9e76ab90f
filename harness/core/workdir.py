"""The harness's work dir (sources, trees with their build dirs, caches) and its lock.

Work that takes long (unpacking a tarball, extracting an initramfs or a
sysroot, writing a series) happens in a scratch directory named
`.<kind>-<pid>-...` next to its result and renamed into place when done. A run
killed meanwhile leaves it behind; the next run, once it holds the lock,
removes every one whose process is gone (see remove_stale_scratch).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.core.errors import BadInput


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
    def initramfs(self) -> Path:
        return self.root / "initramfs"

    @property
    def ccache(self) -> Path:
        return self.root / "ccache"

    @property
    def live(self) -> Path:
        """Live VMs' state, keys and consoles (see live/vm.py)."""
        return self.root / "live"

    @property
    def build_objects(self) -> Path:
        """Objects each arch and config compiled when last built whole (kernel/buildmeter.py)."""
        return self.root / "build-objects.json"

    @property
    def verdicts(self) -> Path:
        return self.root / "accel-verdicts.json"


# Where scratch directories are made (relative to the work dir), and their kinds.
SCRATCH_PARENTS = ("sources", "series", "initramfs")
_SCRATCH_KINDS = "unpack|export|series|base|live|sysroot|compat|pytest"
_SCRATCH = re.compile(rf"^\.(?:{_SCRATCH_KINDS})-(?:(?P<pid>\d+)-)?")


def older_recipes(destination: Path, pattern: str) -> list[Path]:
    """The other files beside `destination` matching `pattern`, which older recipes
    of the same cache entry made; removed, and returned for what goes with them."""
    stale = [path for path in destination.parent.glob(pattern) if path != destination]
    for path in stale:
        path.unlink()
    return stale


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


# kbuild refuses a source or output directory whose path holds a space or a colon.
KBUILD_UNSAFE = " :"


def check_directory_option(option: str, path: Path, kbuild: bool = True) -> None:
    """A directory the harness will create or write: refused up front, naming the option.

    Commas are refused too: QEMU's option syntax (-chardev file,path=...) splits on them,
    and the results and work dirs end up in QEMU's command line.
    """
    if "," in str(path):
        raise BadInput(
            f"{option} {path}: a comma in the path, which QEMU's option syntax would split "
            "on; pick a path without commas"
        )
    if kbuild and any(char in str(path) for char in KBUILD_UNSAFE):
        raise BadInput(
            f"{option} {path}: kbuild refuses spaces and colons in its paths; "
            "pick a path without them"
        )
    if path.exists() and not path.is_dir():
        raise BadInput(f"{option} {path}: a file, not a directory; pass a directory")
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise BadInput(
            f"{option} {path}: not writable: {existing} is a file; pass a path under a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BadInput(
            f"{option} {path}: not writable: no write permission on {existing}; "
            "pass a directory you can write"
        )


def _topmost_missing(path: Path) -> Path | None:
    """The first of `path`'s ancestors (or itself) that does not exist, outermost first."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


@contextlib.contextmanager
def nothing_left_on_bad_input(*directories: Path) -> Iterator[None]:
    """Bad input leaves no trace: the directories among these (with the parents made for
    them) that did not exist before and are still empty are removed again."""
    made = [(directory, _topmost_missing(directory)) for directory in directories]
    try:
        yield
    except BadInput:
        for directory, top in made:
            if top is None:
                continue
            for candidate in (directory, *directory.parents):
                try:
                    candidate.rmdir()
                except OSError:
                    break  # not empty, or gone: what is left is not ours to remove
                if candidate == top:
                    break
        raise


class WorkDirLock:
    """One run per work dir at a time: a second one is refused, not queued.

    Taking the lock also removes what an interrupted run left half-made. The lock
    file stays after a run; after bad input, one that this run made is removed.
    """

    def __init__(self, root: Path, shared: bool = False) -> None:
        self.path = root / "lock"
        # Shared: commands that only read the work dir (test --live) may run side by
        # side; any exclusive holder (run, build, boot, check-series) keeps them out.
        self.shared = shared
        self._handle: IO[str] | None = None
        self._made = False

    def __enter__(self) -> WorkDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._made = not self.path.exists()
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise BadInput(
                f"work dir {self.path.parent} is in use by {holder}; wait for it, "
                "or pass another --work-dir"
            ) from None
        if self.shared:
            self._handle = handle  # readers neither name themselves nor clean up
            return self
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._handle = handle
        remove_stale_scratch(self.path.parent)  # an interrupted run's half-made work
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        if self._made and exc_type is not None and issubclass(exc_type, BadInput):
            self.path.unlink(missing_ok=True)  # while still held: nobody else has it
        if self._handle is not None:
            self._handle.close()  # closing releases the flock; the kernel drops it on death too
            self._handle = None
