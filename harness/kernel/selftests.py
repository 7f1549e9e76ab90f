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
from collections.abc import Sequence
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.errors import BuildError, InfraError, host_trouble
from harness.core.process import run_logged
from harness.core.toolchains import Toolchain
from harness.core.vocabulary import Outcome
from harness.core.workdir import scratch_prefix
from harness.kernel.build import first_errors, make_command, make_env
from harness.kernel.series import Patch
from harness.vm.initramfs import MIRROR, SUITE
from harness.vm.records import TestResult

SOURCE_DIR = Path("tools/testing/selftests/seccomp")
SOURCE = SOURCE_DIR / "seccomp_bpf.c"
SUITE_NAME = "seccomp_bpf"
# The series tree's seccomp_bpf, run on the baseline kernel too (kselftests run
# on kernels older than their tree): its cases are named SUITE_NAME::series:<case>.
SERIES_BINARY = f"{SUITE_NAME}.series"
SERIES_LABEL = "series:"
# The guest's init writes this line into the TAP port before each binary's output.
_BINARY_MARK = re.compile(r"^# harness-selftest: (?P<binary>\S+)$")
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
            "mmdebstrap",
            "--variant=extract",
            f"--architectures={arch.debian_arch}",
            "--include=libcap-dev",
            SUITE,
            str(root),
            MIRROR,
        ]
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
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    sysroot: Path,
    log_path: Path,
    ccache_dir: Path,
    source: Path | None = None,
    name: str = SUITE_NAME,
    from_series: bool = False,
) -> Path:
    """seccomp_bpf for `arch`, static, rebuilt only when its source or headers changed.

    `source` (default: the tree's own) may be a copy of the file outside the tree,
    whose relative includes then resolve through the tree's selftest directory.
    `from_series`: the source is the series' (the patched tree's, or its hunks on
    the pristine file), so a compile error is the series' build failure, not the
    host's."""
    env = make_env(ccache_dir)
    # The headers come from the cell's build dir, made by the cell's compiler
    # (another one there would re-sync its .config); the test itself is built
    # by gcc for every toolchain, so clang and gcc kernels face one oracle.
    headers = make_command(arch, toolchain, tree, build_dir, ["headers"], 1)
    if run_logged(headers, log_path, env=env).returncode != 0:
        raise InfraError(f"make headers failed for the selftests; see {log_path}", log=log_path)
    output = build_dir / "selftests" / name
    source = source or tree / SOURCE
    inputs = [source, build_dir / "usr/include/linux/seccomp.h", sysroot / "lib/libcap.a"]
    if output.is_file() and all(p.stat().st_mtime <= output.stat().st_mtime for p in inputs):
        return output
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f"{name}.partial")
    compile_command = [
        f"{arch.compiler_prefix()}gcc",
        "-static",
        "-O2",
        "-Wall",
        "-Wl,-no-as-needed",
        "-isystem",
        str(build_dir / "usr/include"),
        "-I",
        str(sysroot / "include"),
        "-I",
        str(tree / SOURCE_DIR),
        str(source),
        "-o",
        str(partial),
        "-L",
        str(sysroot / "lib"),
        "-lcap",
        "-lpthread",
    ]
    result = run_logged(compile_command, log_path, cwd=source.parent, env=env)
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        trouble = host_trouble(result.output, output.parent)
        if trouble is not None:
            raise trouble
        errors = first_errors(result.output)
        headline = errors.splitlines()[0] if errors else f"exit {result.returncode}"
        failure = BuildError if from_series else InfraError
        raise failure(
            f"building {name} failed: {headline}; see {log_path}", log=log_path, excerpt=errors
        )
    partial.rename(output)
    return output


def selftest_sections(text: str, strip: int) -> str:
    """The parts of a `git format-patch` patch that change the seccomp selftests."""
    kept: list[str] = []
    keeping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("diff --git "):
            names = line.split()[2:4]
            keeping = any(
                "/".join(name.split("/")[strip:]).startswith(f"{SOURCE_DIR}/") for name in names
            )
        elif line == "-- \n":
            keeping = False  # the signature after the last file
        if keeping:
            kept.append(line)
    return "".join(kept)


def series_source(
    pristine: Path, patches: Sequence[Patch], scratch: Path, log_path: Path
) -> Path | None:
    """seccomp_bpf.c as the series leaves it, under `scratch`, from the pristine tree
    and the series' hunks for the selftest directory; None if the series leaves the
    directory alone. The file keeps its mtime while its content stays the same."""
    sections = [
        (patch, selftest_sections(patch.path.read_text(errors="replace"), patch.strip))
        for patch in patches
    ]
    if not any(text for _, text in sections):
        return None
    target = scratch / SOURCE
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix=".staging-") as staging:
        staged = Path(staging)
        shutil.copytree(pristine / SOURCE_DIR, staged / SOURCE_DIR)
        for number, (patch, text) in enumerate(sections):
            if not text:
                continue
            hunks = staged / f"{number:04d}.patch"
            hunks.write_text(text)
            command = [
                "patch",
                f"-p{patch.strip}",
                "--fuzz=0",
                "-s",
                "-N",
                "-d",
                str(staged),
                "-i",
                str(hunks),
            ]
            if run_logged(command, log_path).returncode != 0:
                raise InfraError(f"{patch.name}: its selftest hunks do not apply; see {log_path}")
        made = (staged / SOURCE).read_bytes()
        if not target.is_file() or target.read_bytes() != made:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(made)
    return target


def _label(binary: str) -> str:
    """How a binary's cases are named within the suite: the cell's own seccomp_bpf
    plainly, the series tree's one as series:<case>."""
    if binary == SUITE_NAME:
        return ""
    if binary == SERIES_BINARY:
        return SERIES_LABEL
    return f"{binary}:"


def parse_tap(text: str) -> tuple[list[TestResult], int | None]:
    """kselftest TAP into results; also the plans' test count (None without a plan).

    The guest marks where each binary's output starts (`# harness-selftest: NAME`);
    output before any mark is the cell's own seccomp_bpf."""
    results: list[TestResult] = []
    planned: int | None = None
    label = ""
    for raw in text.splitlines():
        line = raw.strip()
        if mark := _BINARY_MARK.match(line):
            label = _label(mark["binary"])
            continue
        if match := re.match(r"^1\.\.(\d+)", line):
            planned = (planned or 0) + int(match[1])
            continue
        match = _TAP_RESULT.match(line)
        if not match:
            continue
        name = match["name"].strip()
        directive = match["directive"]
        if directive in ("SKIP", "XFAIL", "TODO"):
            outcome, message = Outcome.SKIPPED, f"{directive}: {match['reason'].strip()}"
        elif match["not"]:
            outcome, message = Outcome.FAILED, "not ok (see the cell's selftests.tap)"
        else:
            outcome, message = Outcome.PASSED, ""
        results.append(TestResult(f"{SUITE_NAME}::{label}{name}", outcome, 0.0, message))
    return results, planned


def is_series_case(nodeid: str) -> bool:
    """Whether a result comes from the series tree's binary (run on a baseline kernel)."""
    return nodeid.startswith(f"{SUITE_NAME}::{SERIES_LABEL}")


def comparable_outcomes(baseline: dict[str, str]) -> dict[str, str]:
    """A baseline cell's outcomes as set beside the patched cell's: where the baseline
    also ran the series tree's seccomp_bpf, that binary's outcome stands for the case
    (the same binary on the other kernel), so only the kernels differ."""
    prefix = f"{SUITE_NAME}::{SERIES_LABEL}"
    outcomes = {n: o for n, o in baseline.items() if not n.startswith(prefix)}
    outcomes.update(
        (f"{SUITE_NAME}::{n.removeprefix(prefix)}", o)
        for n, o in baseline.items()
        if n.startswith(prefix)
    )
    return outcomes
