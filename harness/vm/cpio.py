"""A writer for the newc cpio format the kernel unpacks as an initramfs.

Written in Python so that device nodes and root ownership need no root and
no fakeroot: every entry is recorded as owned by uid 0.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


class CpioWriter:
    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._inode = 1
        self._written: set[str] = set()

    def _entry(
        self,
        name: str,
        mode: int,
        data: bytes = b"",
        mtime: int = 0,
        rdev: tuple[int, int] = (0, 0),
    ) -> None:
        name = name.lstrip("/")
        encoded = name.encode() + b"\0"
        nlink = 2 if stat.S_ISDIR(mode) else 1
        fields = [
            self._inode,
            mode,
            0,
            0,
            nlink,
            mtime,
            len(data),
            0,
            0,
            rdev[0],
            rdev[1],
            len(encoded),
            0,
        ]
        header = _MAGIC + b"".join(b"%08X" % value for value in fields)
        self._stream.write(header + encoded + _pad(len(header) + len(encoded)))
        self._stream.write(data + _pad(len(data)))
        self._inode += 1
        self._written.add(name)

    def directory(self, name: str, mode: int = 0o755) -> None:
        if name.strip("/") and name.strip("/") not in self._written:
            self._entry(name, stat.S_IFDIR | mode)

    def file(self, name: str, data: bytes, mode: int = 0o644, mtime: int = 0) -> None:
        self._entry(name, stat.S_IFREG | mode, data, mtime)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def tree(self, root: Path, prefix: str = "", exclude: frozenset[str] = frozenset()) -> None:
        """Add everything under `root`, stored below `prefix` in the archive,
        except the archive names in `exclude` (an archive this one is laid over has them)."""
        for directory, dirs, files in os.walk(root):
            dirs.sort()
            base = Path(directory)
            relative = base.relative_to(root)
            archived_dir = os.path.normpath(Path(prefix) / relative)
            if archived_dir not in exclude:
                self.directory(str(Path(prefix) / relative), stat.S_IMODE(base.stat().st_mode))
            for name in sorted(files) + [d for d in dirs if (base / d).is_symlink()]:
                path = base / name
                archived = str(Path(prefix) / relative / name)
                if os.path.normpath(archived) in exclude:
                    continue
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    self.symlink(archived, str(path.readlink()))
                elif stat.S_ISREG(info.st_mode):
                    self.file(
                        archived, path.read_bytes(), stat.S_IMODE(info.st_mode), int(info.st_mtime)
                    )

    def finish(self) -> None:
        self._entry(_TRAILER, 0)
        self._stream.flush()


def member_names(path: Path) -> frozenset[str]:
    """The names of the entries of a newc archive (as the kernel would create them)."""
    names: set[str] = set()
    with path.open("rb") as stream:
        while True:
            header = stream.read(110)
            if len(header) < 110 or header[:6] != _MAGIC:
                raise ValueError(f"{path}: not a newc cpio archive")
            name_size, data_size = int(header[94:102], 16), int(header[54:62], 16)
            name = stream.read(name_size)[:-1].decode()
            stream.seek(-(110 + name_size) % 4, os.SEEK_CUR)
            if name == _TRAILER:
                return frozenset(names)
            names.add(os.path.normpath(name))
            stream.seek(data_size + (-data_size % 4), os.SEEK_CUR)


def extract(path: Path, prefix: str, destination: Path) -> int:
    """Write the regular files of a newc archive whose names start with `prefix`
    under `destination`, the prefix taken off; how many there were. Names that
    would leave `destination` are refused."""
    count = 0
    with path.open("rb") as stream:
        while True:
            header = stream.read(110)
            if len(header) < 110 or header[:6] != _MAGIC:
                raise ValueError(f"{path}: not a newc cpio archive")
            mode = int(header[14:22], 16)
            name_size, data_size = int(header[94:102], 16), int(header[54:62], 16)
            name = os.path.normpath(stream.read(name_size)[:-1].decode())
            stream.seek(-(110 + name_size) % 4, os.SEEK_CUR)
            if name == _TRAILER:
                return count
            wanted = stat.S_ISREG(mode) and name.startswith(prefix)
            relative = name[len(prefix) :]
            if not wanted or relative.startswith(("/", "..")) or not relative:
                stream.seek(data_size + (-data_size % 4), os.SEEK_CUR)
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(stream.read(data_size))
            stream.seek(-data_size % 4, os.SEEK_CUR)
            count += 1
