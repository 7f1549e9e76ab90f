"""The closed sets a cell, a guest and a test result are named by: Variant, Accel, Outcome.

Both are string enums so that JSON, JUnit and the expectations file carry
their plain values; inside the harness they are compared as members, never as
string literals.
"""

from __future__ import annotations

import enum

from harness.core.errors import BadInput


class Variant(enum.StrEnum):
    BASELINE = "baseline"  # the source tree as it is
    PATCHED = "patched"  # the series applied


class Accel(enum.StrEnum):
    """How QEMU runs a guest; AUTO is a request only, never what a guest ran under."""

    AUTO = "auto"  # KVM where it works on this host, else TCG
    KVM = "kvm"
    TCG = "tcg"


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"  # the test could not run to a verdict (a fixture, a lost guest)
    SKIPPED = "skipped"

    @property
    def failing(self) -> bool:
        return self in (Outcome.FAILED, Outcome.ERROR)

    @classmethod
    def parse(cls, text: object) -> Outcome:
        """A recorded outcome; anything unknown counts as an error, never as a pass."""
        try:
            return cls(str(text))
        except ValueError:
            return cls.ERROR


def parse_variant(text: str, option: str = "--variant") -> Variant:
    """A variant named on the command line or in a file; bad input names the option."""
    try:
        return Variant(text)
    except ValueError:
        choices = ", ".join(Variant)
        raise BadInput(f"{option} {text}: unknown; choose from {choices}") from None
