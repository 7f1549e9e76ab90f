"""Fixtures, markers, the --repeat option and the PTRACE_SECCOMP probe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seccomplib import probe
from seccomplib.proc import Lab

MARKERS = {
    "ptrace_seccomp": (
        "needs the PTRACE_SECCOMP patch; skipped when the kernel probe says EIO, "
        "an error on any other probe result"
    ),
    "race": "detach/kill/resume test repeated --repeat N times to shake out races",
    "model": "Hypothesis-generated sequences checked against seccomplib.model (--model-examples N)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run each test marked 'race' N times (default 1)",
    )
    parser.addoption(
        "--model-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples Hypothesis generates for test_model.py (default: its small fixed budget)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")


@pytest.fixture
def race_iteration(request: pytest.FixtureRequest) -> int:
    return int(getattr(request, "param", 0))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    count = metafunc.config.getoption("repeat")
    if count > 1 and metafunc.definition.get_closest_marker("race"):
        metafunc.fixturenames.append("race_iteration")
        metafunc.parametrize("race_iteration", range(count), indirect=True, ids=lambda i: f"rep{i}")


# ------------------------------------------------------------ the probe

_verdict: probe.Verdict | None = None  # None until the first test that needs it


def ptrace_seccomp_verdict() -> probe.Verdict:
    """The probe's verdict, asked once per session (a fork and a ptrace)."""
    global _verdict
    if _verdict is None:
        _verdict = probe.classify(probe.probe())
    return _verdict


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Only EIO skips; any other probe result errors every dependent test.
    if item.get_closest_marker("ptrace_seccomp"):
        probe.gate(ptrace_seccomp_verdict())


@pytest.fixture
def lab() -> Iterator[Lab]:
    """Children and pipes of one test; every child is killed and reaped after it."""
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()
