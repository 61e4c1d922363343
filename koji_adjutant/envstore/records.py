"""The typed records of cached environments and their reads and writes.

Callers only ever see Environment values: the SQL rows, JSON and timestamp
text stay inside this module, so the column layout can change with a migration
without touching a caller.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import __version__
from .database import Database
from .names import check_name, image_ref
from .timestamps import format_timestamp, parse_timestamp, utcnow

log = logging.getLogger(__name__)

#: The environments table's columns, in the order rows are written and read.
#: (The table's repo_id column is never written: the repo is one of the inputs.)
_COLUMNS = ("name", "base_image", "base_digest", "image_id", "inputs_hash", "inputs", "tag", "arch",
            "created", "last_used", "use_count", "size", "version", "own_size", "base_size", "origin")
#: Environment.origin of one made on this builder.
ORIGIN_BUILT = "built"

_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM environments"


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
    created: datetime = field(default_factory=utcnow)
    last_used: datetime | None = None  # None: the same as created
    use_count: int = 0
    size: int = 0  # bytes, of the whole image (base and parent layers included)
    version: str = __version__  # the koji-adjutant that made it
    #: bytes its own layers add on disk to the image it was made from; None: unknown (counted whole)
    own_size: int | None = None
    #: bytes of its base image, which every environment made from that base shares
    base_size: int = 0
    #: where it came from: ORIGIN_BUILT, or the registry it was pulled from
    origin: str = ORIGIN_BUILT

    def __post_init__(self) -> None:
        if self.last_used is None:
            object.__setattr__(self, "last_used", self.created)

    @property
    def used(self) -> datetime:
        """When it was last used (made counts as used)."""
        return self.last_used or self.created

    @property
    def added(self) -> int:
        """The bytes this environment adds on disk to its base and parent."""
        return self.size if self.own_size is None else self.own_size

    @property
    def image_ref(self) -> str:
        return image_ref(self.name)

    def as_dict(self) -> dict[str, Any]:
        """Every field, timestamps as UTC ISO-8601 text (for display and JSON)."""
        values = dataclasses.asdict(self)
        values["created"] = format_timestamp(self.created)
        values["last_used"] = format_timestamp(self.used)
        values["inputs"] = dict(self.inputs)
        return values


def _to_row(env: Environment) -> tuple:
    return (env.name, env.base_image, env.base_digest, env.image_id, env.inputs_hash,
            json.dumps(dict(env.inputs), sort_keys=True, default=str), env.tag, env.arch,
            format_timestamp(env.created), format_timestamp(env.used), env.use_count, env.size,
            env.version, env.own_size, env.base_size, env.origin)


def _from_row(row: Sequence) -> Environment:
    values = dict(zip(_COLUMNS, row))
    values["inputs"] = json.loads(values["inputs"] or "{}")
    values["created"] = parse_timestamp(values["created"])
    values["last_used"] = parse_timestamp(values["last_used"])
    return Environment(**values)


class Records:
    """The environments, resolutions, control and migration records of one store."""

    def __init__(self, database: Database):
        self._db = database

    def control(self) -> dict[str, Any]:
        """The control record: created_with_version and schema_version."""
        with self._db.reading() as conn:
            created_with, schema = conn.execute(
                "SELECT created_with_version, schema_version FROM control").fetchone()
        return {"created_with_version": created_with, "schema_version": schema}

    def migrations(self) -> list[dict[str, Any]]:
        """The migration log, oldest first."""
        with self._db.reading() as conn:
            rows = conn.execute("SELECT schema_version, timestamp, version FROM migrations "
                                "ORDER BY rowid").fetchall()
        return [{"schema_version": s, "timestamp": t, "version": v} for s, t, v in rows]

    def get(self, name: str) -> Environment | None:
        with self._db.reading() as conn:
            row = conn.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        return _from_row(row) if row else None

    def find(self, inputs_hash: str) -> Environment | None:
        """The environment made from exactly these inputs (the most recently used, if several)."""
        with self._db.reading() as conn:
            row = conn.execute(f"{_SELECT} WHERE inputs_hash = ? ORDER BY last_used DESC, name LIMIT 1",
                               (inputs_hash,)).fetchone()
        return _from_row(row) if row else None

    def record(self, env: Environment) -> None:
        """Insert the record, or replace the one of the same name."""
        check_name(env.name)
        with self._db.writing() as conn:
            conn.execute(f"INSERT OR REPLACE INTO environments ({', '.join(_COLUMNS)}) "
                         f"VALUES ({', '.join('?' * len(_COLUMNS))})", _to_row(env))

    def touch(self, name: str, now: datetime | None = None) -> bool:
        """Mark the environment used now (last_used, use_count + 1); False if unknown."""
        with self._db.writing() as conn:
            cursor = conn.execute("UPDATE environments SET last_used = ?, use_count = use_count + 1 "
                                  "WHERE name = ?", (format_timestamp(now or utcnow()), name))
            return cursor.rowcount > 0

    def remove(self, name: str) -> bool:
        """Delete the record, and the resolutions that led to it, which would otherwise point
        at nothing; False if there was none."""
        with self._db.writing() as conn:
            conn.execute("DELETE FROM resolutions WHERE environment = ?", (name,))
            return conn.execute("DELETE FROM environments WHERE name = ?", (name,)).rowcount > 0

    def remember_resolution(self, key: str, name: str) -> None:
        """Record that the inputs hashed to ``key`` resolved to environment ``name``."""
        check_name(name)
        with self._db.writing() as conn:
            conn.execute("INSERT OR REPLACE INTO resolutions (key, environment, last_used) VALUES (?, ?, ?)",
                         (key, name, format_timestamp(utcnow())))

    def resolution(self, key: str) -> str | None:
        """The environment the inputs hashed to ``key`` last resolved to, if any."""
        with self._db.reading() as conn:
            row = conn.execute("SELECT environment FROM resolutions WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def package_set(self, repo: str) -> str | None:
        """The package set remembered for the immutable repo ``repo``, if any."""
        with self._db.reading() as conn:
            row = conn.execute("SELECT package_set FROM package_sets WHERE repo = ?", (repo,)).fetchone()
        return row[0] if row else None

    def remember_package_set(self, repo: str, package_set: str) -> None:
        """Remember the package set of ``repo``, a repo whose content never changes under its name."""
        with self._db.writing() as conn:
            conn.execute("INSERT OR REPLACE INTO package_sets (repo, package_set, recorded) VALUES (?, ?, ?)",
                         (repo, package_set, format_timestamp(utcnow())))

    def list(self) -> list[Environment]:
        """Every record, most recently used first."""
        with self._db.reading() as conn:
            rows = conn.execute(f"{_SELECT} ORDER BY last_used DESC, name").fetchall()
        return [_from_row(row) for row in rows]
