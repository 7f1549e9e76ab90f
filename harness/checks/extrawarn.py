"""W=1 compiler warnings of chosen source files, in a form two patch levels can compare.

A warning is its file, function and message without line and column, so a
patch that only moves code adds none; warnings are counted rather than
collected, so a second instance of a warning already there is new too.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.errors import BuildError
from harness.core.process import run_logged
from harness.core.toolchains import Toolchain
from harness.kernel.build import first_errors, make_command, make_env

_DIAGNOSTIC = re.compile(
    r"^(?P<file>[^\s:][^:]*):\d+:(?:\d+:)? (?P<kind>warning|error): (?P<message>.+)$"
)
# gcc names the function once before its first diagnostic there: "f.c: In function 'g':".
_CONTEXT = re.compile(r"^(?P<file>[^\s:][^:]*): (?:In function (?P<function>.+)|At top level):$")


@dataclass(frozen=True, order=True)
class CompilerWarning:
    file: str  # relative to the top of the tree
    message: str  # "warning: no previous prototype for 'f' [-Wmissing-prototypes]"
    function: str = ""  # "'f'" as gcc quotes it; empty at top level

    def describe(self) -> str:
        where = f" (in {self.function})" if self.function else ""
        return f"{self.file}: {self.message}{where}"


def tree_relative(path: str, tree: Path, build_dir: Path) -> str:
    """A path as the compiler printed it, relative to the top of the tree.

    kbuild runs the compiler in the build dir, and ccache's base_dir turns the
    absolute source paths into paths relative to it (../../trees/...), so a
    relative path is taken from there; one outside the tree stays as it is.
    """
    candidate = Path(os.path.normpath(build_dir.resolve() / path))
    for top in (tree, tree.resolve()):
        if candidate.is_relative_to(top):
            return str(candidate.relative_to(top))
    return path.removeprefix("./")


def parse_warnings(output: str, tree: Path, build_dir: Path) -> Counter[CompilerWarning]:
    """Every warning (and error: -Werror turns one into the other) in a compiler's output."""
    found: Counter[CompilerWarning] = Counter()
    functions: dict[str, str] = {}  # file -> the function its next diagnostics are in
    for line in output.splitlines():
        if match := _CONTEXT.match(line.strip()):
            functions[tree_relative(match["file"], tree, build_dir)] = match["function"] or ""
        elif match := _DIAGNOSTIC.match(line.strip()):
            file = tree_relative(match["file"], tree, build_dir)
            message = f"{match['kind']}: {match['message']}"
            found[CompilerWarning(file, message, functions.get(file, ""))] += 1
    return found


def built_sources(tree: Path, build_dir: Path, sources: list[str]) -> list[str]:
    """The C files among `sources` that the last build compiled: those the config builds.

    An object older than its source is left over from another state of the
    tree (reset_tree gives every file the series touches a fresh mtime), so
    it does not count.
    """
    built = []
    for source in sources:
        path, obj = tree / source, (build_dir / source).with_suffix(".o")
        if not (source.endswith(".c") and path.is_file() and obj.is_file()):
            continue
        if obj.stat().st_mtime >= path.stat().st_mtime:
            built.append(source)
    return built


def compile_with_extra_warnings(
    arch: ArchSpec,
    toolchain: Toolchain,
    tree: Path,
    build_dir: Path,
    sources: list[str],
    jobs: int,
    log_path: Path,
    ccache_dir: Path,
) -> Counter[CompilerWarning]:
    """Compile `sources` with W=1 and return the warnings the compiler printed.

    The targets are the `.s` files: the same compiler passes, but the objects
    of the normal build stay as they are, so the next incremental build does
    not redo them. The old `.s` files go first, or make would find them up to
    date, compile nothing and print no warning. Parallel compilers write a
    diagnostic in several pieces, so make holds each job's output until it ends.
    """
    if not sources:
        return Counter()
    targets = [str(Path(source).with_suffix(".s")) for source in sources]
    for target in targets:
        (build_dir / target).unlink(missing_ok=True)
    options = ["-k", "--output-sync=target", "W=1"]
    command = make_command(arch, toolchain, tree, build_dir, [*options, *targets], jobs)
    result = run_logged(command, log_path, cwd=build_dir, env=make_env(ccache_dir))
    found = parse_warnings(result.output, tree, build_dir)
    if result.returncode != 0 and not any(w.message.startswith("error:") for w in found):
        errors = first_errors(result.output)
        headline = errors.splitlines()[0] if errors else f"make exited {result.returncode}"
        raise BuildError(f"W=1 compile failed: {headline}; see {log_path}", log=log_path)
    return found
