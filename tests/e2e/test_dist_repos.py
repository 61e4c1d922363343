"""distRepo and createdistrepo end to end: `koji dist-repo TAG KEYID` against the daemon. The
hub keeps real signature headers (rpmsign with a key made for the test), writes the signed
copies, the worker makes one repo per arch of them, and dnf reads the result."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import koji
import pytest
from signedrpms import RpmSigner, build_package

from .harness import ARCH, dnf_repoquery, scratch

pytestmark = pytest.mark.podman

DIST_TAG = "dist-build"
#: A second arch of the tag; the package has no compiled code, so rpmbuild makes it here too.
OTHER = "aarch64" if ARCH != "aarch64" else "x86_64"
PKG = "distpkg"
COMPS = """<?xml version="1.0" encoding="UTF-8"?>
<comps>
  <group>
    <id>dist-group</id>
    <name>dist group</name>
    <description>a group of the dist repo</description>
    <packagelist>
      <packagereq type="mandatory">distpkg</packagereq>
    </packagelist>
  </group>
</comps>
"""
_NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


def cli_opts(**changes) -> dict:
    """task_opts as `koji dist-repo` sends them (cli handle_dist_repo), both arches."""
    opts = {"arch": [ARCH, OTHER], "comps": None, "delta": [], "event": None, "volume": None, "inherit": True,
            "latest": True, "multilib": None, "split_debuginfo": False, "skip_missing_signatures": False,
            "allow_missing_signatures": False, "zck": False, "zck_dict_dir": None, "write_signed_rpms": False}
    return {**opts, **changes}


@pytest.fixture(scope="module")
def package():
    """distpkg-1.0-1 for both arches (with distpkg-debuginfo), and copies signed by a test key."""
    with scratch("adj-e2e-distrepo-") as base:
        srpm, rpms = build_package(base / "rpmbuild", PKG, [ARCH, OTHER])
        with RpmSigner(base / "gnupg") as signer:
            signed = {rpm.name.removesuffix(".rpm"): signer.sign(rpm, base / "signed") for rpm in [srpm, *rpms]}
            yield SimpleNamespace(files=[srpm, *rpms], signed=signed, key=signer.sigkey)


@pytest.fixture
def hub(koji_repo_hub, package):
    hub = koji_repo_hub
    hub.add_tag(DIST_TAG, arches=f"{ARCH} {OTHER}")
    hub.import_build(package.files, tag=DIST_TAG)
    return hub


def import_sig(hub, package, nvra: str) -> None:
    """`koji import-sig` of the signed copy: the hub stores its signature header."""
    header = koji.rip_rpm_sighdr(str(package.signed[nvra]))
    hub.admin.addRPMSig(nvra, base64.b64encode(header).decode())


def made_repo(hub, wait_task, task_id: int) -> dict:
    """The dist repo a finished distRepo task made, after checking the task and its subtasks."""
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    repo_id = task["request"][1]
    assert task["result"] == f"Dist repository #{repo_id} successfully generated"
    children = hub.rpc_getTaskChildren(task_id)
    assert sorted((c["method"], c["label"], koji.TASK_STATES[c["state"]]) for c in children) == \
        sorted([("createdistrepo", ARCH, "CLOSED"), ("createdistrepo", OTHER, "CLOSED")])
    repo = hub.dist_repo(repo_id)
    assert (repo["state"], repo["dist"]) == ("READY", True)
    repo["logs"] = {c["label"]: hub.log(c["id"], "createrepo.log") for c in children}
    return repo


def failure(wait_task, task_id: int) -> str:
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    return task["fault"]["faultString"]


def repodata(repodir: Path, kind: str) -> bytes:
    """One file of the repodata, by its type in repomd.xml (primary: uncompressed)."""
    repomd = ET.parse(repodir / "repodata" / "repomd.xml")
    href = next(data.find("repo:location", _NS).get("href") for data in repomd.findall("repo:data", _NS)
                if data.get("type") == kind)
    content = (repodir / href).read_bytes()
    return gzip.decompress(content) if href.endswith(".gz") else content


def primary(repodir: Path) -> dict[str, str]:
    """name.arch -> location href of every package in the repodata's primary metadata."""
    root = ET.fromstring(repodata(repodir, "primary"))
    return {f"{pkg.findtext('common:name', namespaces=_NS)}.{pkg.findtext('common:arch', namespaces=_NS)}":
            pkg.find("common:location", _NS).get("href") for pkg in root.findall("common:package", _NS)}


def checksums_match(repodir: Path) -> bool:
    """Whether every package's checksum in the primary metadata is that of the file the repo holds
    (what dnf checks after a download): createrepo_c read the very copies the hub linked in."""
    packages = ET.fromstring(repodata(repodir, "primary")).findall("common:package", _NS)
    assert packages
    for pkg in packages:
        checksum = pkg.find("common:checksum", _NS)
        data = (repodir / pkg.find("common:location", _NS).get("href")).read_bytes()
        if hashlib.new(checksum.get("type"), data).hexdigest() != checksum.text:
            return False
    return True


def signature(path: Path) -> str:
    return subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{RSAHEADER:pgpsig}", str(path)],
                          capture_output=True, text=True, check=True).stdout


def test_dist_repo_holds_the_signed_copies_for_each_arch(hub, package, start_worker, wait_task, e2e_tmp):
    for nvra in package.signed:
        import_sig(hub, package, nvra)
        hub.admin.writeSignedRPM(nvra, package.key)
    comps = e2e_tmp / "comps.xml"
    comps.write_text(COMPS)
    hub.admin.uploadWrapper(str(comps), "cli-dist-repo-e2e")     # what `koji dist-repo --comps` does
    start_worker()

    task_id = hub.admin.distRepo(DIST_TAG, [package.key.upper()],
                                 **cli_opts(split_debuginfo=True, comps="cli-dist-repo-e2e/comps.xml"))
    repo = made_repo(hub, wait_task, task_id)

    pathinfo = koji.PathInfo(topdir=str(hub.topdir))
    builddir = Path(pathinfo.build(hub.build(f"{PKG}-1.0-1")))
    for arch in (ARCH, OTHER):
        archdir = repo["path"] / arch
        name = f"{PKG}-1.0-1.{arch}.rpm"
        assert primary(archdir) == {f"{PKG}.{arch}": f"Packages/d/{name}"}
        assert primary(archdir / "debug") == {
            f"{PKG}-debuginfo.{arch}": f"../Packages/d/{PKG}-debuginfo-1.0-1.{arch}.rpm"}
        rpm = archdir / "Packages" / "d" / name
        assert os.path.samefile(rpm, builddir / "data" / "signed" / package.key / arch / name)
        assert package.key in signature(rpm)
        assert checksums_match(archdir) and checksums_match(archdir / "debug")
        assert dnf_repoquery(archdir, e2e_tmp / "dnf-cache", "%{name}.%{arch}", arch) == [f"{PKG}.{arch}"]
        debug = dnf_repoquery(archdir / "debug", e2e_tmp / "dnf-cache", "%{name}.%{arch}", arch)
        assert debug == [f"{PKG}-debuginfo.{arch}"]
        assert "createrepo_c" in repo["logs"][arch]
        assert b"<id>dist-group</id>" in repodata(archdir, "group")
    assert os.readlink(hub.topdir / "repos-dist" / DIST_TAG / "latest") == str(repo["id"])
    assert hub.violations == []


def test_missing_signatures_fail_unless_allowed_or_skipped(hub, package, start_worker, wait_task):
    signed_one = f"{PKG}-1.0-1.{ARCH}"
    import_sig(hub, package, signed_one)     # the hub has its header; no signed copy is written yet
    start_worker()
    admin = hub.admin

    # the one signed RPM's copy is not on the storage
    task_id = admin.distRepo(DIST_TAG, [package.key], **cli_opts(allow_missing_signatures=True))
    message = failure(wait_task, task_id)
    assert "RPM file(s) missing from the hub's storage" in message and "missing_files.log" in message
    assert "koji write-signed-rpm" in message
    child = next(c for c in hub.rpc_getTaskChildren(task_id) if c["label"] == ARCH)
    assert f"data/signed/{package.key}/{ARCH}/{signed_one}.rpm" in hub.log(child["id"], "missing_files.log")

    # the worker has the copy written, but the others have no signature by the key
    task_id = admin.distRepo(DIST_TAG, [package.key], **cli_opts(arch=[ARCH], write_signed_rpms=True))
    message = failure(wait_task, task_id)
    assert "not signed with any of the requested keys" in message and "missing_signatures.log" in message
    assert f"{PKG}-debuginfo-1.0-1.{ARCH}" in message
    child = next(c for c in hub.rpc_getTaskChildren(task_id) if c["label"] == ARCH)
    assert f"Signed RPM {signed_one} is written with {package.key} key" in \
        hub.log(child["id"], "written_signed_rpms.log")
    assert f"{PKG}-debuginfo-1.0-1.{ARCH}: ['']" in hub.log(child["id"], "missing_signatures.log")
    assert hub.dist_repo(admin.getTaskRequest(task_id)[1])["state"] == "INIT"

    # skipped: only the signed RPM goes in; the other arch has nothing signed
    skipped = made_repo(hub, wait_task, admin.distRepo(DIST_TAG, [package.key],
                                                       **cli_opts(skip_missing_signatures=True)))
    assert primary(skipped["path"] / ARCH) == {f"{PKG}.{ARCH}": f"Packages/d/{signed_one}.rpm"}
    assert primary(skipped["path"] / OTHER) == {}
    assert (skipped["path"] / OTHER / "repodata" / "EMPTY_REPO").is_file()

    # allowed: the unsigned ones go in as they are, and the previous dist repo's metadata is recycled
    allowed = made_repo(hub, wait_task, admin.distRepo(DIST_TAG, [package.key],
                                                       **cli_opts(allow_missing_signatures=True)))
    archdir = allowed["path"] / ARCH
    assert sorted(primary(archdir)) == [f"{PKG}-debuginfo.{ARCH}", f"{PKG}.{ARCH}"]
    assert package.key in signature(archdir / "Packages" / "d" / f"{signed_one}.rpm")
    assert signature(archdir / "Packages" / "d" / f"{PKG}-debuginfo-1.0-1.{ARCH}.rpm") == "(none)"
    assert checksums_match(archdir)
    assert "--update" in allowed["logs"][ARCH]
    assert os.readlink(hub.topdir / "repos-dist" / DIST_TAG / "latest") == str(allowed["id"])
    assert hub.violations == []


def test_builder_without_the_hub_storage_refuses_createdistrepo(hub, start_worker, wait_until, e2e_tmp):
    start_worker(topdir=str(e2e_tmp / "not-mounted"))
    task_id = hub.admin.distRepo(DIST_TAG, [], **cli_opts(arch=[ARCH], allow_missing_signatures=True))
    child = wait_until(lambda: hub.rpc_getTaskChildren(task_id), "the createdistrepo subtask", timeout=60)[0]
    refusals = wait_until(lambda: hub.task(child["id"])["refusals"], "the createdistrepo task to be refused",
                          timeout=60)
    assert f"no access to {e2e_tmp / 'not-mounted' / 'repos-dist'}" in refusals[0]["msg"]


def test_multilib_is_refused_with_a_clear_error(hub, start_worker, wait_task, e2e_tmp):
    start_worker()
    conf = e2e_tmp / "multilib.conf"
    conf.write_text("[multilib]\npackages = \n")
    hub.admin.uploadWrapper(str(conf), "cli-dist-repo-e2e")
    task_id = hub.admin.distRepo(DIST_TAG, [], **cli_opts(multilib="cli-dist-repo-e2e/multilib.conf",
                                                          allow_missing_signatures=True))
    message = failure(wait_task, task_id)
    assert "multilib option of dist repos is not supported" in message and "dnf" in message
    assert hub.rpc_getTaskChildren(task_id) == []
