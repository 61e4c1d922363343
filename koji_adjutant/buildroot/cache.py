"""Reusing buildroot layers across builds: cached environments.

Each layer a package-manager container made (provision.py) is committed as
``localhost/<name>`` (``adjutant-<tag>-<arch>-<hash12>``) and recorded in the
environment store with its full key, its inputs and its installed packages.
Before reuse the record is checked: its full inputs hash equals the key
computed now (the name holds only 48 bits of it), it was made by this
koji-adjutant version from the base image digest in use now, and its image is
still present; otherwise it is removed and made again. The store's per-name
lock makes two tasks that need the same layer make it once, and neither sees
a half-made one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict

from .. import __version__
from ..container.interface import ContainerManager, ImageInfo
from ..envstore.names import environment_name, image_ref
from ..envstore.records import Environment
from ..envstore.store import EnvironmentStore
from ..resources import Resources
from .installed import InstalledPackage
from .layers import BuildrootImage, Layer

log = logging.getLogger(__name__)

#: Makes a layer's image: (image reference, labels to commit it with) -> (its packages, the image).
MakeLayer = Callable[[str, Mapping[str, str]], tuple[list[InstalledPackage], ImageInfo]]


class BuildrootCache:
    def __init__(self, store: EnvironmentStore, manager: ContainerManager, lock_timeout: float = 3600):
        self._store = store
        self._manager = manager
        self._lock_timeout = lock_timeout

    def obtain(self, layer: Layer, base: ImageInfo, make: MakeLayer) -> BuildrootImage:
        """The layer's image: reused when a usable record has it, else made by ``make`` and recorded.

        If ``make`` fails, nothing is recorded and its image is removed.
        """
        name = environment_name(layer.tag, layer.arch, layer.key)
        with self._store.lock(name, timeout=self._lock_timeout):
            found = self._usable(self._store.get(name), layer.key, base)
            if found is not None:
                self._store.touch(name)
                log.info("reusing cached buildroot %s", name)
                return _image_of(found, reused=True)
            ref = image_ref(name)
            with Resources() as resources:
                resources.on_failure(f"remove the unfinished image {ref}", lambda: self._manager.remove_image(ref))
                installed, image = make(ref, self._store.image_labels(name))
            env = Environment(
                name=name, tag=layer.tag, arch=layer.arch, inputs_hash=layer.key, base_image=base.ref,
                base_digest=base.digest, image_id=image.id, size=image.size, version=__version__,
                inputs={"key": layer.inputs, "installed": [asdict(p) for p in installed],
                        "requirements": sorted(layer.requirements),
                        "parent": layer.parent.name if layer.parent else None})
            self._store.record(env)
            return _image_of(env, reused=False)

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


def _image_of(env: Environment, reused: bool) -> BuildrootImage:
    return BuildrootImage(ref=env.image_ref, key=env.inputs_hash, name=env.name,
                          installed=tuple(InstalledPackage(**p) for p in env.inputs.get("installed", [])),
                          requirements=frozenset(env.inputs.get("requirements", [])), reused=reused)
