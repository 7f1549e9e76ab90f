"""Work the guest's Python would do at every boot, done once on the host instead:
byte-compiling the guest tests' helper modules, and pytest's assertion
rewriting of the test modules, by the guest's own pytest.

Under TCG, parsing and rewriting the test modules took seconds of every
guest run before the first test. The host runs an interpreter of the
guest's Python version (marshalled code is version-specific), with the
guest's pytest (its version is in the file name pytest looks for, and its
rewriting is what the guest would have done) taken from the guest
userspace archive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.core.errors import InfraError
from harness.core.workdir import scratch_prefix
from harness.vm.cpio import extract

PYTHON_VERSION = "3.11"  # Debian 12's, the guest's
DIST_PACKAGES = "usr/lib/python3/dist-packages/"  # where the guest's pytest lives
SCRATCH_KIND = "pytest"


def host_python() -> str:
    """An interpreter of the guest's Python version."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == PYTHON_VERSION:
        return sys.executable
    found = shutil.which(f"python{PYTHON_VERSION}")
    if not found:
        raise InfraError(
            f"python{PYTHON_VERSION} not found: it byte-compiles the guest's Python; "
            "run 'apt-get install python3' (Debian 12)"
        )
    return found


def byte_compile(staged: Path, guest_path: str) -> None:
    """Byte-code for the helper modules under `staged`, which the guest sees at
    `guest_path`. unchecked-hash: trusted as is, whatever mtimes the archive
    carries. A module that does not compile gets no byte-code: the guest reports
    its error. Test modules and conftest are pytest's: see rewrite_tests."""
    skipped = r"(^|/)(test_[^/]*|conftest)\.py$"
    command = [host_python(), "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash"]
    command += ["-s", str(staged), "-p", guest_path, "-x", skipped, str(staged)]
    subprocess.run(command, capture_output=True, check=False)


def guest_pytest(base_archive: Path, key: str) -> Path:
    """The guest's dist-packages (pytest and what it imports), taken once out of
    the guest userspace archive of recipe `key` and kept beside it."""
    destination = base_archive.parent / f"pytest-{key}"
    if destination.is_dir():
        return destination
    scratch = Path(tempfile.mkdtemp(dir=base_archive.parent, prefix=scratch_prefix(SCRATCH_KIND)))
    try:
        extract(base_archive, DIST_PACKAGES, scratch)
        scratch.rename(destination)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return destination


# Run by the host's interpreter with the guest's dist-packages first on its
# path: rewrite each test module and conftest as the guest's pytest would,
# named by its path in the guest, and write the pyc where that pytest looks.
_REWRITE = """
import ast, os, sys
from pathlib import Path
from _pytest.assertion.rewrite import PYC_TAIL, _write_pyc, rewrite_asserts

class State:
    def trace(self, message):
        pass

staged, guest_root = Path(sys.argv[1]), sys.argv[2]
for source in sorted([*staged.rglob("test_*.py"), *staged.rglob("conftest.py")]):
    guest_name = guest_root + "/" + source.relative_to(staged).as_posix()
    text = source.read_bytes()
    try:
        tree = ast.parse(text, filename=guest_name)
        rewrite_asserts(tree, text, guest_name, None)
        code = compile(tree, guest_name, "exec", dont_inherit=True)
    except SyntaxError:
        continue  # the guest's pytest reports it
    cache = source.parent / "__pycache__"
    cache.mkdir(exist_ok=True)
    _write_pyc(State(), code, os.stat(source), cache / (source.name[:-3] + PYC_TAIL))
"""


def rewrite_tests(staged: Path, guest_root: str, pytest_dir: Path) -> bool:
    """pytest's rewritten byte-code for the test modules under `staged` (the guest
    sees them under `guest_root`); False when it could not be made, and the
    guest's pytest rewrites them itself."""
    env = {**os.environ, "PYTHONPATH": str(pytest_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    command = [host_python(), "-c", _REWRITE, str(staged), guest_root]
    return subprocess.run(command, capture_output=True, env=env, check=False).returncode == 0
