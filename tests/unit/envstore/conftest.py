"""A store in tmp_path, and a mocked ContainerManager for cleaning."""

from __future__ import annotations

import pytest

from koji_adjutant.envstore.store import EnvironmentStore


@pytest.fixture
def store_path(tmp_path):
    return tmp_path / "state" / "environments.sqlite"


@pytest.fixture
def store(store_path):
    return EnvironmentStore(store_path)


@pytest.fixture
def manager(mocker):
    manager = mocker.Mock(name="ContainerManager")
    manager.list_containers.return_value = []
    manager.list_images.return_value = []
    return manager
