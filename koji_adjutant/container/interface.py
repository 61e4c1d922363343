"""The boundary between koji-adjutant and a container engine.

Task handlers and the buildroot engine describe containers with these typed
values and drive them through ContainerManager; only container/podman.py
knows podman. Keeping the boundary this narrow is what lets the tests of the
buildroot logic swap the engine out, and what keeps the mount contract in
one place (see docs/adr/0001-container-boundary.md).
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import ContainerSpecError

if TYPE_CHECKING:
    from .limits import LimitMode

#: Labels every container of koji-adjutant carries, so orphans can be found.
LABEL_WORKER = "io.koji-adjutant.worker"
LABEL_TASK = "io.koji-adjutant.task"
LABEL_PURPOSE = "io.koji-adjutant.purpose"
LABEL_BROOT = "io.koji-adjutant.brootid"
#: On a build container that is kept if rpmbuild fails: for how many seconds (kojid.conf
#: failed_buildroot_lifetime). Set when it is made, as podman cannot relabel a container later.
LABEL_KEEP_FAILED = "io.koji-adjutant.keep-failed"
#: On such a container: the SRPM it builds, for ``koji-adjutant enter --list``.
LABEL_PACKAGE = "io.koji-adjutant.package"

#: Name prefix of a kept failed buildroot (buildroot/kept.py). A container's labels are fixed
#: when it is made, so its new name is what marks a build container as kept once rpmbuild failed;
#: ``remove_by_label`` leaves such containers to their expiry.
KEPT_NAME_PREFIX = "adjutant-failed-"


class Stream(str, enum.Enum):
    STDOUT = "stdout"
    STDERR = "stderr"


#: Receives output while a container runs: (stream, chunk of bytes).
LogSink = Callable[[Stream, bytes], None]


class Network(str, enum.Enum):
    """NONE: only loopback. PRIVATE: a user-mode network (slirp4netns) of its own.
    HOST: the worker's own network, as a mock chroot has; only for package downloads."""

    NONE = "none"
    PRIVATE = "private"
    HOST = "host"


class Privileges(str, enum.Enum):
    """What a container's processes may do beyond an ordinary user.

    PACKAGE_MANAGER: root with only the capabilities dnf and rpm scriptlets need
    (PACKAGE_MANAGER_CAPABILITIES); the only kind of container ever committed.
    NONE: no capability at all, not even in the bounding set: every container
    that runs package code.
    """

    PACKAGE_MANAGER = "package-manager"
    NONE = "none"


#: File ownership and modes of what rpm installs, user and group switches of
#: scriptlets (useradd, runuser), and the file capabilities rpm sets.
PACKAGE_MANAGER_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "SETFCAP")


class ContainerRoot(str, enum.Enum):
    """Who root inside a container is on the host.

    SUBORDINATE: the first id of the worker's subordinate range (/etc/subuid),
    which owns nothing of the worker's: a process escaping a container lands
    as a user that cannot read the hub credentials. Needs a storage that maps
    ids without copying images (fuse-overlayfs), or each image is copied once.
    WORKER: the worker's own user (podman's rootless default).
    """

    SUBORDINATE = "subordinate"
    WORKER = "worker"


class PullPolicy(str, enum.Enum):
    ALWAYS = "always"
    IF_NOT_PRESENT = "if-not-present"
    NEVER = "never"


@dataclass(frozen=True)
class Mount:
    """A bind mount. Read-only unless it is explicitly made writable."""

    source: Path
    target: str
    read_only: bool = True

    def validate(self) -> None:
        if not Path(self.source).is_absolute():
            raise ContainerSpecError(f"mount source {self.source} is not an absolute path",
                                     hint="use absolute host paths in mounts")
        if not Path(self.source).exists():
            raise ContainerSpecError(f"mount source {self.source} does not exist",
                                     hint="create it before the container is made")
        if not self.target.startswith("/") or posixpath.normpath(self.target) != self.target:
            raise ContainerSpecError(f"mount target {self.target!r} is not a normalized absolute path",
                                     hint="use a plain absolute path inside the container")


@dataclass(frozen=True)
class ResourceLimits:
    """Limits applied to the whole container; None means unlimited."""

    memory_bytes: int | None = None
    pids: int | None = None
    cpus: float | None = None
    #: (name, soft, hard) resource limits of the container's processes, names as podman's
    #: --ulimit takes them (kojid.conf RLIMIT_NOFILE becomes "nofile")
    rlimits: tuple[tuple[str, int, int], ...] = ()

    def validate(self) -> None:
        for name, value in (("memory", self.memory_bytes), ("pids", self.pids), ("cpus", self.cpus)):
            if value is not None and value <= 0:
                raise ContainerSpecError(f"{name} limit must be positive, got {value}")


@dataclass(frozen=True)
class ContainerSpec:
    """Everything needed to create one container."""

    image: str
    command: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    user: str | None = None
    workdir: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mounts: Sequence[Mount] = ()
    network: Network = Network.NONE
    limits: ResourceLimits = field(default_factory=ResourceLimits)
    privileges: Privileges = Privileges.NONE
    #: stdin kept open and a TTY, for an operator's shell (``koji-adjutant enter``); see
    #: ContainerManager.attach_terminal
    terminal: bool = False

    def validate(self) -> None:
        if not self.command:
            raise ContainerSpecError("container spec has no command")
        seen: set[str] = set()
        for mount in self.mounts:
            mount.validate()
            if mount.target in seen:
                raise ContainerSpecError(f"mount target {mount.target} is used twice",
                                         hint="give every mount its own target path")
            seen.add(mount.target)
        self.limits.validate()
        for key in (LABEL_WORKER, LABEL_PURPOSE):
            if key not in self.labels:
                raise ContainerSpecError(f"container spec lacks the label {key}",
                                         hint="every container must be traceable to its worker and purpose")


@dataclass(frozen=True)
class ImageInfo:
    ref: str
    id: str
    digest: str
    labels: Mapping[str, str] = field(default_factory=dict)
    size: int = 0
    #: its layers (diff ids), base first: an image made from another starts with all of its layers
    layers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryAuth:
    """A user and password for a registry (podman's --creds); the password is never shown."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class ContainerHandle:
    id: str
    name: str
    spec: ContainerSpec


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str
    labels: Mapping[str, str]
    #: the id of the image it was made from
    image_id: str = ""
    #: when it last exited (seconds since the epoch); 0 if it never has
    exited_at: float = 0.0


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    duration: float


class ContainerManager(Protocol):
    """What the rest of koji-adjutant may ask of a container engine.

    container/factory.py makes one; tests/unit/test_container_protocol.py holds the
    implementation to exactly these members and signatures.
    """

    #: where the engine's API answers, for tools that must talk to it themselves
    uri: str

    @property
    def limit_mode(self) -> LimitMode:
        """How resource limits are enforced on this host (cgroups, or the watchdog)."""
        ...

    def storage_root(self) -> str:
        """Where the engine keeps this user's images and containers (for free-space checks)."""
        ...

    def storage_maps_ids(self) -> bool:
        """Whether a container of an image costs no copy of it (ADR 0009)."""
        ...

    def ensure_image(self, ref: str, policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> ImageInfo: ...

    def image_info(self, ref: str) -> ImageInfo | None: ...

    def layers_size(self, ref: str) -> int:
        """Bytes of the image's layers, each counted once (podman's history); ``image_info``'s size
        may count a layer several times, so the difference of two of these is what one image
        adds to the other."""
        ...

    def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> ImageInfo:
        """Pull ``ref`` from its registry; ImageNotFoundError, with the registry's reason, if it cannot."""
        ...

    def push_image(self, ref: str, destination: str, auth: RegistryAuth | None = None) -> None:
        """Push the local image ``ref`` to the registry reference ``destination``; ContainerError if it cannot."""
        ...

    def create(self, spec: ContainerSpec) -> ContainerHandle: ...

    def start(self, handle: ContainerHandle) -> None: ...

    def wait(self, handle: ContainerHandle, timeout: float | None = None) -> RunResult: ...

    def start_attached(self, handle: ContainerHandle, sink: LogSink | None = None,
                       timeout: float | None = None) -> None: ...

    def run(self, spec: ContainerSpec, sink: LogSink | None = None,
            timeout: float | None = None) -> RunResult: ...

    def exec(self, handle: ContainerHandle, command: Sequence[str], sink: LogSink | None = None,
             user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, timeout: float | None = None) -> int: ...

    def commit(self, handle: ContainerHandle, ref: str,
               labels: Mapping[str, str] | None = None) -> ImageInfo: ...

    def snapshot(self, container_id: str, ref: str) -> ImageInfo:
        """A kept failed buildroot's files as the image ``ref``, for an operator to enter a new
        container of; ``commit`` refuses such a container, so this one takes only kept
        buildroots, and only names under theirs (never a cached environment's)."""
        ...

    def attach_terminal(self, handle: ContainerHandle) -> int:
        """Start a ``terminal`` container on this process's terminal; its exit status. An
        operator's shell needs a TTY and raw keystrokes, which no output sink gives."""
        ...

    def rename(self, handle: ContainerHandle, name: str) -> None:
        """Give a container a new name: the only mark a container can get after it is made,
        used to mark a failed build's container as kept (KEPT_NAME_PREFIX)."""
        ...

    def tag_image(self, ref: str, new_ref: str) -> None:
        """Give an image a second name. An image removed by one of several names is only
        untagged, so the name keeps it (and the kept container of it) alive."""
        ...

    def image_refs(self, prefix: str) -> list[str]:
        """Every image name (``repository:tag``) that starts with ``prefix``, to find the
        names kept buildroots hold images by."""
        ...

    def kill(self, handle: ContainerHandle) -> None: ...

    def stop(self, handle: ContainerHandle) -> None: ...

    def remove(self, handle: ContainerHandle | str) -> None: ...

    def list_images(self, labels: Mapping[str, str]) -> list[ImageInfo]: ...

    def remove_image(self, ref: str) -> None: ...

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]: ...

    def remove_by_label(self, labels: Mapping[str, str]) -> list[str]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ContainerManager: ...

    def __exit__(self, *exc_info) -> None: ...
