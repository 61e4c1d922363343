"""The store's SQL schema, how a file is recognised as a store, and its migrations.

A store carries a ``control`` table with exactly one record (the koji-adjutant
version that created it and its schema version) and a ``migrations`` table
logging every migration applied. A file without that record, or with a schema
newer than this code knows, is refused rather than guessed at: a downgrade or
a stray SQLite file must never be silently rewritten.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .errors import FOREIGN_FILE_HINT, EnvironmentStoreError
from .timestamps import format_timestamp, utcnow

log = logging.getLogger(__name__)

#: The schema this code reads and writes; the number of MIGRATIONS.
SCHEMA_VERSION = 3

_DAMAGED = "the file is damaged; move it away and koji-adjutant starts a new store"


def _migrate_to_1(conn: sqlite3.Connection) -> None:
    """Schema 1: the environments table."""
    conn.execute("""
        CREATE TABLE environments (
            name TEXT PRIMARY KEY,
            base_image TEXT NOT NULL,
            base_digest TEXT NOT NULL,
            image_id TEXT NOT NULL,
            inputs_hash TEXT NOT NULL,
            inputs TEXT NOT NULL,
            tag TEXT NOT NULL,
            arch TEXT NOT NULL,
            repo_id INTEGER,
            created TEXT NOT NULL,
            last_used TEXT NOT NULL,
            use_count INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            version TEXT NOT NULL
        )""")
    conn.execute("CREATE INDEX environments_inputs_hash ON environments (inputs_hash)")


def _migrate_to_2(conn: sqlite3.Connection) -> None:
    """Schema 2: the resolutions table (which environment an exact SRPM resolved to)."""
    conn.execute("""
        CREATE TABLE resolutions (
            key TEXT PRIMARY KEY,
            environment TEXT NOT NULL,
            last_used TEXT NOT NULL
        )""")


def _migrate_to_3(conn: sqlite3.Connection) -> None:
    """Schema 3: each environment's own size, its base's size and where it came from; the
    package sets of Koji repos, remembered by repo (a Koji repo never changes under its id)."""
    # An environment recorded before schema 3 is counted whole, base included, as it was.
    conn.execute("ALTER TABLE environments ADD COLUMN own_size INTEGER")
    conn.execute("UPDATE environments SET own_size = size")
    conn.execute("ALTER TABLE environments ADD COLUMN base_size INTEGER NOT NULL DEFAULT 0")
    conn.execute("ALTER TABLE environments ADD COLUMN origin TEXT NOT NULL DEFAULT 'built'")
    conn.execute("""
        CREATE TABLE package_sets (
            repo TEXT PRIMARY KEY,
            package_set TEXT NOT NULL,
            recorded TEXT NOT NULL
        )""")


#: MIGRATIONS[i] takes a store from schema i to schema i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_1, _migrate_to_2, _migrate_to_3]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema of the file; None for a new, empty database. Refuses what is not a store."""
    tables = _tables(conn)
    if not tables:
        return None
    if "control" not in tables:
        raise EnvironmentStoreError(
            f"{path} is not a koji-adjutant environment store: it has tables "
            f"({', '.join(sorted(tables))}) but no control table", hint=FOREIGN_FILE_HINT)
    rows = conn.execute("SELECT created_with_version, schema_version FROM control").fetchall()
    if len(rows) != 1:
        raise EnvironmentStoreError(
            f"environment store {path} has {len(rows)} control records, not exactly one", hint=_DAMAGED)
    if "migrations" not in tables:
        raise EnvironmentStoreError(f"environment store {path} has no migrations table", hint=_DAMAGED)
    created_with, schema = rows[0]
    if not isinstance(schema, int) or schema < 0:
        raise EnvironmentStoreError(f"environment store {path} has an invalid schema version {schema!r}",
                                    hint=_DAMAGED)
    if schema > SCHEMA_VERSION:
        raise EnvironmentStoreError(
            f"environment store {path} was created by a newer koji-adjutant "
            f"(schema {schema} > {SCHEMA_VERSION}; file created by koji-adjutant {created_with}, "
            f"this is {__version__})",
            hint="upgrade koji-adjutant, or move the file away to start a new store")
    return schema


def initialise(conn: sqlite3.Connection, path: Path) -> None:
    log.info("creating environment store %s", path)
    conn.execute("""
        CREATE TABLE control (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            created_with_version TEXT NOT NULL,
            schema_version INTEGER NOT NULL
        )""")
    conn.execute("""
        CREATE TABLE migrations (
            schema_version INTEGER NOT NULL,
            timestamp TEXT NOT NULL,
            version TEXT NOT NULL
        )""")
    conn.execute("INSERT INTO control (id, created_with_version, schema_version) VALUES (1, ?, 0)",
                 (__version__,))


def migrate(conn: sqlite3.Connection, path: Path, target: int) -> None:
    migration = MIGRATIONS[target - 1]
    log.info("migrating environment store %s to schema %d (%s)", path, target,
             (migration.__doc__ or migration.__name__).strip())
    migration(conn)
    conn.execute("INSERT INTO migrations (schema_version, timestamp, version) VALUES (?, ?, ?)",
                 (target, format_timestamp(utcnow()), __version__))
    conn.execute("UPDATE control SET schema_version = ?", (target,))


def upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Bring a store to SCHEMA_VERSION inside the caller's write transaction; the version is
    read again there because another process may have upgraded it since the caller looked."""
    current = schema_version(conn, path)
    if current is None:
        initialise(conn, path)
        current = 0
    for target in range(current + 1, SCHEMA_VERSION + 1):
        migrate(conn, path, target)


def enable_wal(conn: sqlite3.Connection, path: Path, timeout_s: float) -> None:
    """WAL lets readers go on while a task writes; switching to it may not wait on the busy
    handler, hence the retries."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    if str(mode).lower() != "wal":
        log.warning("environment store %s is in journal mode %s, not WAL", path, mode)
