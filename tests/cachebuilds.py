"""Builds through BuildrootRunner with a cache, against real podman, recorded: what the cache
tests (test_buildroot_cache.py, test_shared_cache.py) share."""

from __future__ import annotations

import platform
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildResult, BuildrootRunner
from koji_adjutant.buildroot.sharedcache import SharedCache
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerHandle, ContainerSpec
from koji_adjutant.envstore import EnvironmentStore
from koji_adjutant.errors import AdjutantError

DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
ARCH = platform.machine()


class RecordingManager:
    """Forwards everything to a real manager; notes the containers created and images committed."""

    def __init__(self, inner):
        self._inner = inner
        self.created: list[tuple[ContainerSpec, ContainerHandle]] = []
        self.committed: list[str] = []

    def create(self, spec: ContainerSpec) -> ContainerHandle:
        handle = self._inner.create(spec)
        self.created.append((spec, handle))
        return handle

    def commit(self, handle, ref, labels=None):
        info = self._inner.commit(handle, ref, labels)
        self.committed.append(ref)
        return info

    def __getattr__(self, name):
        return getattr(self._inner, name)

    @property
    def purposes(self) -> list[str]:
        return [spec.labels[LABEL_PURPOSE] for spec, _ in self.created]


def rpmbuild_srpm(spec: Path, sourcedir: Path, outdir: Path) -> Path:
    """An SRPM made on the host (faster than a container, and the same for the key)."""
    topdir = outdir / f".top-{spec.stem}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {topdir}",
                    "--define", f"_sourcedir {sourcedir}", str(spec)],
                   check=True, capture_output=True, text=True)
    (made,) = (topdir / "SRPMS").glob("*.src.rpm")
    srpm = Path(shutil.move(str(made), outdir / made.name))
    shutil.rmtree(topdir)
    return srpm


@dataclass
class Build:
    recorder: RecordingManager
    resultdir: Path
    result: BuildResult | None = None
    error: BaseException | None = None

    @property
    def root_log(self) -> str:
        return (self.resultdir / "root.log").read_text()

    @property
    def rpm_names(self) -> list[str]:
        return sorted(p.name for p in self.result.rpms)

    @property
    def layers_made(self) -> int:
        return self.recorder.purposes.count("dependencies")

    @property
    def installed_names(self) -> set[str]:
        return {p.name for p in self.result.installed}


@dataclass
class Harness:
    manager: object
    store: EnvironmentStore
    worker: str
    workdir: Path
    repo: Path
    tag: str
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spec(self, repo: Path | None = None, manager=None) -> BuildrootSpec:
        base = (manager or self.manager).ensure_image(DEV_IMAGE)
        return BuildrootSpec(image=base.ref, image_digest=base.digest, arch=ARCH,
                             repos=(RepoSource("local", str((repo or self.repo).resolve())),),
                             group=InstallGroup.BUILD, macros=kojid_macros(ARCH),
                             timeouts=Timeouts(dependencies=600, rpmbuild=600), tag=self.tag)

    def build(self, srpm: Path, repo: Path | None = None, *, manager=None, store: EnvironmentStore | None = None,
              check: bool = True, shared: SharedCache | None = None) -> Build:
        manager = manager or self.manager
        spec = self.spec(repo, manager)
        with self._lock:
            self._count += 1
            resultdir = self.workdir / f"results-{self._count}"
        recorder = RecordingManager(manager)
        runner = BuildrootRunner(recorder, {LABEL_WORKER: self.worker},
                                 cache=BuildrootCache(store or self.store, recorder, shared=shared),
                                 work_root=self.workdir / "work")
        build = Build(recorder, resultdir)
        logs = BuildLogs(resultdir)
        try:
            build.result = runner.build(spec, srpm, resultdir, logs)
        except AdjutantError as exc:
            build.error = exc
            if check:
                raise
        finally:
            logs.close()
        for _, handle in recorder.created:
            assert not container_exists(handle.id), f"the runner left container {handle.name}"
        return build

    def environments(self) -> dict[str, object]:
        """The store's records by what they hold: "group", or the sorted requirements of a layer."""
        return {" ".join(env.inputs["requirements"]) or "group": env for env in self.store.list()}


def container_exists(container_id: str) -> bool:
    return subprocess.run(["podman", "container", "exists", container_id], check=False).returncode == 0
