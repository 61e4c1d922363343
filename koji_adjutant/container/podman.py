"""PodmanManager: the ContainerManager on rootless podman, through podman-py."""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence

from podman import PodmanClient
from podman.errors import APIError, NotFound, PodmanError

from ..errors import (
    ContainerError,
    ContainerOOMError,
    ContainerTimeoutError,
    ImageNotFoundError,
    PodmanUnreachableError,
)
from .interface import (
    KEPT_NAME_PREFIX,
    ContainerHandle,
    ContainerInfo,
    ContainerRoot,
    ContainerSpec,
    ImageInfo,
    LogSink,
    Privileges,
    PullPolicy,
    RegistryAuth,
    RunResult,
)
from .limits import LimitMode, Watchdog, detect_mode, pin_command
from .podmanapi import create_args, label_filters, list_status, split_ref
from .podmanimages import PodmanImages
from .podmanstreams import LOG_DRAIN_TIMEOUT, await_output, pump
from .service import PodmanService

log = logging.getLogger(__name__)

_POLL_INTERVAL = 0.05

_ROOT_USERS = (None, "", "root", "0", "0:0", "root:root")


class PodmanManager:
    """Drives rootless podman for one worker process.

    Use it as a context manager, or call close(): when it started its own
    podman service, close() stops it.
    """

    def __init__(self, socket: str | None = None, container_root: ContainerRoot = ContainerRoot.SUBORDINATE, *,
                 client: PodmanClient | None = None, insecure_registries: Iterable[str] = ()):
        """``client``: a podman-py client already on ``socket``, used instead of making one (tests
        give their own). ``insecure_registries``: see PodmanImages."""
        self._container_root = container_root
        self._service: PodmanService | None = None
        if client is None:
            service = self._service = PodmanService(socket)  # it answered a ping: reachable
            try:
                client = PodmanClient(base_url=service.uri)
            except BaseException:
                service.close()
                raise
        self._client: PodmanClient = client
        self.images = PodmanImages(client, insecure_registries)
        self.uri: str = self._service.uri if self._service is not None else socket or ""
        self._watchdogs: dict[str, Watchdog] = {}
        #: containers in which something ran as another user than root: never committed
        self._tainted: set[str] = set()
        self._lock = threading.Lock()

    @functools.cached_property
    def _info(self) -> dict:
        """podman info, asked only when needed: it costs ~0.2 s, a good part of a cached build."""
        try:
            return self._client.info()
        except (PodmanError, OSError) as exc:
            raise PodmanUnreachableError(f"podman service at {self.uri} failed: {exc}") from exc

    @functools.cached_property
    def limit_mode(self) -> LimitMode:
        mode = detect_mode(self._info.get("host", {}))
        log.debug("podman on %s; resource limits enforced by %s", self.uri, mode.value)
        return mode

    # -- lifecycle of the manager ------------------------------------------
    def close(self) -> None:
        for watchdog in list(self._watchdogs.values()):
            watchdog.stop()
        self._watchdogs.clear()
        self._client.close()
        if self._service is not None:
            self._service.close()

    def __enter__(self) -> PodmanManager:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def storage_root(self) -> str:
        """Where podman keeps this user's images and containers (for free-space checks)."""
        return self._info.get("store", {}).get("graphRoot", "")

    def storage_maps_ids(self) -> bool:
        """Whether the storage shows an image under another id mapping without copying it.

        With ContainerRoot.SUBORDINATE every container runs under such a mapping;
        overlay without a mount program (fuse-overlayfs) then copies each image
        in full (~4 s and its whole size per image) the first time it is used.
        """
        store = self._info.get("store", {})
        options = store.get("graphOptions") or {}
        return store.get("graphDriverName") != "overlay" or any("mount_program" in key for key in options)

    # -- images: PodmanImages (podmanimages.py) does the work ------------------
    def image_info(self, ref: str) -> ImageInfo | None:
        return self.images.info(ref)

    def ensure_image(self, ref: str, policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> ImageInfo:
        return self.images.ensure(ref, policy)

    def layers_size(self, ref: str) -> int:
        return self.images.layers_size(ref)

    def pull_image(self, ref: str, auth: RegistryAuth | None = None) -> ImageInfo:
        return self.images.pull(ref, auth)

    def push_image(self, ref: str, destination: str, auth: RegistryAuth | None = None) -> None:
        self.images.push(ref, destination, auth)

    def list_images(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        return self.images.labelled(labels)

    def tag_image(self, ref: str, new_ref: str) -> None:
        self.images.tag(ref, new_ref)

    def image_refs(self, prefix: str) -> list[str]:
        return self.images.names(prefix)

    def remove_image(self, ref: str) -> None:
        self.images.remove(ref)

    # -- containers ----------------------------------------------------------
    def create(self, spec: ContainerSpec) -> ContainerHandle:
        spec.validate()
        if self.image_info(spec.image) is None:
            raise ImageNotFoundError(f"image {spec.image} is not present for this user")
        name = spec.name or f"adjutant-{uuid.uuid4().hex[:12]}"
        command, args = create_args(spec, lambda: self.limit_mode, self._container_root)
        try:
            container = self._client.containers.create(spec.image, command, name=name, **args)
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"podman could not create container {name} from {spec.image}: {exc}") from exc
        return ContainerHandle(id=container.id, name=name, spec=spec)

    def start(self, handle: ContainerHandle) -> None:
        container = self._get(handle)
        try:
            container.start()
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"container {handle.name} did not start: {exc}") from exc
        limits = handle.spec.limits
        if (limits.memory_bytes or limits.pids) and self.limit_mode is LimitMode.WATCHDOG:
            container.reload()
            pid = container.attrs.get("State", {}).get("Pid") or 0
            if pid:
                watchdog = Watchdog(pid, limits, kill=lambda: self._kill_quietly(handle.id))
                with self._lock:
                    self._watchdogs[handle.id] = watchdog
                watchdog.start()

    def wait(self, handle: ContainerHandle, timeout: float | None = None) -> RunResult:
        container = self._get(handle)
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        timed_out = False
        while True:
            container.reload()
            state = container.attrs.get("State", {})
            if state.get("Status") in ("exited", "stopped", "dead"):
                break
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                self._kill_quietly(handle.id)
                deadline = None
            time.sleep(_POLL_INTERVAL)
        self._raise_for_limits(handle, timed_out, timeout, state)
        return RunResult(exit_code=int(state.get("ExitCode", -1)), duration=time.monotonic() - started)

    def start_attached(self, handle: ContainerHandle, sink: LogSink | None = None,
                       timeout: float | None = None) -> None:
        """Start a created container with its output attached from the first byte; return when the output ends.

        Attached before the start, no output of even an instant command is lost,
        and the output ends the moment the container's process does (a followed
        log ends about 0.3 s later). How the process ended is ``wait``'s to tell:
        podman sees the exit 0.1–0.25 s after the output ends, a wait a caller
        that learns the outcome from the output itself can skip (the runner does).
        Past ``timeout`` the container is killed and ContainerTimeoutError raised.
        """
        api = self._client.api
        started = time.monotonic()
        try:
            attached = api.post(f"/containers/{handle.id}/attach",
                                params={"stream": True, "stdout": True, "stderr": True, "logs": False}, stream=True)
            attached.raise_for_status()
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not attach to container {handle.name}: {exc}") from exc
        outcome: dict = {}
        pumper = threading.Thread(target=pump, args=(lambda: attached, sink, outcome),
                                  name=f"adjutant-attach-{handle.name}", daemon=True)
        pumper.start()
        try:
            self.start(handle)
        except BaseException:
            attached.close()
            raise
        if await_output(lambda: self._get(handle), pumper, None if timeout is None else started + timeout,
                              final_state=False) is None:
            self._kill_quietly(handle.id)
            pumper.join(LOG_DRAIN_TIMEOUT)
            self._raise_for_limits(handle, True, timeout, {})
        if "error" in outcome:
            raise ContainerError(f"the output of container {handle.name} broke off: {outcome['error']}")

    def run(self, spec: ContainerSpec, sink: LogSink | None = None,
            timeout: float | None = None) -> RunResult:
        handle = self.create(spec)
        try:
            started = time.monotonic()
            self.start_attached(handle, sink, timeout)
            return RunResult(exit_code=self.wait(handle).exit_code, duration=time.monotonic() - started)
        finally:
            self.remove(handle)

    def exec(self, handle: ContainerHandle, command: Sequence[str], sink: LogSink | None = None,
             user: str | None = None, env: Mapping[str, str] | None = None,
             workdir: str | None = None, timeout: float | None = None) -> int:
        """Run ``command`` once in the running container and return its real exit code."""
        limits = handle.spec.limits
        argv = (pin_command(limits, command) if limits.cpus is not None and self.limit_mode is LimitMode.WATCHDOG
                else list(command))
        body = {"Cmd": argv, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                "Env": [f"{k}={v}" for k, v in (env or {}).items()]}
        if user not in _ROOT_USERS:
            with self._lock:
                self._tainted.add(handle.id)
        if user:
            body["User"] = user
        if workdir:
            body["WorkingDir"] = workdir
        api = self._client.api
        try:
            response = api.post(f"/containers/{handle.id}/exec", data=json.dumps(body))
            response.raise_for_status()
            exec_id = response.json()["Id"]
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not exec in container {handle.name}: {exc}") from exc

        def start_exec():
            output = api.post(f"/exec/{exec_id}/start", data=json.dumps({"Detach": False, "Tty": False}),
                              stream=True)
            output.raise_for_status()
            return output

        outcome: dict = {}
        started = time.monotonic()
        pumper = threading.Thread(target=pump, args=(start_exec, sink, outcome),
                                  name=f"adjutant-exec-{handle.name}", daemon=True)
        pumper.start()
        state = await_output(lambda: self._get(handle), pumper, None if timeout is None else started + timeout)
        if state is None:
            self._kill_quietly(handle.id)
            pumper.join(LOG_DRAIN_TIMEOUT)
            raise ContainerTimeoutError(
                f"command {command[0]!r} in container {handle.name} ran over its timeout of {timeout:.0f} s")
        self._raise_for_limits(handle, False, timeout, state)
        if state.get("Status") != "running":
            raise ContainerError(
                f"container {handle.name} stopped while {command[0]!r} ran in it (exit {state.get('ExitCode')})",
                hint="something outside the build killed the container (an operator, the OOM killer, "
                     "a podman restart); retry the task")
        if "error" in outcome:
            raise ContainerError(f"exec of {command[0]!r} in {handle.name} failed: {outcome['error']}")
        try:
            inspect = api.get(f"/exec/{exec_id}/json")
            inspect.raise_for_status()
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"the exit status of {command[0]!r} in container {handle.name} is lost: {exc}",
                                 hint="podman dropped the finished exec session before it was read; "
                                      "retry the task") from exc
        exit_code = inspect.json().get("ExitCode")
        log.debug("exec %s in %s: exit %s after %.2fs", command[0], handle.name, exit_code,
                  time.monotonic() - started)
        return int(exit_code if exit_code is not None else -1)

    def commit(self, handle: ContainerHandle, ref: str, labels: Mapping[str, str] | None = None) -> ImageInfo:
        """Commit a package-manager container, the only kind whose state may outlive it.

        Refused for any container made for package code (Privileges.NONE, a user
        other than root) or in which anything ran as another user: whatever such
        a container holds may have been written by a build (ADR 0006).
        """
        with self._lock:
            tainted = handle.id in self._tainted
        if handle.spec.privileges is not Privileges.PACKAGE_MANAGER or handle.spec.user not in _ROOT_USERS \
                or tainted:
            raise ContainerError(f"refusing to commit container {handle.name}: it was not a package-manager "
                                 "container running as root only, so package code may have written to it",
                                 hint="this is a bug in koji-adjutant; nothing was committed")
        changes = [f"LABEL {key}={value}" for key, value in (labels or {}).items()]
        return self._commit_to(self._get(handle), handle.name, ref, changes)

    def _commit_to(self, container, name: str, ref: str, changes: list[str] | None = None) -> ImageInfo:
        repository, tag = split_ref(ref)
        try:
            container.commit(repository=repository, tag=tag, changes=changes or None)
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not commit container {name} to {ref}: {exc}") from exc
        info = self.image_info(ref)
        if info is None:
            raise ContainerError(f"commit of {name} to {ref} produced no image")
        return info

    def snapshot(self, container_id: str, ref: str) -> ImageInfo:
        """Commit a kept failed buildroot to ``ref`` for ``koji-adjutant enter``: the operator gets a
        new container of that image, and the kept one stays as it failed.

        ``commit`` refuses a container that ran package code, so that no build starts from what
        a package wrote; this takes nothing but a kept buildroot (KEPT_NAME_PREFIX), and only a
        name of its own whose tag is not ``latest``, which every cached environment's is
        (envstore.image_ref): the cache cannot come upon such an image.
        """
        try:
            container = self._client.containers.get(container_id)
        except NotFound as exc:
            raise ContainerError(f"container {container_id} no longer exists",
                                 hint="its kept buildroot expired, or someone removed it") from exc
        name = container.name
        repository, tag = split_ref(ref)
        if not name.startswith(KEPT_NAME_PREFIX) or repository != f"localhost/{name}" or tag == "latest":
            raise ContainerError(f"refusing to snapshot container {name} as {ref}: only a kept failed buildroot "
                                 "is, and only under a name of its own",
                                 hint="this is a bug in koji-adjutant; nothing was committed")
        return self._commit_to(container, name, ref)

    def attach_terminal(self, handle: ContainerHandle) -> int:
        """Start ``handle`` with this process's terminal as its own; its exit status when it ends.

        An operator's shell needs a TTY, raw keystrokes and the window size, which the API's
        streams do not give: the podman command does that, against the same service. The
        container itself was made by ``create``, with every isolation setting; only the pids
        limit's ulimit holds where limits are enforced by the watchdog (cgroup v1), which
        does not watch it.
        """
        if not handle.spec.terminal:
            raise ContainerError(f"container {handle.name} was not made for a terminal",
                                 hint="this is a bug in koji-adjutant: make it with terminal=True")
        command = ["podman", "--remote", "--url", self.uri, "start", "--attach", "--interactive", handle.id]
        return subprocess.run(command, check=False).returncode

    def rename(self, handle: ContainerHandle, name: str) -> None:
        """Rename a container: podman cannot relabel one, so a new name is how a failed build's
        container is marked as kept (KEPT_NAME_PREFIX)."""
        try:
            self._get(handle).rename(name)
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not rename container {handle.name} to {name}: {exc}") from exc

    def kill(self, handle: ContainerHandle) -> None:
        self._kill_quietly(handle.id)

    def stop(self, handle: ContainerHandle) -> None:
        """Kill the container and wait until podman has also unmounted its storage.

        A commit must come after that: with fuse-overlayfs, a diff taken while
        the killed container's storage is still mounted (podman cleans up after
        a kill in the background) holds its files with the host's ids, not the
        container's.
        """
        try:
            self._client.api.post(f"/containers/{handle.id}/stop", params={"timeout": 0}).raise_for_status()
        except (APIError, PodmanError) as exc:
            if getattr(exc, "status_code", None) != 304:  # already stopped
                raise ContainerError(f"could not stop container {handle.name}: {exc}") from exc

    def remove(self, handle: ContainerHandle | str) -> None:
        container_id = handle.id if isinstance(handle, ContainerHandle) else handle
        with self._lock:
            watchdog = self._watchdogs.pop(container_id, None)
            self._tainted.discard(container_id)
        if watchdog is not None:
            watchdog.stop()
        try:  # timeout 0: a running container is killed at once, not given SIGTERM's grace first
            self._client.api.delete(f"/containers/{container_id}",
                                    params={"force": True, "v": True, "timeout": 0}).raise_for_status()
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 404:
                raise ContainerError(f"could not remove container {container_id}: {exc}") from exc

    def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        found = self._client.containers.list(all=True, filters=label_filters(labels))
        return [ContainerInfo(id=c.id, name=c.name, status=list_status(c.attrs), labels=dict(c.labels or {}),
                              image_id=c.attrs.get("ImageID") or "",
                              exited_at=max(0.0, float(c.attrs.get("ExitedAt") or 0)))
                for c in found]

    def remove_by_label(self, labels: Mapping[str, str]) -> list[str]:
        """Remove the containers with all of ``labels``, except kept failed buildroots: those
        outlive their task on purpose, until their expiry (buildroot/kept.py)."""
        removed = []
        for info in self.list_containers(labels):
            if info.name.startswith(KEPT_NAME_PREFIX):
                continue
            self.remove(info.id)
            removed.append(info.name)
        return removed

    # -- helpers -------------------------------------------------------------
    def _get(self, handle: ContainerHandle):
        try:
            return self._client.containers.get(handle.id)
        except NotFound as exc:
            raise ContainerError(f"container {handle.name} no longer exists") from exc

    def _kill_quietly(self, container_id: str) -> None:
        try:
            self._client.containers.get(container_id).kill(signal="SIGKILL")
        except (NotFound, APIError):
            pass  # already gone or already stopped

    def _raise_for_limits(self, handle: ContainerHandle, timed_out: bool, timeout: float | None,
                          state: Mapping) -> None:
        with self._lock:
            watchdog = self._watchdogs.get(handle.id)
        breach = watchdog.breach if watchdog is not None else None
        if breach is not None and breach.kind == "memory":
            raise ContainerOOMError(f"container {handle.name} {breach.describe()}")
        if breach is not None:
            raise ContainerError(f"container {handle.name} {breach.describe()}",
                                 hint="the container was killed; raise the pids limit "
                                      "if the build needs more processes")
        if state.get("OOMKilled"):
            raise ContainerOOMError(f"container {handle.name} was killed by the kernel for running out of memory")
        if timed_out:
            raise ContainerTimeoutError(f"container {handle.name} ran over its timeout of {timeout:.0f} s")
