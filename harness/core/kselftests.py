"""Everything that differs between the kernel's own selftest collections, as one table.

A collection is a directory tools/testing/selftests/<name> of the tree under
test. The harness builds the binaries its Makefile lists (TEST_GEN_PROGS),
static, for the cell's arch, runs them in the guest after the guest tests and
reads their TAP as one suite of results. Its `config` file, when it has one,
is merged into every cell's config (as `make kselftest-merge` does).

Node ids are `<suite>::<case>`: a collection whose suite is named after its
one binary (seccomp: `seccomp_bpf::global.kcmp`) names its cases plainly, any
other names each case after its binary first (`ptrace::vmaccess.global.attach`).
A binary that prints no TAP result at all is one case named after the binary
(`ptrace::peeksiginfo`), decided by its exit status.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from harness.core.errors import BadInput

SELFTESTS_DIR = PurePosixPath("tools/testing/selftests")
# The kselftest headers every collection's sources include ("../kselftest_harness.h").
COMMON_HEADERS = ("kselftest.h", "kselftest_harness.h")


@dataclass(frozen=True)
class SysrootFile:
    """A file of the target arch's Debian package a collection links or includes."""

    package: str  # Debian package, e.g. "libcap-dev"
    glob: str  # where it lies in the package, e.g. "usr/lib/*/libcap.a"
    destination: str  # where it goes in the sysroot: include/... or lib/...


@dataclass(frozen=True)
class ExcludedCase:
    """A case left out of every run (kselftest_harness's `-T <test>`), and why."""

    binary: str
    test: str  # its TEST() name, e.g. "attach"
    reason: str


@dataclass(frozen=True)
class Collection:
    name: str  # tools/testing/selftests/<name>; how --selftests and harness.toml name it
    suite: str  # its results' suite: the JUnit suite, `[[count]] suite`, the node ids' prefix
    binaries: tuple[str, ...]  # its Makefile's TEST_GEN_PROGS that run, each from <binary>.c
    cflags: tuple[str, ...]  # its Makefile's CFLAGS (the uapi headers' -isystem is added)
    libraries: tuple[str, ...] = ()  # its Makefile's LDLIBS and LDFLAGS, after the source
    sysroot: tuple[SysrootFile, ...] = ()  # target-arch files it builds against
    uapi_headers: tuple[str, ...] = ()  # under usr/include: a change there rebuilds it
    excluded: tuple[ExcludedCase, ...] = ()  # cases no run should spend time on

    def arguments(self, binary: str) -> tuple[str, ...]:
        """The command line `binary` runs with in the guest: its exclusions."""
        return tuple(
            word for case in self.excluded if case.binary == binary for word in ("-T", case.test)
        )

    @property
    def directory(self) -> PurePosixPath:
        return SELFTESTS_DIR / self.name

    @property
    def config(self) -> PurePosixPath:
        """Its config fragment in the tree (it may have none)."""
        return self.directory / "config"

    @property
    def plain_cases(self) -> bool:
        """Whether the suite is named after its one binary, whose cases it names plainly."""
        return self.binaries == (self.suite,)

    def case_prefix(self, binary: str) -> str:
        """What a binary's case names start with within the suite: nothing in a suite
        named after its one binary, else the binary's name and a dot."""
        return "" if self.plain_cases else f"{binary}."


LIBCAP = (
    SysrootFile("libcap-dev", "usr/include/sys/capability.h", "include/sys/capability.h"),
    SysrootFile("libcap-dev", "usr/lib/*/libcap.a", "lib/libcap.a"),
)

COLLECTIONS: dict[str, Collection] = {
    "seccomp": Collection(
        name="seccomp",
        suite="seccomp_bpf",
        # Not seccomp_benchmark: a timing benchmark, slow under TCG, that judges the
        # host's speed more than the kernel.
        binaries=("seccomp_bpf",),
        cflags=("-O2", "-Wall", "-Wl,-no-as-needed"),
        libraries=("-lcap", "-lpthread"),
        sysroot=LIBCAP,
        uapi_headers=("linux/seccomp.h",),
    ),
    "ptrace": Collection(
        name="ptrace",
        suite="ptrace",
        binaries=("get_syscall_info", "peeksiginfo", "vmaccess", "get_set_sud"),
        cflags=("-std=c99", "-pthread", "-Wall"),
        uapi_headers=("linux/ptrace.h",),
        excluded=(
            ExcludedCase(
                "vmaccess",
                "attach",
                "expects EAGAIN from a de_thread/ptrace_attach deadlock fix never merged: "
                "on every 6.12 kernel it blocks until its 30 s alarm and fails",
            ),
        ),
    ),
}

SUITES = tuple(collection.suite for collection in COLLECTIONS.values())


def get_collection(name: str, where: str = "--selftests") -> Collection:
    """The collection `name`; BadInput naming `where` it was given and the known ones."""
    try:
        return COLLECTIONS[name]
    except KeyError:
        known = ", ".join(COLLECTIONS)
        raise BadInput(
            f"{where} {name}: unknown selftest collection; choose from {known}"
        ) from None


def collection_of_suite(suite: str) -> Collection | None:
    """The collection whose results form `suite`; None for the guest tests or a suite
    this harness does not know."""
    return next((c for c in COLLECTIONS.values() if c.suite == suite), None)
