"""Typed errors. Lower layers raise these; only the CLI turns them into exit codes."""

from __future__ import annotations

from pathlib import Path

from harness.core.status import Status


class HarnessError(Exception):
    """Base class: a one-line message meant for the user."""


class BadInput(HarnessError):
    """The user's input is wrong; nothing long has started yet (exit 2)."""


class StageFailure(HarnessError):
    """A stage of one cell failed; the cell gets `status`, the run goes on."""

    status: Status = Status.INFRA

    def __init__(self, message: str, log: Path | None = None, excerpt: str = "") -> None:
        super().__init__(message)
        self.log = log
        self.excerpt = excerpt


class InfraError(StageFailure):
    status = Status.INFRA


class ConfigError(StageFailure):
    status = Status.CONFIG_FAILED


class PatchError(StageFailure):
    status = Status.PATCH_FAILED


class BuildError(StageFailure):
    status = Status.BUILD_FAILED


# What a tool prints when the disk it writes to is full (strerror(ENOSPC)).
DISK_FULL = "No space left on device"


def host_trouble(output: str, where: Path) -> InfraError | None:
    """The host's failure, not the kernel's, when a step's output shows one: a full disk."""
    if DISK_FULL in output:
        return InfraError(
            f"disk full while writing under {where} ({DISK_FULL}); free space there and run again"
        )
    return None
