"""What a pulled layer must prove before it is used (the checks of SharedCache, pure logic)."""

from __future__ import annotations

import json

import pytest

from koji_adjutant import __version__
from koji_adjutant.buildroot.layers import BuildrootImage, Layer
from koji_adjutant.buildroot.sharedcache import LABEL_DESCRIPTION, SharedCache, describe, description_labels
from koji_adjutant.container.interface import ImageInfo

BASE = ImageInfo(ref="registry.example.com/br:f40", id="base-id", digest="sha256:base", layers=("l-base",))
PARENT_IMAGE = ImageInfo(ref="localhost/adjutant-f40-x86_64-aaaa:latest", id="parent-id", digest="d",
                         layers=("l-base", "l-group"))
PARENT = BuildrootImage(ref=PARENT_IMAGE.ref, key="a" * 64, installed=(), name="adjutant-f40-x86_64-aaaa")
LAYER = Layer("f40", "x86_64", {"layer": "requirements", "parent": "a" * 64, "requirements": ["gcc"]},
              frozenset({"gcc"}), PARENT)
NAME = "adjutant-f40-x86_64-bbbb"


@pytest.fixture
def manager(mocker):
    manager = mocker.Mock()
    manager.image_info.side_effect = lambda ref: PARENT_IMAGE if ref == PARENT_IMAGE.ref else None
    return manager


def pulled(description: dict | None = None, layers=("l-base", "l-group", "l-gcc"), raw: str | None = None):
    label = raw if raw is not None else description_labels(description or describe(NAME, LAYER, BASE, []))
    labels = {LABEL_DESCRIPTION: label} if isinstance(label, str) else label
    return ImageInfo(ref="r", id="pulled-id", digest="d", labels=labels, layers=layers)


def refusal(manager, image: ImageInfo) -> str | None:
    return SharedCache._refusal(manager, image, NAME, LAYER, BASE)


def test_an_image_made_as_this_builder_would_is_accepted(manager):
    assert refusal(manager, pulled()) is None


def changed(**changes) -> dict:
    description = describe(NAME, LAYER, BASE, [])
    inputs = changes.pop("inputs", {})
    description.update(changes)
    description["inputs"].update(inputs)
    return description


@pytest.mark.parametrize("description, reason", [
    (changed(base_digest="sha256:other"), "its base_digest is 'sha256:other'"),
    (changed(version="0.0.1"), f"its version is '0.0.1', not {__version__!r}"),
    (changed(name="adjutant-f40-x86_64-cccc"), "its name is"),
    (changed(inputs_hash="c" * 64), "its inputs_hash is"),
    (changed(inputs={"requirements": ["gcc", "make"]}), "its requirements is"),
    (changed(inputs={"parent": "adjutant-other"}), "its parent is"),
    (changed(inputs={"key": {**LAYER.inputs, "requirements": ["gcc", "make"]}}), "do not hash to its key"),
])
def test_a_description_that_does_not_match_is_refused(manager, description, reason):
    assert reason in refusal(manager, pulled(description))


@pytest.mark.parametrize("label", ["", "not json", json.dumps({"name": NAME}), json.dumps([1, 2])])
def test_a_missing_or_malformed_description_is_refused(manager, label):
    assert "label is missing or not a description" in refusal(manager, pulled(raw=label))


def test_no_label_at_all(manager):
    assert "label is missing" in refusal(manager, pulled(raw={}))


@pytest.mark.parametrize("layers", [
    ("l-base", "l-group"),                      # nothing of its own
    ("l-base", "l-group", "l-gcc", "l-extra"),  # a layer more than a commit makes
    ("l-other", "l-group", "l-gcc"),            # another base
    (),
])
def test_layers_must_be_the_parents_plus_one(manager, layers):
    assert "layers are not those" in refusal(manager, pulled(layers=layers))


def test_a_parent_that_is_gone_refuses(manager):
    manager.image_info.side_effect = lambda ref: None
    assert "layers are not those" in refusal(manager, pulled())
