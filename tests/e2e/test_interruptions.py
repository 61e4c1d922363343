"""The daemon when things go wrong mid-build: cancel, SIGTERM, SIGKILL and restart, hub away.

The sleep-* samples sleep in %build (harness.SLEEPERS), so "mid-build" is the
build phase: the buildroot's layer is already committed and recorded as a
cached environment, and the build container runs.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import koji
import pytest

from .harness import cached_environments, unrecorded_images, worker_containers, worker_images

pytestmark = pytest.mark.podman

BUILD_PHASE = "Start: build phase"


@pytest.fixture
def in_build_phase(hub, wait_until):
    """in_build_phase(task_id): wait until the hub has the task's state.log saying the build phase started."""
    def wait(task_id: int) -> None:
        wait_until(lambda: BUILD_PHASE in hub.log(task_id, "state.log"), f"task {task_id} to reach the build phase")
    return wait


def test_cancel_mid_build_kills_the_build_and_the_worker_goes_on(hub, start_worker, wait_task, wait_until,
                                                                 in_build_phase, e2e_worker_id):
    worker = start_worker()
    task_id = hub.submit("sleep-long")
    in_build_phase(task_id)
    assert worker_containers(e2e_worker_id), "the build container should be running"
    canceled = time.monotonic()
    hub.cancel_task(task_id)
    wait_until(lambda: not worker_containers(e2e_worker_id), "the canceled task's containers to go", timeout=30)
    took = time.monotonic() - canceled
    # measured: ~1.3 s (the task process takes SIGINT and removes its containers; kojid's
    # cleanupTask waits up to 3 s for that, and the daemon removes what is left)
    assert took < 6, f"the canceled build's containers went only after {took:.1f} s"
    assert unrecorded_images(hub, e2e_worker_id) == []
    assert worker.alive
    assert hub.task(task_id)["state"] == "CANCELED"
    wait_until(lambda: [b["state"] for b in hub.buildroots_of(task_id)] == ["EXPIRED"],
               "the canceled task's buildroot to be expired", timeout=30)

    next_task = hub.submit("hello-noarch")
    task = wait_task(next_task)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    assert worker.alive
    # the canceled build's buildroot layer was finished and cached: the next build (same key) reuses it
    (env,) = cached_environments(hub)
    assert f"reusing cached buildroot {env.name}" in hub.log(next_task, "root.log")
    # what the hub refused were the canceled task's own last calls, nothing else
    assert {v["message"] for v in hub.violations} <= {f"host {hub.builder_id} does not own task {task_id}"}, \
        hub.violations


def test_sigterm_mid_build_frees_the_task_and_exits_cleanly(hub, start_worker, wait_until, in_build_phase,
                                                            e2e_worker_id):
    worker = start_worker()
    task_id = hub.submit("sleep-long")
    in_build_phase(task_id)
    assert hub.task(task_id)["state"] == "OPEN"
    assert worker_containers(e2e_worker_id)
    signaled = time.time()
    worker.signal(signal.SIGTERM)
    assert worker.wait(60) == 0
    task = hub.task(task_id)
    assert task["state"] == "FREE" and task["host_id"] is None
    assert any(ts > signaled and freed == task_id for ts, freed in hub.freed), "the task was not freed"
    assert worker_containers(e2e_worker_id) == []
    assert unrecorded_images(hub, e2e_worker_id) == []
    assert worker.processes() == []
    last_update = hub.updates[-1]
    assert last_update[0] > signaled and last_update[1:] == (0.0, False)
    assert hub.host(hub.builder_id)["ready"] is False
    assert "shutting down" in worker.log_text()


def test_sigkill_mid_build_then_restart_cleans_up_and_the_task_completes(hub, start_worker, wait_task, wait_until,
                                                                         in_build_phase, e2e_worker_id):
    first = start_worker()
    task_id = hub.submit("sleep-short")
    in_build_phase(task_id)
    (stale,) = hub.buildroots_of(task_id)
    assert stale["state"] == "BUILDING"
    orphans = set(worker_containers(e2e_worker_id))
    assert orphans, "the build container should be running"
    (env,) = cached_environments(hub)
    assert env.image_id.removeprefix("sha256:") in worker_images(e2e_worker_id)
    first.kill_all()
    assert set(worker_containers(e2e_worker_id)) == orphans, "killing the worker does not remove containers"
    assert hub.task(task_id)["state"] == "OPEN"

    # no scheduling until the restarted worker has cleaned up: a new attempt of the task
    # would remove the old attempt's containers itself (they carry the same task label)
    hub.auto_assign = False
    restarted = time.time()
    second = start_worker()
    wait_until(lambda: any(ts > restarted and freed == task_id for ts, freed in hub.freed),
               "the restarted worker to free the stale task", timeout=60)
    wait_until(lambda: len([u for u in hub.updates if u[0] > restarted]) >= 2, "its second loop", timeout=60)
    assert worker_containers(e2e_worker_id) == [], "orphaned containers left after the first loop"
    assert hub.br_history[stale["id"]] == ["INIT", "BUILDING", "EXPIRED"]
    assert hub.task(task_id)["state"] == "FREE"
    hub.auto_assign = True
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    result = task["result"]
    assert result["brootid"] != stale["id"]
    assert [b["state"] for b in hub.buildroots_of(task_id)] == ["EXPIRED", "EXPIRED"]
    taskdir = koji.pathinfo.taskrelpath(task_id)
    assert result["rpms"] == [f"{taskdir}/sleep-short-1.0-1.noarch.rpm"]
    assert hub.uploaded(result["rpms"][0])
    assert second.alive
    assert hub.violations == []
    log = second.log_text()
    assert "removed orphaned containers" in log and f"expiring stale buildroot {stale['id']} of task {task_id}" in log
    wait_until(lambda: not worker_containers(e2e_worker_id), "no container of the worker to be left", timeout=30)
    # the environment cached before the kill survived it and served the second attempt
    assert [e.name for e in cached_environments(hub)] == [env.name]
    assert f"reusing cached buildroot {env.name}" in hub.log(task_id, "root.log")
    assert unrecorded_images(hub, e2e_worker_id) == []


def test_hub_away_mid_build_the_task_still_closes(hub, start_worker, wait_task, wait_until, in_build_phase):
    worker = start_worker(retry_interval=2, max_retries=300)
    task_id = hub.submit("sleep-short")
    in_build_phase(task_id)
    away = 20
    hub.suspend(away)
    suspended = time.time()
    time.sleep(away / 2)
    assert worker.alive
    task = wait_task(task_id)
    assert time.time() >= suspended + away - 1
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    result = task["result"]
    taskdir = koji.pathinfo.taskrelpath(task_id)
    assert result["rpms"] == [f"{taskdir}/sleep-short-1.0-1.noarch.rpm"]
    assert result["srpms"] == [f"{taskdir}/sleep-short-1.0-1.src.rpm"]
    for path in (*result["rpms"], *result["srpms"], *result["logs"]):
        assert hub.uploaded(path)
    assert "sleep-short: sleeping" in hub.log(task_id, "build.log")
    assert "Finish: build phase" in hub.log(task_id, "state.log")
    # one attempt that waited for the hub: not a second one after the first gave up
    (broot,) = hub.buildroots_of(task_id)
    assert hub.br_history[broot["id"]] == ["INIT", "BUILDING", "EXPIRED"]
    assert [freed for _, freed in hub.freed] == []
    # the daemon lives on: heartbeats again once the hub is back
    wait_until(lambda: hub.updates and hub.updates[-1][0] > suspended + away + 2,
               "a heartbeat after the hub came back", timeout=60)
    assert worker.alive
    assert hub.violations == []


def _podman_services_under(directory) -> list[int]:
    """Pids of `podman system service` processes whose socket lies under ``directory``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:3] == [b"podman", b"system", b"service"] and str(directory).encode() in b" ".join(argv):
            pids.append(int(cmdline.parent.name))
    return pids


def test_a_dead_podman_service_is_started_again_and_builds_go_on(hub, start_worker, wait_task, wait_until):
    worker = start_worker()
    wait_until(lambda: hub.host(hub.builder_id)["ready"], "the worker to report ready")
    (first,) = _podman_services_under(worker.tmpdir)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: "starting it again" in worker.log.read_text(errors="replace"),
               "the worker to notice its podman service died", timeout=60)
    task = wait_task(hub.submit("hello-noarch"))
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    assert worker.alive
    assert [pid for pid in _podman_services_under(worker.tmpdir)] != [first]
