"""Where the pristine kernel tree comes from, and what version it is."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import BadInput, InfraError
from harness.core.workdir import scratch_prefix

DEBIAN_PACKAGE = "linux-source-6.12"
DEBIAN_TARBALL = Path("/usr/src") / f"{DEBIAN_PACKAGE}.tar.xz"


@dataclass(frozen=True)
class KernelSource:
    tree: Path  # the pristine tree: never modified
    kernel_version: str  # as `make kernelversion` prints it
    origin: str  # "debian-package", "tarball" or "directory"
    package_version: str | None = None  # the Debian package version, for the package
    # What the tree holds, for a --source tree the harness did not unpack itself (see
    # tree_fingerprint); "" for the package or a tarball, whose name says it already.
    fingerprint: str = ""


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL plus EXTRAVERSION, read from the top Makefile."""
    fields: dict[str, str] = {}
    with (tree / "Makefile").open() as makefile:
        for line in makefile:
            match = re.match(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)", line)
            if match:
                fields[match[1]] = match[2]
            if len(fields) == 4:
                break
    version = f"{fields.get('VERSION', '?')}.{fields.get('PATCHLEVEL', '?')}"
    if fields.get("SUBLEVEL", "0") != "0":
        version += f".{fields['SUBLEVEL']}"
    return version + fields.get("EXTRAVERSION", "")


def check_kernel_tree(tree: Path, what: str) -> None:
    markers = ("Makefile", "Kconfig", "scripts/kconfig", "arch", "kernel")
    missing = [m for m in markers if not (tree / m).exists()]
    if missing:
        raise BadInput(
            f"{what} {tree}: not a Linux kernel tree (missing {', '.join(missing)}); "
            "point it at the top of a kernel source tree"
        )
    if (tree / ".config").exists():
        raise BadInput(
            f"{what} {tree}: the tree has been configured in place (.config present); "
            "run 'make mrproper' there, the harness builds out of tree"
        )


# Kept out of a tree's fingerprint: git's own data, and what a build in place would
# leave (check_kernel_tree refuses a configured tree anyway).
_NOT_SOURCE = {".git"}


def tree_fingerprint(tree: Path) -> str:
    """What a --source tree holds, so an edit there rebuilds what it touches.

    A git checkout: its HEAD's tree, the diff of the work tree against it and
    the untracked files (name, size, mtime). Any other tree: a manifest of
    every file's path, size, mtime and inode, which changes with any edit,
    also one that replaces a file (a new inode) or keeps its size.
    """
    digest = hashlib.sha256()
    if (tree / ".git").exists() and shutil.which("git"):
        git = ["git", "-C", str(tree)]
        head = subprocess.run([*git, "rev-parse", "HEAD^{tree}"], capture_output=True)
        if head.returncode == 0:
            diff = subprocess.run([*git, "diff", "HEAD", "--binary"], capture_output=True)
            untracked = subprocess.run(
                [*git, "ls-files", "-z", "--others", "--exclude-standard"], capture_output=True
            )
            digest.update(b"git\0" + head.stdout + b"\0" + diff.stdout + b"\0")
            for untracked_name in sorted(untracked.stdout.split(b"\0")):
                if untracked_name:
                    stat = (tree / untracked_name.decode(errors="surrogateescape")).lstat()
                    digest.update(
                        b"%s\0%d\0%d\0" % (untracked_name, stat.st_size, stat.st_mtime_ns)
                    )
            return "git-" + digest.hexdigest()
    # os.walk and plain strings: a 6.12 tree has some 90,000 files.
    top = str(tree)
    for directory, subdirs, files in os.walk(top):
        subdirs[:] = sorted(d for d in subdirs if d not in _NOT_SOURCE)
        for file_name in sorted(files):
            path = f"{directory}/{file_name}"
            stat = os.lstat(path)
            relative = path[len(top) + 1 :]
            digest.update(
                f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0".encode(
                    errors="surrogateescape"
                )
            )
    return "files-" + digest.hexdigest()


def debian_package_version(package: str) -> str | None:
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def unpack_tarball(
    tarball: Path, destination: Path, announce: Callable[[str], None] = lambda _: None
) -> None:
    """Unpack once into `destination`; an interrupted unpack leaves nothing behind."""
    if (destination / "Makefile").exists():
        return
    started = time.monotonic()
    announce(f"unpacking {tarball} (once) ...")
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=destination.parent, prefix=scratch_prefix("unpack")
    ) as scratch:
        try:
            subprocess.run(["tar", "-xf", str(tarball), "-C", scratch], check=True)
        except (subprocess.CalledProcessError, tarfile.TarError) as error:
            raise InfraError(f"{tarball}: could not unpack ({error})") from error
        entries = list(Path(scratch).iterdir())
        top = entries[0] if len(entries) == 1 and entries[0].is_dir() else Path(scratch)
        check_kernel_tree(top, f"tarball {tarball} contains")
        if destination.exists():
            shutil.rmtree(destination)
        top.rename(destination)
    announce(f"unpacked {tarball.name} in {time.monotonic() - started:.1f} s")


def resolve_source(
    work_dir: Path,
    source_dir: Path | None,
    source_tarball: Path | None,
    announce: Callable[[str], None] = lambda _: None,
) -> KernelSource:
    """Find or unpack the pristine tree named by the options (Debian's package by default)."""
    if source_dir is not None and source_tarball is not None:
        raise BadInput("--source and --source-tarball: give one of them, not both")
    if source_dir is not None:
        tree = source_dir.resolve()
        check_kernel_tree(tree, "--source")
        return KernelSource(tree, kernel_version(tree), "directory", None, tree_fingerprint(tree))
    if source_tarball is not None:
        if not source_tarball.is_file():
            raise BadInput(f"--source-tarball {source_tarball}: no such file")
        tree = work_dir / "sources" / f"tarball-{_sha256(source_tarball)[:16]}"
        unpack_tarball(source_tarball, tree, announce)
        return KernelSource(tree, kernel_version(tree), "tarball")
    if not DEBIAN_TARBALL.is_file():
        raise BadInput(
            f"{DEBIAN_TARBALL}: not installed; run 'apt-get install {DEBIAN_PACKAGE}' "
            "(or 'harness doctor --install'), or pass --source DIR"
        )
    package_version = debian_package_version(DEBIAN_PACKAGE) or "unknown"
    tree = work_dir / "sources" / f"debian-{package_version}"
    unpack_tarball(DEBIAN_TARBALL, tree, announce)
    return KernelSource(tree, kernel_version(tree), "debian-package", package_version)
