"""Configure and build one kernel out of tree (O=) for one arch and tree."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.errors import BuildError, ConfigError, InfraError, host_trouble
from harness.core.process import run_logged
from harness.core.toolchains import Toolchain
from harness.kernel.kconfig import KconfigIndex, MergedConfig, parse_dotconfig, verify

BUILD_NICENESS = 10
_COMPILER_ERROR = re.compile(r"(error:|Error \d+|undefined reference|\*\*\* )")


@dataclass(frozen=True)
class BuildOutputs:
    image: Path
    vmlinux: Path
    system_map: Path
    config: Path
    config_hash: str
    seconds: float


def make_command(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    targets: list[str],
    jobs: int,
) -> list[str]:
    """make for one build dir. Every make in a build dir must name the same compiler:
    kbuild re-syncs .config (CONFIG_CC_IS_CLANG, …) when it sees another one."""
    command = ["make", "-C", str(tree), f"O={build_dir}", f"ARCH={arch.linux_arch}", f"-j{jobs}"]
    command += toolchain.make_arguments(arch, ccache=shutil.which("ccache") is not None)
    return command + targets


def make_env(ccache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        CCACHE_DIR=str(ccache_dir),
        # Relative paths let one cache serve trees at different places; with
        # debug info (--feature debug-info), ccache would hash the build dir's
        # path too unless told not to (an object's DWARF then names the build
        # dir that first compiled it: its relative file names still hold).
        CCACHE_BASEDIR=str(ccache_dir.parent),
        CCACHE_NOHASHDIR="1",
        KBUILD_BUILD_USER="harness",
        KBUILD_BUILD_HOST="harness",
        LC_ALL="C",
    )
    env.pop("MAKEFLAGS", None)
    return env


def first_errors(output: str, limit: int = 8) -> str:
    lines = [line for line in output.splitlines() if _COMPILER_ERROR.search(line)]
    return "\n".join(lines[:limit])


def built_uts_version(build_dir: Path) -> str | None:
    """`uname -v` of the kernel in `build_dir`: its build number and time make it unique."""
    header = build_dir / "include/generated/utsversion.h"
    match = (
        re.search(r'UTS_VERSION "(?P<version>[^"]*)"', header.read_text())
        if header.is_file()
        else None
    )
    return match["version"] if match else None


def config_hash(dotconfig: Path) -> str:
    return hashlib.sha256(dotconfig.read_bytes()).hexdigest()


def configure(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    merged: MergedConfig,
    index: KconfigIndex,
    log_path: Path,
    ccache_dir: Path,
) -> str:
    """tinyconfig + fragments (merge_config.sh) + olddefconfig, then verify every option.

    An unchanged result keeps the old .config file (and its mtime), so a
    no-op configure does not make kbuild re-check the whole tree.
    """
    build_dir.mkdir(parents=True, exist_ok=True)
    dotconfig = build_dir / ".config"
    previous = dotconfig.read_bytes() if dotconfig.exists() else None
    previous_times = (dotconfig.stat().st_atime, dotconfig.stat().st_mtime) if previous else None
    fragment = build_dir / "harness-fragment.config"
    fragment.write_text(merged.fragment_text())
    env = make_env(ccache_dir)
    steps = [
        make_command(arch, toolchain, tree, build_dir, ["tinyconfig"], 1),
        [
            str(tree / "scripts/kconfig/merge_config.sh"),
            "-m",
            "-O",
            str(build_dir),
            str(dotconfig),
            str(fragment),
        ],
        make_command(arch, toolchain, tree, build_dir, ["olddefconfig"], 1),
    ]
    for step in steps:
        result = run_logged(step, log_path, cwd=build_dir, env=env)
        if result.returncode != 0:
            trouble = host_trouble(result.output, build_dir)
            if trouble is not None:
                raise trouble
            raise InfraError(
                f"config step failed: {step[0]} (exit {result.returncode}); see {log_path}",
                log=log_path,
                excerpt=result.output[-2000:],
            )
    final = dotconfig.read_bytes()
    if previous == final and previous_times is not None:
        os.utime(dotconfig, previous_times)
    dropped = verify(merged, parse_dotconfig(final.decode(errors="replace")), index)
    if dropped:
        raise ConfigError(
            dropped[0].describe(),
            log=log_path,
            excerpt="\n".join(item.describe() for item in dropped),
        )
    return config_hash(dotconfig)


def build(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    jobs: int,
    log_path: Path,
    ccache_dir: Path,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> BuildOutputs:
    started = time.monotonic()
    # Niced: a guest booting beside this build (the overlapped matrix) keeps
    # its speed, so its timeouts hold; alone, the build runs as fast as ever.
    command = ["nice", "-n", str(BUILD_NICENESS)]
    command += make_command(arch, toolchain, tree, build_dir, [arch.image_target], jobs)
    env = make_env(ccache_dir)
    result = run_logged(command, log_path, cwd=build_dir, env=env, timeout=timeout, on_line=on_line)
    if result.timed_out:
        # The host (or the limit) was too slow: nothing says the kernel is broken.
        raise InfraError(
            f"build timed out after {timeout:.0f} s (--build-timeout); see {log_path}",
            log=log_path,
            excerpt=result.output[-2000:],
        )
    if result.returncode != 0:
        trouble = host_trouble(result.output, build_dir)
        if trouble is not None:
            raise trouble
        errors = first_errors(result.output)
        headline = errors.splitlines()[0] if errors else f"make exited {result.returncode}"
        raise BuildError(f"build failed: {headline}; see {log_path}", log=log_path, excerpt=errors)
    image = build_dir / arch.image_path
    if not image.is_file():
        raise BuildError(f"build finished but {image} is missing; see {log_path}", log=log_path)
    dotconfig = build_dir / ".config"
    return BuildOutputs(
        image=image,
        vmlinux=build_dir / "vmlinux",
        system_map=build_dir / "System.map",
        config=dotconfig,
        config_hash=config_hash(dotconfig),
        seconds=time.monotonic() - started,
    )
