"""A new store's control and migration records, and the files it refuses to take for a store."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from koji_adjutant import __version__
from koji_adjutant.envstore.errors import EnvironmentLockedError, EnvironmentStoreError
from koji_adjutant.envstore.schema import SCHEMA_VERSION
from koji_adjutant.envstore.store import EnvironmentStore
from koji_adjutant.errors import AdjutantError


def test_new_store_has_control_and_migration_records(store, store_path):
    assert store_path.exists()
    assert store.control() == {"created_with_version": __version__, "schema_version": SCHEMA_VERSION}
    migrations = store.migrations()
    assert [m["schema_version"] for m in migrations] == list(range(1, SCHEMA_VERSION + 1))
    assert all(m["version"] == __version__ for m in migrations)
    stamp = migrations[0]["timestamp"]
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp[:-1] + "+00:00")
    assert abs((datetime.now(timezone.utc) - parsed).total_seconds()) < 60
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM control").fetchone()[0] == 1
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(environments)")}
        assert "environments_inputs_hash" in indexes


def test_reopening_migrates_nothing(store, store_path, caplog):
    caplog.set_level("INFO", logger="koji_adjutant.envstore")
    EnvironmentStore(store_path)
    assert len(store.migrations()) == SCHEMA_VERSION
    assert "migrating" not in caplog.text


def test_migrations_are_logged(store_path, caplog):
    caplog.set_level("INFO", logger="koji_adjutant.envstore")
    EnvironmentStore(store_path)
    assert "creating environment store" in caplog.text
    assert "to schema 1" in caplog.text


def test_a_database_without_control_table_is_refused(store_path):
    store_path.parent.mkdir(parents=True)
    with sqlite3.connect(store_path) as conn:
        conn.execute("CREATE TABLE environments (name TEXT)")
    with pytest.raises(EnvironmentStoreError) as caught:
        EnvironmentStore(store_path)
    assert "no control table" in str(caught.value)
    assert "move the file away" in str(caught.value)
    with sqlite3.connect(store_path) as conn:  # left as it was
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} == {"environments"}


def test_a_control_table_without_its_record_is_refused(store, store_path):
    with sqlite3.connect(store_path) as conn:
        conn.execute("DELETE FROM control")
    with pytest.raises(EnvironmentStoreError, match="0 control records, not exactly one"):
        EnvironmentStore(store_path)


def test_a_store_without_migrations_table_is_refused(store, store_path):
    with sqlite3.connect(store_path) as conn:
        conn.execute("DROP TABLE migrations")
    with pytest.raises(EnvironmentStoreError, match="no migrations table"):
        EnvironmentStore(store_path)


def test_a_newer_schema_is_refused(store, store_path):
    with sqlite3.connect(store_path) as conn:
        conn.execute("UPDATE control SET schema_version = ?", (SCHEMA_VERSION + 2,))
    with pytest.raises(EnvironmentStoreError) as caught:
        EnvironmentStore(store_path)
    text = str(caught.value)
    assert f"newer koji-adjutant (schema {SCHEMA_VERSION + 2} > {SCHEMA_VERSION}" in text
    assert "upgrade koji-adjutant, or move the file away" in text


def test_a_file_that_is_not_sqlite_is_refused(store_path):
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"certainly not a database\n" * 100)
    with pytest.raises(EnvironmentStoreError, match="not a usable SQLite database"):
        EnvironmentStore(store_path)


def test_an_empty_file_is_initialised(store_path):
    store_path.parent.mkdir(parents=True)
    store_path.touch()
    assert EnvironmentStore(store_path).control()["schema_version"] == SCHEMA_VERSION


def test_store_errors_are_adjutant_errors():
    assert issubclass(EnvironmentStoreError, AdjutantError)
    assert issubclass(EnvironmentLockedError, EnvironmentStoreError)


def test_schema_3_counts_an_older_record_whole_and_adds_package_sets(store_path):
    """A store of schema 2 with a record: after the upgrade it is counted at its full size,
    made here, and the package sets table works."""
    from koji_adjutant.envstore.schema import MIGRATIONS, initialise

    store_path.parent.mkdir(parents=True)
    with sqlite3.connect(store_path) as conn:
        initialise(conn, store_path)
        for migration in MIGRATIONS[:2]:
            migration(conn)
        conn.execute("UPDATE control SET schema_version = 2")
        conn.execute("INSERT INTO migrations VALUES (1, 'x', 'old'), (2, 'x', 'old')")
        conn.execute("INSERT INTO environments (name, base_image, base_digest, image_id, inputs_hash, inputs, "
                     "tag, arch, created, last_used, size, version) VALUES ('adjutant-a', 'b', 'd', 'i', 'h', "
                     "'{}', 't', 'x86_64', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 4096, 'old')")
    store = EnvironmentStore(store_path)
    (env,) = store.list()
    assert (env.size, env.own_size, env.added, env.base_size, env.origin) == (4096, 4096, 4096, 0, "built")
    assert store.package_set("koji-7 http://hub/repos/f40/7/x86_64") is None
    store.remember_package_set("koji-7 http://hub/repos/f40/7/x86_64", "abc")
    assert store.package_set("koji-7 http://hub/repos/f40/7/x86_64") == "abc"
