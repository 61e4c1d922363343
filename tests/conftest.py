"""Fixtures shared by every test layer.

Integration tests get one PodmanManager for the session (it starts its own
podman service). They are skipped only where podman truly cannot run, and
then loudly; under CI (CI=true) that is a failure instead. At the end of the
session the run fails if any container, or any image a test made, is left.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
REPO_ROOT = Path(__file__).resolve().parents[1]


def _podman_lines(*args: str) -> set[str]:
    out = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    return {line for line in out.stdout.splitlines() if line.strip()}


def _cannot_use_podman(reason: str):
    message = f"PODMAN UNAVAILABLE, integration tests not run: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (under CI this is an error: run scripts/setup-host.sh)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def podman_manager():
    if shutil.which("podman") is None:
        _cannot_use_podman("podman is not installed")
    if os.geteuid() == 0:
        _cannot_use_podman("tests must run as the unprivileged build user (scripts/run-tests.sh does that)")
    from koji_adjutant.container.podman import PodmanManager
    from koji_adjutant.errors import ContainerError

    try:
        manager = PodmanManager()
    except ContainerError as exc:
        _cannot_use_podman(str(exc))
    if manager.image_info(DEV_IMAGE) is None:
        manager.close()
        _cannot_use_podman(f"{DEV_IMAGE} is missing (images/dev/build-dev-image.sh makes it)")
    yield manager
    manager.close()


@pytest.fixture(scope="session")
def worker_id() -> str:
    """A worker label value unique to this test session."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session", autouse=True)
def no_logout_on_garbage_collection():
    """koji.ClientSession.__del__ logs a session out over HTTP. Run by the garbage collector
    inside the hub simulator's serving thread (which tests share with the test itself), that
    call waits for the very thread that makes it: a deadlock seen in a full run. Tests that
    care about logging out do it explicitly; the workers are processes of their own."""
    import koji

    original = koji.ClientSession.__del__
    koji.ClientSession.__del__ = lambda self: None
    yield
    koji.ClientSession.__del__ = original


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    if shutil.which("podman") is None or os.geteuid() == 0:
        yield
        return
    images_before = _podman_lines("images", "-q", "--no-trunc")
    yield
    containers = _podman_lines("ps", "-a", "--format", "{{.Names}} ({{.Image}})")
    new_images = _podman_lines("images", "-q", "--no-trunc") - images_before
    problems = []
    if containers:
        problems.append(f"containers left behind: {sorted(containers)}")
    if new_images:
        names = _podman_lines("image", "inspect", "--format", "{{.RepoTags}}", *new_images)
        problems.append(f"images left behind: {sorted(names)}")
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)
