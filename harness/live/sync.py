"""What `harness test --live` copies into a live VM: only what changed since the last copy.

The guest has no SFTP server (dropbear has none built in, and Debian's
openssh-sftp-server brings the whole OpenSSH client along), so the files go
as one tar stream on one SSH exec, which busybox tar unpacks: a single round
trip however many files changed. The host remembers what it sent (a
manifest of content hashes per guest path), so an unchanged file is not sent.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import shlex
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.vm.initramfs import GUEST_DIR, GUEST_HARNESS_FILES, IGNORED

GUEST_TESTS = PurePosixPath("/guest-tests")
GUEST_HARNESS = PurePosixPath("/harness")

Manifest = dict[str, str]  # guest path (absolute) -> sha256 of the content


@dataclass(frozen=True)
class SyncPlan:
    sources: dict[str, Path]  # guest path -> host file, for every file the guest should have
    manifest: Manifest  # what the guest has once the plan is carried out
    changed: list[str]  # guest paths to send (new or different)
    removed: list[str]  # guest paths the host no longer has

    @property
    def empty(self) -> bool:
        return not self.changed and not self.removed


def _ignored(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED)


def guest_files(guest_tests: Path) -> dict[str, Path]:
    """Guest path -> host file: the tests tree and the harness's guest-side files."""
    files: dict[str, Path] = {}
    for directory, dirs, names in os.walk(guest_tests):
        dirs[:] = sorted(d for d in dirs if not _ignored(d))
        base = Path(directory)
        for name in sorted(names):
            path = base / name
            if _ignored(name) or not path.is_file():
                continue
            files[str(GUEST_TESTS / path.relative_to(guest_tests).as_posix())] = path
    for name in GUEST_HARNESS_FILES:
        files[str(GUEST_HARNESS / name)] = GUEST_DIR / name
    return files


def manifest_of(files: dict[str, Path]) -> Manifest:
    return {guest: hashlib.sha256(path.read_bytes()).hexdigest() for guest, path in files.items()}


def plan(guest_tests: Path, synced: Manifest) -> SyncPlan:
    """Compare the host's files with what the guest was last given."""
    sources = guest_files(guest_tests)
    manifest = manifest_of(sources)
    changed = sorted(path for path, digest in manifest.items() if synced.get(path) != digest)
    removed = sorted(path for path in synced if path not in manifest)
    return SyncPlan(sources, manifest, changed, removed)


def tar_stream(sync: SyncPlan, now: float | None = None) -> bytes:
    """The changed files as a tar archive of absolute-less guest paths, for `tar -x -C /`.

    Each file is stamped with the time of the copy, not its host mtime: Python's
    and pytest's byte-code caches trust an unchanged (mtime, size), and an older
    file restored on the host keeps its old mtime.
    """
    stamp = int(time.time() if now is None else now)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        directories: set[str] = set()
        for guest in sync.changed:
            source = sync.sources[guest]
            relative = guest.lstrip("/")
            for parent in reversed(PurePosixPath(relative).parents[:-1]):
                if str(parent) not in directories:
                    directories.add(str(parent))
                    info = tarfile.TarInfo(str(parent))
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, stamp
                    archive.addfile(info)
            data = source.read_bytes()
            info = tarfile.TarInfo(relative)
            info.size, info.mtime = len(data), stamp
            info.mode = 0o755 if os.access(source, os.X_OK) else 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def stale_bytecode(guest: str, root: str = "/") -> str:
    """A shell glob of the byte-code the guest may hold for `guest` (a .py file)."""
    path = PurePosixPath(root) / PurePosixPath(guest).relative_to("/")
    return f"{shlex.quote(str(path.parent / '__pycache__' / path.stem))}.*.pyc"


def apply_command(sync: SyncPlan, root: str = "/") -> str:
    """The guest shell command that removes what went away (and the byte-code of
    every changed module) and unpacks the tar on its stdin, below `root`."""
    gone = [
        shlex.quote(str(PurePosixPath(root) / PurePosixPath(path).relative_to("/")))
        for path in sync.removed
    ]
    gone += [
        stale_bytecode(path, root)
        for path in [*sync.changed, *sync.removed]
        if path.endswith(".py")
    ]
    parts = [f"rm -f {' '.join(gone)}"] if gone else []
    if sync.changed:
        parts.append(f"tar -x -f - -C {shlex.quote(root)}")
    return " && ".join(parts) or "true"
