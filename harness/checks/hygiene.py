"""Per-patch checks a maintainer makes before reading the code: checkpatch and sign-offs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import InfraError
from harness.core.process import run_logged

CHECKPATCH = Path("scripts/checkpatch.pl")

_TOTAL = re.compile(
    r"^total: (?P<errors>\d+) errors, (?P<warnings>\d+) warnings, "
    r"(?:(?P<checks>\d+) checks, )?\d+ lines checked",
    re.MULTILINE,
)
# With --show-types: "WARNING:LONG_LINE: line length of 105 exceeds 100 columns".
_ISSUE = re.compile(r"^(?P<level>ERROR|WARNING|CHECK):(?:[A-Z0-9_]+:)? ")
_WHERE = re.compile(r"^#\d+: FILE: (?P<where>\S+?):?$")
_SIGNED_OFF = re.compile(r"^\s*signed-off-by:\s*(?P<who>.+?)\s*$", re.IGNORECASE)
_MAIL_START = re.compile(r"^(From |From:|Subject:|Date:)")
_EMAIL = re.compile(r"<(?P<address>[^<>\s]+@[^<>\s]+)>|(?P<bare>[^<>\s]+@[^<>\s]+)")


@dataclass(frozen=True)
class CheckpatchResult:
    errors: int
    warnings: int
    checks: int
    issues: tuple[str, ...]  # "WARNING:TYPE: message (file:line)", in checkpatch's order

    @property
    def clean(self) -> bool:
        return not (self.errors or self.warnings or self.checks)

    def counts(self) -> str:
        """errors/warnings/checks, as the per-patch line shows them."""
        return f"{self.errors}/{self.warnings}/{self.checks}"


def parse_checkpatch(output: str) -> CheckpatchResult | None:
    """Counts and issues from checkpatch's output; None without its `total:` line."""
    total = _TOTAL.search(output)
    if total is None:
        return None
    issues: list[str] = []
    lines = output.splitlines()
    for number, line in enumerate(lines):
        if not _ISSUE.match(line):
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        where = _WHERE.match(following)
        issues.append(f"{line} ({where['where']})" if where else line)
    return CheckpatchResult(
        errors=int(total["errors"]),
        warnings=int(total["warnings"]),
        checks=int(total["checks"] or 0),
        issues=tuple(issues),
    )


def run_checkpatch(tree: Path, patch: Path, log_path: Path) -> CheckpatchResult:
    """`checkpatch.pl --strict` of `tree` on one patch file, run from the top of the tree."""
    command = [
        "perl",
        str(tree / CHECKPATCH),
        "--strict",
        "--show-types",
        "--color=never",
        f"--root={tree}",
        str(patch.resolve()),
    ]
    log_path.unlink(missing_ok=True)
    result = run_logged(command, log_path, cwd=tree)
    parsed = parse_checkpatch(result.output)
    if parsed is None:
        raise InfraError(
            f"checkpatch printed no 'total:' line for {patch.name} (exit {result.returncode}); "
            f"see {log_path}",
            log=log_path,
            excerpt=result.output[-2000:],
        )
    return parsed


@dataclass(frozen=True)
class SignOff:
    signers: tuple[str, ...]  # every Signed-off-by: of the commit message, in order
    author: str | None  # the From: header of a mail-format patch; None for a bare diff

    @property
    def author_email(self) -> str | None:
        return _email(self.author) if self.author else None

    def problem(self) -> str | None:
        """What is missing, or None when the patch is signed off (by its author)."""
        if not self.signers:
            return "no Signed-off-by"
        email = self.author_email
        if email and email not in {_email(signer) for signer in self.signers}:
            return f"no Signed-off-by from its author {email}"
        return None


def _email(person: str) -> str:
    match = _EMAIL.search(person)
    if match is None:
        return person.strip().lower()
    return (match["address"] or match["bare"]).lower()


def read_signoff(text: str) -> SignOff:
    """The sign-offs and author of a patch in `git format-patch` (or plain quilt) form.

    Only the commit message counts: a Signed-off-by line inside the diff is
    code, not a sign-off.
    """
    lines = text.splitlines()
    author: str | None = None
    body_start = 0
    if lines and _MAIL_START.match(lines[0]):
        headers: list[str] = []
        for number, line in enumerate(lines):
            if not line.strip():
                body_start = number + 1
                break
            if line[:1] in (" ", "\t") and headers:
                headers[-1] += " " + line.strip()  # a folded header line
            else:
                headers.append(line)
        author = next((h[5:].strip() for h in headers if h.lower().startswith("from:")), None)
    signers: list[str] = []
    for line in lines[body_start:]:
        if line == "---" or line.startswith(("diff --git ", "--- ", "Index: ")):
            break
        if match := _SIGNED_OFF.match(line):
            signers.append(match["who"])
    return SignOff(tuple(signers), author)
