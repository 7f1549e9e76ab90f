"""The binary search of `harness bisect`, pure: which prefix to probe next, and what the
probes so far say.

Prefix k is the tree with patches 1..k applied (0: the base, no patches; n: the whole
series). The search looks for the first prefix that departs, assuming nothing about
either end: it may be none of them (the series behaves, `n + 1`), or the base itself
(`0`: the departure predates the series). So the interval starts as (-1, n + 1), both
ends virtual, and every probe halves it: at most ceil(log2(n + 2)) probes, and a prefix
next to the answer is always one probed (the last good and the first bad are known).

A probe that says nothing (git bisect's `skip`: the host failed, or a commit's config
cannot be met) is left out: the next probe is the untried prefix nearest the middle,
and when only skipped ones are left the answer is a set of candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["good", "bad", "skip"]


@dataclass
class Search:
    last: int  # n: the whole series' prefix
    good: int = -1  # the longest prefix known to behave; -1: none yet
    bad: int = -1  # the shortest known to depart; set to last + 1 (none yet) below
    skipped: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.bad < 0:
            self.bad = self.last + 1

    def untried(self) -> list[int]:
        return [k for k in range(self.good + 1, self.bad) if k not in self.skipped]

    def next_probe(self) -> int | None:
        """The prefix to probe next, None once the answer is known."""
        candidates = self.untried()
        if not candidates:
            return None
        middle = (self.good + self.bad) // 2
        return min(candidates, key=lambda k: (abs(k - middle), k))

    def mark(self, prefix: int, verdict: Verdict) -> None:
        if verdict == "skip":
            self.skipped.add(prefix)
        elif verdict == "good":
            self.good = max(self.good, prefix)
        else:
            self.bad = min(self.bad, prefix)

    def left(self) -> int:
        """Probes still needed at most (skips aside)."""
        positions = len(self.untried()) + 1
        return math.ceil(math.log2(positions)) if positions > 1 else 0

    def candidates(self) -> list[int]:
        """Where the first departing prefix may be: one prefix when the search is done and
        no skip blurs it; `last + 1` stands for "none of them"."""
        return [k for k in range(self.good + 1, self.bad) if k in self.skipped] + [self.bad]
