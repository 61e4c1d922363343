"""chainbuild end to end: two groups from git, the second BuildRequires what the first built.

Everything between the groups is Koji's own machinery run by the worker: the first
build is tagged, the chain waits (waitrepo) until a repo of the build tag holds it,
the hub's repo queue gets that repo made (newRepo/createrepo on the worker), and the
second build installs from it. The hub here has no repo made outside Koji: its build
tag only has tagged builds (conftest's koji_repo_hub); the sources come from conftest's
git server. A waitrepo task checks once a minute (koji.tasks), so
this test takes a few minutes.
"""

from __future__ import annotations

import textwrap

import pytest

from .harness import KOJI_REPO_TAG as TAG

pytestmark = pytest.mark.podman

TARGET = "chain"


@pytest.fixture
def hub(koji_repo_hub):
    return koji_repo_hub


def spec(name: str, build_requires: str = "", check: str = "") -> str:
    return textwrap.dedent(f"""\
        Name: {name}
        Version: 1.0
        Release: 1
        Summary: chain build sample
        License: MIT
        BuildArch: noarch
        AutoReqProv: no
        {f"BuildRequires: {build_requires}" if build_requires else ""}

        %description
        Part of a chain build.

        %prep

        %build
        {check}

        %install
        mkdir -p %{{buildroot}}/usr/share/{name}
        echo {name} > %{{buildroot}}/usr/share/{name}/marker

        %files
        /usr/share/{name}
        """)


def test_chain_build_builds_the_second_group_against_the_first(hub, git_server, start_worker, wait_task):  # noqa: F811
    hub.add_target(TARGET, TAG, TAG)
    for name in ("chain-lib", "chain-app"):
        hub.add_package(TAG, name)
    git_server.publish("chain-lib", {"chain-lib.spec": spec("chain-lib")})
    git_server.publish("chain-app", {"chain-app.spec": spec(
        "chain-app", build_requires="chain-lib",
        check="test -f /usr/share/chain-lib/marker || { echo 'chain-lib is not installed' >&2; exit 1; }")})
    hub.hosts[hub.builder_id]["capacity"] = 4.0
    start_worker(maxjobs=6, allowed_scms="127.0.0.1*:/git/*:no:")
    srcs = [[git_server.url("chain-lib")], [git_server.url("chain-app")]]
    task_id = hub.admin.chainBuild(srcs, TARGET)
    task = wait_task(task_id, timeout=600)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")

    children = {t["label"]: t for t in hub.tasks.values() if t["parent"] == task_id}
    assert {label: t["method"] for label, t in children.items()} == {
        "build 0,0": "build", "wait 1": "waitrepo", "build 1,0": "build"}
    assert all(hub.task(t["id"])["state"] == "CLOSED" for t in children.values())
    repo = hub.task(children["wait 1"]["id"])["result"]

    assert hub.tagged(TAG)[:2] == ["chain-app-1.0-1", "chain-lib-1.0-1"]
    lib, app = (hub.build(nvr) for nvr in ("chain-lib-1.0-1", "chain-app-1.0-1"))
    assert lib["state"] == app["state"] == "COMPLETE"
    assert app["source"].startswith(f"git+http://127.0.0.1:{git_server.port}/git/chain-app.git#")
    # the second build's buildroot used the repo the chain waited for, and it had chain-lib in it
    (arch_task,) = [t for t in hub.tasks.values() if t["parent"] == children["build 1,0"]["id"]
                    and t["method"] == "buildArch"]
    (broot,) = hub.buildroots_of(arch_task["id"])
    assert broot["repo_id"] == repo["id"]
    assert "chain-lib" in {rpm["name"] for rpm in broot["rpmlist"]}
    assert hub.violations == []
