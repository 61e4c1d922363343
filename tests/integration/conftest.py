"""Fixtures the integration tests share."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from cachebuilds import Harness
from registry import Registry

from koji_adjutant.envstore import EnvironmentStore, image_ref

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory) -> Path:
    """The sample repo of examples/, made once per module (make-repo.sh wants a fresh dir)."""
    repo = tmp_path_factory.mktemp("sample-repo") / "sample-repo"
    subprocess.run([str(EXAMPLES / "make-repo.sh"), str(repo)], check=True, capture_output=True, text=True)
    assert (repo / "repodata" / "repomd.xml").is_file()
    return repo


@pytest.fixture
def cache_harness(podman_manager, worker_id, sample_repo, tmp_path):
    """A private store; a tag of its own, so no other run can share (or clean) its environments."""
    store = EnvironmentStore(tmp_path / "envs.sqlite")
    h = Harness(podman_manager, store, worker_id, tmp_path, sample_repo, tag=f"cachetest-{uuid.uuid4().hex[:8]}")
    yield h
    # Also any image of this tag that a failed step kept out of the store.
    tagged = subprocess.run(["podman", "images", "--format", "{{.Repository}}",
                             "--filter", f"reference=localhost/adjutant-{h.tag}-*"],
                            capture_output=True, text=True, check=False).stdout.split()
    names = {env.name for env in store.list()} | {ref.rpartition("/")[2] for ref in tagged}
    store.clean(podman_manager, names)
    assert store.list() == []
    left = [name for name in names if podman_manager.image_info(image_ref(name)) is not None]
    assert left == [], f"environment images left behind: {left}"


@pytest.fixture(scope="module")
def registry():
    """A registry on 127.0.0.1 (tests/registry.py), one per module."""
    with Registry() as running:
        yield running


@pytest.fixture
def registry_manager(registry):
    """A manager that may reach ``registry`` over plain http (insecure_registries)."""
    from koji_adjutant.container.podman import PodmanManager

    with PodmanManager(insecure_registries=[registry.host]) as made:
        yield made
