"""A registry every builder shares cached buildroot layers through (docs/adr/0012-shared-buildroot-cache.md).

A builder that makes a layer pushes its image to ``<cache_registry>/environments:<inputs hash>``;
a builder that needs it pulls it from there before making it. Only layers
made by the package manager alone are ever committed (provision.py), so
only those can be shared.

The registry is not trusted to say what an image is. Each image carries its
description in a label (``LABEL_DESCRIPTION``: the layer's full inputs, the
packages it installed, the base image digest, the koji-adjutant version, and
the description of the layer it was made from, down to the group layer), and
a pulled image is used only if every description in that chain hashes to its
key and names the base digest in use here and this version, the top one is
the key this builder computed, and the image's layers are the base image's
plus exactly one per description. Anything else is removed and the layer is
made locally. A registry that cannot be reached costs a warning, never a
build.

The lower layers of a pulled image need not be this builder's copy of its
parent: builders that miss the same layer at once each make a copy (same
files, other layer digests), and a child made on any copy verifies by its
own chain. Only the disk is paid twice: such a child brings its own copy of
the layers under it.

A registry makes a pushed tag visible only once its manifest is written,
after every blob: a puller sees the whole image or none, so two builders
making the same layer at once both succeed, the later push replacing the
earlier with an equivalent image.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..container.interface import ContainerManager, ImageInfo, RegistryAuth
from ..container.registries import read_auth
from ..envstore.records import Environment
from ..errors import AdjutantError
from .cachekey import key_of
from .layers import Layer

log = logging.getLogger(__name__)

#: Label of a cached layer's image: its description (describe()), JSON.
LABEL_DESCRIPTION = "io.koji-adjutant.environment.description"

#: The repository, under the configured namespace, that holds every shared layer.
REPOSITORY = "environments"


def describe(name: str, layer: Layer, base: ImageInfo, installed: list[Mapping],
             made_from: Mapping | None = None) -> dict:
    """What a layer's image is, as its label carries it and its record keeps it; ``made_from``
    is the description of its parent's image (None for the group layer)."""
    return {"name": name, "tag": layer.tag, "arch": layer.arch, "inputs_hash": layer.key,
            "base_image": base.ref, "base_digest": base.digest, "version": __version__,
            "inputs": {"key": layer.inputs, "installed": list(installed),
                       "requirements": sorted(layer.requirements),
                       "parent": layer.parent.name if layer.parent else None},
            "made_from": _lineage(made_from) if made_from is not None else None}


def _lineage(description: Mapping) -> dict:
    """A parent's description as its children carry it: without the packages it installed
    (each child lists every package it holds)."""
    inputs = {key: value for key, value in description["inputs"].items() if key != "installed"}
    return {**description, "inputs": inputs}


def description_of(image: ImageInfo | None) -> dict | None:
    """The description an image of this cache carries, or None."""
    try:
        description = json.loads((image.labels if image else {}).get(LABEL_DESCRIPTION, ""))
    except ValueError:
        return None
    return description if isinstance(description, dict) else None


def description_labels(description: Mapping) -> dict[str, str]:
    return {LABEL_DESCRIPTION: json.dumps(description, sort_keys=True)}


@dataclass(frozen=True)
class SharedCache:
    """The farm's registry of cached layers, as this builder reaches it."""

    registry: str  # host[:port]/namespace
    auth: RegistryAuth | None = None

    @classmethod
    def from_options(cls, adjutant) -> SharedCache | None:
        """The [adjutant] cache_registry, if set, with its credentials file read now."""
        if not adjutant.cache_registry:
            return None
        path = adjutant.cache_registry_credentials
        return cls(adjutant.cache_registry, read_auth(Path(path)) if path else None)

    def remote_ref(self, inputs_hash: str) -> str:
        return f"{self.registry}/{REPOSITORY}:{inputs_hash}"

    def fetch(self, manager: ContainerManager, name: str, layer: Layer, base: ImageInfo,
              local_ref: str) -> ImageInfo | None:
        """The layer's image pulled from the registry and named ``local_ref``, if it is there
        and passes every check; None (and nothing left behind) otherwise."""
        remote = self.remote_ref(layer.key)
        try:
            image = manager.pull_image(remote, self.auth)
        except AdjutantError as exc:  # its message only: the hint is for base images, not a cache miss
            log.info("buildroot %s is not in the shared cache %s: %s", name, self.registry, exc.message)
            return None
        try:
            why = refusal(image, name, layer, base)
            if why is not None:
                log.warning("refusing buildroot %s from the shared cache %s: %s; making it here",
                            name, self.registry, why)
                manager.remove_image(image.id)
                return None
            manager.tag_image(image.id, local_ref)
        finally:
            manager.remove_image(remote)  # its local name only; local_ref keeps a usable image
        log.info("pulled buildroot %s from the shared cache %s", name, self.registry)
        return manager.image_info(local_ref)

    def publish(self, manager: ContainerManager, env: Environment) -> None:
        """Push a layer made here; a failure is a warning (the build goes on, others make it too)."""
        remote = self.remote_ref(env.inputs_hash)
        try:
            manager.tag_image(env.image_ref, remote)
            try:
                manager.push_image(remote, remote, self.auth)
            finally:
                manager.remove_image(remote)
        except AdjutantError as exc:
            log.warning("could not share buildroot %s through %s: %s", env.name, self.registry, exc)
            return
        log.info("shared buildroot %s as %s", env.name, remote)


def refusal(image: ImageInfo, name: str, layer: Layer, base: ImageInfo) -> str | None:
    """Why a pulled image must not be used as ``layer``; None if it may."""
    malformed = f"its {LABEL_DESCRIPTION} label is missing or not a description"
    description = description_of(image)
    if description is None:
        return malformed
    try:
        return _chain_refusal(image, description, name, layer, base)
    except (TypeError, KeyError, AttributeError):
        return malformed


def _chain_refusal(image: ImageInfo, description: dict, name: str, layer: Layer, base: ImageInfo) -> str | None:
    inputs = description["inputs"]
    expected = {"name": name, "requirements": sorted(layer.requirements),
                "parent": layer.parent.name if layer.parent else None}
    found = {"name": description.get("name"), "requirements": inputs.get("requirements"),
             "parent": inputs.get("parent")}
    for what, value in expected.items():
        if found[what] != value:
            return f"its {what} is {found[what]!r}, not {value!r}"
    depth = 0
    entry: dict | None = description
    key = layer.key
    while entry is not None:
        depth += 1
        under = "" if depth == 1 else f"the layer {depth - 1} under it: "
        for field, value in (("inputs_hash", key), ("base_digest", base.digest), ("version", __version__)):
            if entry.get(field) != value:
                return f"{under}its {field} is {entry.get(field)!r}, not {value!r}"
        if key_of(entry["inputs"]["key"]) != key:
            return f"{under}its recorded inputs do not hash to its key"
        key = entry["inputs"]["key"].get("parent")
        entry = entry.get("made_from")
        if (key is None) != (entry is None):
            return f"{under}its key and the description of the layer it was made from disagree"
    if not base.layers or image.layers[:len(base.layers)] != base.layers \
            or len(image.layers) != len(base.layers) + depth:
        return "its layers are not those of the base image plus one per layer it was made of"
    return None


def environment_of(description: Mapping, image: ImageInfo, own_size: int, base: ImageInfo,
                   origin: str) -> Environment:
    """The store's record of a layer's image."""
    return Environment(
        name=description["name"], tag=description["tag"], arch=description["arch"],
        inputs_hash=description["inputs_hash"], base_image=description["base_image"],
        base_digest=description["base_digest"], image_id=image.id, size=image.size,
        version=description["version"], inputs=description["inputs"],
        own_size=own_size, base_size=base.size, origin=origin)
