"""Host tools: which are missing, and the one apt-get command that installs them."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE_LIST = Path(__file__).parents[1] / "host-packages.txt"


@dataclass(frozen=True)
class Requirement:
    package: str
    provides: str  # a command name, or an absolute path
    why: str

    def present(self) -> bool:
        if self.provides.startswith("/"):
            return Path(self.provides).exists()
        return shutil.which(self.provides) is not None


def read_requirements(path: Path = PACKAGE_LIST) -> list[Requirement]:
    requirements = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        package, provides, *why = line.split()
        requirements.append(Requirement(package, provides, " ".join(why)))
    return requirements


def missing_packages(requirements: list[Requirement]) -> list[str]:
    return sorted({r.package for r in requirements if not r.present()})


def install_command(packages: list[str]) -> list[str]:
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def install(packages: list[str]) -> int:
    """apt-get update + install, as root; returns apt-get's exit status."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = subprocess.run(["apt-get", "update"], env=env, check=False)
    if update.returncode != 0:
        return update.returncode
    return subprocess.run(install_command(packages), env=env, check=False).returncode
