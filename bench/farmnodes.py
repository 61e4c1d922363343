"""The builders of bench/farm.py: each a real daemon with podman storage of its own (a sibling module).

Builders on one machine must not share image storage: cached environments
are named after their inputs, so two stores in one storage would reuse each
other's images, and a pull from the shared cache would find the image
already there and move no bytes. So each builder gets a podman service of
its own, started here on a storage of its own (graph root, run root and
temporary directory under the builder's directory), with the driver and
mount program of the user's storage.conf. The service is started with
podman's --root/--runroot/--tmpdir flags: rootless podman 4.3 takes neither
graphroot nor runroot from a CONTAINERS_STORAGE_CONF file (only
rootless_storage_path, and the run root stays under XDG_RUNTIME_DIR, which
all storages would share). The daemon reaches it through [adjutant]
podman_socket.
"""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from podman import PodmanClient

from koji_adjutant.container.interface import LABEL_WORKER
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.envstore import EnvironmentStore
from koji_adjutant.errors import AdjutantError
from tests.e2e.harness import Worker

_START_TIMEOUT = 60.0
#: What every builder's daemon is started with.
PASSWORD = "farm-secret"


def user_storage_options() -> list[str]:
    """podman's global flags for the driver and mount program of the user's own storage.conf,
    so that each builder's storage behaves as the user's does (fuse-overlayfs here, ADR 0009)."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = config_home / "containers" / "storage.conf"
    if not path.exists():
        return []
    storage = tomllib.loads(path.read_text()).get("storage", {})
    options = ["--storage-driver", storage["driver"]] if storage.get("driver") else []
    mount_program = storage.get("options", {}).get("overlay", {}).get("mount_program")
    if mount_program:
        options += ["--storage-opt", f"overlay.mount_program={mount_program}"]
    return options


@dataclass
class Storage:
    """One builder's podman storage, and the podman service on it while the farm runs."""

    directory: Path
    storage_options: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def socket(self) -> str:
        return f"unix://{self.directory / 'podman.sock'}"

    def podman_flags(self) -> list[str]:
        return ["--root", str(self.directory / "graph"), "--runroot", str(self.directory / "run"),
                "--tmpdir", str(self.directory / "tmp"), *self.storage_options]

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / "service.log", "ab") as log:
            self.process = subprocess.Popen(["podman", *self.podman_flags(), "system", "service", "--time=0",
                                             self.socket], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            start_new_session=True)
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman service of {self.directory} did not start: "
                                   f"{(self.directory / 'service.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with PodmanClient(base_url=self.socket) as client:
                return bool(client.ping())
        except Exception:  # podman-py raises its own and requests' errors while the socket is not up
            return False

    def manager(self, insecure_registries: tuple[str, ...] = ()) -> PodmanManager:
        return PodmanManager(socket=self.socket, insecure_registries=insecure_registries)

    def image_ids(self) -> list[str]:
        """Every image in this storage, children before their parents (podman lists newest first)."""
        with PodmanClient(base_url=self.socket) as client:
            return [image.id.removeprefix("sha256:") for image in client.images.list(all=True)]

    def destroy(self) -> None:
        """Stop the service and what it started, and remove the storage: podman itself removes
        what belongs to the subordinate ids of containers' root (the user could not), then the
        directory goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stop_leftovers()
        if (self.directory / "graph").exists():
            subprocess.run(["podman", *self.podman_flags(), "system", "reset", "--force"],
                           stdin=subprocess.DEVNULL, capture_output=True, check=False, timeout=600)
        shutil.rmtree(self.directory, ignore_errors=True)


    def stop_leftovers(self) -> None:
        """Kill what the service started and left running: the conmon of an exec session waits a
        minute after its command ended, then runs "podman --root ... container cleanup", which
        would make this storage again after it is removed."""
        mine = [pid for pid in _own_processes() if str(self.directory) in _cmdline(pid)]
        for pid in mine:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in mine) and time.monotonic() < deadline:
            time.sleep(0.1)


def _own_processes() -> list[int]:
    """This user's processes, this one left out."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int(entry.name) != os.getpid() and entry.stat().st_uid == os.getuid():
                found.append(int(entry.name))
        except OSError:  # gone meanwhile
            continue
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@dataclass
class Builder:
    """One builder of the farm: its hub host, its storage and, while a mode runs, its daemon."""

    index: int
    name: str            # the hub host (and its user)
    host_id: int
    worker_id: str       # [adjutant] worker_id: the label of its containers
    storage: Storage
    worker: Worker | None = None
    state_dir: Path | None = None
    saved_log: str = ""  # the log of the last daemon stopped

    @property
    def store_path(self) -> Path:
        assert self.state_dir is not None, "the builder has no daemon yet"
        return self.state_dir / "environments.sqlite"

    def write_config(self, path: Path, hub, workdir: Path, adjutant: dict[str, str]) -> Path:
        """kojid.conf of this builder, as tests/e2e/conftest.py's start_worker writes one."""
        parser = configparser.ConfigParser(interpolation=None)
        parser["kojid"] = {
            "server": hub.url, "topurl": hub.topurl, "topdir": str(hub.topdir), "workdir": str(workdir),
            "user": self.name, "password": PASSWORD, "sleeptime": "1", "maxjobs": "1", "minspace": "1",
            "log_level": "INFO", "retry_interval": "1", "max_retries": "5", "failed_buildroot_lifetime": "0"}
        parser["adjutant"] = {"worker_id": self.worker_id, "state_dir": str(self.state_dir),
                              "podman_socket": self.storage.socket, **adjutant}
        with open(path, "w") as stream:
            parser.write(stream)
        return path

    def start(self, directory: Path, hub, adjutant: dict[str, str]) -> None:
        """A daemon with a fresh state directory (an empty environment store) under ``directory``."""
        directory.mkdir(parents=True)
        self.state_dir = directory / "state"
        conf = self.write_config(directory / "kojid.conf", hub, directory / "work", adjutant)
        self.worker = Worker(conf, directory / "daemon.log", directory / "tmp", self.worker_id).start()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL to whatever of the daemon is left after 60 s."""
        if self.worker is None:
            return
        if self.worker.alive:
            self.worker.signal(signal.SIGTERM)
            try:
                self.worker.wait(60)
            except subprocess.TimeoutExpired:
                pass
        if self.worker.lingering():
            self.worker.kill_all()
        self.saved_log = self.worker.log_text()
        self.worker = None

    def clean_store(self, manager) -> None:
        """Every cached environment of the daemon's store, images and records."""
        if self.state_dir is not None and self.store_path.exists():
            store = EnvironmentStore(self.store_path)
            store.clean(manager, [env.name for env in store.list()])

    def clean(self, base_ref: str) -> None:
        """After a mode: the store emptied, and every container and every image but the base
        removed (pulled layers carry the label of the builder that made them, not this one's),
        so that the next mode starts from the base image alone."""
        with self.storage.manager() as manager:
            manager.remove_by_label({LABEL_WORKER: self.worker_id})
            self.clean_store(manager)
            base = manager.image_info(base_ref)
            keep = base.id.removeprefix("sha256:") if base else None
            for _ in range(5):  # a layer's image goes only after the images made from it
                left = [image_id for image_id in self.storage.image_ids() if image_id != keep]
                for image_id in left:
                    try:
                        manager.remove_image(image_id)
                    except AdjutantError:
                        pass
                if not left:
                    break
