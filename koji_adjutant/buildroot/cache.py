"""Reusing the result of a dependency phase: cached buildroot environments.

A finished dependency phase is committed as the image ``localhost/<name>``
(``adjutant-<tag>-<arch>-<hash12>``) and recorded in the environment store
with its key inputs and installed packages. The next build with the same key
starts its build phase from that image and skips dependency installation.
Before reuse the record is checked: made by this koji-adjutant version, from
the base image digest in use now, image still present; otherwise it is removed
and made again. The store's per-name lock makes two tasks that need the same
environment build it once, and neither sees a half-made one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from .. import __version__
from ..container.interface import ContainerManager, ImageInfo
from ..envstore import Environment, EnvironmentStore, environment_name, image_ref
from .cachekey import cache_inputs, cache_key
from .installed import InstalledPackage
from .spec import BuildrootSpec

log = logging.getLogger(__name__)


@dataclass
class Slot:
    """The environment a build will use: found (hit) or to be made by the caller."""

    name: str
    ref: str
    hit: bool
    installed: list[InstalledPackage]
    key: str
    inputs: dict


class BuildrootCache:
    def __init__(self, store: EnvironmentStore, manager: ContainerManager, lock_timeout: float = 3600):
        self._store = store
        self._manager = manager
        self._lock_timeout = lock_timeout

    @contextmanager
    def slot(self, spec: BuildrootSpec, srpm: Path | None, base: ImageInfo) -> Iterator[Slot]:
        """Hold the environment's lock while it is looked up and, on a miss, made.

        ``srpm`` is None for a buildroot without BuildRequires (see cache_inputs).
        On a miss the caller commits the dependency phase to ``slot.ref`` and
        calls ``record``; if it fails, nothing is recorded and the image is removed.
        """
        inputs = cache_inputs(spec, srpm)
        key = cache_key(inputs)
        name = environment_name(spec.tag, spec.arch, key)
        with self._store.lock(name, timeout=self._lock_timeout):
            found = self._usable(self._store.get(name), base)
            if found is not None:
                self._store.touch(name)
                log.info("reusing cached buildroot %s", name)
                yield Slot(name, found.image_ref, True,
                           [InstalledPackage(**p) for p in found.inputs.get("installed", [])], key, inputs)
                return
            slot = Slot(name, image_ref(name), False, [], key, inputs)
            try:
                yield slot
            except BaseException:
                self._manager.remove_image(slot.ref)
                raise

    def image_labels(self, slot: Slot) -> dict[str, str]:
        """What the environment's image is committed with: its name and this store, so an image
        committed but never recorded (the worker was killed in between) is found by env clean --all."""
        return self._store.image_labels(slot.name)

    def record(self, slot: Slot, spec: BuildrootSpec, base: ImageInfo, installed: list[InstalledPackage],
               image: ImageInfo) -> None:
        self._store.record(Environment(
            name=slot.name, tag=spec.tag, arch=spec.arch, inputs_hash=slot.key, base_image=base.ref,
            base_digest=base.digest, image_id=image.id, size=image.size, version=__version__,
            inputs={"key": slot.inputs, "installed": [asdict(p) for p in installed]}))

    def _usable(self, env: Environment | None, base: ImageInfo) -> Environment | None:
        if env is None:
            return None
        why = None
        if env.version != __version__:
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
