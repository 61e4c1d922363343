"""The per-user store of cached buildroot environments (docs/adr/0006-cached-buildroots.md).

A cached environment is a podman image committed from a prepared buildroot,
named after a hash of everything that went into it. This module keeps the
record of each one in an SQLite file of the worker's own user (no root):
``<state_dir>/environments.sqlite``, where state_dir is
``$XDG_DATA_HOME/koji-adjutant`` (or ``~/.local/share/koji-adjutant``).

The layout follows Snapcraft's environment-manager datastore: a ``control``
table with exactly one record (the koji-adjutant version that created the
file and its schema version), a ``migrations`` table logging every schema
migration, and an ``environments`` table. A file without the control record,
or with a schema newer than this code knows, is refused rather than guessed at.

Many task processes use the store at once: it runs in WAL mode with a busy
timeout, every write is one ``BEGIN IMMEDIATE`` transaction on a connection
of its own, and ``lock(name)`` gives an inter-process lock per environment so
two tasks that need the same environment build it once.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from . import __version__
from .container.interface import ImageInfo
from .errors import AdjutantError

log = logging.getLogger(__name__)

#: The schema this code reads and writes; the number of MIGRATIONS.
SCHEMA_VERSION = 2

#: Label on every image of a cached environment, and so on every container made from one.
LABEL_ENVIRONMENT = "io.koji-adjutant.environment"

#: Label on every image of a cached environment: the store that records it (EnvironmentStore.identity).
LABEL_STORE = "io.koji-adjutant.store"

STORE_FILENAME = "environments.sqlite"

#: How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 30_000

_MAX_NAME_LENGTH = 200  # keeps "<name>.lock" and the image reference well inside their limits


class EnvironmentStoreError(AdjutantError):
    """The environment store cannot be used (wrong file, newer schema, broken), or an
    environment's lock could not be taken."""


class EnvironmentLockedError(EnvironmentStoreError):
    """Another process held an environment's lock for longer than the caller would wait."""

    hint = "another task is building or cleaning it; try again later"


# -- time ---------------------------------------------------------------------------

def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds and 'Z': fixed width, so it sorts as text."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


# -- names ----------------------------------------------------------------------------

def default_state_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "koji-adjutant"


def default_store_path() -> Path:
    return default_state_dir() / STORE_FILENAME


_SEPARATOR_RUN = re.compile(r"[^a-z0-9]+")
_VALID_SEPARATOR = re.compile(r"\.|_|__|-+")


def _image_name_component(text: str) -> str:
    """``text`` made a valid image name path component: lower-case alphanumerics
    joined by '.', '_', '__' or dashes; any other run of characters becomes '-'."""
    def fix(match: re.Match) -> str:
        run = match.group(0)
        return run if _VALID_SEPARATOR.fullmatch(run) else "-"
    return _SEPARATOR_RUN.sub(fix, text.lower()).strip("._-")


def environment_name(tag: str, arch: str, inputs_hash: str) -> str:
    """The deterministic name of a cached environment: ``adjutant-<tag>-<arch>-<hash12>``,
    lower-cased, with what an image name cannot hold replaced by '-'."""
    parts = {"tag": tag, "arch": arch, "inputs hash": inputs_hash}
    for what, value in parts.items():
        if not _image_name_component(str(value or "")):
            raise EnvironmentStoreError(f"cannot name an environment: the {what} {value!r} is empty "
                                        "or has no letters or digits")
    hash12 = _image_name_component(inputs_hash)[:12]
    arch = _image_name_component(arch)
    room = _MAX_NAME_LENGTH - len(f"adjutant--{arch}-{hash12}")
    tag = _image_name_component(_image_name_component(tag)[:max(room, 1)])
    return _image_name_component(f"adjutant-{tag}-{arch}-{hash12}")


def image_ref(name: str) -> str:
    """The podman image reference of the environment ``name``."""
    return f"localhost/{name}:latest"


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise EnvironmentStoreError(f"{name!r} is not a valid environment name",
                                    hint="environment names come from environment_name()")


# -- records ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Environment:
    """One cached buildroot environment."""

    name: str
    tag: str
    arch: str
    inputs_hash: str
    base_image: str = ""
    base_digest: str = ""
    image_id: str = ""
    #: Everything the inputs hash was computed from (JSON-serialisable).
    inputs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    repo_id: int | None = None
    created: datetime = field(default_factory=utcnow)
    last_used: datetime | None = None  # None: the same as created
    use_count: int = 0
    size: int = 0  # bytes
    version: str = __version__  # the koji-adjutant that made it

    def __post_init__(self) -> None:
        if self.last_used is None:
            object.__setattr__(self, "last_used", self.created)

    @property
    def image_ref(self) -> str:
        return image_ref(self.name)

    def as_dict(self) -> dict[str, Any]:
        """Every field, timestamps as UTC ISO-8601 text (for display and JSON)."""
        values = dataclasses.asdict(self)
        values["created"] = format_timestamp(self.created)
        values["last_used"] = format_timestamp(self.last_used)
        values["inputs"] = dict(self.inputs)
        return values


_COLUMNS = ("name", "base_image", "base_digest", "image_id", "inputs_hash", "inputs", "tag", "arch",
            "repo_id", "created", "last_used", "use_count", "size", "version")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM environments"


def _to_row(env: Environment) -> tuple:
    return (env.name, env.base_image, env.base_digest, env.image_id, env.inputs_hash,
            json.dumps(dict(env.inputs), sort_keys=True, default=str), env.tag, env.arch, env.repo_id,
            format_timestamp(env.created), format_timestamp(env.last_used), env.use_count, env.size,
            env.version)


def _from_row(row: Sequence) -> Environment:
    values = dict(zip(_COLUMNS, row))
    values["inputs"] = json.loads(values["inputs"] or "{}")
    values["created"] = parse_timestamp(values["created"])
    values["last_used"] = parse_timestamp(values["last_used"])
    return Environment(**values)


def select_evictions(environments: Iterable[Environment], max_total_bytes: int | None,
                     max_age_days: float | None, now: datetime | None = None) -> list[Environment]:
    """Which environments to evict: every one not used for more than ``max_age_days``
    (oldest first), then the least recently used of the rest until what remains
    totals at most ``max_total_bytes``. None disables a limit."""
    now = now or utcnow()
    by_age = sorted(environments, key=lambda env: (env.last_used, env.name))
    evict: list[Environment] = []
    keep: list[Environment] = []
    if max_age_days is not None:
        cutoff = now - timedelta(days=max_age_days)
        for env in by_age:
            (evict if env.last_used < cutoff else keep).append(env)
    else:
        keep = by_age
    if max_total_bytes is not None:
        total = sum(env.size for env in keep)
        for env in keep:
            if total <= max_total_bytes:
                break
            evict.append(env)
            total -= env.size
    return evict


# -- schema -------------------------------------------------------------------------------

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


#: MIGRATIONS[i] takes a store from schema i to schema i + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_to_1, _migrate_to_2]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


# -- the store -----------------------------------------------------------------------------

class EnvironmentStore:
    """The records of this user's cached environments, safe to use from many processes."""

    def __init__(self, path: Path | str | None = None, busy_timeout_ms: int = BUSY_TIMEOUT_MS):
        self.path = Path(path) if path is not None else default_store_path()
        self.state_dir = self.path.parent
        self.lock_dir = self.state_dir / "locks"
        self._busy_timeout_ms = busy_timeout_ms
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentStoreError(f"cannot create the state directory {self.state_dir}: {exc}",
                                        hint="set state_dir in the [adjutant] section to a directory "
                                             "this user can write") from exc
        self._open()

    def __repr__(self) -> str:
        return f"EnvironmentStore({str(self.path)!r})"

    @property
    def identity(self) -> str:
        """A short, stable name of this store's file. It labels the store's images, so that an image
        the store never recorded can still be found as its own (see unrecorded_images)."""
        return hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:16]

    def image_labels(self, name: str) -> dict[str, str]:
        """The labels the image of environment ``name`` is committed with."""
        _check_name(name)
        return {LABEL_ENVIRONMENT: name, LABEL_STORE: self.identity}

    # -- connections and transactions ------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc) or "malformed" in str(exc):
                raise EnvironmentStoreError(
                    f"environment store {self.path} is not a usable SQLite database: {exc}",
                    hint="move the file away (koji-adjutant then starts a new store), "
                         "or use another --store") from exc
            raise EnvironmentStoreError(
                f"environment store {self.path}: {exc}",
                hint="another process may hold it for too long; retry, and check the disk") from exc
        except sqlite3.Error as exc:
            raise EnvironmentStoreError(f"environment store {self.path}: {exc}",
                                        hint="check that the file and its directory belong to this user") from exc

    def _connect(self) -> sqlite3.Connection:
        # A connection per operation: nothing is shared across fork() or threads.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout_ms / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
        return conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so that two
        writers queue on the busy timeout instead of failing on upgrade."""
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

    # -- opening, validation, migration -------------------------------------------------
    def _open(self) -> None:
        with self._reading() as conn:
            current = self._schema_version(conn)  # refuses a foreign file before changing it
            self._enable_wal(conn)
        if current is not None and current == SCHEMA_VERSION:
            return
        with self._writing() as conn:
            current = self._schema_version(conn)  # another process may have got here first
            if current is None:
                self._initialise(conn)
                current = 0
            for target in range(current + 1, SCHEMA_VERSION + 1):
                self._migrate(conn, target)

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        deadline = time.monotonic() + self._busy_timeout_ms / 1000
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:  # switching modes may not wait on the busy handler
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        if str(mode).lower() != "wal":
            log.warning("environment store %s is in journal mode %s, not WAL", self.path, mode)

    def _schema_version(self, conn: sqlite3.Connection) -> int | None:
        """The schema of the file; None for a new, empty database. Refuses what is not a store."""
        tables = _tables(conn)
        if not tables:
            return None
        if "control" not in tables:
            raise EnvironmentStoreError(
                f"{self.path} is not a koji-adjutant environment store: it has tables "
                f"({', '.join(sorted(tables))}) but no control table",
                hint="move the file away (koji-adjutant then starts a new store), or use another --store")
        rows = conn.execute("SELECT created_with_version, schema_version FROM control").fetchall()
        if len(rows) != 1:
            raise EnvironmentStoreError(
                f"environment store {self.path} has {len(rows)} control records, not exactly one",
                hint="the file is damaged; move it away and koji-adjutant starts a new store")
        if "migrations" not in tables:
            raise EnvironmentStoreError(
                f"environment store {self.path} has no migrations table",
                hint="the file is damaged; move it away and koji-adjutant starts a new store")
        created_with, schema = rows[0]
        if not isinstance(schema, int) or schema < 0:
            raise EnvironmentStoreError(
                f"environment store {self.path} has an invalid schema version {schema!r}",
                hint="the file is damaged; move it away and koji-adjutant starts a new store")
        if schema > SCHEMA_VERSION:
            raise EnvironmentStoreError(
                f"environment store {self.path} was created by a newer koji-adjutant "
                f"(schema {schema} > {SCHEMA_VERSION}; file created by koji-adjutant {created_with}, "
                f"this is {__version__})",
                hint="upgrade koji-adjutant, or move the file away to start a new store")
        return schema

    def _initialise(self, conn: sqlite3.Connection) -> None:
        log.info("creating environment store %s", self.path)
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

    def _migrate(self, conn: sqlite3.Connection, target: int) -> None:
        migration = MIGRATIONS[target - 1]
        log.info("migrating environment store %s to schema %d (%s)", self.path, target,
                 (migration.__doc__ or migration.__name__).strip())
        migration(conn)
        conn.execute("INSERT INTO migrations (schema_version, timestamp, version) VALUES (?, ?, ?)",
                     (target, format_timestamp(utcnow()), __version__))
        conn.execute("UPDATE control SET schema_version = ?", (target,))

    def control(self) -> dict[str, Any]:
        """The control record: created_with_version and schema_version."""
        with self._reading() as conn:
            created_with, schema = conn.execute(
                "SELECT created_with_version, schema_version FROM control").fetchone()
        return {"created_with_version": created_with, "schema_version": schema}

    def migrations(self) -> list[dict[str, Any]]:
        """The migration log, oldest first."""
        with self._reading() as conn:
            rows = conn.execute("SELECT schema_version, timestamp, version FROM migrations "
                                "ORDER BY rowid").fetchall()
        return [{"schema_version": s, "timestamp": t, "version": v} for s, t, v in rows]

    # -- records -------------------------------------------------------------------------
    def get(self, name: str) -> Environment | None:
        with self._reading() as conn:
            row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        return _from_row(row) if row else None

    def find(self, inputs_hash: str) -> Environment | None:
        """The environment made from exactly these inputs (the most recently used, if several)."""
        with self._reading() as conn:
            row = conn.execute(f"{_SELECT} WHERE inputs_hash = ? ORDER BY last_used DESC, name LIMIT 1",
                               (inputs_hash,)).fetchone()
        return _from_row(row) if row else None

    def record(self, env: Environment) -> None:
        """Insert the record, or replace the one of the same name."""
        _check_name(env.name)
        with self._writing() as conn:
            conn.execute(f"INSERT OR REPLACE INTO environments ({', '.join(_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_COLUMNS))})", _to_row(env))

    def touch(self, name: str, now: datetime | None = None) -> bool:
        """Mark the environment used now (last_used, use_count + 1); False if unknown."""
        with self._writing() as conn:
            cursor = conn.execute("UPDATE environments SET last_used = ?, use_count = use_count + 1 "
                                  "WHERE name = ?", (format_timestamp(now or utcnow()), name))
            return cursor.rowcount > 0

    def remove(self, name: str) -> bool:
        """Delete the record, and the resolutions that led to it; False if there was none."""
        with self._writing() as conn:
            conn.execute("DELETE FROM resolutions WHERE environment = ?", (name,))
            return conn.execute("DELETE FROM environments WHERE name = ?", (name,)).rowcount > 0

    def remember_resolution(self, key: str, name: str) -> None:
        """Record that the inputs hashed to ``key`` resolved to environment ``name``."""
        _check_name(name)
        with self._writing() as conn:
            conn.execute("INSERT OR REPLACE INTO resolutions (key, environment, last_used) VALUES (?, ?, ?)",
                         (key, name, format_timestamp(utcnow())))

    def resolution(self, key: str) -> str | None:
        """The environment the inputs hashed to ``key`` last resolved to, if any."""
        with self._reading() as conn:
            row = conn.execute("SELECT environment FROM resolutions WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def list(self) -> list[Environment]:
        """Every record, most recently used first."""
        with self._reading() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY last_used DESC, name").fetchall()
        return [_from_row(row) for row in rows]

    def eviction_candidates(self, max_total_bytes: int | None, max_age_days: float | None,
                            now: datetime | None = None) -> list[Environment]:
        """See select_evictions(); over the current records."""
        return select_evictions(self.list(), max_total_bytes, max_age_days, now)

    # -- per-environment lock ------------------------------------------------------------
    def lock_path(self, name: str) -> Path:
        _check_name(name)
        return self.lock_dir / f"{name}.lock"

    @contextmanager
    def lock(self, name: str, timeout: float | None = None) -> Iterator[None]:
        """Hold the inter-process lock of environment ``name`` (flock on
        ``<state_dir>/locks/<name>.lock``). Blocks; with ``timeout`` (seconds)
        raises EnvironmentStoreError when the lock stays held that long.
        Not re-entrant: taking it again in the same process deadlocks; and a
        child forked (without exec) while it is held shares it."""
        path = self.lock_path(name)
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                self._flock(fd, name, timeout, deadline)
                # clean() removes the lock file while holding it; a waiter that got
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

    @staticmethod
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

    # -- cleaning ------------------------------------------------------------------------
    def clean(self, manager, names: Iterable[str], dry_run: bool = False,
              lock_timeout: float | None = 30.0) -> list[Environment]:
        """Remove the environments ``names``: containers still labelled with the
        environment, its image, its record and its lock file. Returns the records
        that were (with ``dry_run``: would be) removed; ``manager`` (a
        ContainerManager) is not touched in a dry run and may be None then.

        Idempotent: an image or container already gone is no error, and a name
        without a record still has any stray image and containers removed.
        An environment locked by another process for longer than
        ``lock_timeout`` is skipped with a warning.
        """
        removed: list[Environment] = []
        for name in dict.fromkeys(names):
            _check_name(name)
            if dry_run:
                env = self.get(name)
                if env is not None:
                    removed.append(env)
                continue
            if manager is None:
                raise EnvironmentStoreError("cleaning environments needs a container manager")
            try:
                with self.lock(name, timeout=lock_timeout):
                    env = self.get(name)
                    for container in manager.list_containers({LABEL_ENVIRONMENT: name}):
                        log.info("removing container %s of environment %s", container.name, name)
                        manager.remove(container.id)
                    manager.remove_image(image_ref(name))
                    self.remove(name)
                    self.lock_path(name).unlink(missing_ok=True)
            except EnvironmentLockedError as exc:
                log.warning("not cleaning environment %s: %s", name, exc)
                continue
            if env is not None:
                log.info("removed environment %s", name)
                removed.append(env)
        return removed

    def unrecorded_images(self, manager) -> list[ImageInfo]:
        """This store's images that no record names: left by a worker killed between commit
        and record, or unnamed (dangling) when such an environment was later made again."""
        recorded = {env.image_id for env in self.list()}
        return [image for image in manager.list_images({LABEL_STORE: self.identity}) if image.id not in recorded]

    def clean_unrecorded(self, manager, lock_timeout: float | None = 30.0) -> list[ImageInfo]:
        """Remove the unrecorded images; each under its environment's lock, so an image a
        build has committed and is about to record is left alone. Returns those removed."""
        removed = []
        for image in self.unrecorded_images(manager):
            name = image.labels.get(LABEL_ENVIRONMENT, "")
            if not name or "/" in name:
                log.warning("not removing image %s: its %s label %r names no environment",
                            image.id[:19], LABEL_ENVIRONMENT, name)
                continue
            try:
                with self.lock(name, timeout=lock_timeout):
                    if any(env.image_id == image.id for env in self.list()):
                        continue  # recorded while we waited for the lock
                    log.info("removing image %s of environment %s: no record names it", image.id[:19], name)
                    manager.remove_image(image.id)
            except EnvironmentLockedError as exc:
                log.warning("not removing image %s of environment %s: %s", image.id[:19], name, exc)
                continue
            removed.append(image)
        return removed
