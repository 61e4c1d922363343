"""Reusing buildroot layers across builds: cached environments.

Each layer a package-manager container made (provision.py) is committed as
``localhost/<name>`` (``adjutant-<tag>-<arch>-<hash12>``) and recorded in the
environment store with its full key, its inputs and its installed packages.
Before reuse the record is checked: its full inputs hash equals the key
computed now (the name holds only 48 bits of it), it was made by this
koji-adjutant version from the base image digest in use now, and its image is
still present; otherwise it is removed and made again. The store's per-name
lock makes two tasks that need the same layer make it once, and neither sees
a half-made one. With a shared cache (sharedcache.py), a layer not found here
is looked for in the farm's registry before it is made, and one made here is
pushed there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict

from .. import __version__
from ..container.interface import ContainerManager, ImageInfo
from ..envstore.names import environment_name, image_ref
from ..envstore.records import ORIGIN_BUILT, Environment
from ..envstore.settings import store_settings
from ..envstore.store import EnvironmentStore
from ..resources import Resources
from .installed import InstalledPackage
from .layers import BuildrootImage, Layer
from .sharedcache import SharedCache, describe, description_labels, description_of, environment_of

log = logging.getLogger(__name__)

#: The labels to commit a layer's image with, given the packages it installed.
LabelsFor = Callable[[list[InstalledPackage]], Mapping[str, str]]
#: Makes a layer's image: (image reference, its labels) -> (its packages, the image).
MakeLayer = Callable[[str, LabelsFor], tuple[list[InstalledPackage], ImageInfo]]


class BuildrootCache:
    def __init__(self, store: EnvironmentStore, manager: ContainerManager, lock_timeout: float = 3600,
                 shared: SharedCache | None = None):
        """``shared``: the farm's registry, looked in before a layer is made and given each layer made here."""
        self._store = store
        self._manager = manager
        self._lock_timeout = lock_timeout
        self._shared = shared

    @classmethod
    def configured(cls, adjutant, manager: ContainerManager) -> BuildrootCache:
        """The cache the [adjutant] section sets up: its store, and its shared registry if any."""
        return cls(store_settings(adjutant).open(), manager, shared=SharedCache.from_options(adjutant))

    @property
    def store(self) -> EnvironmentStore:
        return self._store

    def obtain(self, layer: Layer, base: ImageInfo, make: MakeLayer) -> BuildrootImage:
        """The layer's image: reused when a usable record has it, else pulled from the shared
        cache, else made by ``make``; recorded either way.

        If ``make`` fails, nothing is recorded and its image is removed.
        """
        name = environment_name(layer.tag, layer.arch, layer.key)
        with self._store.lock(name, timeout=self._lock_timeout):
            found = self._usable(self._store.get(name), layer.key, base)
            if found is not None:
                self._store.touch(name)
                log.info("reusing cached buildroot %s", name)
                return _image_of(found, reused=True)
            env = self._pull(name, layer, base) or self._make(name, layer, base, make)
            self._store.record(env)
        if env.origin == ORIGIN_BUILT and self._shared is not None:
            self._shared.publish(self._manager, env)  # unlocked: other tasks may use the layer meanwhile
        pulled = env.origin != ORIGIN_BUILT
        return _image_of(env, reused=pulled, pulled_from=env.origin if pulled else "")

    def _pull(self, name: str, layer: Layer, base: ImageInfo) -> Environment | None:
        if self._shared is None:
            return None
        image = self._shared.fetch(self._manager, name, layer, base, image_ref(name))
        if image is None:
            return None
        return environment_of(description_of(image) or {}, image, self._own_size(image, self._parent(layer), base),
                              base, origin=self._shared.registry)

    def _make(self, name: str, layer: Layer, base: ImageInfo, make: MakeLayer) -> Environment:
        ref = image_ref(name)
        parent = self._parent(layer)
        made_from = description_of(parent)
        described: list[dict] = []  # the description the image was committed with

        def labels(installed: list[InstalledPackage]) -> dict[str, str]:
            described.append(describe(name, layer, base, [asdict(p) for p in installed], made_from))
            return {**self._store.image_labels(name), **description_labels(described[-1])}

        with Resources() as resources:
            resources.on_failure(f"remove the unfinished image {ref}", lambda: self._manager.remove_image(ref))
            _installed, image = make(ref, labels)
        return environment_of(described[-1], image, self._own_size(image, parent, base), base, origin=ORIGIN_BUILT)

    def _parent(self, layer: Layer) -> ImageInfo | None:
        """The image of the layer's parent; None for the group layer."""
        return self._manager.image_info(layer.parent.ref) if layer.parent else None

    def _own_size(self, image: ImageInfo, parent: ImageInfo | None, base: ImageInfo) -> int:
        """What the layer's image adds on disk to the image it was made from (its parent's, or
        the base for the group layer). A layer pulled from the shared cache may stand on another
        builder's copy of its parent: then everything above the base is its own."""
        made_from = base
        if parent is not None and parent.layers and image.layers[:-1] == parent.layers:
            made_from = parent
        return max(self._manager.layers_size(image.ref) - self._manager.layers_size(made_from.ref), 0)

    def recall(self, key: str, base: ImageInfo, looked_up: BuildrootImage) -> BuildrootImage | None:
        """The image a resolution remembered under ``key`` led to, if it is still usable; marked
        used unless it is ``looked_up``, the layer the caller just had from ``obtain``."""
        name = self._store.resolution(key)
        if name is None:
            return None
        with self._store.lock(name, timeout=self._lock_timeout):
            env = self._store.get(name)
            found = self._usable(env, env.inputs_hash if env else "", base)
            if found is None:
                return None
            if name != looked_up.name:
                self._store.touch(name)
            return _image_of(found, reused=True)

    def remember(self, key: str, image: BuildrootImage) -> None:
        self._store.remember_resolution(key, image.name)

    def _usable(self, env: Environment | None, key: str, base: ImageInfo) -> Environment | None:
        if env is None:
            return None
        why = None
        if env.inputs_hash != key:
            why = "its inputs differ from these (the names of two environments collided)"
        elif env.version != __version__:
            why = f"made by koji-adjutant {env.version}, this is {__version__}"
        elif env.base_digest != base.digest:
            why = f"base image {base.ref} changed ({env.base_digest[:19]} → {base.digest[:19]})"
        elif self._manager.image_info(env.image_ref) is None:
            why = "its image is gone"
        if why is None:
            return env
        log.info("not reusing cached buildroot %s: %s; making it anew", env.name, why)
        self._manager.remove_image(env.image_ref)
        self._store.remove(env.name)
        return None


def _image_of(env: Environment, reused: bool, pulled_from: str = "") -> BuildrootImage:
    return BuildrootImage(ref=env.image_ref, key=env.inputs_hash, name=env.name,
                          installed=tuple(InstalledPackage(**p) for p in env.inputs.get("installed", [])),
                          requirements=frozenset(env.inputs.get("requirements", [])), reused=reused,
                          pulled_from=pulled_from)
