"""Which cached environments to evict, and removing them from podman and the store.

Removal runs under the environment's lock, so an environment a task is making
or reusing is never pulled from under it, and it is idempotent: an image or
container already gone is no error, so a clean interrupted halfway can be
repeated.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..container.interface import ImageInfo
from .errors import EnvironmentLockedError, EnvironmentStoreError
from .names import LABEL_ENVIRONMENT, LABEL_STORE, check_name, image_ref
from .records import Environment
from .timestamps import utcnow

if TYPE_CHECKING:
    from .store import EnvironmentStore

log = logging.getLogger(__name__)


def footprint(environments: Iterable[Environment]) -> int:
    """The bytes ``environments`` hold on disk: what each adds, and each base image once."""
    envs = list(environments)
    return sum(env.added for env in envs) + sum({env.base_digest: env.base_size for env in envs}.values())


def select_evictions(environments: Iterable[Environment], max_total_bytes: int | None,
                     max_age_days: float | None, now: datetime | None = None) -> list[Environment]:
    """Which environments to evict: every one not used for more than ``max_age_days``
    (oldest first), then the least recently used of the rest until what remains
    holds at most ``max_total_bytes`` (footprint). None disables a limit.

    An environment another one kept was made from is not evicted before it:
    removing it would free nothing (the child's image holds its layers).
    """
    now = now or utcnow()
    keep = sorted(environments, key=lambda env: (env.used, env.name))
    cutoff = now - timedelta(days=max_age_days) if max_age_days is not None else None
    children = Counter(env.inputs.get("parent") for env in keep)
    evict: list[Environment] = []
    total = footprint(keep)
    while True:
        leaves = [env for env in keep if not children[env.name]]
        victim = next((env for env in leaves if cutoff is not None and env.used < cutoff), None)
        if victim is None and max_total_bytes is not None and total > max_total_bytes and leaves:
            victim = leaves[0]
        if victim is None:
            return evict
        keep.remove(victim)
        evict.append(victim)
        children[victim.inputs.get("parent")] -= 1
        total = footprint(keep)


def clean(store: EnvironmentStore, manager, names: Iterable[str], dry_run: bool = False,
          lock_timeout: float | None = 30.0) -> list[Environment]:
    """Remove the environments ``names``: containers still labelled with the
    environment, its image, its record and its lock file. Returns the records
    that were (with ``dry_run``: would be) removed; ``manager`` (a
    ContainerManager) is not touched in a dry run and may be None then.

    A name without a record still has any stray image and containers removed,
    since a worker killed between commit and record leaves exactly that. An
    environment locked by another process for longer than ``lock_timeout`` is
    skipped with a warning rather than waited on forever.
    """
    removed: list[Environment] = []
    for name in dict.fromkeys(names):
        check_name(name)
        if dry_run:
            env = store.get(name)
            if env is not None:
                removed.append(env)
            continue
        if manager is None:
            raise EnvironmentStoreError("cleaning environments needs a container manager")
        try:
            with store.lock(name, timeout=lock_timeout):
                env = store.get(name)
                for container in manager.list_containers({LABEL_ENVIRONMENT: name}):
                    log.info("removing container %s of environment %s", container.name, name)
                    manager.remove(container.id)
                manager.remove_image(image_ref(name))
                if env is not None and env.image_id:
                    manager.remove_image(env.image_id)  # left unnamed if another commit took the name
                store.remove(name)
                store.locks.discard(name)
        except EnvironmentLockedError as exc:
            log.warning("not cleaning environment %s: %s", name, exc)
            continue
        if env is not None:
            log.info("removed environment %s", name)
            removed.append(env)
    return removed


def unrecorded_images(store: EnvironmentStore, manager) -> list[ImageInfo]:
    """The store's images that no record names: left by a worker killed between commit
    and record, or unnamed (dangling) when such an environment was later made again."""
    recorded = {env.image_id for env in store.list()}
    return [image for image in manager.list_images({LABEL_STORE: store.identity}) if image.id not in recorded]


def clean_unrecorded(store: EnvironmentStore, manager, lock_timeout: float | None = 30.0) -> list[ImageInfo]:
    """Remove the unrecorded images; each under its environment's lock, so an image a
    build has committed and is about to record is left alone. Returns those removed."""
    removed = []
    for image in unrecorded_images(store, manager):
        name = image.labels.get(LABEL_ENVIRONMENT, "")
        if not name or "/" in name:
            log.warning("not removing image %s: its %s label %r names no environment",
                        image.id[:19], LABEL_ENVIRONMENT, name)
            continue
        try:
            with store.lock(name, timeout=lock_timeout):
                if any(env.image_id == image.id for env in store.list()):
                    continue  # recorded while we waited for the lock
                log.info("removing image %s of environment %s: no record names it", image.id[:19], name)
                manager.remove_image(image.id)
        except EnvironmentLockedError as exc:
            log.warning("not removing image %s of environment %s: %s", image.id[:19], name, exc)
            continue
        removed.append(image)
    return removed
