"""The guest tests' 32-bit programs: built for each arch's 32-bit user mode by the
compilers its table names, cached as one cpio layer, and refused in one line
when they cannot be built. These tests run the real cross compilers
(harness/host-packages.txt lists them)."""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from harness.core.arches import ARCHES, ArchSpec
from harness.core.errors import InfraError
from harness.vm import compat
from harness.vm.cpio import member_names

REPO = Path(__file__).resolve().parent.parent
GUEST_TESTS = REPO / "guest-tests"
# ELF e_machine of each arch's 32-bit user mode: EM_386, EM_ARM.
ELF_MACHINE_32 = {"x86_64": 3, "arm64": 40}


def needs_compiler(arch: ArchSpec) -> None:
    if shutil.which(arch.compat.compiler) is None:
        pytest.skip(f"{arch.compat.compiler} not installed (scripts/setup-host.sh installs it)")


def member_bytes(layer: Path, name: str) -> bytes:
    return subprocess.run(
        ["cpio", "-i", "--quiet", "--to-stdout", name],
        input=layer.read_bytes(), capture_output=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.parametrize("arch", ARCHES.values(), ids=str)
def test_tracee32_is_a_static_32bit_program_of_the_arch(arch: ArchSpec, tmp_path: Path) -> None:
    needs_compiler(arch)
    layer = compat.programs_layer(arch, GUEST_TESTS, tmp_path, tmp_path / "log")
    assert {"compat", "compat/tracee32"} <= member_names(layer)
    program = member_bytes(layer, "compat/tracee32")
    ident_class, machine = program[4], struct.unpack_from("<H", program, 18)[0]
    assert program[:4] == b"\x7fELF" and ident_class == 1, "not a 32-bit ELF file"
    assert machine == ELF_MACHINE_32[arch.name]
    # Static: no program header of type PT_INTERP (3).
    phoff, phentsize, phnum = (
        *struct.unpack_from("<I", program, 28),
        *struct.unpack_from("<HH", program, 42),
    )
    types = [struct.unpack_from("<I", program, phoff + i * phentsize)[0] for i in range(phnum)]
    assert 3 not in types, "dynamically linked: the guest has no 32-bit loader"


def fake_guest_tests(tmp_path: Path, source: str) -> Path:
    guest_tests = tmp_path / "guest-tests"
    (guest_tests / compat.SOURCE_DIR).mkdir(parents=True)
    (guest_tests / compat.SOURCE_DIR / "probe32.c").write_text(source)
    return guest_tests


def test_layer_is_cached_by_source_and_the_stale_one_removed(tmp_path: Path) -> None:
    arch = ARCHES["x86_64"]
    needs_compiler(arch)
    guest_tests = fake_guest_tests(tmp_path, "int main(void) { return 0; }\n")
    cache = tmp_path / "cache"
    first = compat.programs_layer(arch, guest_tests, cache, tmp_path / "log")
    assert compat.programs_layer(arch, guest_tests, cache, tmp_path / "log") == first
    (guest_tests / compat.SOURCE_DIR / "probe32.c").write_text("int main(void) { return 1; }\n")
    second = compat.programs_layer(arch, guest_tests, cache, tmp_path / "log")
    assert second != first and second.is_file() and not first.exists()
    assert [p.name for p in cache.iterdir()] == [second.name], "scratch or stale files left"


def test_a_program_that_does_not_build_is_named(tmp_path: Path) -> None:
    arch = ARCHES["x86_64"]
    needs_compiler(arch)
    guest_tests = fake_guest_tests(tmp_path, "int main(void) { return undeclared; }\n")
    cache = tmp_path / "cache"
    with pytest.raises(InfraError, match=r"probe32\.c: does not build for ia32 .*undeclared"):
        compat.programs_layer(arch, guest_tests, cache, tmp_path / "log")
    assert list(cache.iterdir()) == [], "a half-made layer was left"


def test_a_missing_compiler_names_its_packages(tmp_path: Path) -> None:
    userland = dataclasses.replace(ARCHES["arm64"].compat, compiler="no-such-gcc")
    arch = dataclasses.replace(ARCHES["arm64"], compat=userland)
    guest_tests = fake_guest_tests(tmp_path, "int main(void) { return 0; }\n")
    with pytest.raises(InfraError, match=r"no-such-gcc not found.*gcc-arm-linux-gnueabihf"):
        compat.programs_layer(arch, guest_tests, tmp_path / "cache", tmp_path / "log")


def test_guest_tests_without_programs_give_an_empty_layer(tmp_path: Path) -> None:
    guest_tests = tmp_path / "guest-tests"
    guest_tests.mkdir()
    layer = compat.programs_layer(ARCHES["arm64"], guest_tests, tmp_path, tmp_path / "log")
    assert member_names(layer) == {"compat"}
