"""Many processes writing and opening one store at once."""

from __future__ import annotations

import time

from koji_adjutant.envstore.schema import SCHEMA_VERSION
from koji_adjutant.envstore.store import EnvironmentStore

from .factories import PROCESSES, make_env

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
