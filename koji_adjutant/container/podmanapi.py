"""How koji-adjutant's container types map to podman-py's arguments, and podman's answers back.

Pure functions, apart from PodmanManager (podman.py) so that the mapping, the
part that carries every isolation setting, reads and tests on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .interface import (
    PACKAGE_MANAGER_CAPABILITIES,
    ContainerRoot,
    ContainerSpec,
    ImageInfo,
    Network,
    Privileges,
    ResourceLimits,
)
from .limits import LimitMode, cgroup_create_args, pin_command

#: Container ids 0..65535: every id an image's files may use (nobody is 65534). The worker's
#: user namespace must hold that many subordinate ids (useradd gives 65536).
ID_RANGE = 65536

#: Processes a container may start beyond its pids limit before the kernel refuses: the
#: watchdog then sees the breach and kills it, instead of a fork bomb spinning at the limit.
_NPROC_MARGIN = 64


def create_args(spec: ContainerSpec, limit_mode: Callable[[], LimitMode],
                container_root: ContainerRoot) -> tuple[list[str], dict]:
    """The command and the keyword arguments of podman-py's containers.create for ``spec``.

    ``limit_mode`` is asked only for a spec with limits: it costs a ``podman info`` (~0.4 s)
    the first time, which a build container without limits must not pay.
    """
    command = list(spec.command)
    args: dict = {
        "labels": dict(spec.labels), "environment": dict(spec.env), "user": spec.user,
        "working_dir": spec.workdir, "log_config": {"Type": "k8s-file"},
        "mounts": [{"type": "bind", "source": str(m.source), "target": m.target, "read_only": m.read_only}
                   for m in spec.mounts],
    }
    if spec.limits != ResourceLimits():
        if limit_mode() is LimitMode.CGROUP:
            args.update(cgroup_create_args(spec.limits))
        else:
            command = pin_command(spec.limits, command)
    args.update(_isolation_args(spec, container_root))
    if spec.network is not Network.PRIVATE:
        args["network_mode"] = spec.network.value
    if spec.terminal:
        args.update(tty=True, stdin_open=True)
    return command, args


def _isolation_args(spec: ContainerSpec, container_root: ContainerRoot) -> dict:
    """Every container: a user namespace of its own, root at the configured host id, no new
    privileges, capabilities only for the package manager, and the pids limit as RLIMIT_NPROC.

    A user namespace per container also keeps process counts apart: two builds'
    users are counted separately, so one build's fork bomb cannot use up another's.
    """
    root = 1 if container_root is ContainerRoot.SUBORDINATE else 0
    idmap = [{"container_id": 0, "host_id": root, "size": ID_RANGE}]
    args: dict = {
        "userns_mode": {"nsmode": "private"},
        "idmappings": {"HostUIDMapping": False, "HostGIDMapping": False, "UIDMap": idmap, "GIDMap": idmap},
        "cap_drop": ["ALL"],
        "no_new_privileges": True,
    }
    if spec.privileges is Privileges.PACKAGE_MANAGER:
        args["cap_add"] = list(PACKAGE_MANAGER_CAPABILITIES)
    ulimits = {name: (soft, hard) for name, soft, hard in spec.limits.rlimits}
    if spec.limits.pids is not None:
        nproc = spec.limits.pids + _NPROC_MARGIN
        given = ulimits.get("nproc", (nproc, nproc))
        ulimits["nproc"] = (min(given[0], nproc), min(given[1], nproc))
    if ulimits:
        args["ulimits"] = [{"Name": name, "Soft": soft, "Hard": hard} for name, (soft, hard) in ulimits.items()]
    return args


def image_info_of(image, ref: str) -> ImageInfo:
    attrs = image.attrs
    digest = attrs.get("Digest") or ""
    if not digest:
        repo_digests = attrs.get("RepoDigests") or []
        digest = repo_digests[0].split("@", 1)[-1] if repo_digests else ""
    layers = tuple((attrs.get("RootFS") or {}).get("Layers") or ())
    return ImageInfo(ref=ref, id=image.id, digest=digest or image.id,
                     labels=dict(attrs.get("Labels") or {}), size=int(attrs.get("Size") or 0), layers=layers)


def label_filters(labels: Mapping[str, str]) -> list[str]:
    # A list: podman-py turns a list value of a filters dict into its str() and so matches nothing.
    return [f"label={key}={value}" for key, value in labels.items()]


def split_ref(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the tag is latest when it names none."""
    if ":" in ref.rsplit("/", 1)[-1]:
        repository, _, tag = ref.rpartition(":")
        return repository, tag
    return ref, "latest"


def list_status(attrs: Mapping) -> str:
    # A listed container's State is the status itself; podman-py's .status expects inspect's dict.
    state = attrs.get("State")
    if isinstance(state, Mapping):
        state = state.get("Status")
    return str(state or "unknown")
