"""Guest userspace: a Debian base (busybox, Python, pytest) plus the guest tests.

The base is extracted from the target arch's Debian packages without
emulation (mmdebstrap --variant=extract), trimmed, byte-compiled on the host
and cached by content. The tests go into a second small cpio appended to the
base, so editing a test never rebuilds the base: the kernel unpacks
concatenated archives in order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from harness.core.arches import ArchSpec
from harness.core.errors import InfraError
from harness.core.process import run_logged
from harness.core.workdir import older_recipes, scratch_prefix
from harness.vm import guestpython
from harness.vm.cpio import CpioWriter, member_names

GUEST_DIR = Path(__file__).parents[1] / "guest"
# What goes into the guest's /harness besides pytest's arguments: name -> mode.
GUEST_HARNESS_FILES = {"harness_results.py": 0o644, "run-pytest": 0o755, "pytest_zygote.py": 0o644}
SUITE = "bookworm"
MIRROR = os.environ.get("HARNESS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PACKAGES = (
    "busybox-static",
    "python3-minimal",
    "libpython3.11-stdlib",
    "python3-pytest",
    "python3-hypothesis",
)
PYTHON_VERSION = guestpython.PYTHON_VERSION
# Parts of the extracted packages the guest never uses (globs): size is boot time.
TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "usr/share/bug",
    "usr/lib/valgrind",
    "usr/share/python3",
    "usr/bin/dpkg*",
    "usr/bin/py3*",
    "usr/bin/pydoc*",
    "usr/bin/pygettext*",
    "usr/bin/pdb*",
    "usr/lib/*-linux-gnu/gconv",  # iconv charsets: Python has its own codecs
    # Libraries only the trimmed extension modules below load.
    "usr/lib/*-linux-gnu/libcrypto.so*",
    "usr/lib/*-linux-gnu/libssl.so*",
    "usr/lib/*-linux-gnu/libdb-5.3.so",
    "usr/lib/*-linux-gnu/libsqlite3.so*",
    f"usr/lib/python{PYTHON_VERSION}/lib-dynload/_ssl.*",
    f"usr/lib/python{PYTHON_VERSION}/lib-dynload/_hashlib.*",
    f"usr/lib/python{PYTHON_VERSION}/lib-dynload/_dbm.*",
    f"usr/lib/python{PYTHON_VERSION}/lib-dynload/_sqlite3.*",
    f"usr/lib/python{PYTHON_VERSION}/test",
    f"usr/lib/python{PYTHON_VERSION}/idlelib",
    f"usr/lib/python{PYTHON_VERSION}/tkinter",
    f"usr/lib/python{PYTHON_VERSION}/lib2to3",
    f"usr/lib/python{PYTHON_VERSION}/ensurepip",
    f"usr/lib/python{PYTHON_VERSION}/pydoc_data",
    f"usr/lib/python{PYTHON_VERSION}/turtledemo",
    f"usr/lib/python{PYTHON_VERSION}/distutils",
    f"usr/lib/python{PYTHON_VERSION}/sqlite3",
    f"usr/lib/python{PYTHON_VERSION}/venv",
    f"usr/lib/python{PYTHON_VERSION}/config-*",
)
# Bump when the way the base is made changes, so cached bases are remade.
RECIPE_VERSION = "2"
# Host files the guest never gets: byte-code the guest makes itself, pytest's cache.
IGNORED = ("__pycache__", "*.pyc", ".pytest_cache")
# The live VM's SSH server, laid over the base only when a live VM boots, so the
# initrd of every other boot stays as small as it was.
LIVE_PACKAGES = ("dropbear-bin",)
LIVE_TRIM = (
    "usr/share",
    "usr/bin/dbclient",
    "usr/bin/dropbearkey",
    "usr/bin/dropbearconvert",
    "usr/lib/dropbear",
    "var/cache/apt",
    "var/lib/apt",
    "var/log",
)


@dataclass(frozen=True)
class Initramfs:
    base: Path
    key: str


def base_key(arch: ArchSpec) -> str:
    recipe = "\n".join([RECIPE_VERSION, arch.debian_arch, SUITE, MIRROR, *PACKAGES, *TRIM])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def _extract(
    arch: ArchSpec, root: Path, log_path: Path, packages: tuple[str, ...] = PACKAGES
) -> None:
    command = [
        "mmdebstrap",
        "--variant=extract",
        f"--architectures={arch.debian_arch}",
        f"--include={','.join(packages)}",
        SUITE,
        str(root),
        MIRROR,
    ]
    result = run_logged(command, log_path, timeout=900)
    if result.returncode != 0:
        raise InfraError(f"mmdebstrap failed for {arch.debian_arch}; see {log_path}", log=log_path)


def _trim_and_compile(root: Path, log_path: Path) -> None:
    for pattern in TRIM:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for leftover in ("var/cache/apt", "var/lib/apt", "var/log"):
        shutil.rmtree(root / leftover, ignore_errors=True)
    # unchecked-hash: the pyc is trusted without stat()ing its source, and
    # does not depend on the mtimes the archive carries.
    command = [
        guestpython.host_python(),
        "-m",
        "compileall",
        "-q",
        "-j0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(root),
        "-p",
        "/",
        str(root / f"usr/lib/python{PYTHON_VERSION}"),
        str(root / "usr/lib/python3/dist-packages"),
    ]
    result = run_logged(command, log_path)
    if result.returncode != 0:
        raise InfraError(f"byte-compiling the guest's Python failed; see {log_path}", log=log_path)


def _write_base_cpio(root: Path, destination: Path) -> None:
    with destination.open("wb") as stream:
        archive = CpioWriter(stream)
        archive.tree(root)
        for directory in ("dev", "proc", "sys", "tmp", "run", "results"):
            archive.directory(directory)
        # The kernel opens /dev/console for init before anything mounts devtmpfs.
        archive.char_device("dev/console", 5, 1)
        archive.finish()


def base_path(arch: ArchSpec, cache_dir: Path) -> Path:
    """Where the base archive of `arch`'s current recipe is (once made)."""
    return cache_dir / f"base-{arch.name}-{base_key(arch)}.cpio"


def build_base(arch: ArchSpec, cache_dir: Path, log_path: Path) -> Initramfs:
    """The cached base archive for `arch`, made once per recipe."""
    key = base_key(arch)
    destination = base_path(arch, cache_dir)
    if destination.is_file():
        return Initramfs(destination, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=cache_dir, prefix=f"{scratch_prefix('base')}{arch.name}-"
    ) as scratch:
        root = Path(scratch) / "root"
        _extract(arch, root, log_path)
        _trim_and_compile(root, log_path)
        partial = Path(scratch) / "base.cpio"
        _write_base_cpio(root, partial)
        partial.rename(destination)
    for stale in older_recipes(destination, f"base-{arch.name}-*.cpio"):
        # The guest's pytest taken out of it (guestpython.guest_pytest) goes too.
        shutil.rmtree(cache_dir / f"pytest-{stale.stem.rsplit('-', 1)[-1]}", ignore_errors=True)
    return Initramfs(destination, key)


def build_live_overlay(arch: ArchSpec, base: Initramfs, cache_dir: Path, log_path: Path) -> Path:
    """The cached archive of dropbear and the libraries it needs that `base` lacks."""
    recipe = "\n".join([base.key, *LIVE_PACKAGES, *TRIM, *LIVE_TRIM])
    key = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    destination = cache_dir / f"live-{arch.name}-{key}.cpio"
    if destination.is_file():
        return destination
    in_base = member_names(base.base)
    with tempfile.TemporaryDirectory(
        dir=cache_dir, prefix=f"{scratch_prefix('live')}{arch.name}-"
    ) as scratch:
        root = Path(scratch) / "root"
        _extract(arch, root, log_path, LIVE_PACKAGES)
        for pattern in (*TRIM, *LIVE_TRIM):  # the base's trim too: libc6 comes again
            for path in root.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
        partial = Path(scratch) / "live.cpio"
        with partial.open("wb") as stream:
            archive = CpioWriter(stream)
            archive.tree(root, exclude=in_base)
            archive.finish()
        partial.rename(destination)
    older_recipes(destination, f"live-{arch.name}-*.cpio")
    return destination


def write_live_config_cpio(authorized_key: str, host_key: bytes, destination: Path) -> None:
    """The live VM's accounts and keys: root logs in with the harness's key only."""
    with destination.open("wb") as stream:
        archive = CpioWriter(stream)
        archive.directory("etc")
        archive.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        archive.file("etc/group", b"root:x:0:\n")
        archive.file("etc/nsswitch.conf", b"passwd: files\ngroup: files\nshadow: files\n")
        # dropbear refuses keys in a home, .ssh or file that others can write.
        archive.directory("root", mode=0o700)
        archive.directory("root/.ssh", mode=0o700)
        archive.file("root/.ssh/authorized_keys", f"{authorized_key}\n".encode(), mode=0o600)
        archive.directory("etc/dropbear", mode=0o700)
        archive.file("etc/dropbear/host_key", host_key, mode=0o600)
        archive.finish()


@dataclass(frozen=True)
class GuestBinary:
    """An upstream selftest binary for the guest: the host's file, and where it goes under
    /selftests (`<collection>/<binary>`, `<collection>/series/<binary>`), which the
    guest's init names it by."""

    path: Path
    guest_path: str
    arguments: tuple[str, ...] = ()  # its command line, one per line in <guest_path>.args


def write_tests_cpio(
    guest_tests: Path,
    pytest_args: list[str],
    destination: Path,
    selftests: list[GuestBinary],
    guest_pytest: Path | None = None,
) -> None:
    """The per-run overlay: /init, the results plugin, the tests (with pytest's
    rewritten byte-code when the guest's pytest is given), pytest's arguments
    and the upstream selftest binaries (run after pytest, from /selftests)."""
    with destination.open("wb") as stream:
        archive = CpioWriter(stream)
        archive.file("init", (GUEST_DIR / "init").read_bytes(), mode=0o755)
        archive.directory("harness")
        for name, mode in GUEST_HARNESS_FILES.items():
            archive.file(f"harness/{name}", (GUEST_DIR / name).read_bytes(), mode=mode)
        archive.file("harness/pytest-args", "".join(f"{arg}\n" for arg in pytest_args).encode())
        ignored = shutil.ignore_patterns(*IGNORED)
        with tempfile.TemporaryDirectory() as scratch:
            staged = Path(scratch) / "guest-tests"
            shutil.copytree(guest_tests, staged, ignore=ignored, symlinks=True)
            guestpython.byte_compile(staged, "/guest-tests")
            if guest_pytest is not None:
                guestpython.rewrite_tests(staged, "/guest-tests", guest_pytest)
            archive.tree(staged, "guest-tests")
        archive.directory("selftests")
        for binary in selftests:
            member = PurePosixPath("selftests", binary.guest_path)
            for parent in reversed(member.parents[:-1]):
                archive.directory(str(parent))
            archive.file(str(member), binary.path.read_bytes(), mode=0o755)
            if binary.arguments:
                lines = "".join(f"{word}\n" for word in binary.arguments)
                archive.file(f"{member}.args", lines.encode())
        archive.finish()


def assemble(
    base: Initramfs,
    guest_tests: Path,
    pytest_args: list[str],
    destination: Path,
    selftests: list[GuestBinary] | None = None,
    layers: tuple[Path, ...] = (),
) -> None:
    """Concatenate the base, any `layers` and a fresh tests overlay into the initrd
    QEMU loads; a later archive's file replaces an earlier one's."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    overlay = destination.with_suffix(".tests.cpio")
    guest_pytest = guestpython.guest_pytest(base.base, base.key)
    write_tests_cpio(guest_tests, pytest_args, overlay, selftests or [], guest_pytest)
    partial = destination.with_suffix(".partial")
    with partial.open("wb") as out:
        for part in (base.base, *layers, overlay):
            with part.open("rb") as stream:
                shutil.copyfileobj(stream, out, 1 << 20)
    partial.rename(destination)
    overlay.unlink()
