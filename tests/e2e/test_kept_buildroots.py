"""failed_buildroot_lifetime end to end: the daemon keeps a failed buildArch's buildroot, leaves
it alone while it lives (no orphan removal, no task cleanup), lets the operator enter it, and
removes it once it expired."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from koji_adjutant.buildroot import kept
from koji_adjutant.container.interface import KEPT_NAME_PREFIX

from .harness import worker_containers

pytestmark = pytest.mark.podman

LIFETIME = 40


def test_a_failed_build_is_kept_for_the_operator_until_it_expires(hub, start_worker, wait_task, wait_until,
                                                                   e2e_worker_id, podman_manager):
    worker = start_worker(failed_buildroot_lifetime=LIFETIME)
    task_id = hub.submit("fail-build")
    assert wait_task(task_id)["state"] == "FAILED"
    (buildroot,) = kept.list_kept(podman_manager, e2e_worker_id)
    assert (buildroot.task, buildroot.package, buildroot.lifetime) == (str(task_id), "fail-build-1.0-1", LIFETIME)
    assert f"to look into it, run 'koji-adjutant enter {task_id}'" in hub.log(task_id, "root.log")
    assert f"kept the failed buildroot of task {task_id}" in worker.log_text()

    time.sleep(3)  # a few loops of the daemon (sleeptime 1): neither an orphan nor the task's to clean up
    assert worker_containers(e2e_worker_id) == [buildroot.id]
    entered = subprocess.run([sys.executable, "-m", "koji_adjutant.cli", "enter", "-c", str(worker.conf),
                              str(task_id), "--", "ls", "/builddir/build/SPECS"],
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert (entered.returncode, entered.stdout) == (0, "fail-build.spec\n"), entered.stderr

    wait_until(lambda: not worker_containers(e2e_worker_id), "the daemon to remove the expired buildroot",
               timeout=LIFETIME + 60)
    assert time.time() >= buildroot.expires_at
    assert podman_manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}") == []
    assert f"removing the kept failed buildroot of task {task_id}" in worker.log_text()
    assert hub.violations == []
