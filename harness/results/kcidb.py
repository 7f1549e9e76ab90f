"""kcidb.json: a finished run in the KernelCI KCIDB I/O schema (v5.3), for kernel CI databases.

`harness run --kcidb` writes it into the run directory; `harness report --kcidb
RUN_DIR` writes the same file for any run directory, so everything here comes
from the run directory (results/rundir.py), nothing from the work dir.

Objects:
- checkouts, one per variant: `baseline` is the source tree as it is
  (patchset hash ""), `patched` the tree with the series applied (KCIDB's
  patchset hash when summary.json records it; the harness's series hash, which
  also covers the patches' names, goes into misc). `valid` is false when a
  patch did not apply.
- builds, one per cell (arch x toolchain x variant): compiler, the config and build
  stages' seconds, the config hash, the cell's `.config` as an output file
  (and config_url), build.log.
- tests of every cell that booted: `boot`, `kernel_log` (the console held no
  kernel report and the kernel was not tainted), then every guest test and
  upstream selftest with its duration, the cell's QEMU as environment and its
  failure text or skip reason as log excerpt (results/kcidb_tests.py).

Ids are `<origin>:<run key>/<variant>` (checkouts), `.../<cell dir>` such as
`x86_64-patched` or `x86_64-clang-patched` (builds) and `.../<cell dir>/<node id>`
(tests; `boot` and `kernel_log`
are not node ids). The run key is the run id and 8 hex digits of a hash of
what only this run has (its cells' stage timings, the source, the series): CI
names its run directories after the cell (`--results results/x86_64-patched`),
and KCIDB merges objects of one id, so the run id alone would let one
pipeline's results overwrite another's. One run directory always gives the
same ids.

Test paths are KCIDB's dot-separated test tree nodes (results/kcidb_paths.py):
`ptrace_seccomp.<module>.<function>[.<parameters>]` for the guest tests,
`kselftest.<collection>.<binary>.<fixture>.<test>` for the selftests.

Statuses. KCIDB's status says what the run found of the tested code; the
expectations are the harness's own triage, kept in misc (an expected failure
is still FAIL, its reason in misc.expected_failure):

  object      harness                                            KCIDB
  test        passed / failed / error / skipped                  PASS / FAIL / ERROR / SKIP
              (error: a fixture failed, or the guest stopped during the test: no verdict)
  boot        the boot stage passed                              PASS
  boot        failed with boot_timeout or kernel_panic           FAIL  the kernel did not come up
  boot        failed otherwise (QEMU died, another kernel ran)   MISS  the host, not the code
  kernel_log  a kernel report on the console, or a taint         FAIL  in a test or not
  build       config or build stage failed: config_failed,       FAIL  the code or its config
              build_failed
  build       config or build stage failed otherwise (infra:     ERROR did not complete
              a timeout, the host)
  build       built, reused, or built earlier (`harness test`)   PASS
  build       not started: a patch did not apply                 SKIP  the checkout is invalid
  build       not started otherwise (host failure, Ctrl-C)       MISS
  checkout    a patch did not apply (patch_failed)               valid: false
  checkout    its tree was made (and patched)                    valid: true
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from harness.core.jsonfile import write_json
from harness.core.status import Status
from harness.core.vocabulary import Variant
from harness.results.kcidb_tests import cell_tests, excerpt, file_url, present, text
from harness.results.model import Cell, StageResult, StageState
from harness.results.rundir import RunRecord, load_run

KCIDB_NAME = "kcidb.json"
SCHEMA_VERSION = {"major": 5, "minor": 3}  # the newest kcidb-io ships (kcidb_io.schema.LATEST)
ORIGIN = re.compile(r"[a-z0-9_]+")  # the schema's origin pattern
SHA256 = re.compile(r"[0-9a-f]{64}")
ARCHITECTURE = re.compile(r"[a-z0-9_]*")  # the schema's build architecture pattern
# The cell statuses that blame the tested code for a failed build.
CODE_FAULTS_AT_BUILD = (Status.CONFIG_FAILED, Status.BUILD_FAILED)
DONE = (StageState.PASS, StageState.REUSED)  # a stage that has its result


def origin_problem(origin: str) -> str:
    """Why `origin` cannot name a KCIDB origin; "" when it can."""
    if ORIGIN.fullmatch(origin):
        return ""
    return "a KCIDB origin is lower-case letters, digits and '_' only, e.g. my_lab_ci"


def patchset_hash(patches: Iterable[Path]) -> str:
    """KCIDB's patchset hash: sha256 over each patch's sha256 hex and a newline, in order
    (`sha256sum *.patch | cut -c-64 | sha256sum`); "" for no patches."""
    lines = [hashlib.sha256(path.read_bytes()).hexdigest() + "\n" for path in patches]
    return hashlib.sha256("".join(lines).encode()).hexdigest() if lines else ""


def write_kcidb(run_dir: Path, origin: str) -> Path:
    """Write kcidb.json into the run directory (whole, or not at all); its path."""
    path = run_dir / KCIDB_NAME
    write_json(path, kcidb_document(load_run(run_dir), origin))
    return path


def kcidb_document(run: RunRecord, origin: str) -> dict[str, Any]:
    key = run_key(run)
    variants = list(dict.fromkeys(cell.variant for cell in run.cells))
    checkouts = [checkout(run, variant, origin, key) for variant in variants]
    builds = [build(run, cell, origin, key) for cell in run.cells]
    tests = [
        test
        for cell, b in zip(run.cells, builds, strict=True)
        for test in cell_tests(run, cell, origin, b["id"])
    ]
    return {
        "version": dict(SCHEMA_VERSION),
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
    }


def run_key(run: RunRecord) -> str:
    """The run id, and a hash of what only this run has: see the module docstring."""
    identity = {
        "run_id": run.run_id,
        "source": run.summary.get("source"),
        "series": (run.summary.get("series") or {}).get("hash"),
        "cells": [[*_identity(cell), stage_facts(cell, "seconds")] for cell in run.cells],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f"{run.run_id}-{digest[:8]}"


def _identity(cell: Cell) -> list[str]:
    """The cell's key as the run key hashes it: its platform ("x86_64", "x86_64-clang")
    and variant; a gcc cell's is what it was before the toolchain axis."""
    key = cell.key
    return [key.platform.name, str(key.variant)]


# -- checkouts and builds -------------------------------------------------------------------


def checkout(run: RunRecord, variant: Variant, origin: str, key: str) -> dict[str, Any]:
    cells = [cell for cell in run.cells if cell.variant is variant]
    first = cells[0].facts
    source = run.summary.get("source") or {
        "origin": first.get("source"),
        "kernel_version": first.get("kernel_version"),
        "package_version": first.get("package_version"),
    }
    version = f"Linux {source.get('kernel_version') or '?'} ({source.get('origin') or '?'}"
    version += f" {source['package_version']})" if source.get("package_version") else ")"
    misc: dict[str, Any] = {"source": present(dict(source))}
    record: dict[str, Any] = {"id": f"{origin}:{key}/{variant}", "origin": origin}
    if source.get("origin") == "debian-package":
        record["tree_name"] = "debian"  # Debian's linux-source package: Debian's kernel tree
    series = run.summary.get("series") or {}
    if variant is Variant.PATCHED and series:
        patches = list(series.get("patches") or [])
        version += f" + {series.get('name')} ({len(patches)} patches)"
        misc.update(series=series.get("name"), series_hash=series.get("hash"), patches=patches)
        if SHA256.fullmatch(str(series.get("patchset_hash", ""))):
            record["patchset_hash"] = series["patchset_hash"]
    elif variant is not Variant.PATCHED:
        record["patchset_hash"] = ""  # the tree as it is: no patches applied
    record["comment"] = text(version)
    patch_stages = [(cell, cell.stage("patch")) for cell in cells]
    refused = [
        (cell, stage)
        for cell, stage in patch_stages
        if stage.state is StageState.FAIL and cell.status is Status.PATCH_FAILED
    ]
    if refused:
        cell, stage = refused[0]
        record["valid"] = False
        record["log_excerpt"] = stage_excerpt(cell, "patch", stage)
    elif any(stage.state in DONE for _, stage in patch_stages):
        record["valid"] = True  # else unknown: the tree was never made, or the host failed
    record["misc"] = present(misc)
    return record


def build(run: RunRecord, cell: Cell, origin: str, key: str) -> dict[str, Any]:
    facts = cell.facts
    status = build_status(cell)
    record: dict[str, Any] = {
        "id": f"{origin}:{key}/{cell.directory_name}",
        "origin": origin,
        "checkout_id": f"{origin}:{key}/{cell.variant}",
        "status": status,
        "comment": text(f"{cell.name}: {cell.status_label}"),
    }
    if ARCHITECTURE.fullmatch(cell.arch.name):  # always, for an arch the harness knows
        record["architecture"] = cell.arch.name
    if facts.get("compiler"):  # its --version line (a run before the axis: gcc's)
        record["compiler"] = text(str(facts["compiler"]))
    seconds = sum(cell.stage(name).seconds for name in ("config", "build"))
    if seconds > 0:
        record["duration"] = round(seconds, 3)
    cell_dir = run.directory / cell.directory_name
    config_url = file_url(cell_dir / "config")  # the build dir's .config, kept per cell
    if config_url:
        record["config_url"] = config_url
        record["output_files"] = [{"name": ".config", "url": config_url}]
    log_url = file_url(cell_dir / str(cell.files.get("build_log", "build.log")))
    if log_url:
        record["log_url"] = log_url
    failed = [name for name in ("config", "build") if cell.stage(name).state is StageState.FAIL]
    if failed:
        record["log_excerpt"] = stage_excerpt(cell, failed[0], cell.stage(failed[0]))
    record["misc"] = present(
        {
            "cell_status": cell.status_label,
            "reason": cell.reason,
            "config_hash": facts.get("config_hash"),
            "build_key": facts.get("build_key"),
            "stages": {
                name: {"status": status, "seconds": stage_facts(cell, "seconds")[name]}
                for name, status in stage_facts(cell, "status").items()
            },
        }
    )
    return record


def stage_facts(cell: Cell, key: str) -> dict[str, Any]:
    """One fact of every stage of the cell as cell.json has it, e.g. its seconds:
    {stage: value}."""
    return {name: stage.to_json()[key] for name, stage in cell.stages.items()}


def build_status(cell: Cell) -> str:
    """The build's KCIDB status, by the module docstring's table."""
    states = {name: cell.stage(name).state for name in ("patch", "config", "build")}
    if StageState.FAIL in (states["config"], states["build"]):
        return "FAIL" if cell.status in CODE_FAULTS_AT_BUILD else "ERROR"
    if states["build"] in DONE or cell.facts.get("config_hash"):
        return "PASS"  # the config hash: `harness test` booted a kernel built earlier
    if states["patch"] is StageState.FAIL and cell.status is Status.PATCH_FAILED:
        return "SKIP"
    return "MISS"


def stage_excerpt(cell: Cell, name: str, stage: StageResult) -> str:
    """A failed stage's message, then the excerpt it kept (compiler errors, a rejected hunk)."""
    kept = str((cell.facts.get("excerpts") or {}).get(name) or "")
    message = stage.message or f"{name} failed"
    return excerpt("\n".join(part for part in (message, kept) if part))
