"""The guest's pytest work done on the host: its dist-packages taken out of the
guest userspace archive, and the test modules rewritten by it, named by their
guest paths. A stand-in `_pytest` with pytest 7.2's API (the guest's) plays
the guest's pytest here; the guest run is what shows the real one loads them."""

from __future__ import annotations

import io
import marshal
from pathlib import Path

from harness.vm import guestpython
from harness.vm.cpio import CpioWriter, member_names
from harness.vm.initramfs import write_tests_cpio

# pytest 7.2's names and signatures, doing what it does in outline: a pyc
# named with its tag, holding the code object that rewrite_asserts changed.
STAND_IN_REWRITE = """
import ast, marshal
PYC_TAIL = ".cpython-311-pytest-0.0.pyc"

def rewrite_asserts(mod, source, module_path=None, config=None):
    mod.body.insert(0, ast.parse("REWRITTEN_AS = %r" % module_path).body[0])

def _write_pyc(state, co, source_stat, pyc):
    state.trace("writing")
    pyc.write_bytes(b"\\0" * 16 + marshal.dumps(co))
    return True
"""


def stand_in_pytest(tmp_path: Path) -> Path:
    packages = tmp_path / "dist-packages"
    (packages / "_pytest/assertion").mkdir(parents=True)
    (packages / "_pytest/__init__.py").write_text("")
    (packages / "_pytest/assertion/__init__.py").write_text("")
    (packages / "_pytest/assertion/rewrite.py").write_text(STAND_IN_REWRITE)
    return packages


def guest_tests(tmp_path: Path) -> Path:
    tests = tmp_path / "guest-tests"
    (tests / "helpers").mkdir(parents=True)
    (tests / "test_one.py").write_text("def test_one():\n    assert 1\n")
    (tests / "conftest.py").write_text("X = 1\n")
    (tests / "test_broken.py").write_text("def test_broken(:\n")
    (tests / "helpers/module.py").write_text("Y = 2\n")
    return tests


def code_of(pyc: Path) -> dict[str, object]:
    namespace: dict[str, object] = {}
    exec(marshal.loads(pyc.read_bytes()[16:]), namespace)
    return namespace


def test_test_modules_are_rewritten_under_their_guest_names(tmp_path: Path) -> None:
    tests = guest_tests(tmp_path)
    assert guestpython.rewrite_tests(tests, "/guest-tests", stand_in_pytest(tmp_path))
    tail = ".cpython-311-pytest-0.0.pyc"
    made = sorted(p.name for p in (tests / "__pycache__").iterdir())
    # The broken module gets none (the guest's pytest reports it); helpers are not pytest's.
    assert made == [f"conftest{tail}", f"test_one{tail}"]
    namespace = code_of(tests / f"__pycache__/test_one{tail}")
    assert namespace["REWRITTEN_AS"] == "/guest-tests/test_one.py"
    assert not (tests / "helpers/__pycache__").exists()


def test_the_guests_dist_packages_come_out_of_the_archive_once(tmp_path: Path) -> None:
    stream = io.BytesIO()
    archive = CpioWriter(stream)
    archive.file("usr/lib/python3/dist-packages/_pytest/__init__.py", b"VERSION = 7\n")
    archive.file("usr/lib/python3/dist-packages/pluggy/__init__.py", b"")
    archive.file("usr/lib/python3.11/os.py", b"")
    archive.symlink("usr/lib/python3/dist-packages/link", "/etc/passwd")
    archive.finish()
    base = tmp_path / "base-x86_64-abc.cpio"
    base.write_bytes(stream.getvalue())
    extracted = guestpython.guest_pytest(base, "abc")
    assert extracted == tmp_path / "pytest-abc"
    files = sorted(str(p.relative_to(extracted)) for p in extracted.rglob("*") if p.is_file())
    assert files == ["_pytest/__init__.py", "pluggy/__init__.py"]
    (extracted / "_pytest/__init__.py").write_text("kept")
    assert guestpython.guest_pytest(base, "abc") == extracted
    assert (extracted / "_pytest/__init__.py").read_text() == "kept", "extracted again"
    assert sorted(p.name for p in tmp_path.iterdir()) == [base.name, "pytest-abc"]


def test_the_overlay_carries_the_rewritten_byte_code(tmp_path: Path) -> None:
    tests = guest_tests(tmp_path)
    overlay = tmp_path / "tests.cpio"
    write_tests_cpio(tests, [], overlay, [], stand_in_pytest(tmp_path))
    names = member_names(overlay)
    assert "guest-tests/__pycache__/test_one.cpython-311-pytest-0.0.pyc" in names
    assert not list(tests.rglob("__pycache__")), "the checked-out tests were written to"
