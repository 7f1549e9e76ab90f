"""End to end: `harness bisect` really builds, boots and tests prefixes of the synthetic
series under tests/data/series/ (standalone on the pristine 6.12 tree: see its README)
on x86_64, and finds the culprit in ceil(log2(6)) = 3 steps; then the same over a
small git range made from the pristine tree.

Each bisect runs in its own results dir in the checkout's work dir (the tarball and
ccache are shared); deselect with `-m "not e2e"`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

pytestmark = pytest.mark.e2e

SERIES = ROOT / "tests/data/series"
PATCHES = 6
MOST_STEPS = math.ceil(math.log2(PATCHES))
# The file the series changes: the pristine tree's copy must stay as it was.
CHANGED = "kernel/seccomp.c"
BROKEN = "test_boot_smoke.py::test_prctl_reports_no_seccomp_for_init_children"


def bisect(results: Path, *options: str) -> tuple[int, str, dict[str, Any]]:
    # The broken test's module only, as one bisects a known failure: the whole
    # guest suite would add half a minute to every step.
    command = [sys.executable, "-m", "harness", "bisect", "--arch", "x86_64",
               "--no-selftests", "-k", BROKEN.split("::")[0].removesuffix(".py"),
               "--results", str(results), *options]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=3 * 3600)  # fmt: skip
    sys.stderr.write(done.stderr)
    path = results / "bisect.json"
    assert path.is_file(), done.stderr[-3000:]
    return done.returncode, done.stdout, json.loads(path.read_text())


def test_patch_4_breaking_a_guest_test_is_found_in_log2_steps(tmp_path: Path) -> None:
    code, out, report = bisect(tmp_path / "r", "--series", str(SERIES / "bisect-test-breaks"))
    assert code == 0, out
    assert [step["prefix"] for step in report["steps"]] == [3, 5, 4]
    assert len(report["steps"]) <= MOST_STEPS
    assert report["culprit"]["prefix"] == 4
    assert report["culprit"]["name"].startswith("0004-seccomp-report-the-mode")
    assert report["last_good"]["prefix"] == 3
    bad = report["steps"][-1]
    assert bad["status"] == "test_failed"
    assert [d["test"] for d in bad["departures"]] == [BROKEN]
    assert f"DEPARTS {BROKEN} (passed → failed) — " in out
    assert "assert 1 == 0" in report["evidence"]["failure"], report["evidence"]
    assert f"harness: test-start {BROKEN}" in report["evidence"]["console_first_bad"]
    assert f"harness: test-start {BROKEN}" in report["evidence"]["console_last_good"]
    assert (tmp_path / "r/bisect.md").is_file()


def test_patch_2_that_does_not_build_is_found_in_log2_steps(tmp_path: Path) -> None:
    code, out, report = bisect(tmp_path / "r", "--series", str(SERIES / "bisect-build-breaks"))
    assert code == 0, out
    assert [step["prefix"] for step in report["steps"]] == [3, 1, 2]
    assert report["culprit"]["prefix"] == 2
    bad = report["steps"][-1]
    assert bad["status"] == "build_failed"
    assert "mode_now" in bad["reason"] and "kernel/seccomp.c" in bad["reason"]
    assert "DEPARTS build_failed: " in out


def _pristine_tree() -> Path:
    work = Path(os.environ.get("HARNESS_WORK_DIR", ROOT / ".work"))
    trees = sorted((work / "sources").glob("debian-*/Makefile"))
    assert trees, "no unpacked tree in the work dir: the series tests above unpack it"
    return trees[-1].parent


def test_git_range_finds_the_commit_in_log2_steps(tmp_path: Path) -> None:
    """The test series as commits of a git tree made from the pristine one: the commit
    that breaks the test is found, and the checkout is left as it was."""
    linux = tmp_path / "linux"
    # Hard links, not a copy: a copy of the 1.3 GB tree took this test 2.5 min of its
    # 7.5. The pristine tree stays as it was: git writes every file it changes (am)
    # as a new inode and only reads the rest; the end of this test checks that.
    pristine = _pristine_tree()
    before = (pristine / CHANGED).read_bytes()
    linked = subprocess.run(["cp", "-al", str(pristine), str(linux)], check=False)
    if linked.returncode != 0:  # another filesystem
        shutil.rmtree(linux, ignore_errors=True)
        shutil.copytree(pristine, linux, symlinks=True)
    env = {**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_AUTHOR_NAME": "A U Thor",
           "GIT_AUTHOR_EMAIL": "author@example.invalid", "GIT_COMMITTER_NAME": "A U Thor",
           "GIT_COMMITTER_EMAIL": "author@example.invalid"}  # fmt: skip

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(linux), *args], env=env, check=True,
                              capture_output=True, text=True).stdout  # fmt: skip

    git("init", "-q")
    # Debian's tarball carries a .gitignore that ignores its whole top level. Objects
    # stored uncompressed: zlib over 1.3 GB cost a minute, and the repository is
    # thrown away.
    git("-c", "core.looseCompression=0", "add", "-f", "-A")
    git("commit", "-qm", "pristine 6.12")
    git("tag", "pristine")
    listing = (SERIES / "bisect-test-breaks/series").read_text().splitlines()
    patches = [str(SERIES / "bisect-test-breaks" / name) for name in listing
               if name and not name.startswith("#")]  # fmt: skip
    git("am", "-q", *patches)
    shas = git("rev-list", "--reverse", "pristine..HEAD").split()
    status = git("status", "--porcelain")
    code, out, report = bisect(tmp_path / "r", "--source", str(linux), "--good", "pristine",
                               "--bad", "HEAD")  # fmt: skip
    assert code == 0, out
    assert report["mode"] == "git"
    assert len(report["steps"]) <= MOST_STEPS
    assert report["culprit"]["prefix"] == 4 and report["culprit"]["commit"] == shas[3]
    assert f"({shas[3][:12]}): DEPARTS {BROKEN}" in out
    assert git("status", "--porcelain") == status and git("rev-parse", "HEAD").strip() == shas[-1]
    assert (pristine / CHANGED).read_bytes() == before, "git wrote into the pristine tree"
