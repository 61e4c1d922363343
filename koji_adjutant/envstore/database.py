"""Connections and transactions of one store file, shared safely by many task processes.

Every operation opens a connection of its own, so nothing is shared across
fork() or threads; writes are one ``BEGIN IMMEDIATE`` transaction each, so two
writers queue on the busy timeout instead of failing when a read lock would be
upgraded. SQLite's errors become EnvironmentStoreError with a hint an
operator can act on.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import schema
from .errors import FOREIGN_FILE_HINT, EnvironmentStoreError

log = logging.getLogger(__name__)

#: How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 30_000


class Database:
    def __init__(self, path: Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = path
        self._busy_timeout_ms = busy_timeout_ms

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc) or "malformed" in str(exc):
                raise EnvironmentStoreError(
                    f"environment store {self.path} is not a usable SQLite database: {exc}",
                    hint=FOREIGN_FILE_HINT) from exc
            raise EnvironmentStoreError(
                f"environment store {self.path}: {exc}",
                hint="another process may hold it for too long; retry, and check the disk") from exc
        except sqlite3.Error as exc:
            raise EnvironmentStoreError(f"environment store {self.path}: {exc}",
                                        hint="check that the file and its directory belong to this user") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        return conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                conn.close()

    def open(self) -> None:
        """Check the file is a store before changing anything, then create or migrate it."""
        with self.reading() as conn:
            current = schema.schema_version(conn, self.path)
            schema.enable_wal(conn, self.path, self._busy_timeout_ms / 1000)
        if current == schema.SCHEMA_VERSION:
            return
        with self.writing() as conn:
            schema.upgrade(conn, self.path)
