"""The kernel's own selftest collections (core/kselftests.py), built static per arch, as
an oracle; and their config fragments.

Each binary comes from the tree under test, compiled by gcc for the target
against that tree's uapi headers (`make headers` in the cell's build dir)
and, where a collection links one, the target arch's static library taken
from Debian without emulation (the sysroot). A baseline cell also builds the
series tree's binaries of every collection the series changes: the pristine
directory with the series' hunks for it.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from harness.core.arches import ArchSpec
from harness.core.errors import BuildError, InfraError, host_trouble
from harness.core.kselftests import COMMON_HEADERS, SELFTESTS_DIR, Collection, SysrootFile
from harness.core.process import run_logged
from harness.core.toolchains import Toolchain
from harness.core.workdir import scratch_prefix
from harness.kernel.build import first_errors, make_command, make_env
from harness.kernel.kconfig import Option, parse_text
from harness.kernel.selftest_tap import SelftestBinary
from harness.kernel.series import Patch
from harness.vm.initramfs import MIRROR, SUITE

BUILT_DIR = "selftests"  # the binaries' directory in the cell's build dir


# -- the sysroot ------------------------------------------------------------------------


def sysroot_files(collections: Iterable[Collection]) -> tuple[SysrootFile, ...]:
    """The target-arch files the collections build against, each once."""
    return tuple(dict.fromkeys(f for c in collections for f in c.sysroot))


def sysroot_key(arch: ArchSpec, files: Sequence[SysrootFile]) -> str:
    packages = " ".join(sorted({f.package for f in files}))
    recipe = f"1 {arch.debian_arch} {SUITE} {MIRROR} {packages}"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def build_sysroot(
    arch: ArchSpec, files: Sequence[SysrootFile], cache_dir: Path, log_path: Path
) -> Path | None:
    """A private include/ and lib/ with the target arch's `files`; None when none are needed."""
    if not files:
        return None
    destination = cache_dir / f"sysroot-{arch.name}-{sysroot_key(arch, files)}"
    if all((destination / f.destination).is_file() for f in files):
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)
    packages = sorted({f.package for f in files})
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=scratch_prefix("sysroot")) as scratch:
        root = Path(scratch) / "root"
        command = [
            "mmdebstrap",
            "--variant=extract",
            f"--architectures={arch.debian_arch}",
            f"--include={','.join(packages)}",
            SUITE,
            str(root),
            MIRROR,
        ]
        if run_logged(command, log_path, timeout=900).returncode != 0:
            names = ", ".join(f"{p}:{arch.debian_arch}" for p in packages)
            raise InfraError(f"mmdebstrap {names} failed; see {log_path}")
        staged = Path(scratch) / "sysroot"
        for item in files:
            found = next(root.glob(item.glob), None)
            if found is None:
                raise InfraError(f"{item.package}:{arch.debian_arch} has no {item.glob}")
            target = staged / item.destination
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, target)
        shutil.rmtree(destination, ignore_errors=True)  # one left incomplete by an older harness
        staged.rename(destination)
    return destination


# -- building ---------------------------------------------------------------------------


def install_headers(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    log_path: Path,
    ccache_dir: Path,
) -> None:
    """The tree's uapi headers into the build dir's usr/include, once per cell. They are
    made by the cell's compiler (another one there would re-sync its .config)."""
    headers = make_command(arch, toolchain, tree, build_dir, ["headers"], 1)
    if run_logged(headers, log_path, env=make_env(ccache_dir)).returncode != 0:
        raise InfraError(f"make headers failed for the selftests; see {log_path}", log=log_path)


def binary_path(build_dir: Path, binary: SelftestBinary) -> Path:
    return build_dir / BUILT_DIR / binary.guest_path


def build_binary(
    arch: ArchSpec,
    binary: SelftestBinary,
    source_dir: Path,
    tree: Path,
    build_dir: Path,
    sysroot: Path | None,
    log_path: Path,
    ccache_dir: Path,
    from_series: bool = False,
) -> Path:
    """One selftest binary for `arch`, static, from `source_dir`/<binary>.c; rebuilt only
    when its source, the headers it includes, its libraries or its command changed.

    The test is built by gcc for every toolchain, so clang and gcc kernels face one
    oracle. `source_dir` may be a copy of the collection's directory outside `tree`
    (the series' version): its relative includes (../kselftest_harness.h) resolve
    through the tree's own directory. `from_series`: the source is the series'
    (the patched tree's, or its hunks on the pristine file), so a compile error is
    the series' build failure, not the host's."""
    collection = binary.collection
    output = binary_path(build_dir, binary)
    source = source_dir / f"{binary.binary}.c"
    include = build_dir / "usr/include"
    command = [f"{arch.compiler_prefix()}gcc", "-static", *collection.cflags]
    command += ["-isystem", str(include)]
    if collection.sysroot and sysroot is not None:
        command += ["-I", str(sysroot / "include")]
    command += ["-I", str(tree / collection.directory), str(source), "-o", "{output}"]
    if collection.sysroot and sysroot is not None:
        command += ["-L", str(sysroot / "lib")]
    command += list(collection.libraries)
    stamp = output.with_name(f"{output.name}.command")
    recorded = "\n".join(command) + "\n"
    if _up_to_date(output, stamp, recorded, _inputs(binary, source, tree, include, sysroot)):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f"{output.name}.partial")
    argv = [str(partial) if part == "{output}" else part for part in command]
    result = run_logged(argv, log_path, cwd=source_dir, env=make_env(ccache_dir))
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        trouble = host_trouble(result.output, output.parent)
        if trouble is not None:
            raise trouble
        errors = first_errors(result.output)
        headline = errors.splitlines()[0] if errors else f"exit {result.returncode}"
        failure = BuildError if from_series else InfraError
        name = binary.guest_path
        raise failure(
            f"building {name} failed: {headline}; see {log_path}", log=log_path, excerpt=errors
        )
    partial.rename(output)
    stamp.write_text(recorded)
    return output


def _inputs(
    binary: SelftestBinary, source: Path, tree: Path, include: Path, sysroot: Path | None
) -> list[Path]:
    """The files whose change rebuilds the binary."""
    collection = binary.collection
    inputs = [source, *sorted(source.parent.glob("*.h"))]
    inputs += [tree / SELFTESTS_DIR / name for name in COMMON_HEADERS]
    inputs += [include / header for header in collection.uapi_headers]
    if sysroot is not None:
        inputs += [sysroot / f.destination for f in collection.sysroot]
    return [path for path in inputs if path.exists()]


def _up_to_date(output: Path, stamp: Path, command: str, inputs: list[Path]) -> bool:
    if not output.is_file() or not stamp.is_file() or stamp.read_text() != command:
        return False
    built = output.stat().st_mtime
    return all(path.stat().st_mtime <= built for path in inputs)


# -- the series' version of a collection ------------------------------------------------


def selftest_sections(text: str, strip: int, path: PurePosixPath) -> str:
    """The parts of a `git format-patch` patch that change the file `path`, or files under
    it when it is a directory."""
    kept: list[str] = []
    keeping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            names = ["/".join(name.split("/")[strip:]) for name in line.split()[2:4]]
            keeping = any(name == str(path) or name.startswith(f"{path}/") for name in names)
        elif line == "-- \n":
            keeping = False  # the signature after the last file
        if keeping:
            kept.append(line)
    return "".join(kept)


def changes(patches: Sequence[Patch], path: PurePosixPath) -> bool:
    """Whether the series changes the file `path`, or anything under the directory `path`."""
    return any(_sections(patches, path))


def _sections(patches: Sequence[Patch], path: PurePosixPath) -> list[tuple[Patch, str]]:
    sections = [
        (patch, selftest_sections(patch.path.read_text(errors="replace"), patch.strip, path))
        for patch in patches
    ]
    return [(patch, text) for patch, text in sections if text]


def _apply_series(
    pristine: Path,
    patches: Sequence[Patch],
    directory: PurePosixPath,
    staging: Path,
    log_path: Path,
) -> Path | None:
    """`directory` of the pristine tree copied under `staging`, with the series' hunks for
    it applied; None when the series leaves it alone."""
    sections = _sections(patches, directory)
    if not sections:
        return None
    shutil.copytree(pristine / directory, staging / directory)
    for number, (patch, text) in enumerate(sections):
        hunks = staging / f"{number:04d}.patch"
        hunks.write_text(text)
        command = ["patch", f"-p{patch.strip}", "--fuzz=0", "-s", "-N", "-d", str(staging)]
        if run_logged([*command, "-i", str(hunks)], log_path).returncode != 0:
            raise InfraError(
                f"{patch.name}: its hunks for {directory} do not apply; see {log_path}"
            )
    return staging / directory


def series_directory(
    pristine: Path,
    patches: Sequence[Patch],
    collection: Collection,
    scratch: Path,
    log_path: Path,
) -> Path | None:
    """The collection's directory as the series leaves it, under `scratch`, from the
    pristine tree and the series' hunks for it; None if the series leaves it alone.
    A file keeps its mtime while its content stays the same, so its binary is not
    rebuilt."""
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".staging-") as staging:
        staged = _apply_series(pristine, patches, collection.directory, Path(staging), log_path)
        if staged is None:
            return None
        target = scratch / collection.directory
        for made in sorted(p for p in staged.rglob("*") if p.is_file()):
            copy = target / made.relative_to(staged)
            if not copy.is_file() or copy.read_bytes() != made.read_bytes():
                copy.parent.mkdir(parents=True, exist_ok=True)
                copy.write_bytes(made.read_bytes())
    return target


# -- config fragments -------------------------------------------------------------------


def config_options(
    pristine: Path, patches: Sequence[Patch], collections: Iterable[Collection]
) -> list[Option]:
    """The options each collection's own config file asks for (it may have none): the
    pristine tree's file, or the series' version of it when the series changes it, so
    that baseline (which runs the series tree's binaries too) and patched are configured
    alike. Each option's origin names the file and line, as a fragment's does."""
    options: list[Option] = []
    for collection in collections:
        path = pristine / collection.config
        origin, text = str(path), path.read_text(errors="replace") if path.is_file() else None
        if changes(patches, collection.config):
            series_text = _series_config(pristine, patches, collection)
            if series_text is not None:
                origin, text = f"{path} (with the series' hunks)", series_text
        if text is not None:
            options += parse_text(text, origin)
    return options


def _series_config(pristine: Path, patches: Sequence[Patch], collection: Collection) -> str | None:
    """The collection's config file as the series leaves it; None when the series does
    not change it or its hunks do not apply (the patched cell's patch stage names that)."""
    with tempfile.TemporaryDirectory(prefix="harness-selftest-config-") as scratch:
        staging = Path(scratch)
        try:
            staged = _apply_series(
                pristine, patches, collection.directory, staging / "tree", staging / "log"
            )
        except InfraError:
            return None
        config = staged / "config" if staged is not None else None
        if config is None or not config.is_file():
            return None
        return config.read_text(errors="replace")
