"""Cell and run status: one enum, its exit code and its precedence.

The worst cell decides the exit code of a run, so every status carries a rank.
Earlier stages rank worse because they hide everything after them; an
infrastructure failure ranks worst because it says nothing about the kernel.
"""

from __future__ import annotations

import enum


class Status(enum.Enum):
    # value: (exit code, rank); higher rank is worse.
    PASS = (0, 0)
    HYGIENE_FAILED = (11, 1)  # check-series only: style, sign-off or W=1, not the kernel
    TEST_FAILED = (1, 2)
    KERNEL_WARNING = (8, 3)
    GUEST_HANG = (9, 4)
    KERNEL_PANIC = (7, 5)
    BOOT_TIMEOUT = (6, 6)
    BUILD_FAILED = (5, 7)
    CONFIG_FAILED = (3, 8)
    PATCH_FAILED = (4, 9)  # patching comes before configuring: it hides the config stage
    INFRA = (10, 10)

    @property
    def exit_code(self) -> int:
        return self.value[0]

    @property
    def rank(self) -> int:
        return self.value[1]

    @property
    def label(self) -> str:
        return self.name.lower()

    def outranks(self, other: Status) -> bool:
        """Whether this status replaces `other` as what decides: worse wins, the first of
        equal rank stays. Every record of a failure asks here."""
        return self.rank > other.rank


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def worst(statuses: list[Status]) -> Status:
    """The status that decides a run: the highest rank, PASS when empty."""
    decided = Status.PASS
    for status in statuses:
        if status.outranks(decided):
            decided = status
    return decided


def exit_code_table() -> list[tuple[int, str, str]]:
    """(code, status, meaning) rows, as documented in the README."""
    meanings = {
        Status.PASS: "every cell built, booted and passed its guest tests",
        Status.TEST_FAILED: "a guest test or upstream selftest departed from its expected outcome",
        Status.KERNEL_WARNING: (
            "the kernel printed a report other than a panic (oops, BUG, WARNING, sanitizer, "
            "lockdep, RCU stall, hung task, lockup)"
        ),
        Status.GUEST_HANG: "a guest test hung and the guest was killed",
        Status.KERNEL_PANIC: "the kernel panicked",
        Status.BOOT_TIMEOUT: "the guest never reached userspace",
        Status.BUILD_FAILED: "the kernel did not build",
        Status.PATCH_FAILED: "a patch of the series does not apply",
        Status.CONFIG_FAILED: "a requested config option did not survive olddefconfig",
        Status.INFRA: (
            "the host failed (missing tool, QEMU crash, disk full), or the harness hit a bug "
            "(traceback in `harness-error.txt`)"
        ),
        Status.HYGIENE_FAILED: (
            "check-series: a patch has checkpatch issues, no sign-off or a new W=1 warning"
        ),
    }
    rows = [(s.exit_code, s.label, m) for s, m in meanings.items()]
    rows.append(
        (
            EXIT_BAD_INPUT,
            "bad_input",
            "bad input: nothing was run or left behind (one-line error naming the option, file, "
            "key or hunk, and the fix)",
        )
    )
    rows.append(
        (
            EXIT_INTERRUPTED,
            "interrupted",
            "interrupted by Ctrl-C, SIGTERM or SIGHUP (`summary.json` says `interrupted`, with the "
            "cells decided so far and the records of the rest)",
        )
    )
    return sorted(rows)
