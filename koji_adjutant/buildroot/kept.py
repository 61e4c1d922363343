"""Failed buildroots kept for the operator: kojid's failed_buildroot_lifetime, with containers.

kojid leaves a failed task's mock chroot in place for failed_buildroot_lifetime
seconds after the build (4 hours by default; sooner gone when the builder is
short of space), so that an operator can look into it. Here rpmbuild's
buildroot is the build phase's container, which is otherwise removed at once
(phase.py). With a lifetime, when rpmbuild fails with the package's own
failure, that container is kept, stopped:

- it was made with LABEL_KEEP_FAILED (the lifetime) and LABEL_PACKAGE besides
  its worker and task labels, since podman cannot relabel a container later;
- it is renamed ``adjutant-failed-<task>-<id12>`` (KEPT_NAME_PREFIX): the name
  says it was kept, and it expires its lifetime after it exited;
- its image gets a second name, ``localhost/<that name>:kept``. An image removed
  by one of several names is only untagged, so neither the removal of the
  images made for this build only (Provisioner.close) nor the eviction of a
  cached environment takes the image away while the container needs it.

It is never reused. No build reuses a container; builds start only from images
the package manager committed, which the cache finds by their own names
(``localhost/adjutant-<tag>-<arch>-<hash12>:latest``, envstore.names.image_ref), and
every name here has another repository and a tag that is not ``latest``. The
package's writes stay in the kept container. ``enter`` commits it to a name of
its own (ContainerManager.snapshot) and gives the operator a new container of
that: no network, no capability, no mount.

The daemon calls ``sweep`` at start and on each loop: it removes its own kept
buildroots that expired (all of them when space runs short, as kojid), then
every kept name whose container is gone; nothing else.
"""

from __future__ import annotations

import getpass
import logging
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from ..container.interface import (
    KEPT_NAME_PREFIX,
    LABEL_KEEP_FAILED,
    LABEL_PACKAGE,
    LABEL_PURPOSE,
    LABEL_TASK,
    LABEL_WORKER,
    ContainerHandle,
    ContainerInfo,
    ContainerManager,
    ContainerSpec,
    LogSink,
    Network,
    ResourceLimits,
)
from ..errors import AdjutantError
from ..resources import Resources

log = logging.getLogger(__name__)

#: Purpose label of the container an operator enters (the daemon leaves it alone).
ENTER_PURPOSE = "enter"
#: Tag of the name that holds a kept buildroot's image.
KEPT_TAG = "kept"
#: What ``enter`` runs without a command: bash where the image has it, else sh.
SHELL = ("/bin/sh", "-c", "command -v bash >/dev/null 2>&1 && exec bash; exec sh")


class KeptBuildrootError(AdjutantError):
    """No kept failed buildroot can be entered for a task: none is kept, or it expired."""


@dataclass(frozen=True)
class KeptBuildroot:
    """A failed build's container, kept: what ``enter --list`` shows and the sweep judges."""

    id: str
    name: str
    task: str
    package: str
    worker: str
    image_id: str
    #: seconds it is kept after it exited (kojid.conf failed_buildroot_lifetime then)
    lifetime: int
    #: when it exited, seconds since the epoch
    exited_at: float

    @property
    def expires_at(self) -> float:
        return self.exited_at + self.lifetime

    def expired(self, now: float) -> bool:
        return now >= self.expires_at

    @property
    def image_ref(self) -> str:
        return kept_image_ref(self.name)


def keep_labels(lifetime: int, package: str) -> dict[str, str]:
    """The labels that let a build container be kept, given when it is made."""
    return {LABEL_KEEP_FAILED: str(lifetime), LABEL_PACKAGE: package}


def kept_name(task: str, container_id: str) -> str:
    return f"{KEPT_NAME_PREFIX}{task}-{container_id[:12]}"


def kept_image_ref(name: str) -> str:
    return f"localhost/{name}:{KEPT_TAG}"


def kept_from(info: ContainerInfo) -> KeptBuildroot | None:
    """``info`` as a kept buildroot, or None when it is not one. A lifetime that cannot be read
    counts as 0: such a container has expired."""
    if not info.name.startswith(KEPT_NAME_PREFIX):
        return None
    try:
        lifetime = int(info.labels.get(LABEL_KEEP_FAILED, ""))
    except ValueError:
        lifetime = 0
    return KeptBuildroot(id=info.id, name=info.name, task=info.labels.get(LABEL_TASK, ""),
                         package=info.labels.get(LABEL_PACKAGE, ""), worker=info.labels.get(LABEL_WORKER, ""),
                         image_id=info.image_id, lifetime=lifetime, exited_at=info.exited_at)


def when(moment: float) -> str:
    """A time for people, in UTC."""
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def how_to_enter(task: str) -> str:
    """Where and how an operator enters the kept buildroot of ``task``: as this user, on this host
    (podman's storage is the user's own)."""
    return f"run 'koji-adjutant enter {task}' as {getpass.getuser()} on {socket.gethostname()}"


def keep(manager: ContainerManager, handle: ContainerHandle) -> str:
    """Keep the stopped container of a failed build; its kept name.

    Renamed before its image is named: ``sweep`` lists names before containers,
    so it never takes a kept name for one whose container is gone.
    """
    name = kept_name(handle.spec.labels[LABEL_TASK], handle.id)
    manager.stop(handle)
    manager.rename(handle, name)
    manager.tag_image(handle.spec.image, kept_image_ref(name))
    return name


def list_kept(manager: ContainerManager, worker: str) -> list[KeptBuildroot]:
    """The worker's kept buildroots, oldest first."""
    found = (kept_from(info) for info in manager.list_containers({LABEL_WORKER: worker}))
    return sorted((kept for kept in found if kept is not None), key=lambda kept: kept.exited_at)


def find(manager: ContainerManager, worker: str, task: str, now: float) -> KeptBuildroot:
    """The kept buildroot of ``task`` (its latest, should there be several), if it has not expired."""
    matching = [kept for kept in list_kept(manager, worker) if kept.task == task]
    if not matching:
        raise KeptBuildrootError(f"no failed buildroot of task {task} is kept by worker {worker}",
                                 hint="'koji-adjutant enter --list' lists those kept; a build is kept only when "
                                      "rpmbuild failed and failed_buildroot_lifetime is above 0")
    kept = matching[-1]
    if kept.expired(now):
        raise KeptBuildrootError(f"the failed buildroot of task {task} expired at {when(kept.expires_at)}",
                                 hint="the daemon removes it; raise failed_buildroot_lifetime to keep the next "
                                      "one longer")
    return kept


def enter(manager: ContainerManager, kept: KeptBuildroot, command: Sequence[str], limits: ResourceLimits,
          sink: LogSink) -> int:
    """Run ``command`` in a new container of ``kept``'s files, its output to ``sink`` (no command:
    a shell, on this process's terminal); its exit status. The container has no network, no
    capability and no mount, and runs as the build did (user, working directory and environment
    come with the commit); it and the image it was made from are removed afterwards."""
    suffix = uuid.uuid4().hex[:8]
    ref = f"localhost/{kept.name}:{ENTER_PURPOSE}-{suffix}"
    with Resources() as resources:
        manager.snapshot(kept.id, ref)
        resources.release(f"remove image {ref}", lambda: manager.remove_image(ref))
        spec = ContainerSpec(image=ref, command=list(command or SHELL),
                             name=f"adjutant-enter-{kept.task}-{suffix}",
                             labels={LABEL_WORKER: kept.worker, LABEL_TASK: kept.task, LABEL_PURPOSE: ENTER_PURPOSE},
                             network=Network.NONE, limits=limits, terminal=not command)
        if command:
            return manager.run(spec, sink).exit_code
        handle = manager.create(spec)
        resources.release(f"remove container {handle.name}", lambda: manager.remove(handle))
        return manager.attach_terminal(handle)


def sweep(manager: ContainerManager, worker: str, now: float, everything: bool = False) -> list[KeptBuildroot]:
    """Remove the worker's kept buildroots that expired (``everything``: all of them), then every
    kept name whose container is gone, which removes its image unless a cached environment still
    names it. Returns the buildroots removed."""
    refs = manager.image_refs(f"localhost/{KEPT_NAME_PREFIX}")  # before the containers: see keep()
    containers = manager.list_containers({})
    names = {info.name for info in containers}
    removed = []
    for info in containers:
        kept = kept_from(info)
        if kept is None or kept.worker != worker or not (everything or kept.expired(now)):
            continue
        log.info("removing the kept failed buildroot of task %s (%s, %s): %s", kept.task, kept.package, kept.name,
                 "short of space" if everything and not kept.expired(now) else f"expired {when(kept.expires_at)}")
        manager.remove(kept.id)
        names.discard(kept.name)
        removed.append(kept)
    for ref in refs:
        if ref.removeprefix("localhost/").rpartition(":")[0] not in names:
            log.info("removing image name %s: its kept buildroot is gone", ref)
            manager.remove_image(ref)
    return removed
