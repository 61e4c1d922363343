"""rebuildSRPM and buildSRPMFromSCM end to end: the real daemon, the hub simulator, podman, and
git repositories served over dumb HTTP by a server of the test's own on 127.0.0.1.

The SCM sample's source command (`make sources`) fetches its source from that server, so the
source phase must have network; its spec asks, while rpmbuild -bs parses it, whether that
server is reachable, and the answer lands in the SRPM's description: rpmbuild must have none.
"""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import koji
import pytest

from .gitserver import GitServer
from .harness import TAG

pytestmark = pytest.mark.podman

RESULT_KEYS = {"srpm", "logs", "brootid", "source"}
DIST = ".e2e"
NO_NETWORK = "rpmbuild had no network"


def header(path: Path, fmt: str) -> str:
    return subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)],
                          capture_output=True, text=True, check=True).stdout


def rpm_files(path: Path) -> list[str]:
    return subprocess.run(["rpm", "-qpl", "--nosignature", "--nodigest", str(path)],
                          capture_output=True, text=True, check=True).stdout.split()


def spec_text(name: str, port: int, source: str | None = "greeting.txt") -> str:
    probe = (f"python3 -c \"import socket; s = socket.socket(); s.settimeout(3); "
             f"print('rpmbuild reached the network' if s.connect_ex(('127.0.0.1', {port})) == 0 "
             f"else '{NO_NETWORK}')\"")
    return textwrap.dedent(f"""\
        Name: {name}
        Version: 1.0
        Release: 1%{{?dist}}
        Summary: e2e sample of the SRPM tasks
        License: MIT
        BuildArch: noarch
        AutoReqProv: no
        {f"Source0: {source}" if source else ""}

        %description
        %({probe})

        %prep

        %build

        %install
        mkdir -p %{{buildroot}}/usr/share/{name}

        %files
        /usr/share/{name}
        """)


@pytest.fixture
def dist_tag(hub):
    """The build tag sets %dist, as a real one does: the SRPM's release must carry it."""
    next(tag for tag in hub.tags.values() if tag["name"] == TAG)["extra"]["rpm.macro.dist"] = DIST
    return hub


def allowed(server: GitServer) -> str:
    """allowed_scms: this server's repositories, without a common/ repo, source command `make sources`."""
    return "127.0.0.1*:/git/*:no:make,sources"


def check_closed(hub, task: dict, srpm_name: str) -> dict:
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    result = task["result"]
    assert set(result) == RESULT_KEYS
    taskdir = koji.pathinfo.taskrelpath(task["id"])
    assert result["srpm"] == f"{taskdir}/{srpm_name}"
    srpm = hub.workdir / result["srpm"]
    assert header(srpm, "%{NAME}-%{VERSION}-%{RELEASE}.src.rpm") == srpm_name
    assert header(srpm, "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}") == "Koji|Koji|Koji"
    for path in result["logs"]:
        assert path.startswith(f"{taskdir}/") and hub.uploaded(path), path
    assert {"root.log", "build.log", "state.log", "container.log"} <= {p.rsplit("/", 1)[1] for p in result["logs"]}
    (broot,) = hub.buildroots_of(task["id"])
    assert broot["id"] == result["brootid"]
    assert hub.br_history[broot["id"]] == ["INIT", "BUILDING", "EXPIRED"]
    assert {rpm["name"] for rpm in broot["rpmlist"]} == {"sample-buildsys-build"}  # the srpm-build group
    assert "installing the @srpm-build group" in hub.log(task["id"], "root.log")
    return result


def test_rebuild_srpm_gets_the_tag_dist(dist_tag, start_worker, wait_task, e2e_tmp):
    hub = dist_tag
    specdir = e2e_tmp / "rebuild"
    specdir.mkdir()
    (specdir / "rebuilt.spec").write_text(spec_text("rebuilt", 9, source=None))
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {specdir}", "--define", "dist %{nil}",
                    str(specdir / "rebuilt.spec")], check=True, capture_output=True)
    (built,) = (specdir / "SRPMS").glob("*.src.rpm")
    assert built.name == "rebuilt-1.0-1.src.rpm"
    (hub.workdir / "e2e" / built.name).write_bytes(built.read_bytes())

    start_worker()
    task_id = hub.create_task("rebuildSRPM", [f"e2e/{built.name}", TAG, {"repo_id": hub.repo_id}], arch="noarch")
    result = check_closed(hub, wait_task(task_id), f"rebuilt-1.0-1{DIST}.src.rpm")
    assert result["source"] == {"source": built.name, "url": built.name}
    assert "Finish: SRPM build phase" in hub.log(task_id, "state.log")
    assert hub.violations == []


def lookaside_makefile(git_server) -> str:
    """A source command that fetches from the test's server, on the builder's own 127.0.0.1."""
    return ("sources:\n\tpython3 -c \"import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], "
            f"'greeting.txt')\" http://127.0.0.1:{git_server.port}/lookaside/greeting.txt\n")


def test_build_srpm_from_scm_pins_the_commit_and_builds_offline(dist_tag, start_worker, wait_task, git_server):
    hub = dist_tag
    commit = git_server.publish("scm-hello", {"scm-hello.spec": spec_text("scm-hello", git_server.port),
                                              "Makefile": lookaside_makefile(git_server)})
    # The lookaside is on this host's loopback, which only the host network reaches.
    start_worker(allowed_scms=allowed(git_server), adjutant={"source_network": "host"})
    url = git_server.url("scm-hello")
    task_id = hub.create_task("buildSRPMFromSCM", [url, TAG, {"repo_id": hub.repo_id}], arch="noarch")
    result = check_closed(hub, wait_task(task_id), f"scm-hello-1.0-1{DIST}.src.rpm")

    assert result["source"] == {"url": url, "source": f"git+http://127.0.0.1:{git_server.port}/git/"
                                                      f"scm-hello.git#{commit}"}
    taskdir = koji.pathinfo.taskrelpath(task_id)
    assert f"{taskdir}/checkout.log" in result["logs"]
    assert "git clone -n" in hub.log(task_id, "checkout.log")
    srpm = hub.workdir / result["srpm"]
    # the source command ran with network: it fetched the source, which is in the SRPM
    assert "/lookaside/greeting.txt" in git_server.requests
    assert sorted(rpm_files(srpm)) == ["greeting.txt", "scm-hello.spec"]
    # rpmbuild -bs did not: the spec's probe of the same server, run while rpmbuild parsed it
    assert header(srpm, "%{DESCRIPTION}").strip() == NO_NETWORK
    state = hub.log(task_id, "state.log")
    assert "Finish: source phase" in state and "Finish: SRPM build phase" in state
    assert hub.violations == []


def test_a_source_command_does_not_reach_the_builders_own_services(dist_tag, start_worker, wait_task, git_server):
    """By default (source_network = private) the repository's source command has a network of its
    own, which does not reach services listening on the builder's loopback."""
    hub = dist_tag
    git_server.publish("scm-local", {"scm-local.spec": spec_text("scm-local", git_server.port),
                                     "Makefile": lookaside_makefile(git_server)})
    start_worker(allowed_scms=allowed(git_server))
    task_id = hub.create_task("buildSRPMFromSCM", [git_server.url("scm-local"), TAG, {"repo_id": hub.repo_id}],
                              arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    assert "error retrieving sources: make sources failed" in task["fault"]["faultString"]
    assert "/lookaside/greeting.txt" not in git_server.requests
    assert hub.violations == []


def test_disallowed_scm_fails_with_a_clear_fault(hub, start_worker, wait_task, git_server):
    git_server.publish("scm-hello", {"scm-hello.spec": spec_text("scm-hello", git_server.port)})
    start_worker(allowed_scms="scm.example.com:/rpms/*")
    task_id = hub.create_task("buildSRPMFromSCM", [git_server.url("scm-hello"), TAG, {"repo_id": hub.repo_id}],
                              arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.BuildError.faultCode
    message = task["fault"]["faultString"]
    assert "not in the list of allowed SCMs" in message and "allowed_scms" in message
    assert "Traceback" not in message
    assert hub.buildroots_of(task_id) == []
    assert not any(path.startswith("/git/") for path in git_server.requests)  # nothing was fetched


def test_two_spec_files_fail_with_a_clear_fault(hub, start_worker, wait_task, git_server):
    git_server.publish("two-specs", {"one.spec": spec_text("one", git_server.port),
                                     "two.spec": spec_text("two", git_server.port)})
    start_worker(allowed_scms=allowed(git_server))
    task_id = hub.create_task("buildSRPMFromSCM", [git_server.url("two-specs"), TAG, {"repo_id": hub.repo_id}],
                              arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.BuildError.faultCode
    assert ("multiple spec files found in the checkout, none named two-specs.spec: one.spec, two.spec"
            in task["fault"]["faultString"])
    assert "Traceback" not in task["fault"]["faultString"]
    assert hub.buildroots_of(task_id) == []


def check_refused(hub, task: dict, why: str) -> None:
    """Failed with the URL's fault, before a buildroot or a checkout."""
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.BuildError.faultCode
    message = task["fault"]["faultString"]
    assert why in message and "[?module]#revision" in message, message
    assert "Traceback" not in message
    assert hub.buildroots_of(task["id"]) == []
    assert hub.log(task["id"], "checkout.log") == ""


def test_option_in_the_revision_is_refused_and_never_runs(hub, start_worker, wait_task, git_server, e2e_tmp,
                                                          monkeypatch):
    """The worker's git reaches the server's repositories by its file transport, as on a builder whose
    git config rewrites its SCM's URLs to a local mirror (url.insteadOf): there git runs the
    upload-pack command itself, so kojid's `git fetch origin <revision>:...` would run the injected one."""
    git_server.publish("scm-hello", {"scm-hello.spec": spec_text("scm-hello", git_server.port)})
    config = e2e_tmp / "gitconfig"
    config.write_text(f'[url "file://{git_server.root}/git/"]\n'
                      f'\tinsteadOf = http://127.0.0.1:{git_server.port}/git/\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    witness = e2e_tmp / "injected"
    witness.mkdir()
    start_worker(allowed_scms=allowed(git_server))
    url = git_server.url("scm-hello", rev=f"--upload-pack=touch {witness}/ran")
    task_id = hub.create_task("buildSRPMFromSCM", [url, TAG, {"repo_id": hub.repo_id}], arch="noarch")
    task = wait_task(task_id)
    assert list(witness.iterdir()) == []
    check_refused(hub, task, f"SCM URL {url!r} refused: the revision '--upload-pack=touch {witness}/ran' "
                             "(or a /-part of it) starts with '-': it would be read as a command option")


def test_module_path_out_of_the_repository_is_refused(hub, start_worker, wait_task, git_server):
    git_server.publish("scm-hello", {"scm-hello.spec": spec_text("scm-hello", git_server.port)})
    start_worker(allowed_scms=allowed(git_server))
    url = f"git+http://127.0.0.1:{git_server.port}/git/scm-hello.git?../../etc#main"
    task_id = hub.create_task("buildSRPMFromSCM", [url, TAG, {"repo_id": hub.repo_id}], arch="noarch")
    check_refused(hub, wait_task(task_id), f"SCM URL {url!r} refused: the module path '../../etc' has a '.' "
                                           "or '..' part: it must stay inside the repository")
    assert not any(path.startswith("/git/") for path in git_server.requests)  # nothing was fetched
