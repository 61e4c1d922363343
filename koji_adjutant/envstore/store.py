"""One user's store of cached environments: the records, the per-environment locks and
cleaning, behind one object that task processes and the env commands share.

The store lives in a directory of the worker's own user (no root), beside the
lock directory, and is safe to use from many processes at once (database.py,
locking.py). Where that directory is comes from the configuration only
(settings.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..container.interface import ImageInfo
from . import cleanup
from .database import BUSY_TIMEOUT_MS, Database
from .errors import EnvironmentStoreError
from .locking import EnvironmentLocks
from .names import LABEL_ENVIRONMENT, LABEL_STORE, check_name
from .records import Environment, Records

log = logging.getLogger(__name__)

STORE_FILENAME = "environments.sqlite"


class EnvironmentStore(Records):
    """The records of this user's cached environments, safe to use from many processes."""

    def __init__(self, path: Path | str, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.state_dir = self.path.parent
        self.locks = EnvironmentLocks(self.state_dir / "locks")
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentStoreError(f"cannot create the state directory {self.state_dir}: {exc}",
                                        hint="set state_dir in the [adjutant] section to a directory "
                                             "this user can write") from exc
        database = Database(self.path, busy_timeout_ms)
        database.open()
        super().__init__(database)

    def __repr__(self) -> str:
        return f"EnvironmentStore({str(self.path)!r})"

    @property
    def lock_dir(self) -> Path:
        return self.locks.lock_dir

    @property
    def identity(self) -> str:
        """A short, stable name of this store's file. It labels the store's images, so that an image
        the store never recorded can still be found as its own (see unrecorded_images)."""
        return hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]

    def image_labels(self, name: str) -> dict[str, str]:
        """The labels the image of environment ``name`` is committed with."""
        check_name(name)
        return {LABEL_ENVIRONMENT: name, LABEL_STORE: self.identity}

    def lock_path(self, name: str) -> Path:
        return self.locks.path(name)

    @contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the inter-process lock of environment ``name`` (locking.EnvironmentLocks.hold)."""
        with self.locks.hold(name, timeout):
            yield

    def eviction_candidates(self, max_total_bytes: int | None, max_age_days: float | None,
                            now: datetime | None = None) -> list[Environment]:
        """cleanup.select_evictions over the current records."""
        return cleanup.select_evictions(self.list(), max_total_bytes, max_age_days, now)

    def clean(self, manager, names: Iterable[str], dry_run: bool = False,
              lock_timeout: float | None = 30.0) -> list[Environment]:
        """cleanup.clean on this store."""
        return cleanup.clean(self, manager, names, dry_run, lock_timeout)

    def unrecorded_images(self, manager) -> list[ImageInfo]:
        """cleanup.unrecorded_images of this store."""
        return cleanup.unrecorded_images(self, manager)

    def clean_unrecorded(self, manager, lock_timeout: float | None = 30.0) -> list[ImageInfo]:
        """cleanup.clean_unrecorded on this store."""
        return cleanup.clean_unrecorded(self, manager, lock_timeout)
