"""Reading the harness's TOML input files (harness.toml, expectations.toml)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.core.errors import BadInput
from harness.core.textfile import read_utf8


def read_toml(path: Path, what: str, option: str) -> tuple[str, dict[str, Any]]:
    """The text and the top-level table of `path`: an unreadable file or bad TOML
    is a one-line BadInput naming the file, what it is and the option that picks it."""
    try:
        text = read_utf8(path)
    except OSError as error:
        raise BadInput(
            f"{path}: cannot read the {what} ({error.strerror}); give an existing file "
            f"with {option}"
        ) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadInput(f"{path}: not valid TOML ({error}); fix the syntax there") from None
