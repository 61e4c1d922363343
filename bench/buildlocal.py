"""One build-local through the Python API, and the resources of a benchmark run (a sibling module of the
benchmark scripts, not a script).

"build-local" here is what ``koji-adjutant build-local SRPM --cache`` does
(cli.cmd_build_local), done through the Python API because the CLI has no
option for another environment store: a PodmanManager of its own, an
EnvironmentStore in the run's temporary directory, BuildrootRunner +
BuildrootCache, ensure_image, build. It starts from an SRPM made once
beforehand (Koji builds from SRPMs), so the time of making one is not counted;
nor is the interpreter's start-up and import.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_WORKER
from koji_adjutant.container.podman import PodmanManager
from koji_adjutant.container.service import PodmanService
from koji_adjutant.defaults import DEV_IMAGE
from koji_adjutant.envstore import EnvironmentStore

REPO_ROOT = Path(__file__).resolve().parents[1]
ARCH = platform.machine()


def progress(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def raise_interrupt(*_args) -> None:
    """A SIGTERM handler: unwind as on Ctrl-C, so containers and services are removed."""
    raise KeyboardInterrupt


@dataclass
class Run:
    seconds: float
    phases: dict[str, float]


def buildroot_spec(manager, repo: Path, tag: str) -> BuildrootSpec:
    image = manager.ensure_image(DEV_IMAGE)
    return BuildrootSpec(image=image.ref, image_digest=image.digest, arch=ARCH,
                         repos=(RepoSource(repo_id="local", location=str(repo)),),
                         group=InstallGroup.BUILD, macros=kojid_macros(ARCH), timeouts=Timeouts(), tag=tag)


@dataclass
class Bench:
    """A run's names and temporary files; picklable, so worker processes get it whole."""

    workdir: Path
    tag: str                  # in every environment name: adjutant-<tag>-<arch>-<hash12>
    worker: str               # the worker label of every container
    #: the podman API socket every build connects to; None: each PodmanManager finds or starts its own
    #: service, as build-local does
    socket: str | None = None
    stores: list[Path] = field(default_factory=list)

    def podman(self) -> PodmanManager:
        return PodmanManager(socket=self.socket)

    def new_store(self, label: str) -> Path:
        path = self.workdir / "stores" / f"{label}-{len(self.stores)}" / "environments.sqlite"
        self.stores.append(path)
        return path

    def clean_store(self, manager, path: Path) -> None:
        if path.exists():
            store = EnvironmentStore(path)
            store.clean(manager, [env.name for env in store.list()])

    def sample_repo(self) -> Path:
        """The sample repo of examples/ (make-repo.sh), in the run's directory."""
        repo = self.workdir / "sample-repo"
        subprocess.run([str(REPO_ROOT / "examples" / "make-repo.sh"), str(repo)], check=True, capture_output=True)
        return repo

    def srpms(self, name: str, specs: list[Path]) -> list[Path]:
        """An SRPM of each spec (sources beside it), made in a container as build-local does."""
        with self.podman() as manager:
            runner = BuildrootRunner(manager, {LABEL_WORKER: self.worker})
            with BuildLogs(self.workdir / "srpm-logs" / name) as logs:
                return [runner.srpm_from_spec(DEV_IMAGE, spec, self.workdir / "srpms", logs) for spec in specs]

    def build_local(self, store_path: Path, srpm: Path, repo: Path, resultdir: Path, wrap=None) -> Run:
        """One ``build-local SRPM --cache``, as cli.cmd_build_local does it, with a private store."""
        started = time.monotonic()
        with self.podman() as manager:
            used = wrap(manager) if wrap else manager
            cache = BuildrootCache(EnvironmentStore(store_path), used)
            runner = BuildrootRunner(used, {LABEL_WORKER: self.worker}, cache=cache)
            spec = buildroot_spec(used, repo, self.tag)
            with BuildLogs(resultdir) as logs:
                result = runner.build(spec, srpm, resultdir, logs)
        seconds = time.monotonic() - started
        shutil.rmtree(resultdir, ignore_errors=True)
        return Run(seconds, dict(result.phase_seconds))

    def clean_everything(self) -> None:
        """Every environment of every store of the run, then anything else with the run's tag or label."""
        with self.podman() as manager:
            for path in self.stores:
                try:
                    self.clean_store(manager, path)
                except Exception as exc:  # keep cleaning
                    progress(f"cleaning {path}: {exc}")
            manager.remove_by_label({LABEL_WORKER: self.worker})
            listed = subprocess.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}",
                                     "--filter", f"reference=localhost/adjutant-{self.tag}-*"],
                                    capture_output=True, text=True, check=False).stdout.split()
            for ref in listed:
                manager.remove_image(ref)

    def describe(self, load_before: float) -> str:
        """The machine, podman and the service set-up: what the numbers depend on."""
        podman_version = subprocess.run(["podman", "--version"], capture_output=True, text=True,
                                        check=False).stdout.split()[-1:] or ["?"]
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), platform.processor() or "?")
        service = (f"every build connects to one podman service started for the run ({self.socket})"
                   if self.socket else "every build-local finds the user's podman socket or starts its own service")
        return (f"machine: {len(os.sched_getaffinity(0))} cores ({cpu}), "
                f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
                f"{platform.system()} {platform.release()}, podman {podman_version[0]}, image {DEV_IMAGE}; "
                f"load average before the run {load_before:.2f} (other work on the host skews every number)\n"
                f"{service}")


@contextmanager
def bench_run(shared_service: bool) -> Iterator[Bench]:
    """A Bench with a fresh temporary directory, and with ``shared_service`` one podman service for the
    run (as the daemon's tasks share the daemon's). On the way out, also on Ctrl-C or SIGTERM, every
    environment, container, image and temporary file of the run is removed."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    signal.signal(signal.SIGTERM, raise_interrupt)
    os.umask(0o022)
    run_id = uuid.uuid4().hex[:8]
    workdir = Path(tempfile.mkdtemp(prefix="adjutant-bench-"))
    workdir.chmod(0o755)
    bench = Bench(workdir, tag=f"bench-{run_id}", worker=f"bench-{run_id}")
    service = None
    try:
        if shared_service:
            service = PodmanService(None)
            bench.socket = service.uri
        yield bench
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress("removing the run's environments, containers and temporary files")
        try:
            bench.clean_everything()
        finally:
            if service is not None:
                service.close()
            shutil.rmtree(workdir, ignore_errors=True)
