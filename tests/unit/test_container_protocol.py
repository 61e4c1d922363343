"""PodmanManager is exactly the ContainerManager Protocol: the same public members, with the
same parameters, defaults and return annotations, so code written against the Protocol runs on it."""

from __future__ import annotations

import functools
import inspect

import pytest

from koji_adjutant.container.interface import ContainerManager
from koji_adjutant.container.podman import PodmanManager

#: the context manager protocol, which every caller uses
_DUNDERS = ("__enter__", "__exit__")


def methods(cls) -> set[str]:
    kinds = (property, functools.cached_property)
    return {name for name, value in vars(cls).items()
            if (not name.startswith("_") or name in _DUNDERS) and (callable(value) or isinstance(value, kinds))}


def test_the_same_methods_on_both_sides():
    assert methods(PodmanManager) == methods(ContainerManager)


def test_the_protocol_attributes_exist_on_a_manager(mocker):
    manager = PodmanManager(socket="unix:///run/podman.sock", client=mocker.MagicMock())
    for name in ContainerManager.__annotations__:
        assert hasattr(manager, name), name
    assert manager.uri == "unix:///run/podman.sock"


@pytest.mark.parametrize("name", sorted(methods(ContainerManager) - {"limit_mode"}))   # limit_mode: a property
def test_signatures_match(name):
    expected = inspect.signature(getattr(ContainerManager, name))
    actual = inspect.signature(getattr(PodmanManager, name))
    assert [(p.name, p.kind, p.default) for p in actual.parameters.values()] == \
        [(p.name, p.kind, p.default) for p in expected.parameters.values()]
    if name != "__enter__":   # each side returns its own type
        assert actual.return_annotation == expected.return_annotation
