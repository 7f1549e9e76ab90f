"""The compilers a kernel can be built with, as one table of data.

A cell is (arch, toolchain, variant). The default toolchain, gcc, leaves a
cell's name as it always was ("x86_64/patched"); another one shows in it
("x86_64-clang/patched"), so run dirs, expectations and reports of gcc-only
runs read as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.core.arches import ArchSpec
from harness.core.errors import BadInput


@dataclass(frozen=True)
class Toolchain:
    name: str  # as --toolchain and harness.toml spell it
    # make variables beyond ARCH=, CC= and HOSTCC=; "{prefix}" is the arch's
    # CROSS_COMPILE on this host (empty when native).
    make_variables: tuple[str, ...]
    compiler: str  # the C compiler's command; "{prefix}" as above
    host_compiler: str  # HOSTCC
    tools: tuple[tuple[str, str], ...]  # (command, Debian package) it needs besides the arch's
    cross_by_target: bool  # one compiler for every arch (clang --target), no cross package

    def __str__(self) -> str:
        return self.name

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_TOOLCHAIN

    def compiler_for(self, arch: ArchSpec) -> str:
        return self.compiler.format(prefix=arch.compiler_prefix())

    def make_arguments(self, arch: ArchSpec, ccache: bool) -> list[str]:
        """make's variables selecting this compiler for `arch`, through ccache when
        there is one: CC= on the command line overrides what LLVM=1 would pick."""
        wrap = "ccache " if ccache else ""
        prefix = arch.compiler_prefix()
        arguments = [item.format(prefix=prefix) for item in self.make_variables]
        if prefix:
            arguments.append(f"CROSS_COMPILE={prefix}")
        if ccache:
            arguments.append(f"CC={wrap}{self.compiler_for(arch)}")
            arguments.append(f"HOSTCC={wrap}{self.host_compiler}")
        return arguments

    def needed_tools(self, arch: ArchSpec) -> list[tuple[str, str]]:
        """(command, Debian package) pairs a build for `arch` needs."""
        needed = list(self.tools)
        if not self.cross_by_target:
            needed.append((self.compiler_for(arch), arch.cross_package))
        return needed

    def platform(self, arch: ArchSpec) -> str:
        """How cell names and dirs name (arch, toolchain): the arch alone for gcc."""
        return arch.name if self.is_default else f"{arch.name}-{self.name}"


@dataclass(frozen=True)
class Platform:
    """What a kernel is built for and with: the part of a cell's identity that its
    build dir, its build-object counts and check-series' per-arch steps key on."""

    arch: ArchSpec
    toolchain: Toolchain

    @property
    def name(self) -> str:
        return self.toolchain.platform(self.arch)

    def __str__(self) -> str:
        return self.name


DEFAULT_TOOLCHAIN = "gcc"

TOOLCHAINS: dict[str, Toolchain] = {
    "gcc": Toolchain(
        name="gcc",
        make_variables=(),
        compiler="{prefix}gcc",
        host_compiler="gcc",
        tools=(),
        cross_by_target=False,
    ),
    # Debian 12's clang 14 builds 6.12 (its minimum is 13.0.1); LLVM=1 takes
    # the linker and binutils from LLVM too, and clang cross-compiles from
    # ARCH= alone (scripts/Makefile.clang gives it --target).
    "clang": Toolchain(
        name="clang",
        make_variables=("LLVM=1",),
        compiler="clang",
        host_compiler="clang",
        tools=(("clang", "clang"), ("ld.lld", "lld"), ("llvm-ar", "llvm")),
        cross_by_target=True,
    ),
}


def get_toolchain(name: str) -> Toolchain:
    try:
        return TOOLCHAINS[name]
    except KeyError:
        known = ", ".join(TOOLCHAINS)
        raise BadInput(f"--toolchain {name}: unknown toolchain; choose one of {known}") from None


def platforms(arches: list[ArchSpec], toolchains: list[Toolchain]) -> list[Platform]:
    """Every (arch, toolchain) of a run, arch-major: x86_64, x86_64-clang, arm64, …"""
    return [Platform(arch, toolchain) for arch in arches for toolchain in toolchains]
