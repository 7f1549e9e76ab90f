"""The fake kernel's kbuild: configure targets, objects, `.s` files and images.

It prints paths relative to the build dir, as ccache's base_dir makes gcc do.
A C file fails to compile at a line starting with `#error` (`#error-ARCH`:
only for that ARCH) and, under W=1, warns at a line holding `w1-warning: TEXT`.
A line `#enospc` fails its compile as a full disk does; a line `#slow N`
makes it take N seconds.
Every C file outside scripts/ is part of the build, so a build writes an
object for each.
"""

import os
import sys
import time
from pathlib import Path

TREE = Path(__file__).resolve().parent.parent
IMAGES = {"bzImage": "arch/x86/boot/bzImage", "Image": "arch/arm64/boot/Image"}


def compile_c(source: Path, output: Path, arch: str, extra_warnings: bool) -> bool:
    compiled = True
    shown = os.path.relpath(source, Path.cwd())
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if line.startswith("#slow "):
            time.sleep(float(line.split()[1]))
        if line.startswith("#enospc"):
            print(
                f"{shown}:{number}: fatal error: cannot write {output.name}: "
                "No space left on device"
            )
            compiled = False
        elif line.startswith("#error ") or line.startswith(f"#error-{arch} "):
            print(f"{shown}:{number}:2: error: {line}")
            compiled = False
        elif extra_warnings and "w1-warning:" in line:
            text = line.split("w1-warning:", 1)[1].strip()
            print(f"{shown}:{number}:5: warning: {text} [-Wfake]")
    if compiled:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(source.read_text())
    return compiled


def main(build: Path, arch: str, w: str, target: str) -> int:
    build.mkdir(parents=True, exist_ok=True)
    os.chdir(build)  # kbuild runs the compiler in the build dir
    if target == "tinyconfig":
        (build / ".config").write_text("# fake tinyconfig\n")
        return 0
    if target == "olddefconfig":
        return 0
    if target.endswith((".o", ".s")):
        source = TREE / Path(target).with_suffix(".c")
        return 0 if compile_c(source, build / target, arch, w == "1") else 2
    if target in IMAGES:
        sources = [s for s in sorted(TREE.rglob("*.c")) if not s.is_relative_to(TREE / "scripts")]
        results = [
            compile_c(s, (build / s.relative_to(TREE)).with_suffix(".o"), arch, w == "1")
            for s in sources
        ]
        if not all(results):
            print("make[2]: *** [scripts/Makefile.build:229: fake] Error 1")
            return 2
        image = build / IMAGES[target]
        image.parent.mkdir(parents=True, exist_ok=True)
        image.write_text("fake kernel\n")
        return 0
    print(f"make: *** No rule to make target '{target}'.  Stop.")
    return 2


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), *sys.argv[2:5]))
