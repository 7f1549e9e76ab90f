"""Where the pristine kernel tree comes from, and what version it is."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
import tempfile
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


def unpack_tarball(tarball: Path, destination: Path) -> None:
    """Unpack once into `destination`; an interrupted unpack leaves nothing behind."""
    if (destination / "Makefile").exists():
        return
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


def resolve_source(
    work_dir: Path, source_dir: Path | None, source_tarball: Path | None
) -> KernelSource:
    """Find or unpack the pristine tree named by the options (Debian's package by default)."""
    if source_dir is not None and source_tarball is not None:
        raise BadInput("--source and --source-tarball: give one of them, not both")
    if source_dir is not None:
        tree = source_dir.resolve()
        check_kernel_tree(tree, "--source")
        return KernelSource(tree, kernel_version(tree), "directory")
    if source_tarball is not None:
        if not source_tarball.is_file():
            raise BadInput(f"--source-tarball {source_tarball}: no such file")
        tree = work_dir / "sources" / f"tarball-{_sha256(source_tarball)[:16]}"
        unpack_tarball(source_tarball, tree)
        return KernelSource(tree, kernel_version(tree), "tarball")
    if not DEBIAN_TARBALL.is_file():
        raise BadInput(
            f"{DEBIAN_TARBALL}: not installed; run 'apt-get install {DEBIAN_PACKAGE}' "
            "(or 'harness doctor --install'), or pass --source DIR"
        )
    package_version = debian_package_version(DEBIAN_PACKAGE) or "unknown"
    tree = work_dir / "sources" / f"debian-{package_version}"
    unpack_tarball(DEBIAN_TARBALL, tree)
    return KernelSource(tree, kernel_version(tree), "debian-package", package_version)
