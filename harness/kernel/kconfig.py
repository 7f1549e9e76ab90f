"""Kconfig fragments as name -> value maps: parse, merge, and verify after olddefconfig.

merge_config.sh and olddefconfig silently drop an option whose dependencies
are unmet; this module checks every requested option against the final
.config and names the dependency that dropped it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.core.errors import BadInput
from harness.core.textfile import read_utf8

_SET = re.compile(r'^CONFIG_(?P<name>[A-Za-z0-9_]+)=(?P<value>y|m|n|-?\d+|0x[0-9a-fA-F]+|".*")$')
_UNSET = re.compile(r"^# CONFIG_(?P<name>[A-Za-z0-9_]+) is not set$")
_CONFIG_DEF = re.compile(r"^\s*(?:menu)?config\s+(?P<name>[A-Za-z0-9_]+)\s*$")
_DEPENDS = re.compile(r"^\s*depends\s+on\s+(?P<expr>.+?)\s*(?:#.*)?$")
_SYMBOL = re.compile(r"\b[A-Z][A-Z0-9_]*\b")


@dataclass(frozen=True)
class Option:
    name: str  # without the CONFIG_ prefix
    value: str  # y, m, n, a number or a quoted string
    origin: str  # file:line or "--kconfig-add"

    def line(self) -> str:
        if self.value == "n":
            return f"# CONFIG_{self.name} is not set"
        return f"CONFIG_{self.name}={self.value}"


def parse_line(text: str, origin: str) -> Option | None:
    """One fragment line: an option, or None for blank lines and comments."""
    line = text.strip()
    if match := _SET.match(line):
        return Option(match["name"], match["value"], origin)
    if match := _UNSET.match(line):
        return Option(match["name"], "n", origin)
    if not line or line.startswith("#"):
        return None
    raise BadInput(
        f"{origin}: malformed line {line!r}; "
        "write CONFIG_NAME=y|m|n|<number>|\"string\" or '# CONFIG_NAME is not set'"
    )


def parse_fragment(path: Path) -> list[Option]:
    try:
        text = read_utf8(path)
    except OSError as error:
        raise BadInput(f"{path}: cannot read config fragment ({error.strerror})") from None
    return parse_text(text, str(path))


def parse_text(text: str, name: str) -> list[Option]:
    """A fragment's text; each option's origin is `name:line`."""
    options = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        option = parse_line(line, f"{name}:{lineno}")
        if option is not None:
            options.append(option)
    return options


def parse_dotconfig(text: str) -> dict[str, str]:
    """name -> value of a .config; unset options map to "n"."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if match := _SET.match(line.strip()):
            values[match["name"]] = match["value"]
        elif match := _UNSET.match(line.strip()):
            values[match["name"]] = "n"
    return values


@dataclass
class MergedConfig:
    options: dict[str, Option] = field(default_factory=dict)

    def add(self, option: Option, override: bool = False) -> None:
        existing = self.options.get(option.name)
        if existing and existing.value != option.value and not override:
            raise BadInput(
                f"{option.origin}: CONFIG_{option.name}={option.value} conflicts with "
                f"{existing.value} from {existing.origin}; make the fragments agree"
            )
        self.options[option.name] = option

    def fragment_text(self) -> str:
        return "".join(option.line() + "\n" for option in self.options.values())

    def digest(self) -> str:
        return hashlib.sha256(self.fragment_text().encode()).hexdigest()


def merge(
    fragments: Iterable[Path], additions: Iterable[str] = (), more: Iterable[Option] = ()
) -> MergedConfig:
    """Merge fragments in order, then `more` options (the selftest collections' own
    config files); conflicts are errors. --kconfig-add entries win."""
    merged = MergedConfig()
    for fragment in fragments:
        for option in parse_fragment(fragment):
            merged.add(option)
    for option in more:
        merged.add(option)
    for addition in additions:
        merged.add(parse_addition(addition, "--kconfig-add"), override=True)
    return merged


def parse_addition(addition: str, origin: str) -> Option:
    """A --kconfig-add entry ("CONFIG_X=y", or "X=y"); `origin` names where it was given."""
    text = addition if addition.startswith(("CONFIG_", "#")) else f"CONFIG_{addition}"
    added = parse_line(text, f"{origin} {addition}")
    if added is None:
        raise BadInput(f"{origin} {addition!r}: expected CONFIG_NAME=VALUE")
    return added


class KconfigIndex:
    """Which symbols the tree's Kconfig files define, and their `depends on` lines."""

    def __init__(self, tree: Path) -> None:
        self.depends: dict[str, list[str]] = {}
        for directory, _dirs, files in os.walk(tree):
            for name in files:
                if name.startswith("Kconfig"):
                    self._scan(Path(directory) / name)

    def _scan(self, path: Path) -> None:
        current: str | None = None
        # Conditions of enclosing `if` blocks and `menu ... depends on` blocks.
        blocks: list[list[str]] = []
        for line in path.read_text(errors="replace").splitlines():
            stripped = line.strip()
            if match := _CONFIG_DEF.match(line):
                current = match["name"]
                inherited = [expr for block in blocks for expr in block]
                self.depends.setdefault(current, []).extend(inherited)
            elif match := _DEPENDS.match(line):
                if current:
                    self.depends[current].append(match["expr"])
                elif blocks:
                    blocks[-1].append(match["expr"])
            elif stripped.startswith("if "):
                blocks.append([stripped[3:].split("#", 1)[0].strip()])
                current = None
            elif stripped.startswith("menu ") or stripped == "menu":
                blocks.append([])
                current = None
            elif stripped in ("endif", "endmenu") or stripped.startswith(("endif ", "endmenu ")):
                if blocks:
                    blocks.pop()
                current = None
            elif line and not line[0].isspace():
                current = None

    def known(self, name: str) -> bool:
        return name in self.depends


def check_symbols(merged: MergedConfig, index: KconfigIndex) -> None:
    """Reject a symbol no Kconfig file defines, before any build starts."""
    for option in merged.options.values():
        if not index.known(option.name):
            raise BadInput(
                f"{option.origin}: CONFIG_{option.name} is not a Kconfig symbol of this tree; "
                "check the spelling or drop it"
            )


@dataclass(frozen=True)
class DroppedOption:
    option: Option
    actual: str
    unmet: list[str]  # dependency expressions, with their unsatisfied symbols

    def describe(self) -> str:
        reason = "; ".join(self.unmet) if self.unmet else "no unmet 'depends on' found"
        shown = "not set" if self.actual == "n" else self.actual
        return (
            f"CONFIG_{self.option.name}={self.option.value} ({self.option.origin}) "
            f"ended up {shown}: {reason}"
        )


def verify(
    merged: MergedConfig, dotconfig: dict[str, str], index: KconfigIndex
) -> list[DroppedOption]:
    """Every requested option as it ended up in .config, and why it did not survive."""
    dropped = []
    for option in merged.options.values():
        actual = dotconfig.get(option.name, "n")
        if actual == option.value:
            continue
        unmet = []
        for expr in index.depends.get(option.name, []):
            missing = [
                f"{symbol}={dotconfig.get(symbol, 'n')}"
                for symbol in _SYMBOL.findall(expr)
                if symbol not in ("y", "m", "n") and dotconfig.get(symbol, "n") in ("n",)
            ]
            if missing:
                unmet.append(f"depends on {expr} (unmet: {', '.join(missing)})")
        dropped.append(DroppedOption(option, actual, unmet))
    return dropped
