"""The kernel's own seccomp selftests (seccomp_bpf), built static per arch, as an oracle.

The binary comes from the tree under test, compiled against that tree's
uapi headers (`make headers` in the cell's build dir) and the target
arch's static libcap, taken from Debian's libcap-dev without emulation.
Its TAP output is parsed into results of its own suite.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from harness.arches import ArchSpec
from harness.build import make_command, make_env
from harness.errors import InfraError
from harness.initramfs import MIRROR, SUITE
from harness.process import run_logged
from harness.records import TestResult
from harness.workdir import scratch_prefix

SOURCE = Path("tools/testing/selftests/seccomp/seccomp_bpf.c")
SUITE_NAME = "seccomp_bpf"
_TAP_RESULT = re.compile(
    r"^(?P<not>not )?ok (?P<number>\d+) (?P<name>[^#]*?)\s*"
    r"(?:#\s*(?P<directive>SKIP|XFAIL|TODO)\b\s*(?P<reason>.*))?$"
)


def sysroot_key(arch: ArchSpec) -> str:
    recipe = f"1 {arch.debian_arch} {SUITE} {MIRROR} libcap-dev"
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def build_sysroot(arch: ArchSpec, cache_dir: Path, log_path: Path) -> Path:
    """A private include/ and lib/ with the target arch's static libcap."""
    destination = cache_dir / f"sysroot-{arch.name}-{sysroot_key(arch)}"
    if (destination / "lib" / "libcap.a").is_file():
        return destination
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=scratch_prefix("sysroot")) as scratch:
        root = Path(scratch) / "root"
        command = [
            "mmdebstrap", "--variant=extract", f"--architectures={arch.debian_arch}",
            "--include=libcap-dev", SUITE, str(root), MIRROR,
        ]  # fmt: skip
        if run_logged(command, log_path, timeout=900).returncode != 0:
            raise InfraError(f"mmdebstrap libcap-dev:{arch.debian_arch} failed; see {log_path}")
        staged = Path(scratch) / "sysroot"
        (staged / "include" / "sys").mkdir(parents=True)
        (staged / "lib").mkdir()
        shutil.copy2(root / "usr/include/sys/capability.h", staged / "include/sys/capability.h")
        shutil.copy2(next(root.glob("usr/lib/*/libcap.a")), staged / "lib/libcap.a")
        staged.rename(destination)
    return destination


def build_seccomp_bpf(
    arch: ArchSpec, tree: Path, build_dir: Path, sysroot: Path, log_path: Path, ccache_dir: Path
) -> Path:
    """seccomp_bpf for `arch`, static, rebuilt only when its source or headers changed."""
    env = make_env(ccache_dir)
    headers = make_command(arch, tree, build_dir, ["headers"], 1)
    if run_logged(headers, log_path, env=env).returncode != 0:
        raise InfraError(f"make headers failed for the selftests; see {log_path}", log=log_path)
    output = build_dir / "selftests" / "seccomp_bpf"
    source = tree / SOURCE
    inputs = [source, build_dir / "usr/include/linux/seccomp.h", sysroot / "lib/libcap.a"]
    if output.is_file() and all(p.stat().st_mtime <= output.stat().st_mtime for p in inputs):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial")
    compile_command = [
        f"{arch.compiler_prefix()}gcc", "-static", "-O2", "-Wall", "-Wl,-no-as-needed",
        "-isystem", str(build_dir / "usr/include"), "-I", str(sysroot / "include"),
        str(source), "-o", str(partial), "-L", str(sysroot / "lib"), "-lcap", "-lpthread",
    ]  # fmt: skip
    result = run_logged(compile_command, log_path, cwd=source.parent, env=env)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise InfraError(f"building seccomp_bpf failed; see {log_path}", log=log_path)
    partial.rename(output)
    return output


def parse_tap(text: str) -> tuple[list[TestResult], int | None]:
    """kselftest TAP into results; also the plan's test count (None without a plan)."""
    results: list[TestResult] = []
    planned: int | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if match := re.match(r"^1\.\.(\d+)", line):
            planned = int(match[1])
            continue
        match = _TAP_RESULT.match(line)
        if not match:
            continue
        name = match["name"].strip()
        directive = match["directive"]
        if directive in ("SKIP", "XFAIL", "TODO"):
            outcome, message = "skipped", f"{directive}: {match['reason'].strip()}"
        elif match["not"]:
            outcome, message = "failed", "not ok (see the cell's selftests.tap)"
        else:
            outcome, message = "passed", ""
        results.append(TestResult(f"{SUITE_NAME}::{name}", outcome, 0.0, message))
    return results, planned
