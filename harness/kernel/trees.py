"""Variant trees: the pristine tree plus a patch series, without copying the tree.

Every variant's tree, baseline included, is a hard-link farm of the pristine
one; GNU patch writes each file it changes as a new inode, so the pristine
tree is never modified. A tree is assembled under a temporary name and renamed
into place only when every patch applied, so a failed series leaves no
half-patched tree behind.

Build dirs live inside their tree, as direct children (build_dir_in): kbuild
then names sources by the relative `srctree` "..", so every tree's compile
commands are the same text and one ccache entry serves them all; the patched
cell built after the baseline recompiles only what the series changed. A tree
made again keeps its build dirs (_swap_in moves them across).

`harness check-series` instead patches one link farm in place, one patch at a
time (reset_tree, apply_patch), so that a build dir kept across the prefixes
recompiles only what each patch changed; `harness bisect` also walks it back
(revert_patch).
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import InfraError, PatchError
from harness.core.jsonfile import read_json, write_json
from harness.kernel.series import Patch, Series

STAMP = ".harness-series.json"
BUILD_DIR_PREFIX = "harness-build-"

_FILE_LINE = re.compile(r"^(?:patching|checking) file '?(?P<file>[^']+?)'?$")  # checking: --dry-run
_HUNK_FAILED = re.compile(r"^Hunk #(?P<hunk>\d+) FAILED at (?P<line>\d+)")
_NO_FILE = re.compile(r"can't find file to patch")


@dataclass(frozen=True)
class PatchFailure:
    patch: str
    file: str | None
    hunk: int | None
    line: int | None

    def describe(self) -> str:
        where = self.file or "an unknown file (the patch names a file the tree lacks)"
        if self.hunk is not None:
            return (
                f"{self.patch}: hunk #{self.hunk} of {where} (at line {self.line}) does not apply"
            )
        return f"{self.patch}: {where} does not apply"


def parse_patch_failure(patch_name: str, output: str) -> PatchFailure:
    """Find the first failing file and hunk in GNU patch's output."""
    current: str | None = None
    for line in output.splitlines():
        if match := _FILE_LINE.match(line.strip()):
            current = match["file"]
        elif match := _HUNK_FAILED.match(line.strip()):
            return PatchFailure(patch_name, current, int(match["hunk"]), int(match["line"]))
        elif _NO_FILE.search(line):
            return PatchFailure(patch_name, None, None, None)
    return PatchFailure(patch_name, current, None, None)


def _apply(patch: Patch, tree: Path, *options: str) -> str:
    # Again against this tree: an earlier patch of the series may have made a symlink.
    patch.check_tree(tree)
    command = [
        # --fuzz=0: a hunk applies exactly as `git am` would take it, or not at all.
        "patch",
        f"-p{patch.strip}",
        "--batch",
        "--forward",
        "--fuzz=0",
        "--reject-file=-",
        "--no-backup-if-mismatch",
        *options,
        "-d",
        str(tree),
        "-i",
        str(patch.path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        failure = parse_patch_failure(patch.name, output)
        raise PatchError(failure.describe(), excerpt=output.strip()[-2000:])
    return output


def _refresh(tree: Path, relative: str) -> None:
    """Replace a hard link by a private copy with a fresh mtime.

    A file the previous series changed and this one does not is linked back to
    its pristine inode, whose old mtime would let make keep the stale object.
    """
    path = tree / relative
    if not path.is_file():
        return
    copy = path.with_name(path.name + ".harness-copy")
    shutil.copyfile(path, copy)
    shutil.copymode(path, copy)
    copy.replace(path)  # a new inode written now: a fresh mtime, the pristine file untouched


def _keep_unchanged_mtimes(previous: Path, scratch: Path, touched: list[str]) -> None:
    """Give a re-patched file whose content did not change its old mtime back.

    Re-applying an edited series rewrites every file the series touches;
    without this, editing one patch would rebuild everything that includes
    a header another patch changes.
    """
    for relative in touched:
        old, new = previous / relative, scratch / relative
        if old.is_file() and new.is_file() and filecmp.cmp(old, new, shallow=False):
            kept = old.stat()
            os.utime(new, ns=(kept.st_atime_ns, kept.st_mtime_ns))


def build_dir_in(tree: Path, platform: str, config_digest: str) -> Path:
    """The build dir of `tree` for one platform (arch, or arch-toolchain) and merged
    config: a direct child of the tree, so that kbuild's srctree is ".." (see the
    module's docstring)."""
    return tree / f"{BUILD_DIR_PREFIX}{platform}-{config_digest[:12]}"


def prepare_tree(
    pristine: Path, series: Series | None, destination: Path, source_fingerprint: str = ""
) -> list[str]:
    """Make `destination` the pristine tree with `series` (if any) applied; return
    patch warnings.

    The farm is made again when the series or the pristine tree changed (a
    --source tree's fingerprint): its hard links would keep a file an editor
    replaced, and miss a file added since.
    """
    series_hash = series.content_hash() if series is not None else "no series"
    previous = read_json(destination / STAMP)
    if (previous.get("series_hash"), previous.get("source", "")) == (
        series_hash,
        source_fingerprint,
    ):
        return []
    scratch = _link_farm(pristine, destination)
    try:
        patches = series.patches if series is not None else []
        applied = [_apply(patch, scratch) for patch in patches]
        warnings = [line for output in applied for line in output.splitlines() if "offset" in line]
        touched = series.touched_files() if series is not None else []
        previously_touched = previous.get("touched", [])
        for relative in previously_touched if isinstance(previously_touched, list) else []:
            if relative not in touched:
                _refresh(scratch, str(relative))
        if destination.is_dir():
            _keep_unchanged_mtimes(destination, scratch, touched)
        stamp = {
            "series": series.name if series is not None else None,
            "series_hash": series_hash,
            "touched": touched,
            "source": source_fingerprint,
        }
        write_json(scratch / STAMP, stamp)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _swap_in(scratch, destination)
    return warnings


def _link_farm(pristine: Path, destination: Path) -> Path:
    """A new link farm of `pristine` next to `destination`, under a temporary name.

    A pristine tree on another filesystem (a --source checkout) cannot be
    hard-linked: it is copied instead, which costs seconds, not correctness.
    """
    scratch = destination.with_name(destination.name + ".new")
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    for how in ("-al", "-a"):
        copied = subprocess.run(
            ["cp", how, f"{pristine}/.", str(scratch)], capture_output=True, text=True
        )
        if copied.returncode == 0:
            return scratch
        shutil.rmtree(scratch, ignore_errors=True)
        if "cross-device" not in copied.stderr:
            break
    raise InfraError(f"cannot link {pristine} into {scratch}: {copied.stderr.strip()}")


def _swap_in(scratch: Path, destination: Path) -> None:
    """Put `scratch` where `destination` is, keeping the old tree's build dirs."""
    if destination.exists():
        for kept in destination.glob(BUILD_DIR_PREFIX + "*"):
            if kept.is_dir() and not kept.is_symlink():
                target = scratch / kept.name
                shutil.rmtree(target, ignore_errors=True)  # only a copy from --source
                kept.rename(target)
        retired = destination.with_name(destination.name + ".old")
        shutil.rmtree(retired, ignore_errors=True)
        destination.rename(retired)
        shutil.rmtree(retired, ignore_errors=True)
    scratch.rename(destination)


def reset_tree(pristine: Path, destination: Path, will_touch: list[str]) -> None:
    """Make `destination` a fresh link farm of `pristine`, to be patched in place.

    Every file an earlier use of `destination` patched, and every file the
    coming patches will, gets a private copy with a fresh mtime: a build dir
    that compiled a patched version of it must compile it again, and a hard
    link back to the pristine inode would carry an older mtime than the stale
    object (see _refresh). The stamp remembers those files for the next reset.
    """
    previous = read_json(destination / STAMP).get("touched", [])
    earlier = {str(f) for f in previous} if isinstance(previous, list) else set()
    touched = sorted(earlier | set(will_touch))
    scratch = _link_farm(pristine, destination)
    try:
        for relative in touched:
            _refresh(scratch, relative)
        write_json(scratch / STAMP, {"series": None, "touched": touched})
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _swap_in(scratch, destination)


def apply_patch(patch: Patch, tree: Path) -> None:
    """Apply one patch to `tree` in place, wholly or not at all.

    GNU patch writes the hunks that applied even when another one fails, so a
    dry run decides first; a patch that does not apply leaves the tree as it was.
    """
    _apply(patch, tree, "--dry-run")
    _apply(patch, tree)


def revert_patch(patch: Patch, tree: Path) -> None:
    """Take the last applied patch back off `tree` in place, wholly or not at all (GNU
    patch -R); the files it restores are new inodes with a fresh mtime, so make rebuilds
    what they feed."""
    _apply(patch, tree, "--reverse", "--dry-run")
    _apply(patch, tree, "--reverse")
