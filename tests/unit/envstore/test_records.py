"""Reading and writing environment records."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from koji_adjutant import __version__
from koji_adjutant.envstore.errors import EnvironmentStoreError
from koji_adjutant.envstore.names import LABEL_ENVIRONMENT, LABEL_STORE
from koji_adjutant.envstore.records import Environment
from koji_adjutant.envstore.store import EnvironmentStore

from .factories import NOW, make_env


def test_record_get_round_trip(store):
    env = make_env(base_image="registry.example.com/el10:latest", base_digest="sha256:abc", image_id="f00d",
                   inputs={"repo": 42, "groups": ["build"], "macros": {"%dist": ".el10"}},
                   size=123456, use_count=3, version="0.0.9")
    store.record(env)
    assert store.get(env.name) == env
    assert store.get("adjutant-nothing") is None


def test_record_replaces_by_name(store):
    store.record(make_env(size=1))
    store.record(make_env(size=2, image_id="new"))
    assert len(store.list()) == 1
    assert store.get(make_env().name).image_id == "new"


def test_find_by_inputs_hash(store):
    older = make_env("adjutant-a-x86_64-aaaaaaaaaaaa", inputs_hash="h1", days_ago=2)
    newer = make_env("adjutant-b-x86_64-aaaaaaaaaaaa", inputs_hash="h1", days_ago=1)
    other = make_env("adjutant-c-x86_64-bbbbbbbbbbbb", inputs_hash="h2")
    for env in (older, newer, other):
        store.record(env)
    assert store.find("h1") == newer
    assert store.find("h2") == other
    assert store.find("h3") is None


def test_touch_updates_last_used_and_count(store):
    env = make_env(days_ago=5, use_count=1)
    store.record(env)
    assert store.touch(env.name)
    touched = store.get(env.name)
    assert touched.use_count == 2
    assert touched.last_used > env.last_used
    assert abs((datetime.now(timezone.utc) - touched.last_used).total_seconds()) < 60
    assert touched.created == env.created
    assert store.touch(env.name, now=NOW + timedelta(days=1))
    assert store.get(env.name).last_used == NOW + timedelta(days=1)
    assert not store.touch("adjutant-unknown")


def test_remove(store):
    env = make_env()
    store.record(env)
    assert store.remove(env.name)
    assert store.get(env.name) is None
    assert not store.remove(env.name)


def test_list_is_most_recently_used_first(store):
    for name, days in (("adjutant-b", 3), ("adjutant-a", 1), ("adjutant-c", 2)):
        store.record(make_env(name, days_ago=days))
    assert [env.name for env in store.list()] == ["adjutant-a", "adjutant-c", "adjutant-b"]


def test_timestamps_are_stored_as_utc_iso_with_z(store, store_path):
    store.record(make_env(created=datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))))
    with sqlite3.connect(store_path) as conn:
        created, inputs = conn.execute("SELECT created, inputs FROM environments").fetchone()
    assert created == "2025-01-02T01:04:05.000000Z"
    assert json.loads(inputs) == {}


def test_last_used_defaults_to_created():
    env = Environment(name="adjutant-x", tag="t", arch="a", inputs_hash="h", created=NOW)
    assert env.last_used == NOW
    assert env.version == __version__
    assert env.image_ref == "localhost/adjutant-x:latest"


def test_a_name_with_a_slash_is_refused(store):
    with pytest.raises(EnvironmentStoreError):
        store.record(make_env("../escape"))
    with pytest.raises(EnvironmentStoreError):
        store.lock_path("a/b")


def test_store_identity_is_stable_per_file(tmp_path):
    first = EnvironmentStore(tmp_path / "a" / "environments.sqlite")
    assert first.identity == EnvironmentStore(tmp_path / "a" / "environments.sqlite").identity
    assert first.identity != EnvironmentStore(tmp_path / "b" / "environments.sqlite").identity
    assert first.image_labels("adjutant-x") == {LABEL_ENVIRONMENT: "adjutant-x", LABEL_STORE: first.identity}
