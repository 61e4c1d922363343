"""Fixtures of the e2e tests: the real daemon (`koji-adjutant run`) against the hub simulator.

Per test: a hub (``hub``, harness.RecordingHub) on 127.0.0.1 with a host user,
the tag dev-build (arches: this machine's), a READY repo made by
examples/make-repo.sh at ``<topdir>/repos/dev-build/<id>/<arch>/`` whose RPMs
are all known to the hub, and the sample SRPMs under ``<topdir>/work/e2e/``.
``start_worker()`` writes a kojid.conf and starts the daemon as a real
subprocess in its own session, with TMPDIR in a directory of its own (its
private podman service and build workspaces live there). Teardown stops it
with SIGTERM (SIGKILL after 60 s), cleans its cached buildroots, and fails the
test when a process, a container or an image of the worker is left; it removes
them either way. A failed test shows the worker's log. Nothing is kept under
pytest's basetemp (see harness.scratch).
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import koji
import pytest

from koji_adjutant.envstore import EnvironmentStore

from .gitserver import GitServer
from .harness import (
    ARCH,
    DEV_IMAGE,
    HOST,
    KOJI_REPO_TAG,
    PASSWORD,
    REPO_SPECS,
    TAG,
    TIMEOUT,
    Inputs,
    RecordingHub,
    Worker,
    host_rpmbuild,
    make_inputs,
    scratch,
    unrecorded_images,
    worker_containers,
    worker_images,
)


@pytest.fixture(scope="session")
def e2e_inputs(podman_manager) -> Inputs:
    """The sample repo and the SRPMs, made once with the host's rpmbuild."""
    with scratch("adj-e2e-inputs-") as base:
        yield make_inputs(base)


@pytest.fixture
def e2e_tmp():
    with scratch("adj-e2e-test-") as path:
        yield path


@pytest.fixture
def hub(e2e_tmp, e2e_inputs):
    with RecordingHub(e2e_tmp / "koji") as hub:
        hub.worker_state_dir = e2e_tmp / "state"  # [adjutant] state_dir of the test's workers
        hub.builder_id = hub.add_host(HOST, arches=[ARCH], capacity=2.0, password=PASSWORD)
        hub.add_tag(TAG, arches=ARCH)
        hub.repo_id = hub.add_repo(TAG)
        shutil.copytree(e2e_inputs.repo, hub.topdir / "repos" / TAG / str(hub.repo_id) / ARCH)
        for rpm in e2e_inputs.repo_rpms:
            hub.add_rpm(**rpm)
        hub.write_repo_rpmlist(hub.repo_id)
        srpmdir = hub.workdir / "e2e"
        srpmdir.mkdir()
        for name, srpm in e2e_inputs.srpms.items():
            shutil.copy(srpm, srpmdir / srpm.name)
            hub.srpms[name] = f"e2e/{srpm.name}"
        # a policy with no rule for these builds: the worker falls back to its default image
        hub.set_policy("buildroot_image", "")
        hub.auto_assign = True
        yield hub


@pytest.fixture(scope="session")
def e2e_worker_id(worker_id) -> str:
    """The [adjutant] worker_id of this session's workers: unique, and not the integration tests' one."""
    return f"e2e-{worker_id}-{uuid.uuid4().hex[:4]}"


@pytest.fixture
def start_worker(request, hub, e2e_tmp, e2e_worker_id, podman_manager):
    """start_worker(**kojid_options, adjutant={...}, launcher=[...], force_lock=True) -> a running Worker; the same
    configuration file (and log) is reused when called again in one test.

    Afterwards the worker's cached buildroots are cleaned (their images are meant
    to stay between builds); any other container or image with its label is a leftover."""
    workers: list[Worker] = []
    request.node.e2e_workers = workers
    conf = e2e_tmp / "kojid.conf"

    def start(adjutant: dict | None = None, launcher: list[str] | None = None, force_lock: bool = True,
              **kojid) -> Worker:
        if not conf.exists() or kojid or adjutant:
            parser = configparser.ConfigParser(interpolation=None)
            parser["kojid"] = {
                "server": hub.url, "topurl": hub.topurl, "topdir": str(hub.topdir),
                "workdir": str(e2e_tmp / "work"), "user": HOST, "password": PASSWORD,
                "sleeptime": "1", "maxjobs": "2", "minspace": "1", "log_level": "INFO",
                "retry_interval": "1", "max_retries": "5",
                # a failed build's container is kept only where a test asks for it (and removes it)
                "failed_buildroot_lifetime": "0", **{k: str(v) for k, v in kojid.items()}}
            parser["adjutant"] = {
                "worker_id": e2e_worker_id, "default_image": DEV_IMAGE, "image_pull_policy": "never",
                "state_dir": str(hub.worker_state_dir), **(adjutant or {})}
            with open(conf, "w") as stream:
                parser.write(stream)
        # short: the private podman service's socket path must fit in sockaddr_un
        tmpdir = Path(tempfile.mkdtemp(prefix="adj-e2e-"))
        worker = Worker(conf, e2e_tmp / "worker.log", tmpdir, e2e_worker_id, launcher, force_lock)
        workers.append(worker.start())
        return worker

    yield start

    problems = []
    for worker in workers:
        if worker.alive:
            worker.signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            problems.append("the worker did not exit within 60 s of SIGTERM")
    for worker in workers:
        if worker.proc.returncode not in (0, -signal.SIGKILL, None):
            problems.append(f"the worker exited with {worker.proc.returncode}")
        worker.log_text()
        left = worker.kill_all() if worker.lingering() else []
        if left:
            problems.append(f"processes left behind (killed): {left}")
        shutil.rmtree(worker.tmpdir, ignore_errors=True)
    orphans = unrecorded_images(hub, e2e_worker_id)
    store = EnvironmentStore(hub.worker_state_dir / "environments.sqlite")
    store.clean(podman_manager, [env.name for env in store.list()])
    containers = worker_containers(e2e_worker_id)
    if containers:
        subprocess.run(["podman", "rm", "-f", *containers], capture_output=True, check=False)
        problems.append(f"containers left behind (removed): {containers}")
    images = worker_images(e2e_worker_id)
    if images:
        subprocess.run(["podman", "rmi", "-f", *images], capture_output=True, check=False)
    if orphans or images:
        problems.append(f"images left behind (removed): not cached environments {orphans}, "
                        f"after cleaning the cache {images}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for worker in getattr(item, "e2e_workers", [])[:1]:
            report.sections.append((f"worker log ({worker.log})", worker.log_text()[-30000:]))


# -- waiting ----------------------------------------------------------------------

def _check_workers(request) -> None:
    """Fail at once when a worker the test did not stop has died."""
    for worker in getattr(request.node, "e2e_workers", []):
        if not worker.alive and not worker.stopped:
            pytest.fail(f"the worker exited with {worker.proc.returncode}", pytrace=False)


@pytest.fixture
def wait_until(request):
    def wait(predicate, what: str, timeout: float = TIMEOUT, interval: float = 0.2):
        """Poll predicate() until it returns something true; that value, or fail naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            _check_workers(request)
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; "
                            f"load average {os.getloadavg()}", pytrace=False)
            time.sleep(interval)
    return wait


@pytest.fixture
def wait_task(hub, request):
    def wait(task_id: int, states=("CLOSED", "FAILED", "CANCELED"), timeout: float = TIMEOUT) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return hub.wait_task(task_id, states=states, timeout=1.0)
            except TimeoutError as exc:
                _check_workers(request)
                if time.monotonic() > deadline:
                    pytest.fail(f"{exc} (waited {timeout:.0f} s); load average {os.getloadavg()}",
                                pytrace=False)
    return wait


# -- a hub whose build tag's repo Koji itself makes; git sources ---------------------------------

@pytest.fixture(scope="module")
def sample_builds():
    """name -> [SRPM, binary RPMs] of the sample repo's packages, each one Koji build."""
    with scratch("adj-e2e-repo-builds-") as base:
        builds = {}
        for name in ("sample-buildsys-build", "libgreet"):
            srpm, rpms = host_rpmbuild(REPO_SPECS / f"{name}.spec", base / name)
            builds[name] = [srpm, *rpms]
        yield builds


@pytest.fixture
def koji_repo_hub(e2e_tmp, e2e_inputs, sample_builds):
    """A hub whose build tag has no repo yet, only tagged builds, and a builder in the
    createrepo channel (unlike the hub fixture, whose repo is made outside Koji)."""
    with RecordingHub(e2e_tmp / "koji") as hub:
        hub.worker_state_dir = e2e_tmp / "state"
        hub.builder_id = hub.add_host(HOST, arches=[ARCH], capacity=2.0, password=PASSWORD,
                                      channels=("default", "createrepo"))
        hub.add_tag(KOJI_REPO_TAG, arches=ARCH)
        hub.add_group(KOJI_REPO_TAG, "build", ["sample-buildsys-build"])
        hub.add_group(KOJI_REPO_TAG, "srpm-build", ["sample-buildsys-build"])
        hub.import_build(sample_builds["sample-buildsys-build"], tag=KOJI_REPO_TAG)
        srpmdir = hub.workdir / "e2e"
        srpmdir.mkdir()
        shutil.copy(e2e_inputs.srpms["hello-c"], srpmdir)
        hub.set_policy("buildroot_image", "")
        hub.admin = koji.ClientSession(hub.url, opts={"user": "hubsim-admin",
                                                      "password": hub.users[hub.admin_id]["password"]})
        hub.admin.login()
        hub.auto_assign = True
        yield hub


@pytest.fixture
def git_server():
    with scratch("adj-e2e-git-") as root:
        server = GitServer(root)
        try:
            yield server
        finally:
            server.close()
