"""Buildroot images from a real registry under each image_pull_policy.

The dev image is pushed to docker-registry on 127.0.0.1 under a production
name (koji-adjutant-buildroot:<distro>-<arch>) and the worker's manager, which
may reach that registry over plain http (insecure_registries), ensures it.
The digest the manager reports, which the worker writes to container.log and
root.log, must be the registry's.
"""

from __future__ import annotations

import platform
import uuid

import pytest
from registry import build_from_dev, publish

from koji_adjutant.container.interface import PullPolicy
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.errors import ImageNotFoundError

pytestmark = pytest.mark.podman

DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
REPOSITORY = "koji-adjutant-buildroot"
TAG = f"f41-{platform.machine()}"


@pytest.fixture
def published(registry, registry_manager):
    """A buildroot image under its production name in the registry, and not here."""
    ref = f"{registry.host}/{REPOSITORY}:{TAG}"
    publish(registry_manager, build_from_dev("published"), ref)
    assert registry_manager.image_info(ref) is None
    yield ref
    registry_manager.remove_image(ref)


def test_if_not_present_pulls_once_and_reports_the_registrys_digest(registry, registry_manager, published):
    digest = registry.digest(REPOSITORY, TAG)
    assert digest and digest.startswith("sha256:")
    image = registry_manager.ensure_image(published, PullPolicy.IF_NOT_PRESENT)
    assert image.digest == digest
    assert image.labels["build"].startswith("localhost/adjutant-test-published-")
    registry.stop()  # present now: nothing is asked of the registry
    try:
        assert registry_manager.ensure_image(published, PullPolicy.IF_NOT_PRESENT).digest == digest
    finally:
        registry.start()


def test_never_uses_only_what_is_here(registry, registry_manager, published):
    with pytest.raises(ImageNotFoundError) as caught:
        registry_manager.ensure_image(published, PullPolicy.NEVER)
    assert "pull policy is 'never'" in str(caught.value)
    registry_manager.pull_image(published)
    assert registry_manager.ensure_image(published, PullPolicy.NEVER).digest == registry.digest(REPOSITORY, TAG)


def test_always_follows_the_registry_and_falls_back_when_it_is_down(registry, registry_manager, published, caplog):
    first = registry_manager.ensure_image(published, PullPolicy.ALWAYS)
    # The image maintainers publish a new build under the same name.
    newer = build_from_dev("newer")
    try:
        publish(registry_manager, newer, published)
        refreshed = registry_manager.ensure_image(published, PullPolicy.ALWAYS)
        assert refreshed.id != first.id and refreshed.labels.get("build") == newer
        assert refreshed.digest == registry.digest(REPOSITORY, TAG) != first.digest
        registry.stop()
        try:
            kept = registry_manager.ensure_image(published, PullPolicy.ALWAYS)
        finally:
            registry.start()
        assert kept.id == refreshed.id
        assert any("could not refresh image" in r.getMessage() for r in caplog.records)
    finally:
        for image in (published, newer, first.id):  # the first lost its name to the newer one
            registry_manager.remove_image(image)


def test_an_image_the_registry_lacks_fails_saying_why(registry, registry_manager):
    missing = f"{registry.host}/{REPOSITORY}:no-such-{uuid.uuid4().hex[:6]}"
    with pytest.raises(ImageNotFoundError) as caught:
        registry_manager.ensure_image(missing, PullPolicy.IF_NOT_PRESENT)
    assert "could not be pulled" in str(caught.value) and "manifest unknown" in str(caught.value)
    assert f"podman login {registry.host}" in str(caught.value), "the fix for a registry that wants credentials"


def test_a_registry_with_a_certificate_podman_cannot_check_is_refused_unless_listed(registry, published):
    """Without insecure_registries, plain http is refused: TLS is verified by default."""
    with PodmanManager() as strict:
        with pytest.raises(ImageNotFoundError) as caught:
            strict.ensure_image(published, PullPolicy.ALWAYS)
    assert "http" in str(caught.value).lower()
