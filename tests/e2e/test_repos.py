"""newRepo and createrepo end to end: the daemon makes a tag's repo from the builds
tagged on the hub, the hub takes it as READY, dnf reads it, and a build installs from it."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

import koji
import pytest

from .harness import ARCH, KOJI_REPO_TAG, dnf_repoquery

pytestmark = pytest.mark.podman

TAG = KOJI_REPO_TAG
_NS = {"repo": "http://linux.duke.edu/metadata/repo", "common": "http://linux.duke.edu/metadata/common"}


@pytest.fixture
def hub(koji_repo_hub):
    return koji_repo_hub


def primary_packages(archdir: Path) -> dict[str, str]:
    """name.arch -> location of every package in the repodata's primary metadata."""
    repomd = ET.parse(archdir / "repodata" / "repomd.xml")
    href = next(data.find("repo:location", _NS).get("href") for data in repomd.findall("repo:data", _NS)
                if data.get("type") == "primary")
    primary = ET.fromstring(gzip.decompress((archdir / href).read_bytes()))
    return {f"{pkg.findtext('common:name', namespaces=_NS)}.{pkg.findtext('common:arch', namespaces=_NS)}":
            pkg.find("common:location", _NS).get("href") for pkg in primary.findall("common:package", _NS)}


def made_repo(hub, wait_task, task_id: int) -> dict:
    """The repo a finished newRepo task made, after checking the task and its createrepo subtasks."""
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    repo_id, event = task["result"]
    (child,) = hub.rpc_getTaskChildren(task_id)
    assert (child["method"], child["label"]) == ("createrepo", ARCH)
    sub = hub.task(child["id"])
    assert sub["state"] == "CLOSED"
    uploadpath, files = sub["result"]
    assert uploadpath == koji.pathinfo.taskrelpath(child["id"]) and "repomd.xml" in files
    repo = hub.repo(repo_id)
    assert (repo["state"], repo["create_event"], repo["task_id"]) == ("READY", event, task_id)
    repo["createrepo_log"] = hub.log(child["id"], "createrepo.log")
    return repo


def test_repo_request_gets_a_new_repo_made_by_the_worker(hub, start_worker, wait_task, e2e_tmp, sample_builds):
    hub.import_build(sample_builds["libgreet"], tag=TAG)
    start_worker()
    request = hub.admin.repo.request(TAG, min_event="last")["request"]
    assert request["task_id"], "the hub queued no newRepo task"

    repo = made_repo(hub, wait_task, request["task_id"])

    check = hub.admin.repo.checkRequest(request["id"])
    assert check["repo"]["id"] == repo["id"] and not check["request"]["active"]
    archdir = repo["path"] / ARCH
    packages = primary_packages(archdir)
    assert sorted(packages) == ["libgreet-devel.noarch", "sample-buildsys-build.noarch"]
    assert all(href.startswith("toplink/packages/") and (archdir / href).is_file() for href in packages.values())
    assert dnf_repoquery(archdir, e2e_tmp / "dnf-cache") == ["libgreet-devel", "sample-buildsys-build"]
    assert "createrepo_c" in repo["createrepo_log"] and "--update" not in repo["createrepo_log"]
    assert hub.violations == []


def test_regen_repo_produces_a_repo_the_next_build_installs_from(hub, start_worker, wait_task, sample_builds):
    start_worker()
    first = made_repo(hub, wait_task, hub.admin.newRepo(TAG))
    assert sorted(primary_packages(first["path"] / ARCH)) == ["sample-buildsys-build.noarch"]

    build_id = hub.import_build(sample_builds["libgreet"], tag=TAG)
    second = made_repo(hub, wait_task, hub.admin.newRepo(TAG))
    assert hub.repo(first["id"])["state"] == "EXPIRED"
    assert "--update" in second["createrepo_log"]          # the first repo's metadata recycled
    assert "libgreet-devel.noarch" in primary_packages(second["path"] / ARCH)

    task_id = hub.create_task("buildArch", ["e2e/hello-c-1.0-1.src.rpm", TAG, ARCH, False, {"repo_id": second["id"]}],
                              arch=ARCH)
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    (broot,) = hub.buildroots_of(task_id)
    assert broot["repo_id"] == second["id"]
    devel = next(rpm for rpm in hub.build(build_id)["rpms"] if rpm["name"] == "libgreet-devel")
    assert devel["id"] in {rpm["id"] for rpm in broot["rpmlist"]}
    assert hub.violations == []


def test_builder_without_the_hub_storage_refuses_new_repo(hub, start_worker, wait_until, e2e_tmp):
    start_worker(topdir=str(e2e_tmp / "not-mounted"))
    task_id = hub.admin.newRepo(TAG)
    refusals = wait_until(lambda: hub.task(task_id)["refusals"], "the newRepo task to be refused", timeout=60)
    assert f"no access to {e2e_tmp / 'not-mounted' / 'repos'}" in refusals[0]["msg"]
    assert hub.task(task_id)["state"] == "FREE" and not hub.repos
