"""The sane range of numeric inputs: job counts, timeouts and the timeout factor.

The command line (argparse types) and harness.toml check against the same
limits, so a value is refused alike wherever it is given.
"""

from __future__ import annotations

import math
import os

JOBS_PER_CORE = 8  # -j above this many jobs per core only thrashes
MAX_SECONDS = 7 * 24 * 3600.0  # one week: any longer is a typo, not a timeout
MAX_FACTOR = 100.0  # --timeout-factor: the slowest runner is not 100x slower than TCG


def cores() -> int:
    return os.cpu_count() or 1


def max_jobs() -> int:
    return JOBS_PER_CORE * cores()


def jobs_range() -> str:
    return f"give 1 to at most {max_jobs()} ({JOBS_PER_CORE} x the {cores()} cores here)"


def jobs_problem(jobs: int) -> str | None:
    """Why `jobs` is no job count, or None when it is fine."""
    return None if 1 <= jobs <= max_jobs() else f"out of range; {jobs_range()}"


def seconds_problem(value: float) -> str | None:
    """Why `value` is no timeout in seconds, or None when it is fine."""
    if math.isfinite(value) and 0 < value <= MAX_SECONDS:
        return None
    return f"not a timeout; give seconds above 0 and at most {MAX_SECONDS:g} (a week)"


def factor_problem(value: float) -> str | None:
    """Why `value` is no timeout factor, or None when it is fine."""
    if math.isfinite(value) and 0 < value <= MAX_FACTOR:
        return None
    return f"not a timeout factor; give a number above 0 and at most {MAX_FACTOR:g}"
