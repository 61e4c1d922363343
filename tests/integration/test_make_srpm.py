"""BuildrootRunner.make_srpm on rootless podman: which containers it makes, with which network
and mounts, and the SRPM that comes out (the tag's %dist, the source command's output)."""

from __future__ import annotations

import platform
import subprocess
import textwrap
from pathlib import Path

import pytest

from koji_adjutant.buildroot.logs import BuildLogs
from koji_adjutant.buildroot.render import INPUT_DIR, SETUP_DIR
from koji_adjutant.buildroot.runner import BuildrootRunner, SourceTree
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, RepoSource, Timeouts, kojid_macros
from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerSpec, Network
from koji_adjutant.errors import BuildError

pytestmark = pytest.mark.podman

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
ARCH = platform.machine()


class Recorder:
    """The real manager, noting the spec of every container asked for."""

    def __init__(self, inner):
        self._inner = inner
        self.specs: list[ContainerSpec] = []

    def create(self, spec: ContainerSpec):
        self.specs.append(spec)
        return self._inner.create(spec)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture
def make(podman_manager, worker_id, sample_repo, tmp_path):
    def run(source):
        recorder = Recorder(podman_manager)
        runner = BuildrootRunner(recorder, {LABEL_WORKER: worker_id}, source_network=Network.PRIVATE)
        image = podman_manager.ensure_image(DEV_IMAGE)
        spec = BuildrootSpec(image=image.ref, image_digest=image.digest, arch=ARCH, group=InstallGroup.SRPM_BUILD,
                             repos=(RepoSource("local", str(sample_repo)),),
                             macros={**kojid_macros(ARCH), "dist": ".it"}, timeouts=Timeouts(rpmbuild=600))
        logs = BuildLogs(tmp_path / "result")
        try:
            return runner.make_srpm(spec, source, tmp_path / "result", logs), recorder.specs, logs
        finally:
            logs.close()
    return run


def tree(tmp_path: Path, makefile: str) -> SourceTree:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "tree.spec").write_text(textwrap.dedent("""\
        Name: tree
        Version: 1.0
        Release: 1%{?dist}
        Summary: s
        License: MIT
        BuildArch: noarch
        Source0: made.txt
        %description
        d
        %files
        """))
    (checkout / "Makefile").write_text(makefile)
    return SourceTree(checkout, "tree.spec", ("make", "sources"))


def mounts(spec: ContainerSpec) -> list[tuple[str, bool]]:
    return [(m.target, m.read_only) for m in spec.mounts]


def test_source_tree_source_command_with_network_rpmbuild_without(make, tmp_path):
    source = tree(tmp_path, "sources:\n\techo made by the source command > made.txt\n")
    result, specs, logs = make(source)
    by_purpose = {s.labels[LABEL_PURPOSE]: s for s in specs}
    assert [s.labels[LABEL_PURPOSE] for s in specs] == ["dependencies", "sources", "srpm"]
    assert by_purpose["dependencies"].network is Network.NONE  # the repo is a local directory
    assert by_purpose["sources"].network is Network.PRIVATE    # the runner's source network, even so
    assert by_purpose["srpm"].network is Network.NONE
    for purpose in ("sources", "srpm"):
        assert mounts(by_purpose[purpose]) == [(SETUP_DIR, True), (INPUT_DIR, True)]
        assert by_purpose[purpose].user == "mockbuild"
    checkout_mount = by_purpose["sources"].mounts[1].source
    assert by_purpose["srpm"].mounts[1].source != checkout_mount  # the tree the command left, not the checkout
    assert not (source.directory / "made.txt").exists()             # the checkout itself is never written
    assert result.srpm.name == "tree-1.0-1.it.src.rpm"
    files = subprocess.run(["rpm", "-qpl", "--nosignature", str(result.srpm)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert sorted(files) == ["made.txt", "tree.spec"]
    assert "$ make sources" in logs.path("build").read_text()


def test_failing_source_command_is_a_build_error_naming_build_log(make, tmp_path):
    with pytest.raises(BuildError) as caught:
        make(tree(tmp_path, "sources:\n\texit 3\n"))
    assert caught.value.message.startswith("error retrieving sources: make sources failed")
    assert caught.value.log_path.endswith("build.log")


def test_rebuilt_srpm_gets_the_dist_without_a_source_phase(make, tmp_path):
    spec = tmp_path / "re.spec"
    spec.write_text("Name: re\nVersion: 1\nRelease: 2%{?dist}\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"
                    "%description\nd\n%files\n")
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {tmp_path / 'top'}",
                    "--define", "dist %{nil}", str(spec)], check=True, capture_output=True)
    (srpm,) = (tmp_path / "top" / "SRPMS").glob("*.src.rpm")
    result, specs, _logs = make(srpm)
    assert [s.labels[LABEL_PURPOSE] for s in specs] == ["dependencies", "srpm"]
    assert result.srpm.name == "re-1-2.it.src.rpm"


def test_a_truncated_srpm_is_said_to_be_corrupt(make, tmp_path):
    """Not "a spec syntax error": the SRPM could not even be unpacked."""
    spec = tmp_path / "cut.spec"
    spec.write_text("Name: cut\nVersion: 1\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"
                    "%description\nd\n%files\n")
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {tmp_path / 'top'}", str(spec)],
                   check=True, capture_output=True)
    (whole,) = (tmp_path / "top" / "SRPMS").glob("*.src.rpm")
    cut = tmp_path / whole.name
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    with pytest.raises(BuildError) as caught:
        make(cut)
    assert caught.value.message == f"{cut.name} could not be unpacked: it is corrupt or not an SRPM"
    assert caught.value.log_path.endswith("build.log")


def test_rpms_own_layout_specs_and_sources_dirs(make, tmp_path):
    """kojid.conf support_rpm_source_layout: the spec in SPECS/, its sources in SOURCES/."""
    checkout = tmp_path / "checkout"
    (checkout / "SPECS").mkdir(parents=True)
    (checkout / "SOURCES").mkdir()
    (checkout / "SPECS" / "laid.spec").write_text(
        "Name: laid\nVersion: 1\nRelease: 1%{?dist}\nSummary: s\nLicense: MIT\nBuildArch: noarch\n"
        "Source0: data.txt\n%description\nd\n%files\n")
    (checkout / "SOURCES" / "data.txt").write_text("from SOURCES\n")
    result, _specs, _logs = make(SourceTree(checkout, "SPECS/laid.spec", None, "SOURCES"))
    assert result.srpm.name == "laid-1-1.it.src.rpm"
    files = subprocess.run(["rpm", "-qpl", "--nosignature", str(result.srpm)], capture_output=True, text=True,
                           check=True).stdout.split()
    assert sorted(files) == ["data.txt", "laid.spec"]
