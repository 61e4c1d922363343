"""The host side of one build: a private directory with the rendered setup and the input.

Workspaces live under one work root, mode 0700, so no other user of the host
reads a build's input. The subdirectories containers mount are readable by
all, because inside a container the build user is a subordinate id of the
worker, not the worker; they are reached only through the mount, never
through the private root. A workspace holds a lock while in use, so ``sweep``
(at a worker's start) removes exactly the ones a killed worker left behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from pathlib import Path

from ..config import default_state_dir
from ..errors import ConfigError
from .render import render
from .spec import BuildrootSpec

log = logging.getLogger(__name__)

_PREFIX = "build-"
_LOCK = ".in-use"


def default_work_root() -> Path:
    return default_state_dir() / "work"


def private_root(root: Path) -> Path:
    """``root`` made (if needed) and kept private to this user."""
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        root.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"cannot use {root} as the work directory of builds: {exc}",
                          hint="set state_dir in the [adjutant] section to a directory this user owns") from exc
    return root


def readable_by_all(root: Path) -> None:
    for directory, _dirs, files in os.walk(root):
        Path(directory).chmod(Path(directory).stat().st_mode | 0o555)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)


def sweep(root: Path) -> list[Path]:
    """Remove the workspaces under ``root`` that no live process holds; the ones removed."""
    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        if not entry.name.startswith(_PREFIX) or not entry.is_dir() or entry.is_symlink():
            continue
        try:
            fd = os.open(entry / _LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None  # made but never locked: its maker died at once
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            if fd is not None:
                os.close(fd)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    if removed:
        log.info("removed %d work directories left by builds that did not end", len(removed))
    return removed


class Workspace:
    """One build's directory: ``setup`` (rendered files) and ``input`` (an SRPM, or a source tree)."""

    def __init__(self, root: Path, spec: BuildrootSpec, source: Path):
        self.root = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=private_root(root)))
        self._lock = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.setup = self.shared_dir("setup")
        self.input = self.shared_dir("input")
        for rendered in render(spec):
            path = self.setup / rendered.name
            path.write_text(rendered.content)
            path.chmod(rendered.mode)
        #: the input SRPM; None when the input is a source tree
        self.srpm: Path | None = None
        if source.is_dir():
            shutil.copytree(source, self.input, symlinks=True, dirs_exist_ok=True)
            readable_by_all(self.input)
        else:
            self.srpm = self.input / source.name
            shutil.copyfile(source, self.srpm)
            self.srpm.chmod(0o644)

    def shared_dir(self, name: str) -> Path:
        """An empty directory of the workspace that containers may mount and read."""
        path = self.root / name
        path.mkdir(mode=0o755)
        path.chmod(0o755)
        return path

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc_info) -> None:
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
        os.close(self._lock)
