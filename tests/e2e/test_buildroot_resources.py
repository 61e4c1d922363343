"""A task's Buildroot releases everything it acquired, whichever step fails.

In process, against the hub simulator and real podman: a buildArch handler of
the daemon's own kind, on a host session, runs TaskBuildroot.build with a
failure injected right after each acquisition of tasks.buildroots.Buildroot,
and once inside the build after it made a container. Each time the error that
reaches the task is the injected one, and what was acquired before it is gone:
the hub record EXPIRED, the log uploader's thread stopped and its subsession
logged out, the task's containers removed, the container manager closed.
"""

from __future__ import annotations

import configparser
import threading
from pathlib import Path

import koji
import pytest

from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.config import load_config
from koji_adjutant.container import podman
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_TASK, LABEL_WORKER, ContainerSpec, Network
from koji_adjutant.daemon import worker_options
from koji_adjutant.tasks.buildarch import BuildArchTask
from koji_adjutant.tasks.buildroots import Buildroot, TaskBuildroot

from .harness import ARCH, DEV_IMAGE, HOST, PASSWORD, TAG

#: Buildroot's acquisitions, in the order it makes them.
STEPS = ["_choose", "_record", "_upload_logs", "_open_logs", "_containers", "_prepare"]


class Injected(Exception):
    pass


@pytest.fixture
def task(hub, e2e_tmp, e2e_worker_id):
    """A BuildArchTask as the daemon forks it: an open task of this host, its options from a kojid.conf."""
    conf = e2e_tmp / "kojid.conf"
    parser = configparser.ConfigParser(interpolation=None)
    parser["kojid"] = {"server": hub.url, "topurl": hub.topurl, "topdir": str(hub.topdir),
                       "workdir": str(e2e_tmp / "work"), "user": HOST, "password": PASSWORD}
    parser["adjutant"] = {"worker_id": e2e_worker_id, "default_image": DEV_IMAGE, "image_pull_policy": "never",
                          "state_dir": str(e2e_tmp / "state")}
    with open(conf, "w") as stream:
        parser.write(stream)
    options = worker_options(load_config(conf), None)
    session = koji.ClientSession(hub.url, {"user": HOST, "password": PASSWORD})
    session.login()
    session.exclusiveSession()
    params = [hub.srpms["hello-noarch"], TAG, ARCH, False, {"repo_id": hub.repo_id}]
    task_id = hub.create_task("buildArch", params)
    hub.assign(task_id, hub.builder_id)
    session.host.openTask(task_id)
    workdir = e2e_tmp / "work" / "tasks" / str(task_id)
    workdir.mkdir(parents=True)
    yield BuildArchTask(task_id, "buildArch", params, session, options, workdir=str(workdir))
    session.logout()


@pytest.fixture
def closed_managers(monkeypatch):
    """Every container manager the factory makes, noted when it is closed."""
    closed: list[podman.PodmanManager] = []

    class NotingManager(podman.PodmanManager):
        def close(self):
            super().close()
            closed.append(self)

    monkeypatch.setattr(podman, "PodmanManager", NotingManager)
    return closed


def build(task, hub):
    srpm = Path(hub.topdir) / "work" / hub.srpms["hello-noarch"]
    return TaskBuildroot(task, TAG, ARCH, hub.repo_id).build(srpm, Path(task.workdir) / "result")


def fail_after(monkeypatch, step: str) -> None:
    original = getattr(Buildroot, step)

    def acquire_then_fail(self, *args):
        original(self, *args)
        raise Injected(f"after {step}")

    monkeypatch.setattr(Buildroot, step, acquire_then_fail)


def uploader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("adjutant-logupload-") and t.is_alive()]


def task_containers(podman_manager, task) -> list:
    return podman_manager.list_containers({LABEL_TASK: str(task.id), LABEL_WORKER: task.adjutant.worker_id})


def assert_released(hub, podman_manager, task, closed_managers, step_index: int) -> None:
    records = [br for br in hub.buildroots if br["task_id"] == task.id]
    if step_index >= STEPS.index("_record"):
        assert [br["state"] for br in records] == ["EXPIRED"]
    else:
        assert records == []
    assert uploader_threads() == []
    assert task_containers(podman_manager, task) == []
    assert len(closed_managers) == (1 if step_index >= STEPS.index("_containers") else 0)


@pytest.mark.parametrize("step", STEPS)
def test_a_failure_after_each_acquisition_releases_what_came_before(step, hub, task, podman_manager,
                                                                      closed_managers, monkeypatch):
    fail_after(monkeypatch, step)
    with pytest.raises(Injected, match=f"after {step}"):
        build(task, hub)
    assert_released(hub, podman_manager, task, closed_managers, STEPS.index(step))


def test_a_failure_in_the_build_removes_its_containers(hub, task, podman_manager, closed_managers, monkeypatch):
    made = []

    def build_that_fails(self, spec, srpm, resultdir, logs, on_dependencies=None):
        container = self._manager.create(ContainerSpec(
            image=spec.image, command=["sleep", "300"], labels={**self._labels, LABEL_PURPOSE: "test"},
            network=Network.NONE))
        self._manager.start(container)
        made.append(container.id)
        raise Injected("in the build")

    monkeypatch.setattr(BuildrootRunner, "build", build_that_fails)
    with pytest.raises(Injected, match="in the build"):
        build(task, hub)
    assert made, "the build made no container"
    assert_released(hub, podman_manager, task, closed_managers, len(STEPS))


def test_after_a_success_the_logs_are_uploaded_and_the_record_expired(hub, task, podman_manager, closed_managers,
                                                                     monkeypatch):
    def build_that_writes(self, spec, srpm, resultdir, logs, on_dependencies=None):
        logs.note("build", "a build that builds nothing")
        on_dependencies([])
        return type("Built", (), {"installed": []})()

    monkeypatch.setattr(BuildrootRunner, "build", build_that_writes)
    result = build(task, hub)
    assert_released(hub, podman_manager, task, closed_managers, len(STEPS))
    build_log = f"{koji.pathinfo.taskrelpath(task.id)}/build.log"
    assert build_log in result.log_paths
    assert b"a build that builds nothing" in hub.uploaded(build_log)
