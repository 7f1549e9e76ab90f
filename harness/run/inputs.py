"""Every input of a run checked before the first long step: bad input exits 2
with nothing started (core/errors.py's BadInput)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from harness.core.arches import ArchSpec
from harness.core.errors import BadInput
from harness.kernel import kconfig, selftests, series_input
from harness.kernel.series import parse_series
from harness.kernel.source import resolve_source
from harness.run.config import Prepared, RunConfig
from harness.run.keys import build_dir_for
from harness.vm import compat


def fragments_for(config: RunConfig, arch: ArchSpec) -> list[Path]:
    """base, the arch's own fragment, then per feature `<feature>.config` and
    `<feature>.<arch>.config`, each where it exists (one of the two must).

    A feature that differs per arch keeps the difference in its per-arch
    file; the merge refuses an option the two files set differently.
    """
    paths = [config.config_dir / f"{name}.config" for name in ("base", arch.name)]
    for path in paths:
        if not path.is_file():
            raise BadInput(f"{path}: no such config fragment; create it or drop the feature")
    for feature in config.features:
        common = config.config_dir / f"{feature}.config"
        per_arch = config.config_dir / f"{feature}.{arch.name}.config"
        found = [path for path in (common, per_arch) if path.is_file()]
        if not found:
            raise BadInput(
                f"{common}: no such config fragment (nor {per_arch.name}); "
                "create it or drop the feature"
            )
        paths += found
    return paths


def check_tools(config: RunConfig) -> None:
    """Missing host tools, named with the Debian package that provides them."""
    needed: list[tuple[str, str]] = [("make", "build-essential"), ("patch", "patch")]
    for arch in config.arches:
        if config.do_build or (config.do_test and config.selftests):
            # The selftests are compiled by gcc for the target, whatever the
            # kernel's toolchain, and even by `harness test`.
            needed.append((f"{arch.compiler_prefix()}gcc", arch.cross_package))
        if config.do_test:
            needed.append((arch.qemu_binary, arch.qemu_package))
        if config.do_test and compat.sources(config.guest_tests):
            needed.append((arch.compat.compiler, " ".join(arch.compat.packages)))
    for platform in config.platforms:
        if config.do_build or (config.do_test and config.selftests):
            needed += platform.toolchain.needed_tools(platform.arch)
    if config.do_test:
        needed.append(("mmdebstrap", "mmdebstrap"))
    # gcc is both the gcc toolchain's compiler and the selftests': look it up once.
    for tool, package in dict.fromkeys(needed):
        if shutil.which(tool) is None:
            raise BadInput(
                f"{tool} not found; install it with 'apt-get install {package}' "
                "(or 'harness doctor --install')"
            )


def series_and_source_dirs(config: RunConfig) -> tuple[Path, Path | None]:
    """The quilt directory to apply, and the pristine tree it applies to.

    An mbox or a git commit range becomes a quilt directory in the work
    dir; a commit range also makes its base commit the pristine tree.
    """
    if config.mbox is not None and config.commits is not None:
        raise BadInput("--mbox and --commits: give one series source, not both")
    series_root = config.work.root / "series"
    if config.mbox is not None:
        return series_input.series_from_mbox(config.mbox, series_root), config.source_dir
    if config.commits is not None:
        if config.source_dir is None:
            raise BadInput("--commits needs --source, the git tree that holds the commits")
        series_dir, base = series_input.series_from_commits(
            config.source_dir.resolve(), config.commits, series_root
        )
        pristine = series_input.export_commit(
            config.source_dir.resolve(), base, config.work.sources / f"git-{base[:12]}"
        )
        return series_dir, pristine
    return config.series_dir, config.source_dir


def prepare(config: RunConfig, announce: Callable[[str], None] = lambda _: None) -> Prepared:
    """Every input checked and the source tree found (unpacked once, `announce`d)."""
    if not config.guest_tests.is_dir() and config.do_test:
        raise BadInput(f"{config.guest_tests}: no guest tests directory")
    series_dir, source_dir = series_and_source_dirs(config)
    # Read even for baseline alone: its cell runs the series tree's selftests too, so a
    # baseline cell gives the same results whichever other cells share its run.
    series = parse_series(series_dir)
    fragments = {arch.name: fragments_for(config, arch) for arch in config.arches}
    for paths in fragments.values():
        kconfig.merge(paths, config.kconfig_add)  # a bad fragment is named before the source
    check_tools(config)  # after the inputs: a bad file is named even on a bare host
    try:
        config.results_dir.mkdir(parents=True, exist_ok=True)
        probe = config.results_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise BadInput(
            f"--results {config.results_dir}: not writable ({error.strerror}); "
            "pass a directory you can write"
        ) from None
    source = resolve_source(config.work.root, source_dir, config.source_tarball, announce)
    if series is not None:
        series.check_tree(source.tree)  # no name through a symlink out of it, before any copy
    # The selftest collections' own config files, from the tree (as make kselftest-merge
    # takes them), between the fragments and --kconfig-add: like a fragment, an option
    # they set differently is refused, and each is verified after olddefconfig.
    patches = series.patches if series is not None else []
    wanted = selftests.config_options(source.tree, patches, config.selftest_configs)
    merged = {
        name: kconfig.merge(paths, config.kconfig_add, wanted) for name, paths in fragments.items()
    }
    index = kconfig.KconfigIndex(source.tree)
    for merged_config in merged.values():
        kconfig.check_symbols(merged_config, index)
    if not config.do_build:
        for platform in config.platforms:
            for variant in config.variants:
                prepared = Prepared(source, series, merged, index)
                built = build_dir_for(config.work, prepared, platform, variant)
                if not (built / platform.arch.image_path).is_file():
                    toolchain = platform.toolchain
                    option = "" if toolchain.is_default else f" --toolchain {toolchain}"
                    raise BadInput(
                        f"{platform}/{variant} is not built yet; run 'harness build "
                        f"--arch {platform.arch.name}{option} --variant {variant}' first"
                    )
    return Prepared(source, series, merged, index)
