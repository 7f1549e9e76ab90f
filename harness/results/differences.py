"""Which tests' outcomes differ between a baseline and a patched cell of one arch.

One comparison, for summary.json (run/summary.py) and the report alike. The
baseline cell also runs the series tree's selftests; their cases are compared
as the patched tree's (kernel/selftest_tap.py's comparable_outcomes).
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.kernel.selftest_tap import comparable_outcomes

NOT_RUN = "not run"


def differing(baseline: Mapping[str, str], patched: Mapping[str, str]) -> list[dict[str, str]]:
    """[{test, baseline, patched}] for every test whose outcome differs, by node id."""
    before = comparable_outcomes(dict(baseline))
    return [
        {
            "test": nodeid,
            "baseline": before.get(nodeid, NOT_RUN),
            "patched": patched.get(nodeid, NOT_RUN),
        }
        for nodeid in sorted(before.keys() | patched.keys())
        if before.get(nodeid, NOT_RUN) != patched.get(nodeid, NOT_RUN)
    ]
