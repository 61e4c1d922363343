"""Small dnf repositories the tests make from RPMs they built."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path


def make_repo(directory: Path, rpms: Iterable[Path], comps: Path | None = None) -> Path:
    """A dnf repository of ``rpms`` (copied), with ``comps`` groups or none, made by createrepo_c."""
    directory.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, directory)
    if comps is not None:
        shutil.copy(comps, directory / "comps.xml")
    subprocess.run(["createrepo_c", "-q", *(["-g", "comps.xml"] if comps else []), str(directory)], check=True)
    return directory
