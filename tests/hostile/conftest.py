"""The hostile-package corpus: one small spec per attack, built as a Koji user would submit it.

Every build goes through the real BuildrootRunner on real rootless podman,
with the worker's default limits and a cache of its own (so two builds can
share a layer, as two users' builds on one builder do). The SRPM is made from
the spec in a throwaway container, never on the host: the specs run code
while they are parsed. Each test asserts that its attack failed and that
nothing is left behind (the session fixture in tests/conftest.py checks
containers and images; ``Corpus`` checks its own workspaces and layers).
"""

from __future__ import annotations

import platform
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildResult, BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.archive import ResultLimits
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER
from koji_adjutant.container.limits import default_limits
from koji_adjutant.envstore import EnvironmentStore
from koji_adjutant.errors import AdjutantError

pytestmark = pytest.mark.podman

DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
ARCH = platform.machine()
SPECS = Path(__file__).parent / "specs"


@dataclass
class Built:
    resultdir: Path
    purposes: list[str]
    result: BuildResult | None = None
    error: AdjutantError | None = None

    def log(self, name: str) -> str:
        path = self.resultdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def logs(self) -> str:
        return "\n".join(self.log(name) for name in ("build", "root"))


class _Recording:
    """The real manager, noting the purpose of every container the runner creates."""

    def __init__(self, inner, purposes: list[str]):
        self._inner = inner
        self._purposes = purposes

    def create(self, spec):
        self._purposes.append(spec.labels[LABEL_PURPOSE])
        return self._inner.create(spec)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@dataclass
class Corpus:
    manager: object
    workdir: Path
    repo: Path
    store: EnvironmentStore
    worker: str
    count: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spec_file(self, name: str, **values: str) -> Path:
        """specs/NAME.spec, with ``@KEY@`` replaced by each value, in a directory of its own."""
        text = (SPECS / f"{name}.spec").read_text()
        for key, value in values.items():
            text = text.replace(f"@{key.upper()}@", value)
        directory = self.workdir / f"spec-{name}-{self._next()}"
        directory.mkdir()
        path = directory / f"{name}.spec"
        path.write_text(text)
        return path

    def build(self, spec_file: Path, *, manager=None, result_limits: ResultLimits = ResultLimits(),
              rpmbuild_timeout: int = 600) -> Built:
        manager = manager or self.manager
        resultdir = self.workdir / f"results-{self._next()}"
        built = Built(resultdir, [])
        recording = _Recording(manager, built.purposes)
        runner = BuildrootRunner(recording, {LABEL_WORKER: self.worker}, limits=default_limits(),
                                 cache=BuildrootCache(self.store, recording), work_root=self.work_root,
                                 result_limits=result_limits)
        logs = BuildLogs(resultdir)
        try:
            srpm = runner.srpm_from_spec(DEV_IMAGE, spec_file, resultdir / "input", logs)
            base = manager.ensure_image(DEV_IMAGE)
            spec = BuildrootSpec(image=base.ref, image_digest=base.digest, arch=ARCH,
                                 repos=(RepoSource("local", str(self.repo.resolve())),), macros=kojid_macros(ARCH),
                                 timeouts=Timeouts(dependencies=600, rpmbuild=rpmbuild_timeout), tag="hostile")
            built.result = runner.build(spec, srpm, resultdir, logs)
        except AdjutantError as exc:
            built.error = exc
        finally:
            logs.close()
        return built

    @property
    def work_root(self) -> Path:
        return self.workdir / "work"

    def _next(self) -> int:
        with self.lock:
            self.count += 1
            return self.count


@pytest.fixture(scope="module")
def corpus(podman_manager, worker_id, sample_repo, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("hostile")
    store = EnvironmentStore(workdir / "envs.sqlite")
    corpus = Corpus(podman_manager, workdir, sample_repo, store, worker_id)
    yield corpus
    assert not any(corpus.work_root.iterdir()), "a workspace was left behind"
    store.clean(podman_manager, [env.name for env in store.list()])
    assert store.list() == []


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory) -> Path:
    import subprocess

    repo = tmp_path_factory.mktemp("hostile-repo") / "repo"
    examples = Path(__file__).resolve().parents[2] / "examples"
    subprocess.run([str(examples / "make-repo.sh"), str(repo)], check=True, capture_output=True, text=True)
    return repo


class Listener:
    """A TCP service on the host's 127.0.0.1 that counts who reached it."""

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._server.close()
        self._thread.join(timeout=5)


@pytest.fixture
def listener():
    service = Listener()
    yield service
    service.close()
