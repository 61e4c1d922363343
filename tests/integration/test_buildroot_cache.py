"""Cached buildroot layers against real rootless podman (docs/adr/0006).

BuildrootRunner with a BuildrootCache over a private EnvironmentStore (a temp
file, never the user's own), the dev image and the sample repo of examples/.
Every build goes through a recording proxy of the real PodmanManager (no
mocks), so a test sees which containers the runner created and what it
committed. "dependencies" containers are the package manager's (each makes
a layer and is committed), "evaluate" ones run the package's code to learn
its BuildRequires (never committed). A build of an SRPM seen before creates
only the build container; a new SRPM with the same BuildRequires adds one
evaluation, and commits nothing.

Each test removes the environments it made (``store.clean``) and checks that
no image or container of its own is left.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from cachebuilds import ARCH, DEV_IMAGE, Build, rpmbuild_srpm

from koji_adjutant.envstore import EnvironmentStore, image_ref
from koji_adjutant.errors import BuildrootError

pytestmark = pytest.mark.podman

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
REUSED = "reusing cached buildroot"
DNF_RAN = "Dependencies resolved."  # dnf's own output, only when a layer was made
NEW_SRPM = ["evaluate", "build"]    # an SRPM not seen before, every layer it needs cached
SEEN_SRPM = ["build"]               # an SRPM built before: its resolution is remembered


# -- SRPMs, repos (the recording harness is in tests/cachebuilds.py) -----------------------

def write_spec(directory: Path, name: str, *, release: str = "1", headers: str = "", sections: str = "",
               build_arch: str = "noarch") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    spec = directory / f"{name}.spec"
    arch = f"BuildArch: {build_arch}\n" if build_arch else ""
    spec.write_text(
        f"Name: {name}\nVersion: 1.0\nRelease: {release}\nSummary: cache test package {name}\nLicense: MIT\n"
        f"{arch}AutoReqProv: no\n{headers}\n%description\nCache test package {name}.\n\n"
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


def arch_conditional_spec(directory: Path, name: str, only_on: str) -> Path:
    """A package whose BuildRequires libgreet-devel holds only on ``only_on``."""
    return write_spec(directory, name, headers=f"%ifarch {only_on}\nBuildRequires: libgreet-devel\n%endif\n",
                      build_arch="")


def foreign_arch() -> str:
    return "aarch64" if ARCH != "aarch64" else "x86_64"


#: Where the SRPMs of the arch-conditional packages are made: neither their arch nor ours.
SRPM_ARCH = "s390x"


def rpmbuild_srpm_for(spec: Path, outdir: Path, target: str) -> Path:
    """An SRPM whose header was evaluated for ``target``, as a builder of another arch makes it."""
    topdir = outdir / f".top-{spec.stem}-{target}"
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--target", target, "--define", f"_topdir {topdir}",
                    str(spec)], check=True, capture_output=True, text=True)
    (made,) = (topdir / "SRPMS").glob("*.src.rpm")
    srpm = Path(shutil.move(str(made), outdir / f"{spec.stem}-{target}-{made.name}"))
    shutil.rmtree(topdir)
    return srpm


def srpm_requires(srpm: Path) -> set[str]:
    out = subprocess.run(["rpm", "-qp", "--requires", str(srpm)], capture_output=True, text=True, check=True).stdout
    return {line.strip() for line in out.splitlines() if not line.startswith("rpmlib(")}


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
    # dynamic-br with its Release bumped: a new SRPM generating the same BuildRequires.
    dynamic = out / "dynamic-br-2"
    dynamic.mkdir()
    text = (EXAMPLES / "dynamic-br" / "dynamic-br.spec").read_text()
    (dynamic / "dynamic-br.spec").write_text(text.replace("\nRelease:        1\n", "\nRelease:        2\n"))
    made["dynamic-br-2"] = rpmbuild_srpm(dynamic / "dynamic-br.spec", dynamic, out)
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
    # Two packages whose SRPMs, made on a builder of a third arch, list the same BuildRequires
    # (none), while on this arch one of them asks for libgreet-devel.
    made["arch-here"] = rpmbuild_srpm_for(arch_conditional_spec(out / "arch-here", "arch-here", ARCH), out,
                                          SRPM_ARCH)
    made["arch-there"] = rpmbuild_srpm_for(
        arch_conditional_spec(out / "arch-there", "arch-there", foreign_arch()), out, SRPM_ARCH)
    return made


# -- (a) miss, then hit ---------------------------------------------------------------------

def test_first_build_makes_the_group_layer_second_build_of_the_srpm_reuses_it(cache_harness, srpms, podman_manager):
    first = cache_harness.build(srpms["hello-noarch"])
    assert first.recorder.purposes == ["dependencies", "evaluate", "build"]
    (group,) = cache_harness.store.list()
    assert first.recorder.committed == [image_ref(group.name)]
    assert DNF_RAN in first.root_log and REUSED not in first.root_log
    assert first.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert first.result.srpm.name == "hello-noarch-1.0-1.src.rpm"

    base = podman_manager.image_info(DEV_IMAGE)
    image = podman_manager.image_info(group.image_ref)
    assert group.tag == cache_harness.tag and group.arch == ARCH and group.inputs["requirements"] == []
    assert image is not None and image.id == group.image_id
    assert group.base_digest == base.digest and group.base_image == DEV_IMAGE
    assert group.use_count == 0
    assert {p["name"] for p in group.inputs["installed"]} >= {"sample-buildsys-build"}

    second = cache_harness.build(srpms["hello-noarch"])
    assert second.recorder.purposes == SEEN_SRPM, "an SRPM built before needs neither a layer nor an evaluation"
    assert second.recorder.committed == []
    assert f"{REUSED} {group.name}" in second.root_log
    assert DNF_RAN not in second.root_log
    assert second.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert second.result.installed == first.result.installed
    assert (second.resultdir / "installed_pkgs.json").is_file()
    assert set(second.result.phase_seconds) == {"dependencies", "build"}
    (build_spec, _), = second.recorder.created
    assert build_spec.image == group.image_ref, "the build phase must start from the cached image"
    after, = cache_harness.store.list()
    assert after.use_count == 1 and after.image_id == group.image_id


def test_a_layer_is_made_once_for_the_buildrequires(cache_harness, srpms):
    first = cache_harness.build(srpms["hello-c"])
    assert first.recorder.purposes == ["dependencies", "evaluate", "dependencies", "build"]
    layers = cache_harness.environments()
    # The layers keep their files' owners (a commit taken while podman still had the killed
    # container's storage mounted stored them with the host's ids).
    owners = subprocess.run(["podman", "run", "--rm", "--uidmap", "0:1:65536", "--gidmap", "0:1:65536",
                             layers["gcc libgreet-devel"].image_ref, "stat", "-c", "%U %n", "/builddir/build",
                             "/builddir/build/SOURCES", "/usr/include/greet.h"],
                            capture_output=True, text=True, check=True).stdout.split("\n")
    assert owners[:3] == ["root /builddir/build", "mockbuild /builddir/build/SOURCES", "root /usr/include/greet.h"]
    assert set(layers) == {"group", "gcc libgreet-devel"}
    assert layers["gcc libgreet-devel"].inputs["parent"] == layers["group"].name
    assert "libgreet-devel" in first.installed_names
    assert first.result.installed == tuple(sorted(first.result.installed, key=lambda p: p.nevra))
    assert cache_harness.build(srpms["hello-c"]).recorder.purposes == SEEN_SRPM


# -- (b) another SRPM, same BuildRequires ----------------------------------------------------

def test_other_srpm_with_same_buildrequires_reuses_and_builds_its_own_version(cache_harness, srpms):
    first = cache_harness.build(srpms["hello-noarch"])
    bumped = cache_harness.build(srpms["hello-noarch-2"])
    assert bumped.recorder.purposes == NEW_SRPM, "a new SRPM is evaluated, and nothing is installed"
    assert bumped.recorder.committed == []
    # The build phase unpacked its own SRPM, not the one the environment was made with.
    assert bumped.rpm_names == ["hello-noarch-1.0-2.noarch.rpm"]
    assert bumped.result.srpm.name == "hello-noarch-1.0-2.src.rpm"
    release = subprocess.run(["rpm", "-qp", "--qf", "%{RELEASE}", str(bumped.result.rpms[0])],
                             capture_output=True, text=True, check=True).stdout
    assert release == "2"
    assert bumped.result.installed == first.result.installed
    assert len(cache_harness.store.list()) == 1


# -- (c) the key is the repo's package set, not its location or metadata -----------------------

def test_regenerated_repo_with_same_packages_hits_one_more_package_misses(cache_harness, srpms, sample_repo, tmp_path):
    cache_harness.build(srpms["hello-noarch"])
    (group,) = cache_harness.store.list()

    same = copy_repo(sample_repo, tmp_path / "same-packages")
    assert (same / "repodata" / "repomd.xml").read_bytes() != (sample_repo / "repodata" / "repomd.xml").read_bytes()
    again = cache_harness.build(srpms["hello-noarch"], repo=same)
    assert again.recorder.purposes == SEEN_SRPM
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
    other = cache_harness.build(srpms["hello-noarch"], repo=more)
    assert other.recorder.purposes == ["dependencies", "evaluate", "build"]
    assert REUSED not in other.root_log
    assert other.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]
    assert len(cache_harness.store.list()) == 2 and group.name in {env.name for env in cache_harness.store.list()}


# -- (d) invalidation -------------------------------------------------------------------------

def test_changed_base_digest_wrong_inputs_or_missing_image_rebuilds(cache_harness, srpms, podman_manager, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.buildroot.cache")
    cache_harness.build(srpms["hello-noarch"])
    (env,) = cache_harness.store.list()
    real_digest = env.base_digest

    cache_harness.store.record(dataclasses.replace(env, base_digest="sha256:" + "0" * 64))
    stale_base = cache_harness.build(srpms["hello-noarch"])
    assert stale_base.recorder.purposes == ["dependencies", "evaluate", "build"]
    assert DNF_RAN in stale_base.root_log and REUSED not in stale_base.root_log
    assert any("not reusing" in r.getMessage() and "base image" in r.getMessage() for r in caplog.records)
    (remade,) = cache_harness.store.list()
    assert remade.base_digest == real_digest
    assert remade.image_id != env.image_id
    assert podman_manager.image_info(env.image_id) is None, "the stale image must be removed"
    assert podman_manager.image_info(remade.image_ref).id == remade.image_id

    caplog.clear()
    # Same name, other inputs: the name holds only 48 bits of the key, the record all of it.
    cache_harness.store.record(dataclasses.replace(remade, inputs_hash="f" * 64))
    collided = cache_harness.build(srpms["hello-noarch"])
    assert collided.recorder.purposes == ["dependencies", "evaluate", "build"]
    assert any("inputs differ" in r.getMessage() for r in caplog.records)

    caplog.clear()
    (current,) = cache_harness.store.list()
    podman_manager.remove_image(current.image_ref)
    image_gone = cache_harness.build(srpms["hello-noarch"])
    assert image_gone.recorder.purposes == ["dependencies", "evaluate", "build"]
    assert REUSED not in image_gone.root_log
    assert any("its image is gone" in r.getMessage() for r in caplog.records)
    (rebuilt,) = cache_harness.store.list()
    assert podman_manager.image_info(rebuilt.image_ref).id == rebuilt.image_id
    assert image_gone.rpm_names == ["hello-noarch-1.0-1.noarch.rpm"]

    # And the rebuilt one is used again.
    assert cache_harness.build(srpms["hello-noarch"]).recorder.purposes == SEEN_SRPM


# -- (e) two builds of the same thing at once ----------------------------------------------------

def test_concurrent_builds_make_each_layer_once(cache_harness, srpms):
    """Two threads, each with its own PodmanManager and its own EnvironmentStore object on the
    same file (as two task processes would have): each layer is made by one of them, and the
    other waits on its lock and reuses it."""
    from koji_adjutant.container.podman import PodmanManager

    barrier = threading.Barrier(2)
    builds: list[Build | None] = [None, None]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            with PodmanManager() as manager:
                store = EnvironmentStore(cache_harness.store.path)
                barrier.wait(timeout=60)
                builds[index] = cache_harness.build(srpms["hello-c"], manager=manager, store=store, check=False)
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
    assert sum(b.layers_made for b in builds) == 2, [b.recorder.purposes for b in builds]
    assert sum(len(b.recorder.committed) for b in builds) == 2
    for build in builds:
        assert build.rpm_names == [f"hello-c-1.0-1.{ARCH}.rpm"]
        assert "libgreet-devel" in build.installed_names
    assert set(cache_harness.environments()) == {"group", "gcc libgreet-devel"}


# -- (f) a failed dependency phase leaves nothing ------------------------------------------------

def test_failed_layer_records_nothing(cache_harness, srpms, podman_manager):
    failed = cache_harness.build(srpms["needs-missing"], check=False)
    assert isinstance(failed.error, BuildrootError), failed.error
    assert "adjutant-no-such-package-anywhere" in str(failed.error)
    assert failed.recorder.purposes == ["dependencies", "evaluate", "dependencies"]
    assert len(failed.recorder.committed) == 1, "only the group layer was committed"
    assert set(cache_harness.environments()) == {"group"}
    tagged = subprocess.run(["podman", "images", "-q", "--filter",
                             f"reference=localhost/adjutant-{cache_harness.tag}-*"],
                            capture_output=True, text=True, check=True).stdout.split()
    assert len(tagged) == 1, "the failed layer's image must be gone"


# -- (g) the key is what the package asks, evaluated in the buildroot -------------------------------

def test_dynamic_buildrequires_are_part_of_the_key(cache_harness, srpms):
    nothing = cache_harness.build(srpms["dynamic-none"])
    assert nothing.layers_made == 1 and "libgreet-devel" not in nothing.installed_names
    # dynamic-br generates libgreet-devel, which dynamic-none's buildroot lacks.
    dynamic = cache_harness.build(srpms["dynamic-br"])
    assert dynamic.recorder.purposes == ["evaluate", "dependencies", "build"]
    assert "libgreet-devel" in dynamic.installed_names
    assert set(cache_harness.environments()) == {"group", "libgreet-devel"}
    # A new release generating the same BuildRequires reuses that layer (the old key, on the
    # SRPM's checksum, made it anew).
    bumped = cache_harness.build(srpms["dynamic-br-2"])
    assert bumped.recorder.purposes == NEW_SRPM
    assert bumped.rpm_names == ["dynamic-br-1.0-2.noarch.rpm"]


def test_srpms_whose_headers_match_but_whose_arch_conditionals_differ_get_what_this_arch_asks(cache_harness, srpms):
    """Both SRPMs list no BuildRequires (their headers were evaluated on another arch); on this
    arch one asks for libgreet-devel. Keyed on headers they would share a buildroot."""
    assert srpm_requires(srpms["arch-here"]) == srpm_requires(srpms["arch-there"]) == set()
    there = cache_harness.build(srpms["arch-there"])
    here = cache_harness.build(srpms["arch-here"])
    assert "libgreet-devel" not in there.installed_names
    assert "libgreet-devel" in here.installed_names
    assert here.recorder.purposes == ["evaluate", "dependencies", "build"]
    assert set(cache_harness.environments()) == {"group", "libgreet-devel"}
