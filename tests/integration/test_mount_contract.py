"""The mount contract of the buildroot (docs/adr/0003): what each container may see and do.

First the pure functions ``package_manager_mounts``/``phase_mounts``, then a
real build of hello-noarch through a recording proxy of the real
PodmanManager: what the runner asks for must be exactly that contract, and the
containers podman made must match it: mounts, network, user, capabilities,
user namespace.
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.provision import package_manager_mounts
from koji_adjutant.buildroot.render import render
from koji_adjutant.buildroot.runner import BuildrootRunner, phase_mounts
from koji_adjutant.buildroot.spec import (
    BuildrootSpec,
    InstallGroup,
    PackageManagerOptions,
    RepoSource,
    Timeouts,
    kojid_macros,
)
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerHandle, ContainerSpec, Network

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"

# The contract, spelled out rather than imported, so that moving a path is a visible change.
SETUP = "/var/lib/adjutant/setup"
INPUT = "/var/lib/adjutant/input"
REPOS = "/var/lib/adjutant/repos"
PACKAGE_MANAGER_CAPS = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_SETFCAP", "CAP_SETGID",
                        "CAP_SETUID"}


def triples(mounts) -> list[tuple[Path, str, bool]]:
    return [(Path(m.source), m.target, m.read_only) for m in mounts]


# -- the pure contract -------------------------------------------------------------

def _spec(*repos: RepoSource) -> BuildrootSpec:
    return BuildrootSpec(image=DEV_IMAGE, image_digest="sha256:" + "0" * 64, arch="x86_64", repos=repos,
                         macros=kojid_macros("x86_64"))


@pytest.mark.parametrize("location", ["/srv/repos/sample", "file:///srv/repos/sample"])
def test_package_manager_mounts_local_and_url_repo(location):
    spec = _spec(RepoSource("local", location), RepoSource("remote", "https://repos.example.invalid/f40/x86_64/"))
    setup = Path("/tmp/ws/setup")
    assert triples(package_manager_mounts(spec, setup)) == [
        (setup, SETUP, True),
        (Path("/srv/repos/sample"), f"{REPOS}/local", True),
        # the URL repo is not mounted, and nothing of the package's: not even its SRPM
    ]
    assert not spec.offline


def test_local_repo_mounted_under_its_own_id_whatever_the_order():
    spec = _spec(RepoSource("remote", "https://repos.example.invalid/r/"), RepoSource("local-1", "/srv/a"),
                 RepoSource("local-2", "/srv/b"))
    assert triples(package_manager_mounts(spec, Path("/w/setup"))) == [
        (Path("/w/setup"), SETUP, True),
        (Path("/srv/a"), f"{REPOS}/local-1", True), (Path("/srv/b"), f"{REPOS}/local-2", True)]


def test_phase_mounts_only_the_setup_and_the_input():
    assert triples(phase_mounts(Path("/tmp/ws/setup"), Path("/tmp/ws/input"))) == [
        (Path("/tmp/ws/setup"), SETUP, True), (Path("/tmp/ws/input"), INPUT, True)]


def test_rendered_repo_file_points_at_the_mounts():
    """dnf in the dependency phase reads a local repo where it is mounted, a URL repo at its URL."""
    spec = _spec(RepoSource("local", "/srv/repos/sample"), RepoSource("remote", "https://repos.example.invalid/r/"))
    repo_file = {f.name: f.content for f in render(spec)}["koji.repo"]
    baseurls = [line.split("=", 1)[1] for line in repo_file.splitlines() if line.startswith("baseurl=")]
    mounted = {target for _, target, _ in triples(package_manager_mounts(spec, Path("/w/setup")))}
    assert baseurls == [f"file://{REPOS}/local", "https://repos.example.invalid/r/"]
    assert f"{REPOS}/local" in mounted


# -- against reality ---------------------------------------------------------------

@dataclass
class Created:
    spec: ContainerSpec
    handle: ContainerHandle
    inspected: dict          # podman's own view of the container, right after create
    listed_by_labels: bool   # list_containers finds it by its worker and purpose labels


class RecordingManager:
    """Forwards every call to the real manager; notes each container the runner creates."""

    def __init__(self, inner):
        self._inner = inner
        self.created: list[Created] = []

    def create(self, spec: ContainerSpec) -> ContainerHandle:
        handle = self._inner.create(spec)
        inspected = subprocess.run(["podman", "container", "inspect", handle.id], capture_output=True,
                                   text=True, check=True)
        found = self._inner.list_containers({LABEL_WORKER: spec.labels[LABEL_WORKER],
                                             LABEL_PURPOSE: spec.labels[LABEL_PURPOSE]})
        self.created.append(Created(spec, handle, json.loads(inspected.stdout)[0],
                                    any(info.id == handle.id for info in found)))
        return handle

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture(scope="module")
def recorded_build(podman_manager, worker_id, sample_repo, tmp_path_factory):
    """hello-noarch, spec to RPMs, through the runner as cli.py drives it, recording every container."""
    proxy = RecordingManager(podman_manager)
    work_root = tmp_path_factory.mktemp("mount-contract-work") / "work"
    runner = BuildrootRunner(proxy, {LABEL_WORKER: worker_id}, work_root=work_root)
    resultdir = tmp_path_factory.mktemp("mount-contract-results")
    arch = platform.machine()
    logs = BuildLogs(resultdir)
    try:
        srpm = runner.srpm_from_spec(DEV_IMAGE, EXAMPLES / "hello-noarch" / "hello-noarch.spec",
                                     resultdir / "input", logs)
        image = podman_manager.ensure_image(DEV_IMAGE)
        spec = BuildrootSpec(
            image=image.ref, image_digest=image.digest, arch=arch,
            repos=(RepoSource(repo_id="local", location=str(sample_repo.resolve())),),
            group=InstallGroup.BUILD, macros=kojid_macros(arch), package_manager=PackageManagerOptions(),
            timeouts=Timeouts(rpmbuild=600))
        result = runner.build(spec, srpm, resultdir, logs)
    finally:
        logs.close()
    return (spec, result, {c.spec.labels[LABEL_PURPOSE]: c for c in proxy.created}, [c.spec for c in proxy.created],
            work_root)


def inspected_mounts(created: Created) -> list[tuple[Path, str, bool]]:
    return sorted((Path(m["Source"]), m["Destination"], not m["RW"]) for m in created.inspected["Mounts"])


@pytest.mark.podman
def test_four_containers_in_order(recorded_build):
    _, result, _, specs, _ = recorded_build
    assert [s.labels[LABEL_PURPOSE] for s in specs] == ["srpm", "dependencies", "evaluate", "build"]
    assert [p.name for p in result.rpms] == ["hello-noarch-1.0-1.noarch.rpm"]


@pytest.mark.podman
def test_labels(recorded_build, worker_id):
    _, _, created, _, _ = recorded_build
    for purpose, container in created.items():
        assert dict(container.spec.labels) == {LABEL_WORKER: worker_id, LABEL_PURPOSE: purpose}
        labels = container.inspected["Config"]["Labels"]
        assert labels[LABEL_WORKER] == worker_id and labels[LABEL_PURPOSE] == purpose
        assert container.listed_by_labels, f"list_containers does not find the {purpose} container"


@pytest.mark.podman
def test_srpm_phase_mounts(recorded_build):
    _, _, created, _, _ = recorded_build
    srpm = created["srpm"]
    expected = [((EXAMPLES / "hello-noarch").resolve(), INPUT, True)]
    assert triples(srpm.spec.mounts) == expected
    assert inspected_mounts(srpm) == expected


@pytest.mark.podman
def test_package_manager_mounts(recorded_build):
    spec, _, created, _, work_root = recorded_build
    dependencies = created["dependencies"]
    setup = Path(dependencies.spec.mounts[0].source)
    workspace = setup.parent
    assert workspace.parent == work_root and workspace.name.startswith("build-")
    expected = [(workspace / "setup", SETUP, True), (Path(spec.repos[0].location), f"{REPOS}/local", True)]
    assert triples(dependencies.spec.mounts) == expected == triples(package_manager_mounts(spec, setup))
    assert inspected_mounts(dependencies) == sorted(expected)
    assert not workspace.exists(), "the workspace must be removed after the build"


@pytest.mark.podman
def test_work_root_is_private(recorded_build):
    *_, work_root = recorded_build
    assert work_root.stat().st_mode & 0o777 == 0o700


@pytest.mark.podman
@pytest.mark.parametrize("purpose", ["evaluate", "build"])
def test_package_code_phases_mount_the_setup_and_the_input(recorded_build, purpose):
    _, _, created, _, _ = recorded_build
    workspace = Path(created["dependencies"].spec.mounts[0].source).parent
    phase = created[purpose]
    expected = [(workspace / "setup", SETUP, True), (workspace / "input", INPUT, True)]
    assert triples(phase.spec.mounts) == expected == triples(phase_mounts(workspace / "setup", workspace / "input"))
    assert inspected_mounts(phase) == sorted(expected)


@pytest.mark.podman
def test_every_container_is_isolated(recorded_build):
    """Its own user namespace with root at the first subordinate id, no new privileges; only the
    package manager has capabilities, and only those it needs."""
    _, _, created, _, _ = recorded_build
    for purpose, container in created.items():
        host = container.inspected["HostConfig"]
        assert host["IDMappings"] == {"UidMap": ["0:1:65536"], "GidMap": ["0:1:65536"]}, purpose
        assert host["UsernsMode"] == "private", purpose
        assert "no-new-privileges" in host["SecurityOpt"], purpose
        assert not host.get("CapAdd"), purpose  # nothing beyond podman's default set...
        dropped = set(host["CapDrop"])        # ...of which only the package manager keeps some
        assert {"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETPCAP", "CAP_SYS_CHROOT"} <= dropped, purpose
        if purpose == "dependencies":
            assert not dropped & PACKAGE_MANAGER_CAPS
        else:
            assert PACKAGE_MANAGER_CAPS <= dropped, purpose


@pytest.mark.podman
def test_every_mount_is_read_only(recorded_build):
    _, _, created, _, _ = recorded_build
    for purpose, container in created.items():
        assert container.spec.mounts, purpose
        assert all(m.read_only for m in container.spec.mounts), purpose
        assert all(not m["RW"] for m in container.inspected["Mounts"]), purpose


@pytest.mark.podman
def test_no_network_in_offline_phases(recorded_build):
    spec, _, created, _, _ = recorded_build
    assert spec.offline
    for purpose, container in created.items():
        assert container.spec.network is Network.NONE, purpose
        assert container.inspected["HostConfig"]["NetworkMode"] == "none", purpose


@pytest.mark.podman
def test_images_and_users(recorded_build, podman_manager):
    _, _, created, _, _ = recorded_build
    assert created["srpm"].spec.image == DEV_IMAGE
    assert created["dependencies"].spec.image == DEV_IMAGE
    buildroot = created["build"].spec.image
    assert buildroot.startswith("localhost/adjutant-local-"), buildroot
    assert created["evaluate"].spec.image == buildroot
    assert podman_manager.image_info(buildroot) is None, "the committed buildroot image must be removed"
    for purpose in ("evaluate", "build"):
        assert created[purpose].spec.user == "mockbuild"
        assert created[purpose].inspected["Config"]["User"] == "mockbuild"
    assert created["dependencies"].spec.user is None  # root, the package manager
