"""Where a test sits in KCIDB's test tree: its `path`, dot-separated parts of
[A-Za-z0-9_-]+ (the schema's pattern), stable from run to run.

- a guest test: `ptrace_seccomp.<module without test_>.<class>.<function>[.<parameters>]`;
  `test_detach_kill.py::test_detach_at_stop_kills[SIGCHLD]` is
  `ptrace_seccomp.detach_kill.test_detach_at_stop_kills.SIGCHLD`;
- an upstream selftest: `kselftest.<collection>.<binary>.<fixture>.<test>`;
  `seccomp_bpf::global.kcmp` is `kselftest.seccomp.seccomp_bpf.global.kcmp`,
  `ptrace::vmaccess.global.attach` is `kselftest.ptrace.vmaccess.global.attach`,
  a binary that is one case (`ptrace::peeksiginfo`) is `kselftest.ptrace.peeksiginfo`,
  and the series tree's binary run on a baseline kernel
  (`seccomp_bpf::series:global.kcmp`) is `seccomp_bpf_series` there.

A part with other characters (a parameter `1.5`, `a b`, `x/y`) has them
replaced by `_` and 6 hex digits of a hash of the original appended, so two
names never share a path.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

from harness.core.kselftests import collection_of_suite
from harness.kernel.selftest_tap import SERIES_LABEL
from harness.results.model import GUEST_SUITE, TestOutcome

GUEST_ROOT = "ptrace_seccomp"  # the guest tests' node in the test tree
PATH_PART = re.compile(r"[A-Za-z0-9_-]+")
NOT_PATH_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]+")


def path_part(name: str) -> str:
    """`name` as one part of a KCIDB path; any other character makes it `_`, and a hash of
    the original name keeps two names apart."""
    if PATH_PART.fullmatch(name):
        return name
    cleaned = NOT_PATH_CHARACTERS.sub("_", name).strip("_") or "_"
    return f"{cleaned}-{hashlib.sha256(name.encode()).hexdigest()[:6]}"


def test_path(test: TestOutcome) -> str:
    """The test's path: its guest test or upstream selftest node, as the module says."""
    if test.suite == GUEST_SUITE:
        parts = guest_path_parts(test.nodeid)
    else:
        parts = selftest_path_parts(test.suite, test.nodeid)
    return ".".join(path_part(part) for part in parts)


def guest_path_parts(nodeid: str) -> list[str]:
    """`dir/test_x.py::Class::test_y[param]` -> ptrace_seccomp, dir, x, Class, test_y, param."""
    module, _, inner = nodeid.partition("::")
    module_path = PurePosixPath(module)
    parts = [GUEST_ROOT, *module_path.parent.parts, module_path.stem.removeprefix("test_")]
    names = inner.split("::") if inner else []
    if names and names[-1].endswith("]") and "[" in names[-1]:
        function, _, parameters = names[-1][:-1].partition("[")
        names[-1:] = [function, parameters]
    return [*parts, *names]


def selftest_path_parts(suite: str, nodeid: str) -> list[str]:
    """`<suite>::[series:][binary.]fixture.test` -> kselftest, <collection>,
    <binary>[_series], fixture, test; the binary is the suite's own name for a suite
    named after its one binary (seccomp_bpf)."""
    case = nodeid.removeprefix(f"{suite}::")
    series = case.startswith(SERIES_LABEL)
    case = case.removeprefix(SERIES_LABEL)
    collection = collection_of_suite(suite)
    if collection is None or collection.plain_cases:
        binary, names = suite, case.split(".")
    else:
        binary, *names = case.split(".")
    if series:
        # The series tree's binary, run on a baseline kernel: a test tree node of its own,
        # so its cases never share a path with the baseline tree's.
        binary = f"{binary}_series"
    name = collection.name if collection is not None else suite
    return ["kselftest", name, binary, *names]
