"""The per-environment lock, with real processes."""

from __future__ import annotations

import time

import pytest

from koji_adjutant.envstore.errors import EnvironmentLockedError
from koji_adjutant.envstore.store import EnvironmentStore

from .factories import PROCESSES, hold_lock


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


def _release_and_expect_locked(waiter, results, release, at_least):
    """Let the holder go: the waiter then has the lock, after waiting at least ``at_least`` s."""
    release.set()
    outcome, waited = results.get(timeout=20)
    assert outcome == "locked" and waited >= at_least
    waiter.join(20)


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
    holder = PROCESSES.Process(target=hold_lock, args=(store_path, name, held, release))
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
        _release_and_expect_locked(waiter, results, release, at_least=0.2)
    finally:
        release.set()
        holder.join(20)


def test_a_lock_file_removed_by_clean_is_not_shared(store, store_path):
    """clean() unlinks the lock file while it holds the lock. A process that was
    waiting on the old file must not think it holds the lock while a newcomer
    holds the lock of the new file."""
    name = "adjutant-relock"
    held, release = PROCESSES.Event(), PROCESSES.Event()
    results, ready = PROCESSES.Queue(), PROCESSES.Event()
    newcomer = PROCESSES.Process(target=hold_lock, args=(store_path, name, held, release))
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
        _release_and_expect_locked(waiter, results, release, at_least=0.7)
    finally:
        release.set()
        if newcomer.pid is not None:
            newcomer.join(20)
