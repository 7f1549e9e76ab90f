"""JSON (and report) files the harness writes whole or not at all, and reads forgivingly."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def read_json(path: Path) -> dict[str, Any]:
    """The object in `path`; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: object) -> None:
    """Write through a temporary file, so a reader never sees half of it."""
    write_whole(path, json.dumps(data, indent=2))


def write_whole(path: Path, text: str) -> None:
    """Write `text` through a temporary file, so a reader never sees half of it.

    The temporary name is unique: two threads may write the same file.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    partial = Path(name)
    try:
        with os.fdopen(fd, "w") as stream:
            stream.write(text)
        partial.chmod(0o644)  # mkstemp makes it 0600; these files are for everyone
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
