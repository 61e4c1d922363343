"""The environment store: schema and its refusals, records, eviction, names,
the per-environment lock and many writers at once (real processes), clean()
with a mocked ContainerManager, and the env commands without podman."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest

from koji_adjutant import __version__, envcli
from koji_adjutant.container.interface import ContainerInfo, ContainerRoot, ImageInfo
from koji_adjutant.envstore import (
    LABEL_ENVIRONMENT,
    LABEL_STORE,
    SCHEMA_VERSION,
    Environment,
    EnvironmentLockedError,
    EnvironmentStore,
    EnvironmentStoreError,
    default_store_path,
    environment_name,
    image_ref,
    select_evictions,
)
from koji_adjutant.errors import AdjutantError, ConfigError

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
GIB = 1 << 30

# spawn, not fork: a child forked while the test holds a lock would inherit the
# lock's open file description, and so the lock itself.
PROCESSES = multiprocessing.get_context("spawn")


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "state" / "environments.sqlite"


@pytest.fixture
def store(store_path):
    return EnvironmentStore(store_path)


def make_env(name="adjutant-f40-build-x86_64-0123456789ab", *, days_ago=0.0, size=0, **fields):
    fields.setdefault("tag", "f40-build")
    fields.setdefault("arch", "x86_64")
    fields.setdefault("inputs_hash", "0123456789abcdef")
    moment = NOW - timedelta(days=days_ago)
    fields.setdefault("created", moment)
    fields.setdefault("last_used", moment)
    return Environment(name=name, size=size, **fields)


# -- schema -------------------------------------------------------------------------

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


def test_default_location_follows_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_path() == tmp_path / "xdg" / "koji-adjutant" / "environments.sqlite"
    assert EnvironmentStore().path == tmp_path / "xdg" / "koji-adjutant" / "environments.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local" / "share" / "koji-adjutant" / "environments.sqlite"


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


# -- records ----------------------------------------------------------------------------

def test_record_get_round_trip(store):
    env = make_env(base_image="registry.example.com/el10:latest", base_digest="sha256:abc", image_id="f00d",
                   inputs={"repo": 42, "groups": ["build"], "macros": {"%dist": ".el10"}}, repo_id=42,
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


# -- eviction -----------------------------------------------------------------------------

def test_eviction_by_age():
    envs = [make_env("adjutant-fresh", days_ago=1), make_env("adjutant-old", days_ago=20),
            make_env("adjutant-older", days_ago=30), make_env("adjutant-edge", days_ago=14)]
    evicted = select_evictions(envs, max_total_bytes=None, max_age_days=14, now=NOW)
    assert [env.name for env in evicted] == ["adjutant-older", "adjutant-old"]


def test_eviction_by_size_is_least_recently_used_first():
    envs = [make_env("adjutant-a", days_ago=1, size=4 * GIB), make_env("adjutant-b", days_ago=3, size=4 * GIB),
            make_env("adjutant-c", days_ago=2, size=4 * GIB), make_env("adjutant-d", days_ago=4, size=4 * GIB)]
    evicted = select_evictions(envs, max_total_bytes=9 * GIB, max_age_days=None, now=NOW)
    assert [env.name for env in evicted] == ["adjutant-d", "adjutant-b"]  # 8 GiB stay
    assert select_evictions(envs, max_total_bytes=16 * GIB, max_age_days=None, now=NOW) == []
    assert len(select_evictions(envs, max_total_bytes=0, max_age_days=None, now=NOW)) == 4


def test_eviction_by_age_then_size():
    envs = [make_env("adjutant-stale", days_ago=30, size=1), make_env("adjutant-big-old", days_ago=5, size=10),
            make_env("adjutant-big-new", days_ago=1, size=10)]
    evicted = select_evictions(envs, max_total_bytes=15, max_age_days=14, now=NOW)
    assert [env.name for env in evicted] == ["adjutant-stale", "adjutant-big-old"]


def test_eviction_candidates_read_the_store(store):
    store.record(make_env("adjutant-keep", days_ago=1, size=5))
    store.record(make_env("adjutant-drop", days_ago=2, size=5))
    assert [e.name for e in store.eviction_candidates(5, 14, now=NOW)] == ["adjutant-drop"]
    assert store.eviction_candidates(10, 14, now=NOW) == []
    assert len(store.list()) == 2  # selecting removes nothing


# -- names ---------------------------------------------------------------------------------

def test_environment_name():
    assert environment_name("f40-build", "x86_64", "0123456789abcdef0123") == "adjutant-f40-build-x86_64-0123456789ab"


@pytest.mark.parametrize("tag, expected", [
    ("EL10-Build", "adjutant-el10-build-x86_64-0123456789ab"),
    ("el10+side/build", "adjutant-el10-side-build-x86_64-0123456789ab"),
    ("el10..build", "adjutant-el10-build-x86_64-0123456789ab"),
    ("el10__build", "adjutant-el10__build-x86_64-0123456789ab"),
    ("el10.build", "adjutant-el10.build-x86_64-0123456789ab"),
    ("-el10-", "adjutant-el10-x86_64-0123456789ab"),
    ("el 10 ~ build", "adjutant-el-10-build-x86_64-0123456789ab"),
])
def test_environment_name_replaces_what_an_image_name_cannot_hold(tag, expected):
    assert environment_name(tag, "x86_64", "0123456789ABCDEF") == expected


def test_environment_names_are_valid_image_names():
    import re
    component = re.compile(r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*")
    for tag in ("A", "a--b", "a._b", "a_-b", "ümlaut-tag", "x" * 400, "a.-.b", "1"):
        name = environment_name(tag, "aarch64", "f" * 64)
        assert component.fullmatch(name), name
        assert len(name) <= 200
        assert name.endswith("-aarch64-ffffffffffff")


def test_environment_name_needs_every_part():
    with pytest.raises(EnvironmentStoreError):
        environment_name("", "x86_64", "abc")
    with pytest.raises(EnvironmentStoreError):
        environment_name("tag", "x86_64", "")


def test_image_ref():
    assert image_ref("adjutant-f40-x86_64-0123456789ab") == "localhost/adjutant-f40-x86_64-0123456789ab:latest"


# -- the lock (real processes) ----------------------------------------------------------

def _try_lock(path, name, timeout, results, ready=None):
    store = EnvironmentStore(path)
    if ready is not None:
        ready.set()
    started = time.monotonic()
    try:
        with store.lock(name, timeout=timeout):
            results.put(("locked", time.monotonic() - started))
    except EnvironmentLockedError as exc:
        results.put(("refused", str(exc)))


def _hold_lock(path, name, held, release):
    store = EnvironmentStore(path)
    with store.lock(name):
        held.set()
        release.wait(30)


def test_lock_excludes_a_second_process(store, store_path):
    name = "adjutant-f40-x86_64-0123456789ab"
    results = PROCESSES.Queue()
    with store.lock(name):
        child = PROCESSES.Process(target=_try_lock, args=(store_path, name, 0.3, results))
        child.start()
        child.join(20)
        outcome, detail = results.get(timeout=5)
        assert outcome == "refused"
        assert f"environment {name} is locked by another process" in detail
        other = PROCESSES.Process(target=_try_lock, args=(store_path, "adjutant-other", 0.3, results))
        other.start()
        other.join(20)
        assert results.get(timeout=5)[0] == "locked"  # only the same name is excluded
    child = PROCESSES.Process(target=_try_lock, args=(store_path, name, 0.3, results))
    child.start()
    child.join(20)
    assert results.get(timeout=5)[0] == "locked"
    assert store.lock_path(name) == store_path.parent / "locks" / f"{name}.lock"


def test_lock_waits_for_the_holder(store, store_path):
    name = "adjutant-wait"
    held, release = PROCESSES.Event(), PROCESSES.Event()
    holder = PROCESSES.Process(target=_hold_lock, args=(store_path, name, held, release))
    holder.start()
    try:
        assert held.wait(20)
        with pytest.raises(EnvironmentLockedError):
            with store.lock(name, timeout=0.2):
                pass
        results, ready = PROCESSES.Queue(), PROCESSES.Event()
        waiter = PROCESSES.Process(target=_try_lock, args=(store_path, name, 20, results, ready))
        waiter.start()
        assert ready.wait(20)
        time.sleep(0.3)
        assert results.empty()
        release.set()
        outcome, waited = results.get(timeout=20)
        assert outcome == "locked" and waited >= 0.2
        waiter.join(20)
    finally:
        release.set()
        holder.join(20)


# -- many writers at once (real processes) ----------------------------------------------

SHARED = "adjutant-shared-x86_64-000000000000"


def _writer(path, index, records, touches, start):
    store = EnvironmentStore(path)
    start.wait(30)
    for number in range(records):
        store.record(make_env(f"adjutant-w{index}-n{number}", size=1))
        store.touch(SHARED)
    for _ in range(touches):
        store.touch(SHARED)


def test_concurrent_writers_lose_nothing(store_path):
    processes, records, touches = 6, 15, 25
    start = PROCESSES.Event()
    writers = [PROCESSES.Process(target=_writer, args=(store_path, i, records, touches, start))
               for i in range(processes)]
    # The first process to open a new file initialises it; the others must cope.
    for writer in writers:
        writer.start()
    time.sleep(0.2)
    EnvironmentStore(store_path).record(make_env(SHARED, use_count=0))
    start.set()
    for writer in writers:
        writer.join(120)
    assert [w.exitcode for w in writers] == [0] * processes
    store = EnvironmentStore(store_path)
    assert len(store.list()) == processes * records + 1
    assert store.get(SHARED).use_count == processes * (records + touches)
    assert len(store.migrations()) == SCHEMA_VERSION


def _opener(path, start, results):
    start.wait(30)
    try:
        EnvironmentStore(path)
        results.put("ok")
    except Exception as exc:  # reported to the test
        results.put(repr(exc))


def test_concurrent_first_opens_initialise_once(store_path):
    start, results = PROCESSES.Event(), PROCESSES.Queue()
    openers = [PROCESSES.Process(target=_opener, args=(store_path, start, results)) for _ in range(8)]
    for opener in openers:
        opener.start()
    start.set()
    for opener in openers:
        opener.join(60)
    assert sorted(results.get(timeout=5) for _ in openers) == ["ok"] * 8
    store = EnvironmentStore(store_path)
    assert len(store.migrations()) == SCHEMA_VERSION
    assert store.control()["schema_version"] == SCHEMA_VERSION


# -- clean (mocked ContainerManager) ---------------------------------------------------------

@pytest.fixture
def manager(mocker):
    manager = mocker.Mock(name="ContainerManager")
    manager.list_containers.return_value = []
    manager.list_images.return_value = []
    return manager


def test_clean_removes_containers_image_record_and_lock(store, manager):
    env = make_env(size=7)
    store.record(env)
    with store.lock(env.name):
        pass
    manager.list_containers.return_value = [ContainerInfo(id="c1", name="leftover", status="exited",
                                                          labels={LABEL_ENVIRONMENT: env.name})]
    assert store.clean(manager, [env.name]) == [env]
    manager.list_containers.assert_called_once_with({LABEL_ENVIRONMENT: env.name})
    manager.remove.assert_called_once_with("c1")
    manager.remove_image.assert_called_once_with(image_ref(env.name))
    assert store.get(env.name) is None
    assert not store.lock_path(env.name).exists()


def test_clean_twice_is_fine(store, manager):
    env = make_env()
    store.record(env)
    assert store.clean(manager, [env.name]) == [env]
    assert store.clean(manager, [env.name]) == []
    assert manager.remove_image.call_count == 2  # the stray image is looked for again, harmlessly


def test_clean_of_an_environment_whose_image_is_gone(store, manager):
    # PodmanManager.remove_image ignores a missing image; so must clean.
    env = make_env()
    store.record(env)
    manager.remove_image.return_value = None
    assert store.clean(manager, [env.name]) == [env]
    assert store.get(env.name) is None


def test_dry_run_cleans_nothing(store, manager):
    envs = [make_env("adjutant-a", size=1), make_env("adjutant-b", size=2)]
    for env in envs:
        store.record(env)
    assert store.clean(manager, ["adjutant-a", "adjutant-b", "adjutant-unknown"], dry_run=True) == envs
    assert manager.mock_calls == []
    assert store.clean(None, ["adjutant-a"], dry_run=True) == [envs[0]]
    assert len(store.list()) == 2


def test_clean_skips_an_environment_locked_elsewhere(store, store_path, manager):
    store.record(make_env("adjutant-busy"))
    store.record(make_env("adjutant-idle"))
    held, release = PROCESSES.Event(), PROCESSES.Event()
    holder = PROCESSES.Process(target=_hold_lock, args=(store_path, "adjutant-busy", held, release))
    holder.start()
    try:
        assert held.wait(20)
        removed = store.clean(manager, ["adjutant-busy", "adjutant-idle"], lock_timeout=0.2)
    finally:
        release.set()
        holder.join(20)
    assert [env.name for env in removed] == ["adjutant-idle"]
    assert store.get("adjutant-busy") is not None
    manager.remove_image.assert_called_once_with(image_ref("adjutant-idle"))


def test_a_lock_file_removed_by_clean_is_not_shared(store, store_path):
    """clean() unlinks the lock file while it holds the lock. A process that was
    waiting on the old file must not think it holds the lock while a newcomer
    holds the lock of the new file."""
    name = "adjutant-relock"
    held, release = PROCESSES.Event(), PROCESSES.Event()
    results, ready = PROCESSES.Queue(), PROCESSES.Event()
    newcomer = PROCESSES.Process(target=_hold_lock, args=(store_path, name, held, release))
    try:
        with store.lock(name):
            waiter = PROCESSES.Process(target=_try_lock, args=(store_path, name, 20, results, ready))
            waiter.start()
            assert ready.wait(20)
            time.sleep(0.2)  # the waiter now waits on the old file
            store.lock_path(name).unlink()  # what clean() does while holding the lock
            newcomer.start()
            assert held.wait(20)  # the newcomer locked the new file
        time.sleep(0.5)
        assert results.empty(), "the waiter took the lock of the removed file"
        release.set()
        outcome, waited = results.get(timeout=20)
        assert outcome == "locked" and waited >= 0.7
        waiter.join(20)
    finally:
        release.set()
        if newcomer.pid is not None:
            newcomer.join(20)


# -- the env commands, without podman ----------------------------------------------------------

@pytest.fixture
def run_env(store_path, capsys):
    parser = argparse.ArgumentParser(prog="koji-adjutant")
    envcli.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv, **kwargs):
        args = parser.parse_args(["env", "--store", str(store_path), *argv])
        code = args.func(args, **kwargs)
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def test_env_list_empty(run_env):
    assert run_env("list") == (0, "no cached environments\n", "")


def test_env_list_table(store, run_env):
    store.record(make_env("adjutant-f40-x86_64-aaaaaaaaaaaa", tag="f40", size=3 * GIB // 2, use_count=4,
                          days_ago=1))
    store.record(make_env("adjutant-el10-aarch64-bbbbbbbbbbbb", tag="el10", arch="aarch64", size=512))
    code, out, _ = run_env("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TAG", "ARCH", "SIZE", "USES", "LAST", "USED", "VERSION"]
    assert lines[1].split() == ["adjutant-el10-aarch64-bbbbbbbbbbbb", "el10", "aarch64", "512", "B", "0",
                                "2025-06-01", "12:00:00Z", __version__]
    assert lines[2].split()[:6] == ["adjutant-f40-x86_64-aaaaaaaaaaaa", "f40", "x86_64", "1.5", "GiB", "4"]
    assert lines[0].index("TAG") == lines[1].index("el10 ") == lines[2].index("f40 ")
    assert lines[-1] == "2 environments, 1.5 GiB"


def test_env_show(store, run_env):
    env = make_env(inputs={"groups": ["build"], "repo": 7}, base_image="quay.io/x/el10:1", repo_id=7, size=2048)
    store.record(env)
    code, out, _ = run_env("show", env.name)
    assert code == 0
    assert f"name:        {env.name}" in out
    assert "base_image:  quay.io/x/el10:1" in out
    assert "size:        2048 (2.0 KiB)" in out
    assert f"image:       {image_ref(env.name)}" in out
    assert "last_used:   2025-06-01T12:00:00.000000Z" in out
    inputs_text = out.split("inputs:", 1)[1]
    assert json.loads(inputs_text) == {"groups": ["build"], "repo": 7}
    assert '\n      "build"\n' in inputs_text  # pretty-printed


def test_env_show_unknown(run_env):
    with pytest.raises(AdjutantError) as caught:
        run_env("show", "adjutant-nope")
    assert "no cached environment named 'adjutant-nope'" in str(caught.value)
    assert "env list" in str(caught.value)


def test_env_clean_dry_run_default_limits(store, run_env, mocker):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    now = datetime.now(timezone.utc)
    store.record(make_env("adjutant-fresh", size=GIB, created=now, last_used=now))
    store.record(make_env("adjutant-stale", size=GIB, last_used=now - timedelta(days=30)))
    code, out, _ = run_env("clean", "--dry-run")
    assert (code, out) == (0, "would remove adjutant-stale (1.0 GiB)\n")
    code, out, _ = run_env("clean", "--dry-run", "--max-size-gb", "0.5", "--max-age-days", "100")
    assert out.splitlines() == ["would remove adjutant-stale (1.0 GiB)", "would remove adjutant-fresh (1.0 GiB)"]
    code, out, _ = run_env("clean", "--dry-run", "--older-than", "7")
    assert out == "would remove adjutant-stale (1.0 GiB)\n"
    code, out, _ = run_env("clean", "--dry-run", "adjutant-fresh")
    assert out == "would remove adjutant-fresh (1.0 GiB)\n"
    podman.assert_not_called()
    assert len(store.list()) == 2


def test_env_clean_dry_run_all_asks_podman_for_unrecorded_images(store, run_env, mocker, manager):
    """--all also goes for images of this store that no record names, which only podman knows of."""
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    podman.return_value.__enter__.return_value = manager
    store.record(make_env("adjutant-a", size=GIB))
    orphan = ImageInfo(ref="sha256:" + "ab" * 32, id="sha256:" + "ab" * 32, digest="", size=2 * GIB,
                       labels=store.image_labels("adjutant-b"))
    manager.list_images.return_value = [orphan]
    code, out, _ = run_env("clean", "--dry-run", "--all")
    assert (code, out.splitlines()) == (0, ["would remove adjutant-a (1.0 GiB)",
                                            "would remove image abababababab of adjutant-b (2.0 GiB, no record)"])
    manager.list_images.assert_called_once_with({LABEL_STORE: store.identity})
    manager.remove_image.assert_not_called()
    assert [env.name for env in store.list()] == ["adjutant-a"]


def test_unrecorded_images_leave_out_recorded_ones(store, manager):
    env = make_env("adjutant-a")
    store.record(env)
    recorded = ImageInfo(ref=env.image_id, id=env.image_id, digest="", labels=store.image_labels(env.name))
    stray = ImageInfo(ref="sha256:" + "cd" * 32, id="sha256:" + "cd" * 32, digest="",
                      labels=store.image_labels(env.name))
    manager.list_images.return_value = [recorded, stray]
    assert store.unrecorded_images(manager) == [stray]
    assert store.clean_unrecorded(manager) == [stray]
    manager.remove_image.assert_called_once_with(stray.id)
    assert store.get(env.name) == env


def test_an_image_without_an_environment_label_is_left_alone(store, manager, caplog):
    odd = ImageInfo(ref="sha256:" + "ef" * 32, id="sha256:" + "ef" * 32, digest="",
                    labels={LABEL_STORE: store.identity})
    manager.list_images.return_value = [odd]
    assert store.clean_unrecorded(manager) == []
    manager.remove_image.assert_not_called()
    assert "names no environment" in caplog.text


def test_store_identity_is_stable_per_file(tmp_path):
    first = EnvironmentStore(tmp_path / "a" / "environments.sqlite")
    assert first.identity == EnvironmentStore(tmp_path / "a" / "environments.sqlite").identity
    assert first.identity != EnvironmentStore(tmp_path / "b" / "environments.sqlite").identity
    assert first.image_labels("adjutant-x") == {LABEL_ENVIRONMENT: "adjutant-x", LABEL_STORE: first.identity}


def test_env_clean_nothing_needs_no_podman(store, run_env, mocker):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    store.record(make_env("adjutant-fresh", last_used=datetime.now(timezone.utc)))
    assert run_env("clean")[:2] == (0, "nothing to clean\n")
    podman.assert_not_called()


def test_env_clean_removes(store, run_env, manager):
    store.record(make_env("adjutant-a"))
    store.record(make_env("adjutant-b"))
    code, out, _ = run_env("clean", "adjutant-a", manager=manager)
    assert (code, out) == (0, "removed adjutant-a\n")
    assert [env.name for env in store.list()] == ["adjutant-b"]
    code, out, err = run_env("clean", "adjutant-a", manager=manager)
    assert (code, out) == (0, "nothing to clean\n")
    assert "adjutant-a: no record in the store" in err
    code, out, _ = run_env("clean", "--all", manager=manager)
    assert (code, out) == (0, "removed adjutant-b\n")
    assert store.list() == []


def test_env_clean_starts_podman_only_to_remove(store, run_env, mocker, manager):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    podman.return_value.__enter__.return_value = manager
    store.record(make_env("adjutant-a"))
    assert run_env("clean", "--all")[:2] == (0, "removed adjutant-a\n")
    podman.assert_called_once_with(socket=None, container_root=ContainerRoot.SUBORDINATE)
    manager.remove_image.assert_called_once_with(image_ref("adjutant-a"))


@pytest.mark.parametrize("argv", [("--all", "adjutant-a"), ("--all", "--older-than", "3"),
                                  ("--older-than", "3", "adjutant-a")])
def test_env_clean_refuses_mixed_selections(run_env, argv):
    with pytest.raises(ConfigError):
        run_env("clean", "--dry-run", *argv)


def test_human_size():
    assert envcli.human_size(0) == "0 B"
    assert envcli.human_size(1023) == "1023 B"
    assert envcli.human_size(1536) == "1.5 KiB"
    assert envcli.human_size(20 * GIB) == "20.0 GiB"
    assert envcli.human_size(3 * (1 << 40)) == "3.0 TiB"
