"""The guest tests' 32-bit programs (guest-tests/compat/*.c), built static for the
arch's 32-bit user mode (ArchSpec.compat) and given to the guest as /compat/<name>.

They are the only way the series' compat paths run: a 64-bit Python cannot make
an ia32 or AArch32 syscall. Built once per arch, compiler and source, and kept
as a cpio layer in the initramfs cache; a 32-bit program is the same for every
kernel of the arch.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.errors import InfraError
from harness.core.process import run_logged
from harness.core.workdir import older_recipes, scratch_prefix
from harness.vm.cpio import CpioWriter

SOURCE_DIR = "compat"  # under the guest tests
GUEST_DIR = "compat"  # under the guest's /
COMMON_FLAGS = ("-static", "-O2", "-s", "-Wall")
SCRATCH_KIND = "compat"


def sources(guest_tests: Path) -> list[Path]:
    return sorted((guest_tests / SOURCE_DIR).glob("*.c"))


def _compiler_version(arch: ArchSpec) -> str:
    compiler = arch.compat.compiler
    if shutil.which(compiler) is None:
        packages = " ".join(arch.compat.packages)
        raise InfraError(
            f"{compiler} not found: the {arch.compat.name} tracees of the guest tests need "
            f"it; install {packages} (scripts/setup-host.sh does)"
        )
    completed = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return completed.stdout.split("\n", 1)[0]


def layer_key(arch: ArchSpec, version: str, files: list[Path]) -> str:
    recipe = hashlib.sha256()
    for part in (arch.name, version, *COMMON_FLAGS, *arch.compat.flags):
        recipe.update(part.encode() + b"\0")
    for source in files:
        recipe.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return recipe.hexdigest()[:16]


def programs_layer(arch: ArchSpec, guest_tests: Path, cache_dir: Path, log_path: Path) -> Path:
    """The cached cpio layer holding /compat/<name> for each program; an empty
    layer when the guest tests have none."""
    files = sources(guest_tests)
    version = _compiler_version(arch) if files else ""
    destination = cache_dir / f"compat-{arch.name}-{layer_key(arch, version, files)}.cpio"
    if destination.is_file():
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=cache_dir, prefix=f"{scratch_prefix(SCRATCH_KIND)}{arch.name}-"
    ) as scratch:
        built = [_compile(arch, source, Path(scratch), log_path) for source in files]
        partial = Path(scratch) / "layer.cpio"
        with partial.open("wb") as stream:
            archive = CpioWriter(stream)
            archive.directory(GUEST_DIR)
            for program in built:
                archive.file(f"{GUEST_DIR}/{program.name}", program.read_bytes(), mode=0o755)
            archive.finish()
        partial.rename(destination)
    older_recipes(destination, f"compat-{arch.name}-*.cpio")
    return destination


def _compile(arch: ArchSpec, source: Path, out_dir: Path, log_path: Path) -> Path:
    program = out_dir / source.stem
    command = [arch.compat.compiler, *COMMON_FLAGS, *arch.compat.flags]
    command += ["-o", str(program), str(source)]
    completed = run_logged(command, log_path, timeout=300)
    if completed.returncode != 0:
        first = next((line for line in completed.output.splitlines() if "error" in line), "")
        why = first.strip() or "see the log"
        raise InfraError(
            f"guest program {source}: does not build for {arch.compat.name} ({why}); "
            f"fix it, see {log_path}"
        )
    return program
