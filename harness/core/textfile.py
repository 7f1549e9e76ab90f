"""Reading the user's text inputs: UTF-8, or a one-line refusal naming the file and byte."""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import BadInput


def decode(data: bytes, path: Path) -> str:
    """`data`, read from `path`, as UTF-8 text; BadInput names the first bad byte."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BadInput(
            f"{path}: not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} "
            f"(line {line}); save the file as UTF-8"
        ) from None


def read_utf8(path: Path) -> str:
    """The text of `path`; OSError as Path.read_text raises it, BadInput if not UTF-8."""
    return decode(path.read_bytes(), path)
