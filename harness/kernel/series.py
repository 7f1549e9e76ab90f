"""Patch series in quilt format: `series` lists patch files, one per line.

Blank lines and `#` comments are ignored; a line may carry a `-pN` strip level
after the file name, as quilt allows. The cover letter stays out of `series`.
Every listed patch must name only files inside the tree and change something
(see patchscan.py); otherwise the series is refused before any work starts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import BadInput
from harness.core.textfile import read_utf8
from harness.kernel.patchscan import PatchScan, scan_patch, static_problems, tree_problems

_DIFF_TARGET = re.compile(r"^\+\+\+ (?P<path>\S+)")
_SAFE_NAME = re.compile(r"[A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Patch:
    path: Path
    strip: int = 1

    @property
    def name(self) -> str:
        return self.path.name

    def scan(self) -> PatchScan:
        return scan_patch(self.path.read_text(errors="replace"), self.strip)

    def check_tree(self, tree: Path) -> None:
        """BadInput when a name passes through a symlink of `tree` out of it (see patchscan)."""
        problems = tree_problems(str(self.path), self.scan(), tree)
        if problems:
            raise BadInput(problems[0])

    def touched_files(self) -> list[str]:
        """Paths (relative to the tree) that this patch creates or modifies."""
        files: list[str] = []
        for line in self.path.read_text(errors="replace").splitlines():
            match = _DIFF_TARGET.match(line)
            if not match or match["path"] == "/dev/null":
                continue
            path = "/".join(match["path"].split("/")[self.strip :])
            if path not in files:
                files.append(path)
        return files


@dataclass(frozen=True)
class Series:
    name: str
    directory: Path
    patches: tuple[Patch, ...]

    @property
    def dir_name(self) -> str:
        """The name of the series' tree and build dirs: its own name when that is plain
        ASCII, else a slug of it and a hash of the whole name, since kbuild refuses spaces
        and colons in its paths (and a name only unlike another in them stays apart)."""
        if _SAFE_NAME.fullmatch(self.name) and not self.name.startswith("."):
            return self.name
        slug = "-".join(_SAFE_NAME.findall(self.name)).strip(".-")[:40] or "series"
        return f"{slug}-{hashlib.sha256(self.name.encode()).hexdigest()[:8]}"

    def content_hash(self) -> str:
        """sha256 over the ordered patch contents: the series' identity."""
        digest = hashlib.sha256()
        for patch in self.patches:
            digest.update(patch.name.encode() + b"\0")
            digest.update(patch.path.read_bytes())
            digest.update(b"\0")
        return digest.hexdigest()

    def check_tree(self, tree: Path) -> None:
        """Every patch against the pristine `tree`, before any copy of it is patched."""
        for patch in self.patches:
            patch.check_tree(tree)

    def touched_files(self) -> list[str]:
        files: list[str] = []
        for patch in self.patches:
            files.extend(f for f in patch.touched_files() if f not in files)
        return files


def parse_series(directory: Path) -> Series:
    """Read `directory/series`, checking every listed patch before any work starts."""
    series_file = directory / "series"
    if not series_file.is_file():
        raise BadInput(f"{series_file}: no series file; list the patches there, one per line")
    root = directory.resolve()
    patches: list[Patch] = []
    for lineno, raw in enumerate(read_utf8(series_file).splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        strip = 1
        for option in fields[1:]:
            if re.fullmatch(r"-p\d+", option):
                strip = int(option[2:])
            else:
                raise BadInput(
                    f"{series_file}:{lineno}: unknown option {option!r}; only -pN is supported"
                )
        candidate = (directory / fields[0]).resolve()
        if not candidate.is_relative_to(root):
            raise BadInput(
                f"{series_file}:{lineno}: {fields[0]} escapes {directory}; "
                "keep patches inside the series directory"
            )
        if not candidate.is_file():
            raise BadInput(
                f"{series_file}:{lineno}: patch {fields[0]} does not exist; "
                "add it or remove the line"
            )
        patch = Patch(candidate, strip)
        problems = static_problems(str(directory / fields[0]), patch.scan())
        if problems:
            raise BadInput(problems[0])
        patches.append(patch)
    if not patches:
        raise BadInput(f"{series_file}: lists no patches; add at least one patch file")
    return Series(name=directory.name, directory=directory, patches=tuple(patches))
