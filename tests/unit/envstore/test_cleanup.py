"""Choosing what to evict, and clean() against a mocked ContainerManager."""

from __future__ import annotations

from koji_adjutant.container.interface import ContainerInfo, ImageInfo
from koji_adjutant.envstore.cleanup import footprint, select_evictions
from koji_adjutant.envstore.names import LABEL_ENVIRONMENT, LABEL_STORE, image_ref

from .factories import GIB, NOW, PROCESSES, hold_lock, make_env


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
    holder = PROCESSES.Process(target=hold_lock, args=(store_path, "adjutant-busy", held, release))
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


def test_eviction_counts_own_layers_and_each_shared_base_once():
    """Eight environments of 524 MiB images on one 500 MiB base add 3 MiB each: the disk holds
    about 524 MiB, not 4.1 GiB, and a 1 GiB limit keeps every one."""
    mib = 1024 * 1024
    base = {"base_digest": "sha256:base", "base_size": 500 * mib}
    envs = [make_env(f"adjutant-f40-x86_64-{i:012x}", days_ago=i, size=524 * mib, own_size=3 * mib, **base)
            for i in range(8)]
    assert footprint(envs) == 500 * mib + 8 * 3 * mib
    assert select_evictions(envs, GIB, None, NOW) == []
    # Down to 510 MiB: the base stays while any environment uses it, so three are evicted, oldest first.
    assert [e.name for e in select_evictions(envs, 510 * mib, None, NOW)] == [e.name for e in envs[::-1][:5]]


def test_a_parent_is_not_evicted_before_the_environments_made_from_it():
    group = make_env("adjutant-f40-x86_64-000000000001", days_ago=9, size=10, own_size=10)
    child = make_env("adjutant-f40-x86_64-000000000002", days_ago=1, size=15, own_size=5,
                     inputs={"parent": group.name})
    other = make_env("adjutant-f40-x86_64-000000000003", days_ago=5, size=7, own_size=7)
    # The group layer is the least recently used, but evicting it would free nothing while its child lives.
    assert [e.name for e in select_evictions([group, child, other], 16, None, NOW)] == [other.name]
    assert [e.name for e in select_evictions([group, child, other], 0, None, NOW)] == \
        [other.name, child.name, group.name]
    # By age: the old group layer goes only once its child does.
    assert select_evictions([group, child], None, 3, NOW) == []
    assert [e.name for e in select_evictions([group, child], None, 0.5, NOW)] == [child.name, group.name]
