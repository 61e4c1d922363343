"""The worker takes its buildroot image from a real registry, and the digest it reports to the
hub (container.log, root.log) is the registry's. Each pull policy against the registry is
tested at the manager (tests/integration/test_registry_images.py); here the whole path once."""

from __future__ import annotations

import pytest
from registry import Registry, build_from_dev, publish

from .harness import ARCH

pytestmark = pytest.mark.podman

REPOSITORY = "koji-adjutant-buildroot"
TAG = f"f41-{ARCH}"


@pytest.fixture
def published(podman_manager):
    """A production-named image in a registry on 127.0.0.1; this builder does not have it."""
    from koji_adjutant.container.podman import PodmanManager

    with Registry() as registry, PodmanManager(insecure_registries=[registry.host]) as manager:
        ref = f"{registry.host}/{REPOSITORY}:{TAG}"
        publish(manager, build_from_dev("e2e"), ref)
        assert manager.image_info(ref) is None
        yield registry, ref
        manager.remove_image(ref)


def test_the_worker_pulls_its_image_and_reports_the_registrys_digest(hub, start_worker, wait_task, published):
    registry, ref = published
    start_worker(adjutant={"default_image": ref, "image_pull_policy": "always", "insecure_registries": registry.host})
    task = wait_task(hub.submit("hello-noarch"))
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    digest = registry.digest(REPOSITORY, TAG)
    container_log = hub.log(task["id"], "container.log")
    assert f"image: {ref}\n" in container_log
    assert f"digest: {digest}\n" in container_log
    assert f"image {ref} digest {digest}" in hub.log(task["id"], "root.log")
