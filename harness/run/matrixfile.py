"""harness.toml: the matrix a checkout runs by default, in one readable file.

`run`, `build`, `test` and `boot` read it (`--matrix FILE` reads another);
a command-line option overrides the key it corresponds to, and without the
file the built-in defaults apply. `boot` takes everything but `arches` and
`variants` from it: it boots one cell, x86_64 unless --arch says otherwise.
Relative paths are relative to the file's directory. Every key is checked
when the file is read: an unknown key, a wrong type or an unknown arch is
bad input naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import limits
from harness.core.arches import ARCHES
from harness.core.errors import BadInput
from harness.core.kselftests import COLLECTIONS
from harness.core.tomlfile import read_toml
from harness.core.toolchains import TOOLCHAINS
from harness.kernel.kconfig import parse_addition
from harness.results.kcidb import origin_problem
from harness.results.model import VARIANTS
from harness.run.config import DEFAULT_SELFTESTS
from harness.vm.qemu import ACCELS

DEFAULT_NAME = "harness.toml"
TIMEOUT_KEYS = ("boot", "test", "run", "build", "factor")


@dataclass(frozen=True)
class MatrixFile:
    """The file's settings; None (or absent from `timeouts`) where it says nothing."""

    path: Path | None = None
    arches: list[str] | None = None
    variants: list[str] | None = None
    toolchains: list[str] | None = None
    series: Path | None = None
    features: list[str] | None = None
    kconfig_add: list[str] | None = None
    accel: str | None = None
    selftests: list[str] | None = None  # collection names; [] for none
    expectations: Path | None = None
    ktap: bool | None = None
    kcidb: bool | None = None
    kcidb_origin: str | None = None
    timeouts: dict[str, float] = field(default_factory=dict)  # of TIMEOUT_KEYS


NO_MATRIX_FILE = MatrixFile()


class _Reader:
    """Typed values out of the parsed TOML, each error naming the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> BadInput:
        return BadInput(f"{self.path}: {key}: {problem}")

    def strings(self, key: str, value: object, choices: tuple[str, ...] = ()) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(key, f'expected a list of strings, e.g. {key} = ["..."]')
        for item in value:
            if choices and item not in choices:
                raise self.fail(key, f"'{item}' is unknown; choose from {', '.join(choices)}")
        if choices and not value:
            raise self.fail(key, f"empty; name at least one of {', '.join(choices)}")
        return list(value)

    def string(self, key: str, value: object, choices: tuple[str, ...] = ()) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(key, f'expected a non-empty string, e.g. {key} = "..."')
        if choices and value not in choices:
            raise self.fail(key, f"'{value}' is unknown; choose from {', '.join(choices)}")
        return value

    def boolean(self, key: str, value: object) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "expected true or false")
        return value

    def path_value(self, key: str, value: object) -> Path:
        return self.path.parent / self.string(key, value)

    def seconds(self, key: str, value: object) -> float:
        """A timeout in seconds, or the factor: finite, above 0 and within limits.py's caps."""
        if key == "timeouts.factor":
            check, expected = limits.factor_problem, f"up to {limits.MAX_FACTOR:g}"
        else:
            check, expected = limits.seconds_problem, f"of seconds up to {limits.MAX_SECONDS:g}"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or check(float(value)):
            raise self.fail(key, f"expected a positive number {expected}, not {value!r}")
        return float(value)


def _kcidb_origin(reader: _Reader, key: str, value: object) -> str:
    origin = reader.string(key, value)
    problem = origin_problem(origin)
    if problem:
        raise reader.fail(key, f"'{origin}': {problem}")
    return origin


def _selftests(reader: _Reader, key: str, value: object) -> list[str]:
    """A list of selftest collections; `true` (the default list) and `false` (none) as
    harness.toml files from before there were several still say."""
    if isinstance(value, bool):
        return list(DEFAULT_SELFTESTS) if value else []
    if value == []:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise reader.fail(
            key, f'expected a list of collections, e.g. {key} = ["seccomp", "ptrace"] (or false)'
        )
    return list(dict.fromkeys(reader.strings(key, value, tuple(COLLECTIONS))))


def _kconfig_additions(reader: _Reader, key: str, value: object) -> list[str]:
    additions = reader.strings(key, value)
    for addition in additions:
        parse_addition(addition, f"{reader.path}: {key}")
    return additions


# key in the file -> (MatrixFile field, how its value is read)
_KEYS: dict[str, tuple[str, Callable[[_Reader, str, object], object]]] = {
    "arches": ("arches", lambda r, k, v: r.strings(k, v, tuple(ARCHES))),
    "variants": ("variants", lambda r, k, v: r.strings(k, v, VARIANTS)),
    "toolchains": ("toolchains", lambda r, k, v: r.strings(k, v, tuple(TOOLCHAINS))),
    "series": ("series", _Reader.path_value),
    "features": ("features", _Reader.strings),
    "kconfig-add": ("kconfig_add", _kconfig_additions),
    "accel": ("accel", lambda r, k, v: r.string(k, v, ACCELS)),
    "selftests": ("selftests", _selftests),
    "expectations": ("expectations", _Reader.path_value),
    "ktap": ("ktap", _Reader.boolean),
    "kcidb": ("kcidb", _Reader.boolean),
    "kcidb-origin": ("kcidb_origin", _kcidb_origin),
}


def load(path: Path) -> MatrixFile:
    _, data = read_toml(path, "matrix file", "--matrix")
    reader = _Reader(path)
    known = [*_KEYS, "timeouts"]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key == "timeouts":
            values["timeouts"] = _timeouts(reader, value)
        elif key in _KEYS:
            name, read = _KEYS[key]
            values[name] = read(reader, key, value)
        else:
            raise reader.fail(key, f"unknown key; the keys are {', '.join(known)}")
    return MatrixFile(path=path, **values)


def _timeouts(reader: _Reader, table: object) -> dict[str, float]:
    if not isinstance(table, dict):
        raise reader.fail("timeouts", "expected a table: [timeouts] with boot, test, ...")
    timeouts = {}
    for key, value in table.items():
        if key not in TIMEOUT_KEYS:
            raise reader.fail(
                f"timeouts.{key}", f"unknown key; the timeouts are {', '.join(TIMEOUT_KEYS)}"
            )
        timeouts[key] = reader.seconds(f"timeouts.{key}", value)
    return timeouts


def load_default(root: Path) -> MatrixFile:
    """The checkout's harness.toml when there is one, else nothing changes."""
    path = root / DEFAULT_NAME
    return load(path) if path.is_file() else NO_MATRIX_FILE
