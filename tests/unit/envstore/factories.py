"""Records for the store tests, at a fixed time so that ages are exact."""

from __future__ import annotations

import multiprocessing
from datetime import datetime, timedelta, timezone

from koji_adjutant.envstore.records import Environment
from koji_adjutant.envstore.store import EnvironmentStore

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
GIB = 1 << 30

# spawn, not fork: a child forked while the test holds a lock would inherit the
# lock's open file description, and so the lock itself.
PROCESSES = multiprocessing.get_context("spawn")


def make_env(name="adjutant-f40-build-x86_64-0123456789ab", *, days_ago=0.0, size=0, **fields):
    fields.setdefault("tag", "f40-build")
    fields.setdefault("arch", "x86_64")
    fields.setdefault("inputs_hash", "0123456789abcdef")
    moment = NOW - timedelta(days=days_ago)
    fields.setdefault("created", moment)
    fields.setdefault("last_used", moment)
    return Environment(name=name, size=size, **fields)


def hold_lock(path, name, held, release):
    store = EnvironmentStore(path)
    with store.lock(name):
        held.set()
        release.wait(30)
