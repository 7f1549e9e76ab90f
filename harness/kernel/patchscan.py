"""What a patch file names and whether it changes anything, read before any tree is touched.

GNU patch is trusted with the hunks, not with the file names: a name is
normalised here (the strip level applied, `.` dropped) and refused when it is
absolute or climbs with `..`, whichever header gives it (`---`, `+++`,
`diff --git`, `rename from/to`, `copy from/to`); a symlink the patch creates
must point inside the tree, and against a real tree (check_tree) no name may
pass through a symlink that leaves it, nor rewrite a symlink as a regular file.

A patch must change something: one with no diff in it (an empty file, a cover
letter) or whose every hunk puts back the lines it takes out is refused, as
the "patched" cell would otherwise be the baseline under another name.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path

_HUNK = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+\d+(?:,(?P<new>\d+))? @@")
_QUOTED = r'"(?:[^"\\]|\\.)*"'
_GIT_NAMES = re.compile(rf"^(?P<a>{_QUOTED}|\S+) (?P<b>{_QUOTED}|\S+)$")
_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}
_SYMLINK_MODE = re.compile(r"^(?:new file|deleted file|old|new) mode 120000$|^index \S+ 120000$")
_CHANGE_HEADERS = (
    "new file mode ",
    "deleted file mode ",
    "old mode ",
    "new mode ",
    "rename from ",
    "copy from ",
    "GIT binary patch",
    "Binary files ",
)
DEV_NULL = "/dev/null"


def unquote(name: str) -> str:
    """A file name as git writes it: C-quoted when it holds unusual bytes."""
    if len(name) < 2 or not (name.startswith('"') and name.endswith('"')):
        return name
    body, out, index = name[1:-1], bytearray(), 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            following = body[index + 1]
            octal = re.match(r"[0-7]{3}", body[index + 1 :])
            if octal:
                out.append(int(octal.group(), 8) & 0xFF)
                index += 4
                continue
            out.append(_ESCAPES.get(following, ord(following)))
            index += 2
            continue
        out.extend(char.encode())
        index += 1
    return out.decode(errors="replace")


@dataclass(frozen=True)
class NamedPath:
    header: str  # "+++", "---", "diff --git", "rename to", ...
    raw: str  # as the patch writes it, unquoted
    path: str  # relative to the tree once normalised; "" when refused (see problem)
    problem: str = ""  # why the name is refused, when it is
    symlink: bool = False  # the diff says this is a symlink (mode 120000)

    def describe(self) -> str:
        return f"{self.header} {self.raw}"


@dataclass
class PatchScan:
    paths: list[NamedPath] = field(default_factory=list)
    diffs: int = 0  # file diffs found
    changes: bool = False  # some diff changes content, mode or names
    symlink_targets: list[tuple[str, str]] = field(default_factory=list)  # (link, target)


def normalise(raw: str, strip: int) -> tuple[str, str]:
    """(tree-relative path, problem): `strip` leading components off, then checked."""
    if raw.startswith("/"):
        return "", "an absolute path"
    parts = raw.split("/")
    rest = parts[strip:] if strip else parts
    if strip and len(parts) <= strip:
        return "", f"fewer than {strip + 1} path components for -p{strip}"
    if rest and rest[0] == "":
        return "", "an absolute path once the prefix is stripped"
    kept = [part for part in rest if part not in ("", ".")]
    if ".." in kept:
        return "", "'..' leads outside the tree"
    if not kept:
        return "", "names no file"
    return "/".join(kept), ""


class _Scanner:
    def __init__(self, strip: int) -> None:
        self.strip = strip
        self.scan = PatchScan()
        self.block: list[int] = []  # indexes in scan.paths of the current git diff's names
        self.symlink_block = False
        self.git_open = False  # a diff --git line whose ---/+++ lines may follow

    def name(self, header: str, raw: str, strip: int | None = None) -> None:
        raw = unquote(raw)
        if raw == DEV_NULL:
            return
        path, problem = normalise(raw, self.strip if strip is None else strip)
        self.block.append(len(self.scan.paths))
        self.scan.paths.append(NamedPath(header, raw, path, problem, self.symlink_block))

    def mark_symlink(self) -> None:
        self.symlink_block = True
        for index in self.block:
            named = self.scan.paths[index]
            self.scan.paths[index] = NamedPath(
                named.header, named.raw, named.path, named.problem, True
            )

    def git_header(self, rest: str) -> None:
        self.scan.diffs += 1
        self.block, self.symlink_block, self.git_open = [], False, True
        same = re.fullmatch(r"a/(?P<x>.+) b/(?P=x)", rest)
        if same:
            self.name("diff --git", f"a/{same['x']}")
            self.name("diff --git", f"b/{same['x']}")
        elif match := _GIT_NAMES.match(rest):
            self.name("diff --git", match["a"])
            self.name("diff --git", match["b"])
        else:  # names with spaces: every word must pass on its own
            for word in rest.split():
                self.name("diff --git", word)

    def hunk(self, lines: list[str], start: int, old: int, new: int) -> int:
        """Read one hunk's body from lines[start]; note whether it changes anything."""
        before: list[str] = []
        after: list[str] = []
        last = ""
        index = start
        while index < len(lines) and (old > 0 or new > 0 or lines[index].startswith("\\")):
            line = lines[index]
            kind, text = (line[:1] or " "), line[1:]
            if kind == " " and old > 0 and new > 0:
                before.append(text)
                after.append(text)
                old, new = old - 1, new - 1
            elif kind == "-" and old > 0:
                before.append(text)
                old -= 1
            elif kind == "+" and new > 0:
                after.append(text)
                new -= 1
            elif kind == "\\":  # "\ No newline at end of file": of the line before
                for side, mark in ((before, "-"), (after, "+")):
                    if last in (" ", mark):
                        side.append("\\")
            else:
                break
            last = kind
            index += 1
        if before != after:
            self.scan.changes = True
        if self.symlink_block and after:
            link = next((self.scan.paths[i].path for i in reversed(self.block)), "")
            self.scan.symlink_targets.append((link, after[0]))
        return index


def scan_patch(text: str, strip: int) -> PatchScan:
    scanner = _Scanner(strip)
    scan = scanner.scan
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if line.startswith("diff --git "):
            scanner.git_header(line[len("diff --git ") :])
        elif line.startswith("--- ") and index < len(lines) and lines[index].startswith("+++ "):
            if not scanner.git_open:  # a plain diff: a file diff of its own
                scanner.block, scanner.symlink_block = [], False
                scan.diffs += 1
            scanner.git_open = False
            scanner.name("---", _header_name(line[4:]))
            scanner.name("+++", _header_name(lines[index][4:]))
            index += 1
        elif match := _HUNK.match(line):
            old = 1 if match["old"] is None else int(match["old"])
            new = 1 if match["new"] is None else int(match["new"])
            index = scanner.hunk(lines, index, old, new)
        elif not scanner.git_open:  # the extended headers below belong to a diff --git
            pass
        elif line.startswith(("rename from ", "rename to ", "copy from ", "copy to ")):
            word, side, name = line.split(" ", 2)
            scanner.name(f"{word} {side}", name, strip=0)  # git writes no a/ b/ prefix here
        if scanner.git_open and _SYMLINK_MODE.match(line):
            scanner.mark_symlink()
        if scanner.git_open and line.startswith(_CHANGE_HEADERS):
            scan.changes = True
    return scan


def _header_name(rest: str) -> str:
    """The name of a ---/+++ line: a quoted name, else up to the first blank (then a date)."""
    rest = rest.strip()
    if rest.startswith('"') and (match := re.match(_QUOTED, rest)):
        return match.group()
    return rest.split(maxsplit=1)[0] if rest else ""


def static_problems(patch_name: str, scan: PatchScan) -> list[str]:
    """What is wrong with a patch on its own, one line each, the patch named."""
    problems = [
        f"{patch_name}: {named.describe()}: {named.problem}; a patch may only name files "
        "inside the tree"
        for named in scan.paths
        if named.problem
    ]
    for link, target in scan.symlink_targets:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(link), target))
        if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
            problems.append(
                f"{patch_name}: {link}: a symlink to {target}, outside the tree; "
                "a patch may only link inside the tree"
            )
    if problems:
        return problems
    if scan.diffs == 0:
        return [f"{patch_name}: no diff in it; a series entry must change the tree"]
    if not scan.changes:
        return [
            f"{patch_name}: changes nothing (every hunk puts back the lines it removes); "
            "a series entry must change the tree"
        ]
    return []


def tree_problems(patch_name: str, scan: PatchScan, tree: Path) -> list[str]:
    """Names that pass through a symlink of `tree` out of it, or rewrite a symlink as a file."""
    root = tree.resolve()
    problems = []
    for named in scan.paths:
        if named.problem:
            continue
        parts = named.path.split("/")
        for depth in range(1, len(parts) + 1):
            here = tree.joinpath(*parts[:depth])
            if not here.is_symlink():
                continue
            target = here.resolve()
            final = depth == len(parts)
            if not target.is_relative_to(root):
                problems.append(
                    f"{patch_name}: {named.describe()}: goes through the symlink "
                    f"{'/'.join(parts[:depth])} -> {target}, outside the tree"
                )
                break
            if final and not named.symlink:
                problems.append(
                    f"{patch_name}: {named.describe()}: is a symlink in the tree and GNU "
                    "patch would replace it by a regular file; give the diff mode 120000"
                )
    return problems
