"""Inter-process locks, one per environment, so two tasks that need the same
environment build it once and a cleaner never removes one being made."""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EnvironmentLockedError
from .names import check_name

log = logging.getLogger(__name__)


class EnvironmentLocks:
    """flock()ed files ``<lock_dir>/<name>.lock``."""

    def __init__(self, lock_dir: Path):
        self.lock_dir = lock_dir

    def path(self, name: str) -> Path:
        check_name(name)
        return self.lock_dir / f"{name}.lock"

    @contextmanager
    def hold(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Blocks; with ``timeout`` (seconds) raises EnvironmentLockedError when the lock stays
        held that long. Not re-entrant: taking it again in the same process deadlocks; and a
        child forked (without exec) while it is held shares it."""
        path = self.path(name)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                _flock(fd, name, timeout, deadline)
                # A cleaner removes the lock file while holding it; a waiter that got
                # the lock of the removed file starts over on the new one.
                try:
                    current = os.stat(path)
                    held = os.fstat(fd)
                    same = (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino)
                except FileNotFoundError:
                    same = False
            except BaseException:
                os.close(fd)
                raise
            if same:
                break
            os.close(fd)
        try:
            yield
        finally:
            os.close(fd)  # releases the flock

    def discard(self, name: str) -> None:
        """Remove the lock file; only while holding it, so no waiter is left on a lost file."""
        self.path(name).unlink(missing_ok=True)


def _flock(fd: int, name: str, timeout: float | None, deadline: float | None) -> None:
    if deadline is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise EnvironmentLockedError(
                    f"environment {name} is locked by another process (waited {timeout:g} s)") from None
            time.sleep(0.02)
