"""Packages that came with the image: said to be the image's, and aligned to the repo's version
when the tag asks (adjutant.sync_image_packages), as the tag governs the toolchain under mock.

A test image carries toolchain-probe 1; the repo has toolchain-probe 2.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from localrepo import make_repo

from koji_adjutant.buildroot.installed import ORIGIN_IMAGE, ORIGIN_REPO
from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.buildroot.spec import BuildrootSpec, PackageManagerOptions, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_WORKER
from koji_adjutant.rpmlist import rpmlist

pytestmark = pytest.mark.podman

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
PROBE = "toolchain-probe"
IMAGE_ONLY = "koji-adjutant-dev-image-provides"


def probe_rpm(topdir: Path, version: str) -> Path:
    """toolchain-probe at ``version``: a noarch RPM with gzip payload (any image's rpm reads it)."""
    spec = topdir / f"probe-{version}.spec"
    spec.write_text(f"Name: {PROBE}\nVersion: {version}\nRelease: 1\nSummary: probe\nLicense: MIT\n"
                    "BuildArch: noarch\nAutoReqProv: no\n%description\nprobe\n%install\n"
                    f"mkdir -p %{{buildroot}}/usr/share/{PROBE}\necho {version} > %{{buildroot}}/usr/share/{PROBE}/v\n"
                    f"%files\n/usr/share/{PROBE}\n")
    subprocess.run(["rpmbuild", "-bb", "--quiet", "--define", f"_topdir {topdir}/rpmbuild",
                    "--define", "_binary_payload w9.gzdio", str(spec)], check=True, capture_output=True)
    (rpm,) = (topdir / "rpmbuild" / "RPMS" / "noarch").glob(f"{PROBE}-{version}-1.noarch.rpm")
    return rpm


@pytest.fixture(scope="module")
def old_toolchain_image(tmp_path_factory, podman_manager):
    """The dev image with toolchain-probe 1 installed, as an image maintainer's image carries its gcc."""
    context = tmp_path_factory.mktemp("old-toolchain")
    shutil.copy(probe_rpm(context, "1"), context / "probe.rpm")
    (context / "Containerfile").write_text(
        f"FROM {DEV_IMAGE}\nCOPY probe.rpm /tmp/probe.rpm\nRUN rpm -i --nodeps /tmp/probe.rpm && rm /tmp/probe.rpm\n")
    ref = f"localhost/adjutant-test-old-toolchain:{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "build", "-q", "-t", ref, str(context)], check=True, capture_output=True)
    yield podman_manager.ensure_image(ref)
    subprocess.run(["podman", "rmi", "-f", ref], check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo_with_newer_probe(sample_repo, tmp_path_factory) -> Path:
    rpms = [*sample_repo.glob("*.rpm"), probe_rpm(tmp_path_factory.mktemp("probe-2"), "2")]
    return make_repo(tmp_path_factory.mktemp("newer-probe") / "repo", rpms, sample_repo / "comps.xml")


@pytest.fixture(scope="module")
def hello_srpm(podman_manager, worker_id, tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("hello-srpm")
    runner = BuildrootRunner(podman_manager, {LABEL_WORKER: worker_id}, work_root=outdir / "work")
    with BuildLogs(outdir / "logs") as logs:
        return runner.srpm_from_spec(DEV_IMAGE, EXAMPLES / "hello-noarch" / "hello-noarch.spec", outdir, logs)


def build(podman_manager, worker_id, image, repo: Path, srpm: Path, tmp_path: Path, sync: bool):
    arch = platform.machine()
    runner = BuildrootRunner(podman_manager, {LABEL_WORKER: worker_id}, work_root=tmp_path / "work")
    spec = BuildrootSpec(image=image.ref, image_digest=image.digest, arch=arch,
                         repos=(RepoSource("local", str(repo)),), macros=kojid_macros(arch),
                         package_manager=PackageManagerOptions(sync_image=sync), timeouts=Timeouts(rpmbuild=600))
    with BuildLogs(tmp_path / "results") as logs:
        return runner.build(spec, srpm, tmp_path / "results", logs)


def test_without_sync_the_images_older_package_stays_and_is_the_images(
        podman_manager, worker_id, old_toolchain_image, repo_with_newer_probe, hello_srpm, tmp_path):
    result = build(podman_manager, worker_id, old_toolchain_image, repo_with_newer_probe, hello_srpm, tmp_path,
                   sync=False)
    installed = {p.name: p for p in result.installed}
    assert (installed[PROBE].version, installed[PROBE].origin) == ("1", ORIGIN_IMAGE)
    assert installed["sample-buildsys-build"].origin == ORIGIN_REPO
    listed = (tmp_path / "results" / "installed_pkgs.log").read_text().splitlines()
    assert any(line.startswith(f"{PROBE}-1-1.noarch ") and line.endswith(" image") for line in listed)
    # the hub hears of it only under the operator's external repo
    assert PROBE not in {e["name"] for e in rpmlist(result.installed)}
    under_repo = {e["name"]: e for e in rpmlist(result.installed, image_repo="adjutant-image-packages")}
    assert under_repo[PROBE]["location"] == "adjutant-image-packages" and under_repo[PROBE]["version"] == "1"
    assert "aligning the image's packages" not in (tmp_path / "results" / "root.log").read_text()


def test_with_sync_the_repos_version_replaces_the_images(
        podman_manager, worker_id, old_toolchain_image, repo_with_newer_probe, hello_srpm, tmp_path):
    result = build(podman_manager, worker_id, old_toolchain_image, repo_with_newer_probe, hello_srpm, tmp_path,
                   sync=True)
    installed = {p.name: p for p in result.installed}
    assert (installed[PROBE].version, installed[PROBE].origin) == ("2", ORIGIN_REPO)
    # what the repo does not carry stays, and stays the image's
    assert installed[IMAGE_ONLY].origin == ORIGIN_IMAGE
    entry = next(e for e in rpmlist(result.installed) if e["name"] == PROBE)
    assert entry["version"] == "2" and "location" not in entry
    state = (tmp_path / "results" / "state.log").read_text()
    assert "Start: aligning the image's packages to the repos" in state
    assert state.index("aligning the image's packages") < state.index("installing the @build group")
