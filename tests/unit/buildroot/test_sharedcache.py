"""What a pulled layer must prove before it is used (the checks of SharedCache, pure logic)."""

from __future__ import annotations

import json

import pytest

from koji_adjutant import __version__
from koji_adjutant.buildroot.cachekey import requirements_inputs
from koji_adjutant.buildroot.layers import BuildrootImage, Layer
from koji_adjutant.buildroot.sharedcache import LABEL_DESCRIPTION, describe, description_labels, refusal
from koji_adjutant.container.interface import ImageInfo

BASE = ImageInfo(ref="registry.example.com/br:f40", id="base-id", digest="sha256:base", layers=("l-base",))
GROUP = Layer("f40", "x86_64", {"layer": "group", "repos": ["pkgset"]})
GROUP_NAME = "adjutant-f40-x86_64-aaaa"
GROUP_DESCRIPTION = describe(GROUP_NAME, GROUP, BASE, [{"name": "bash"}])
PARENT = BuildrootImage(ref=f"localhost/{GROUP_NAME}:latest", key=GROUP.key, installed=(), name=GROUP_NAME)
LAYER = Layer("f40", "x86_64", requirements_inputs(GROUP.key, frozenset({"gcc"})), frozenset({"gcc"}), PARENT)
NAME = "adjutant-f40-x86_64-bbbb"


def pulled(description: dict | None = None, layers=("l-base", "l-group", "l-gcc"), raw: str | None = None):
    label = raw if raw is not None else description_labels(
        description or describe(NAME, LAYER, BASE, [], GROUP_DESCRIPTION))
    labels = {LABEL_DESCRIPTION: label} if isinstance(label, str) else label
    return ImageInfo(ref="r", id="pulled-id", digest="d", labels=labels, layers=layers)


def refused(image: ImageInfo, layer: Layer = LAYER, name: str = NAME) -> str | None:
    return refusal(image, name, layer, BASE)


def test_an_image_made_as_this_builder_would_is_accepted():
    assert refused(pulled()) is None


def test_a_group_layer_needs_no_chain():
    assert refused(pulled(GROUP_DESCRIPTION, layers=("l-base", "l-group")), GROUP, GROUP_NAME) is None


def test_a_child_made_on_another_builders_copy_of_its_parent_is_accepted():
    """Two builders that missed the group layer at once hold copies with other layer digests;
    a child pushed by either verifies by its own chain, not by this builder's copy."""
    assert refused(pulled(layers=("l-base", "l-group-made-elsewhere", "l-gcc"))) is None


def changed(**changes) -> dict:
    description = describe(NAME, LAYER, BASE, [], GROUP_DESCRIPTION)
    inputs = changes.pop("inputs", {})
    description.update(changes)
    description["inputs"].update(inputs)
    return description


def changed_below(**changes) -> dict:
    """The layer's description with its parent's (in made_from) changed."""
    description = changed()
    description["made_from"].update(changes)
    return description


@pytest.mark.parametrize("description, reason", [
    (changed(base_digest="sha256:other"), "its base_digest is 'sha256:other'"),
    (changed(version="0.0.1"), f"its version is '0.0.1', not {__version__!r}"),
    (changed(name="adjutant-f40-x86_64-cccc"), "its name is"),
    (changed(inputs_hash="c" * 64), "its inputs_hash is"),
    (changed(inputs={"requirements": ["gcc", "make"]}), "its requirements is"),
    (changed(inputs={"parent": "adjutant-other"}), "its parent is"),
    (changed(inputs={"key": {**LAYER.inputs, "requirements": ["gcc", "make"]}}), "do not hash to its key"),
    # the chain under it
    (changed(made_from=None), "its key and the description of the layer it was made from disagree"),
    (changed_below(base_digest="sha256:other"), "the layer 1 under it: its base_digest is 'sha256:other'"),
    (changed_below(version="0.0.1"), "the layer 1 under it: its version is '0.0.1'"),
    (changed_below(inputs_hash="c" * 64), "the layer 1 under it: its inputs_hash is"),
    (changed_below(inputs={"key": {"layer": "group", "repos": ["forged"]}}),
     "the layer 1 under it: its recorded inputs do not hash"),
    (changed_below(made_from=GROUP_DESCRIPTION), "the layer 1 under it: its key and the description"),
])
def test_a_description_that_does_not_match_is_refused(description, reason):
    why = refused(pulled(description))
    assert why is not None and reason in why


def test_a_group_layer_that_claims_a_parent_is_refused():
    description = {**GROUP_DESCRIPTION, "made_from": GROUP_DESCRIPTION}
    assert "disagree" in refused(pulled(description, layers=("l-base", "l-x", "l-group")), GROUP, GROUP_NAME)


@pytest.mark.parametrize("label", ["", "not json", json.dumps({"name": NAME}), json.dumps([1, 2]),
                                   json.dumps({**changed(), "made_from": "not a description"})])
def test_a_missing_or_malformed_description_is_refused(label):
    assert "label is missing or not a description" in refused(pulled(raw=label))


def test_no_label_at_all():
    assert "label is missing" in refused(pulled(raw={}))


@pytest.mark.parametrize("layers", [
    ("l-base", "l-group"),                      # nothing of its own
    ("l-base", "l-group", "l-gcc", "l-extra"),  # a layer more than its chain made
    ("l-other", "l-group", "l-gcc"),            # another base
    (),
])
def test_layers_must_be_the_bases_plus_one_per_layer_of_its_chain(layers):
    assert "layers are not those" in refused(pulled(layers=layers))


def test_a_base_without_layers_verifies_nothing():
    base = ImageInfo(ref=BASE.ref, id=BASE.id, digest=BASE.digest, layers=())
    assert "layers are not those" in refusal(pulled(layers=("l-group", "l-gcc")), NAME, LAYER, base)


def test_a_description_carries_its_parents_without_their_package_lists():
    description = describe(NAME, LAYER, BASE, [{"name": "gcc"}], GROUP_DESCRIPTION)
    assert description["inputs"]["installed"] == [{"name": "gcc"}]
    assert "installed" not in description["made_from"]["inputs"]
    assert description["made_from"]["inputs_hash"] == GROUP.key
    assert GROUP_DESCRIPTION["inputs"]["installed"] == [{"name": "bash"}], "the parent's own is untouched"


def test_a_chain_of_several_rounds_verifies_to_the_group_layer():
    name = "adjutant-f40-x86_64-cccc"
    middle = BuildrootImage(ref=f"localhost/{NAME}:latest", key=LAYER.key, installed=(), name=NAME)
    top = Layer("f40", "x86_64", requirements_inputs(LAYER.key, frozenset({"gcc", "make"})),
                frozenset({"gcc", "make"}), middle)
    description = describe(name, top, BASE, [], describe(NAME, LAYER, BASE, [], GROUP_DESCRIPTION))
    assert refusal(pulled(description, layers=("l-base", "g", "gcc", "make")), name, top, BASE) is None
    assert "layers are not those" in refusal(pulled(description), name, top, BASE)
    description["made_from"]["made_from"]["version"] = "0.0.1"
    assert "the layer 2 under it: its version" in refusal(
        pulled(description, layers=("l-base", "g", "gcc", "make")), name, top, BASE)
