"""Removing operations from a failing sequence while it still fails the same way.

Hypothesis shrinks the draws a test makes, not the operations they turn into:
test_model.py interprets each drawn move by the model's state, so removing an
early draw changes what every later draw means, and the shrinker can stop in a
local minimum (a fork the failure does not need, kept because without it the
later moves do other things). This pass works on what ran instead: the list of
operations, each replayed as it was, and an operation goes when the sequence
without it still ends at the same disagreement.

Standard library only: the host's tests import it alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Op = TypeVar("Op")
Found = TypeVar("Found")


@dataclass
class Shrunk(Generic[Op, Found]):
    operations: list[Op]
    found: Found  # what the replay of `operations` reported
    replays: int  # how many candidate sequences were replayed
    complete: bool  # False when the time ran out before no removal was left to try


def remove_operations(
    operations: Sequence[Op],
    found: Found,
    replay: Callable[[list[Op]], Found | None],
    seconds: float,
    clock: Callable[[], float] = time.monotonic,
) -> Shrunk[Op, Found]:
    """The shortest sequence reached by removing runs of operations, first
    halves, then quarters... down to single ones (delta debugging's
    complement step), for which `replay` still returns a finding.

    `replay` runs a candidate and returns what it found (None: it did not fail
    the same way). Ends when no single operation can be removed, or after
    `seconds`; `found` is the finding of `operations` as given."""
    deadline = clock() + seconds
    kept = list(operations)
    replays = 0
    chunk = max(len(kept) // 2, 1)
    while True:
        removed_any = False
        start = 0
        while start < len(kept):
            if clock() > deadline:
                return Shrunk(kept, found, replays, complete=False)
            candidate = kept[:start] + kept[start + chunk :]
            result = None
            if candidate:  # an empty sequence fails nothing
                replays += 1
                result = replay(candidate)
            if result is not None:
                kept, found, removed_any = candidate, result, True
            else:
                start += chunk
        if chunk == 1 and not removed_any:
            return Shrunk(kept, found, replays, complete=True)
        chunk = max(chunk // 2, 1)
