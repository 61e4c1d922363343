"""Cached buildroot environments against real rootless podman (docs/adr/0006).

BuildrootRunner with a BuildrootCache over a private EnvironmentStore (a temp
file, never the user's own), the dev image and the sample repo of examples/.
Every build goes through a recording proxy of the real PodmanManager (no
mocks), so a test sees which containers the runner created and what it
committed: a cache hit creates only the build container.

Each test removes the environments it made (``store.clean``) and checks that
no image or container of its own is left.
"""

from __future__ import annotations

import dataclasses
import logging
import platform
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.buildroot.cachekey import cache_inputs, cache_key
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildResult, BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerHandle, ContainerSpec
from koji_adjutant.envstore import EnvironmentStore, environment_name, image_ref
from koji_adjutant.errors import AdjutantError, BuildrootError

pytestmark = pytest.mark.podman

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
ARCH = platform.machine()
REUSED = "reusing cached buildroot"
DNF_RAN = "Dependencies resolved."  # dnf's own output, only when the dependency phase ran


# -- recording proxy, SRPMs, repos ------------------------------------------------------

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


def write_spec(directory: Path, name: str, *, release: str = "1", headers: str = "", sections: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / f"{name}.spec"
    spec.write_text(
        f"Name: {name}\nVersion: 1.0\nRelease: {release}\nSummary: cache test package {name}\nLicense: MIT\n"
        f"BuildArch: noarch\nAutoReqProv: no\n{headers}\n%description\nCache test package {name}.\n\n"
        + (sections or "%prep\n%build\n%install\nmkdir -p %{buildroot}/usr/share/" + name
           + "\n%files\n/usr/share/" + name + "\n"))
    return spec


def createrepo(directory: Path) -> None:
    subprocess.run(["createrepo_c", "-q", "-g", "comps.xml", str(directory)], check=True, capture_output=True)
    for path in (directory, *directory.rglob("*")):
        path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


def copy_repo(source: Path, target: Path) -> Path:
    """The packages and comps of ``source`` in a new directory, with repodata made afresh."""
    target.mkdir(parents=True)
    for rpm in source.glob("*.rpm"):
        shutil.copy(rpm, target / rpm.name)
    shutil.copy(source / "comps.xml", target / "comps.xml")
    createrepo(target)
    return target


@pytest.fixture(scope="module")
def srpms(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("cache-srpms")
    made = {sample: rpmbuild_srpm(EXAMPLES / sample / f"{sample}.spec", EXAMPLES / sample, out)
            for sample in ("hello-noarch", "hello-c", "dynamic-br")}
    # hello-noarch again, Release bumped: another SRPM with the same BuildRequires.
    bumped = out / "hello-noarch-2"
    bumped.mkdir()
    shutil.copy(EXAMPLES / "hello-noarch" / "hello-noarch.sh", bumped)
    text = (EXAMPLES / "hello-noarch" / "hello-noarch.spec").read_text()
    assert "\nRelease:        1\n" in text
    (bumped / "hello-noarch.spec").write_text(text.replace("\nRelease:        1\n", "\nRelease:        2\n"))
    made["hello-noarch-2"] = rpmbuild_srpm(bumped / "hello-noarch.spec", bumped, out)
    # A BuildRequires no repo has.
    missing = write_spec(out / "needs-missing", "needs-missing",
                         headers="BuildRequires: adjutant-no-such-package-anywhere\n")
    made["needs-missing"] = rpmbuild_srpm(missing, missing.parent, out)
    # Like dynamic-br (same static BuildRequires, %generate_buildrequires), but it generates nothing.
    generates_nothing = write_spec(out / "dynamic-none", "dynamic-none",
                                   sections="%prep\n%generate_buildrequires\ntrue\n%build\n%install\n"
                                            "mkdir -p %{buildroot}/usr/share/dynamic-none\n"
                                            "%files\n/usr/share/dynamic-none\n")
    made["dynamic-none"] = rpmbuild_srpm(generates_nothing, generates_nothing.parent, out)
    return made


# -- the harness ---------------------------------------------------------------------------

@dataclass
class Build:
    name: str                  # the environment the key selects
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
    def hit(self) -> bool:
        return self.recorder.purposes == ["build"] and REUSED in self.root_log


@dataclass
class Harness:
    manager: object
    store: EnvironmentStore
    worker: str
    workdir: Path
    repo: Path
    tag: str
    names: set[str] = field(default_factory=set)
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def spec(self, repo: Path | None = None, manager=None) -> BuildrootSpec:
        base = (manager or self.manager).ensure_image(DEV_IMAGE)
        return BuildrootSpec(image=base.ref, image_digest=base.digest, arch=ARCH,
                             repos=(RepoSource("local", str((repo or self.repo).resolve())),),
                             group=InstallGroup.BUILD, macros=kojid_macros(ARCH),
                             timeouts=Timeouts(dependencies=600, rpmbuild=600), tag=self.tag)

    def build(self, srpm: Path, repo: Path | None = None, *, manager=None, store: EnvironmentStore | None = None,
              check: bool = True) -> Build:
        manager = manager or self.manager
        spec = self.spec(repo, manager)
        name = environment_name(spec.tag, spec.arch, cache_key(cache_inputs(spec, srpm)))
        with self._lock:
            self.names.add(name)
            self._count += 1
            resultdir = self.workdir / f"results-{self._count}"
        recorder = RecordingManager(manager)
        runner = BuildrootRunner(recorder, {LABEL_WORKER: self.worker},
                                 cache=BuildrootCache(store or self.store, recorder))
        build = Build(name, recorder, resultdir)
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

    def only_environment(self):
        (env,) = self.store.list()
        return env


def container_exists(container_id: str) -> bool:
    return subprocess.run(["podman", "container", "exists", container_id], check=False).returncode == 0


@pytest.fixture
def harness(podman_manager, worker_id, sample_repo, tmp_path):
    """A private store; a tag of its own, so no other run can share (or clean) its environments."""
    store = EnvironmentStore(tmp_path / "envs.sqlite")
    h = Harness(podman_manager, store, worker_id, tmp_path, sample_repo, tag=f"cachetest-{uuid.uuid4().hex[:8]}")
    yield h
    # Also any image of this tag that a failed step kept out of h.names and the store.
    tagged = subprocess.run(["podman", "images", "--format", "{{.Repository}}",
                             "--filter", f"reference=localhost/adjutant-{h.tag}-*"],
                            capture_output=True, text=True, check=False).stdout.split()
    names = h.names | {env.name for env in store.list()} | {ref.rpartition("/")[2] for ref in tagged}
    store.clean(podman_manager, names)
    assert store.list() == []
    left = [name for name in names if podman_manager.image_info(image_ref(name)) is not None]
    assert left == [], f"environment images left behind: {left}"


# -- (a) miss, then hit ---------------------------------------------------------------------

def test_first_build_misses_and_records_second_hits(harness, srpms, podman_manager):
    first = harness.build(srpms["hello-noarch"])
    assert first.recorder.purposes == ["dependencies", "build"]
    assert first.recorder.committed == [image_ref(first.name)]
    assert DNF_RAN in first.root_log and REUSED not in first.root_log
    assert first.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert first.result.srpm.name == "hello-noarch-1.0-1.src.rpm"

    env = harness.only_environment()
    base = podman_manager.image_info(DEV_IMAGE)
    image = podman_manager.image_info(env.image_ref)
    assert env.name == first.name and env.tag == harness.tag and env.arch == ARCH
    assert image is not None and image.id == env.image_id
    assert env.base_digest == base.digest and env.base_image == DEV_IMAGE
    assert env.use_count == 0
    assert {p["name"] for p in env.inputs["installed"]} >= {"sample-buildsys-build"}

    second = harness.build(srpms["hello-noarch"])
    assert second.recorder.purposes == ["build"], "a cache hit must not create a dependency container"
    assert second.recorder.committed == []
    assert f"{REUSED} {env.name}" in second.root_log
    assert DNF_RAN not in second.root_log
    assert second.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert second.result.srpm.name == "hello-noarch-1.0-1.src.rpm"
    assert second.result.installed == first.result.installed
    assert (second.resultdir / "installed_pkgs.json").is_file()
    assert set(second.result.phase_seconds) == {"dependencies", "build"}
    (build_spec, _), = second.recorder.created
    assert build_spec.image == env.image_ref, "the build phase must start from the cached image"
    after = harness.only_environment()
    assert after.use_count == 1 and after.image_id == env.image_id
    assert after.last_used >= env.last_used


# -- (b) another SRPM, same BuildRequires ----------------------------------------------------

def test_other_srpm_with_same_buildrequires_hits_and_builds_its_own_version(harness, srpms):
    first = harness.build(srpms["hello-noarch"])
    assert first.recorder.purposes == ["dependencies", "build"]
    bumped = harness.build(srpms["hello-noarch-2"])
    assert bumped.name == first.name
    assert bumped.hit, bumped.recorder.purposes
    # The build phase unpacked its own SRPM, not the one the environment was made with.
    assert bumped.rpm_names == ["hello-noarch-1.0-2.noarch.rpm"]
    assert bumped.result.srpm.name == "hello-noarch-1.0-2.src.rpm"
    release = subprocess.run(["rpm", "-qp", "--qf", "%{RELEASE}", str(bumped.result.rpms[0])],
                             capture_output=True, text=True, check=True).stdout
    assert release == "2"
    assert len(harness.store.list()) == 1


# -- (c) the key is the repo's package set, not its location or metadata -----------------------

def test_regenerated_repo_with_same_packages_hits_one_more_package_misses(harness, srpms, sample_repo, tmp_path):
    first = harness.build(srpms["hello-noarch"])
    assert first.recorder.purposes == ["dependencies", "build"]

    same = copy_repo(sample_repo, tmp_path / "same-packages")
    assert (same / "repodata" / "repomd.xml").read_bytes() != (sample_repo / "repodata" / "repomd.xml").read_bytes()
    again = harness.build(srpms["hello-noarch"], repo=same)
    assert again.name == first.name
    assert again.hit, again.recorder.purposes
    assert again.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]

    extra_spec = write_spec(tmp_path / "extra-src", "adjutant-cache-extra")
    extra_top = tmp_path / "extra-top"
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {extra_top}",
                    "--define", "_binary_payload w9.gzdio", str(extra_spec)],
                   check=True, capture_output=True, text=True)
    more = tmp_path / "one-more-package"
    more.mkdir()
    for rpm in [*sample_repo.glob("*.rpm"), *extra_top.rglob("*.noarch.rpm")]:
        shutil.copy(rpm, more / rpm.name)
    shutil.copy(sample_repo / "comps.xml", more / "comps.xml")
    createrepo(more)
    other = harness.build(srpms["hello-noarch"], repo=more)
    assert other.name != first.name
    assert other.recorder.purposes == ["dependencies", "build"]
    assert REUSED not in other.root_log
    assert other.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert sorted(env.name for env in harness.store.list()) == sorted([first.name, other.name])


# -- (d) invalidation -------------------------------------------------------------------------

def test_changed_base_digest_or_missing_image_rebuilds(harness, srpms, podman_manager, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot.cache")
    first = harness.build(srpms["hello-noarch"])
    env = harness.only_environment()
    real_digest = env.base_digest

    harness.store.record(dataclasses.replace(env, base_digest="sha256:" + "0" * 64))
    stale_base = harness.build(srpms["hello-noarch"])
    assert stale_base.name == first.name
    assert stale_base.recorder.purposes == ["dependencies", "build"]
    assert DNF_RAN in stale_base.root_log and REUSED not in stale_base.root_log
    assert any("not reusing" in r.getMessage() and "base image" in r.getMessage() for r in caplog.records)
    remade = harness.only_environment()
    assert remade.base_digest == real_digest
    assert remade.image_id != env.image_id
    assert podman_manager.image_info(env.image_id) is None, "the stale image must be removed"
    assert podman_manager.image_info(remade.image_ref).id == remade.image_id
    assert stale_base.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]

    caplog.clear()
    podman_manager.remove_image(remade.image_ref)
    image_gone = harness.build(srpms["hello-noarch"])
    assert image_gone.recorder.purposes == ["dependencies", "build"]
    assert REUSED not in image_gone.root_log
    assert any("its image is gone" in r.getMessage() for r in caplog.records)
    rebuilt = harness.only_environment()
    assert podman_manager.image_info(rebuilt.image_ref).id == rebuilt.image_id
    assert rebuilt.image_id != remade.image_id
    assert image_gone.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]

    # And the rebuilt one is used again.
    assert harness.build(srpms["hello-noarch"]).hit


# -- (e) two builds of the same thing at once ----------------------------------------------------

def test_concurrent_builds_make_the_environment_once(harness, srpms):
    """Two threads, each with its own PodmanManager and its own EnvironmentStore object on the
    same file (as two task processes would have): one makes the environment, the other waits
    on its lock and reuses it."""
    from koji_adjutant.container.podman import PodmanManager

    barrier = threading.Barrier(2)
    builds: list[Build | None] = [None, None]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with PodmanManager() as manager:
                store = EnvironmentStore(harness.store.path)
                barrier.wait(timeout=60)
                builds[index] = harness.build(srpms["hello-c"], manager=manager, store=store, check=False)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a concurrent build hung"
    assert errors == []
    assert all(b is not None and b.error is None for b in builds), [b and b.error for b in builds]
    dependency_containers = sum(b.recorder.purposes.count("dependencies") for b in builds)
    assert dependency_containers == 1, [b.recorder.purposes for b in builds]
    assert sorted(len(b.recorder.committed) for b in builds) == [0, 1]
    assert sorted(b.hit for b in builds) == [False, True]
    for build in builds:
        assert build.rpm_names == [f"hello-c-1.0-1.{ARCH}.rpm"]
    env = harness.only_environment()
    assert env.use_count == 1
    assert "libgreet-devel" in {p["name"] for p in env.inputs["installed"]} or ARCH not in ("x86_64", "aarch64")


# -- (f) a failed dependency phase leaves nothing ------------------------------------------------

def test_failed_dependency_phase_records_nothing(harness, srpms, podman_manager):
    failed = harness.build(srpms["needs-missing"], check=False)
    assert isinstance(failed.error, BuildrootError), failed.error
    assert "adjutant-no-such-package-anywhere" in str(failed.error)
    assert failed.recorder.purposes == ["dependencies"]
    assert failed.recorder.committed == []
    assert harness.store.list() == []
    assert podman_manager.image_info(image_ref(failed.name)) is None


# -- dynamic BuildRequires: the key must include the exact SRPM ------------------------------------

def test_dynamic_buildrequires_srpms_do_not_share_an_environment(harness, srpms):
    nothing = harness.build(srpms["dynamic-none"])
    assert nothing.recorder.purposes == ["dependencies", "build"]
    # dynamic-br generates libgreet-devel, which dynamic-none's environment lacks.
    dynamic = harness.build(srpms["dynamic-br"], check=False)
    assert dynamic.error is None, dynamic.error
    assert dynamic.name != nothing.name
    assert dynamic.recorder.purposes == ["dependencies", "build"]
    assert all("srpm_sha256" in env.inputs["key"] for env in harness.store.list())
