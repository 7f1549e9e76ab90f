"""A fault that needs pytest's own end: the panic after the guest said it was done.

test_panic_after_the_session_ends only asks for it; the panic comes here, in
pytest_unconfigure, which runs after every plugin's pytest_sessionfinish, so
after the harness's results plugin has sent the session's end record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PANIC_AT_END = Path("/run/harness-fault-panic-at-end")


def pytest_unconfigure(config: pytest.Config) -> None:
    if PANIC_AT_END.exists():
        Path("/proc/sysrq-trigger").write_text("c")
