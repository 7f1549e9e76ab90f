from __future__ import annotations

from pathlib import Path

import pytest

from harness.core.errors import BadInput
from harness.kernel import kconfig


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fake_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "linux"
    write(
        tree / "Kconfig",
        'config NET\n\tbool "net"\n\n'
        'config SECCOMP\n\tbool "seccomp"\n\n'
        "config SECCOMP_FILTER\n\tdef_bool y\n\tdepends on SECCOMP && NET\n\n"
        'menuconfig RUNTIME_TESTING_MENU\n\tbool "tests"\n\n'
        "if RUNTIME_TESTING_MENU\n"
        'config LKDTM\n\ttristate "lkdtm"\n\tdepends on DEBUG_FS\n'
        "endif\n",
    )
    write(tree / "arch/x86/Kconfig", 'config DEBUG_FS\n\tbool "debugfs"\n')
    return tree


def test_parses_every_line_form(tmp_path: Path) -> None:
    fragment = write(
        tmp_path / "f.config",
        "# comment\n\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=0x10\n"
        'CONFIG_E="ttyS0 x"\nCONFIG_F=-3\n',
    )
    values = {o.name: o.value for o in kconfig.parse_fragment(fragment)}
    assert values == {"A": "y", "B": "m", "C": "n", "D": "0x10", "E": '"ttyS0 x"', "F": "-3"}


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    fragment = write(tmp_path / "bad.config", "CONFIG_A=y\nCONFIG_B = yes\n")
    with pytest.raises(BadInput, match=r"bad.config:2: malformed line"):
        kconfig.parse_fragment(fragment)


def test_conflicting_fragments_are_rejected_and_command_line_wins(tmp_path: Path) -> None:
    first = write(tmp_path / "a.config", "CONFIG_A=y\n")
    second = write(tmp_path / "b.config", "# CONFIG_A is not set\n")
    with pytest.raises(
        BadInput, match=r"b.config:1: CONFIG_A=n conflicts with y from .*a.config:1"
    ):
        kconfig.merge([first, second])
    merged = kconfig.merge([first], ["CONFIG_A=n", "B=y"])
    assert merged.options["A"].value == "n"
    assert merged.options["B"].origin == "--kconfig-add B=y"
    assert merged.fragment_text() == "# CONFIG_A is not set\nCONFIG_B=y\n"


def test_unknown_symbol_is_refused_before_building(tmp_path: Path, fake_tree: Path) -> None:
    fragment = write(tmp_path / "f.config", "CONFIG_SECOMP=y\n")
    merged = kconfig.merge([fragment])
    with pytest.raises(BadInput, match=r"f.config:1: CONFIG_SECOMP is not a Kconfig symbol"):
        kconfig.check_symbols(merged, kconfig.KconfigIndex(fake_tree))


def test_dropped_option_names_its_unmet_dependency(tmp_path: Path, fake_tree: Path) -> None:
    fragment = write(tmp_path / "f.config", "CONFIG_SECCOMP=y\nCONFIG_SECCOMP_FILTER=y\n")
    merged = kconfig.merge([fragment])
    dotconfig = kconfig.parse_dotconfig("CONFIG_SECCOMP=y\n# CONFIG_NET is not set\n")
    dropped = kconfig.verify(merged, dotconfig, kconfig.KconfigIndex(fake_tree))
    assert [d.option.name for d in dropped] == ["SECCOMP_FILTER"]
    message = dropped[0].describe()
    assert "ended up not set" in message
    assert "depends on SECCOMP && NET (unmet: NET=n)" in message


def test_if_block_condition_counts_as_a_dependency(tmp_path: Path, fake_tree: Path) -> None:
    fragment = write(tmp_path / "f.config", "CONFIG_DEBUG_FS=y\nCONFIG_LKDTM=y\n")
    dotconfig = kconfig.parse_dotconfig("CONFIG_DEBUG_FS=y\n")
    dropped = kconfig.verify(kconfig.merge([fragment]), dotconfig, kconfig.KconfigIndex(fake_tree))
    assert "unmet: RUNTIME_TESTING_MENU=n" in dropped[0].describe()


def test_surviving_options_are_not_reported(tmp_path: Path, fake_tree: Path) -> None:
    fragment = write(tmp_path / "f.config", "CONFIG_SECCOMP=y\n# CONFIG_NET is not set\n")
    dotconfig = kconfig.parse_dotconfig("CONFIG_SECCOMP=y\n")
    assert (
        kconfig.verify(kconfig.merge([fragment]), dotconfig, kconfig.KconfigIndex(fake_tree)) == []
    )


def test_shipped_fragments_parse(data_dir: Path) -> None:
    configs = data_dir.parent.parent / "kernel-configs"
    for fragment in sorted(configs.glob("*.config")):
        assert kconfig.parse_fragment(fragment), fragment
