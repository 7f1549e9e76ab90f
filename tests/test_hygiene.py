"""checkpatch's output and sign-offs, on recorded output and on our own series."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checks.hygiene import parse_checkpatch, read_signoff
from harness.kernel.series import parse_series

ROOT = Path(__file__).resolve().parent.parent


def test_checkpatch_counts_and_issues_with_their_places(data_dir: Path) -> None:
    result = parse_checkpatch((data_dir / "checkpatch-strict-issues.txt").read_text())
    assert result is not None
    assert (result.errors, result.warnings, result.checks) == (2, 1, 1)
    assert result.counts() == "2/1/1" and not result.clean
    assert result.issues == (
        "ERROR:TRAILING_WHITESPACE: trailing whitespace (kernel/ptrace.c:2)",
        'CHECK:COMPARISON_TO_NULL: Comparison to NULL could be written "!p" (kernel/ptrace.c:5)',
        "WARNING:PRINTK_WITHOUT_KERN_LEVEL: printk() should include KERN_<LEVEL> facility level"
        " (kernel/ptrace.c:6)",
        "ERROR:MISSING_SIGN_OFF: Missing Signed-off-by: line(s)",
    )


def test_clean_checkpatch_output_and_one_without_a_total() -> None:
    clean = parse_checkpatch(
        "total: 0 errors, 0 warnings, 0 checks, 75 lines checked\n\n"
        "x.patch has no obvious style problems and is ready for submission.\n"
    )
    assert clean is not None and clean.clean and clean.issues == ()
    assert parse_checkpatch("Can't locate Term/ANSIColor.pm in @INC\n") is None


def test_our_series_is_signed_off_by_its_author() -> None:
    series = parse_series(ROOT / "patches" / "ptrace-seccomp")
    for patch in series.patches:
        signoff = read_signoff(patch.path.read_text())
        # The From: header is folded onto a second line in these patches.
        assert signoff.author_email == "maintainers@users.noreply.r-seed-462b0fb0.example"
        assert signoff.problem() is None, patch.name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("From: A <a@x.org>\nSubject: x\n\nBody.\n---\ndiff --git a/f b/f\n", "no Signed-off-by"),
        (
            "From: A <a@x.org>\nSubject: x\n\nSigned-off-by: B <b@x.org>\n---\n",
            "no Signed-off-by from its author a@x.org",
        ),
        ("From: A <A@X.org>\nSubject: x\n\nsigned-off-by: A <a@x.org>\n---\n", None),
        # A bare quilt patch names no author: any sign-off will do.
        ("Fix it.\n\nSigned-off-by: B <b@x.org>\n\n--- a/f\n+++ b/f\n", None),
        # A Signed-off-by inside the diff is code, not a sign-off.
        ("Fix it.\n\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-x\n+Signed-off-by: C <c@x.org>\n",
         "no Signed-off-by"),
    ],
)  # fmt: skip
def test_sign_off_problems(text: str, problem: str | None) -> None:
    assert read_signoff(text).problem() == problem
