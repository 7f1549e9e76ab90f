"""Series the way kernel developers hold them: an mbox, or a commit range of
a git tree. Both become a quilt directory (patch files + `series`) in the
work dir, so the rest of the harness sees one series model.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import BadInput, InfraError
from harness.core.workdir import scratch_prefix

# mbox separator line, as git format-patch and mailing-list archives write it.
_FROM_LINE = re.compile(r"^From \S+ +\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
_SUBJECT = re.compile(r"^Subject: (?P<subject>.*)$", re.MULTILINE)
_COVER = re.compile(r"\[[^\]]*\b0+/\d+\]")


@dataclass(frozen=True)
class MailPatch:
    subject: str
    text: str

    @property
    def is_cover_letter(self) -> bool:
        return bool(_COVER.search(self.subject)) or "\ndiff --git " not in self.text


def split_mbox(text: str) -> list[MailPatch]:
    """One MailPatch per message, in order; headers folded onto one subject line."""
    messages: list[list[str]] = []
    for line in text.splitlines(keepends=True):
        if _FROM_LINE.match(line.rstrip("\n")):
            messages.append([])
        if messages:
            messages[-1].append(line)
    patches = []
    for lines in messages:
        message = "".join(lines)
        header = message.split("\n\n", 1)[0].replace("\n ", " ")
        match = _SUBJECT.search(header)
        patches.append(MailPatch(match["subject"].strip() if match else "", message))
    return patches


def _slug(subject: str) -> str:
    title = re.sub(r"^\[[^\]]*\]\s*", "", subject)
    return re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:52] or "patch"


def write_quilt(patches: list[MailPatch], destination: Path) -> Path:
    """Patch files and a `series` listing them; cover letters are left out."""
    kept = [patch for patch in patches if not patch.is_cover_letter]
    if not kept:
        raise BadInput(f"{destination.name}: no patch with a diff in it")
    staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=scratch_prefix("series")))
    names = []
    for number, patch in enumerate(kept, start=1):
        name = f"{number:04d}-{_slug(patch.subject)}.patch"
        (staging / name).write_text(patch.text)
        names.append(name)
    (staging / "series").write_text("".join(f"{name}\n" for name in names))
    if destination.exists():
        shutil.rmtree(destination)
    staging.rename(destination)
    return destination


def series_from_mbox(mbox: Path, series_root: Path) -> Path:
    """The quilt directory made from `mbox`, named after it."""
    try:
        text = mbox.read_text(errors="replace")
    except OSError as error:
        raise BadInput(f"--mbox {mbox}: cannot read it ({error.strerror})") from None
    patches = split_mbox(text)
    if not patches:
        raise BadInput(f"--mbox {mbox}: no messages (no 'From <sha> <date>' lines)")
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    series_root.mkdir(parents=True, exist_ok=True)
    return write_quilt(patches, series_root / f"{_slug(mbox.stem)}-{digest}")


def _git(tree: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(tree), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BadInput(f"git {' '.join(args)} in {tree}: {result.stderr.strip()}")
    return result.stdout


def series_from_commits(tree: Path, commits: str, series_root: Path) -> tuple[Path, str]:
    """The quilt directory of `git format-patch BASE..TIP`, and BASE's full sha."""
    if ".." not in commits:
        raise BadInput(f"--commits {commits}: give a range BASE..TIP, e.g. v6.12..mybranch")
    base_name, tip_name = commits.split("..", 1)
    base = _git(tree, "rev-parse", "--verify", f"{base_name}^{{commit}}").strip()
    tip = _git(tree, "rev-parse", "--verify", f"{tip_name or 'HEAD'}^{{commit}}").strip()
    mbox = _git(tree, "format-patch", "--stdout", "--no-signature", f"{base}..{tip}")
    if not mbox.strip():
        raise BadInput(f"--commits {commits}: the range holds no commits")
    series_root.mkdir(parents=True, exist_ok=True)
    destination = series_root / f"commits-{base[:12]}-{tip[:12]}"
    return write_quilt(split_mbox(mbox), destination), base


def export_commit(tree: Path, commit: str, destination: Path) -> Path:
    """The tree at `commit` (git archive), unpacked once; the checkout is not touched."""
    if (destination / "Makefile").exists():
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(
        dir=destination.parent, prefix=scratch_prefix("export")
    ) as scratch:
        archive = subprocess.Popen(
            ["git", "-C", str(tree), "archive", "--format=tar", commit], stdout=subprocess.PIPE
        )
        unpack = subprocess.run(["tar", "-x", "-C", scratch], stdin=archive.stdout, check=False)
        archive.wait()
        if archive.returncode != 0 or unpack.returncode != 0:
            raise InfraError(f"git archive {commit} of {tree} failed")
        Path(scratch).rename(destination)
        Path(scratch).mkdir()  # TemporaryDirectory cleans up a path that exists
    return destination
