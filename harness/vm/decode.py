"""Kernel report excerpts decoded against the cell's own vmlinux."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.core.arches import ArchSpec


def decode_stacktrace(arch: ArchSpec, tree: Path, vmlinux: Path, excerpt: str) -> str | None:
    """The excerpt through the tree's scripts/decode_stacktrace.sh; None if it cannot run.

    Symbols resolve with any vmlinux; file:line needs a kernel built with
    debug info (the debug-info fragment).
    """
    script = tree / "scripts" / "decode_stacktrace.sh"
    if not (script.is_file() and vmlinux.is_file()):
        return None
    env = dict(os.environ, CROSS_COMPILE=arch.compiler_prefix())
    try:
        result = subprocess.run(
            ["bash", str(script), str(vmlinux), str(tree)],
            input=excerpt,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 and result.stdout.strip() else None
