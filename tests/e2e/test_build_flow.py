"""The build parent task end to end: a user's `koji build` reaches the worker through the hub
simulator, which runs the subtasks (buildArch in podman, tagBuild) and records the build.

The build tag dev-build (its repo made by conftest) is the target's build tag;
builds go to the destination tag dev-candidate. The SRPMs are used as uploaded
(tag extra rebuild_srpm false) so that the flow under test is the parent task's.
The hub has kojihub's default policies, which let only admins build from an
uploaded SRPM or a given repo; tests of the flow itself use a hub that lets
the packager build uploaded SRPMs (srpm_target).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from pathlib import Path

import koji
import pytest
from noarchrpms import write_spec
from smtpsim import SmtpServer

from .harness import ARCH, EXAMPLES, TAG, host_rpmbuild, worker_containers

pytestmark = pytest.mark.podman

TARGET = "dev"
DEST = "dev-candidate"
USER, USER_PASSWORD = "packager", "packager-secret"


def tag_info(hub, name: str) -> dict:
    return next(tag for tag in hub.tags.values() if tag["name"] == name)


@pytest.fixture
def target(hub):
    """Target dev: build tag dev-build, destination dev-candidate; SRPMs built as uploaded."""
    hub.add_tag(DEST, arches=ARCH)
    hub.add_target(TARGET, TAG, DEST)
    tag_info(hub, TAG)["extra"]["rebuild_srpm"] = False
    hub.add_user(USER, USER_PASSWORD)
    return hub


@pytest.fixture
def srpm_target(target):
    """target, on a hub whose build_from_srpm policy lets every user build an uploaded SRPM,
    as a site's hub.conf [policy] may (the default lets only admins)."""
    target.set_policy("build_from_srpm", "all :: allow")
    return target


@pytest.fixture
def client(hub):
    """A logged-in user session, as the koji command line has."""
    session = koji.ClientSession(hub.url, {"user": USER, "password": USER_PASSWORD})
    yield session
    if session.logged_in:
        session.logout()


def login(session) -> koji.ClientSession:
    session.login()
    return session


def children(hub, task_id: int) -> dict[str, dict]:
    """Subtasks by label."""
    return {child["label"]: hub.task(child["id"]) for child in
            (t for t in hub.tasks.values() if t["parent"] == task_id)}


def build_hello(client, hub, wait_task, opts: dict | None = None) -> tuple[int, dict]:
    """hello-noarch built for TARGET: the task id, and the task once it has ended."""
    task_id = login(client).build(hub.srpms["hello-noarch"], TARGET, *([opts] if opts else []))
    return task_id, wait_task(task_id)


def failure(task: dict) -> str:
    return (task["fault"] or {}).get("faultString", "")


def build_policy_data(hub, task_id: int, user: str, **changes) -> dict:
    """What kojid's build task gives the hub's build policies for hello-noarch built for TARGET."""
    data = {"user_id": hub.rpc_getUser(user)["id"], "source": hub.srpms["hello-noarch"], "task_id": task_id,
            "build_tag": tag_info(hub, TAG)["id"], "skip_tag": False, "scratch": None, "draft": None,
            "from_scm": False, "repo_id": None, "target": TARGET, "tag": tag_info(hub, DEST)["id"]}
    return {**data, **changes}


def admin_client(hub) -> koji.ClientSession:
    """The hub's admin, as the koji command line has it (build_hello logs it in)."""
    return koji.ClientSession(hub.url, {"user": "hubsim-admin", "password": hub.users[hub.admin_id]["password"]})


def test_build_completes_is_imported_and_tagged(srpm_target, client, start_worker, wait_task):
    hub = srpm_target
    hub.add_package(DEST, "hello-noarch")
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "CLOSED", failure(task)

    subtasks = children(hub, task_id)
    assert set(subtasks) == {"noarch", "tag"}
    assert subtasks["noarch"]["method"] == "buildArch" and subtasks["noarch"]["arch"] == ARCH
    assert subtasks["noarch"]["request"][2:4] == ["noarch", True]   # arch, keep_srpm
    assert subtasks["tag"]["method"] == "tagBuild" and subtasks["tag"]["state"] == "CLOSED"

    (build,) = client.listBuilds(taskID=task_id)
    info = hub.build(build["id"])
    assert info["state"] == "COMPLETE" and info["nvr"] == "hello-noarch-1.0-1"
    assert info["owner_name"] == USER and info["task_id"] == task_id
    assert sorted(f"{r['name']}.{r['arch']}" for r in info["rpms"]) == ["hello-noarch.noarch", "hello-noarch.src"]
    brootids = {r["buildroot_id"] for r in info["rpms"]}
    assert brootids == {subtasks["noarch"]["result"]["brootid"]}
    assert hub.tagged(DEST) == ["hello-noarch-1.0-1"] and info["tags"] == [DEST]
    packages = Path(koji.PathInfo(topdir=str(hub.topdir)).build(info))
    assert (packages / "noarch" / "hello-noarch-1.0-1.noarch.rpm").is_file()
    assert hub.violations == []


def test_a_package_listed_after_the_repo_was_made_builds(srpm_target, client, start_worker, wait_task):
    """kojid reads the package list at the latest event, not the repo's: the first build after
    add-pkg needs no new repo."""
    hub = srpm_target
    repo_event = hub.repos[hub.repo_id]["create_event"]
    hub.add_package(DEST, "hello-noarch")
    assert hub.rpc_getPackageConfig(DEST, "hello-noarch", event=repo_event) is None   # not at the repo's event
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "CLOSED", failure(task)
    assert hub.repos[hub.repo_id]["create_event"] == repo_event   # built from the same repo


def test_build_arch_weight_follows_the_packages_average_build_time(srpm_target, client, start_worker, wait_task):
    """kojid's BuildArchTask.updateWeight: a package that took hours weighs more on its host."""
    hub = srpm_target
    hub.add_package(DEST, "hello-noarch")
    hub.add_past_build("hello-noarch", "0.9", "1", seconds=2 * 3600)
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "CLOSED", failure(task)
    assert children(hub, task_id)["noarch"]["weight"] == pytest.approx(1.5 + 2 * 0.75)


def test_a_draft_build_and_custom_metadata_reach_the_hub(srpm_target, client, start_worker, wait_task):
    hub = srpm_target
    hub.add_package(DEST, "hello-noarch")
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task,
                                {"draft": True, "custom_user_metadata": {"ticket": "OPS-1"}})
    assert task["state"] == "CLOSED", failure(task)
    (build,) = client.listBuilds(taskID=task_id)
    info = hub.build(build["id"])
    assert info["draft"] is True
    assert info["extra"]["custom_user_metadata"] == {"ticket": "OPS-1"}


def test_a_completed_build_is_mailed_to_its_subscribers(srpm_target, client, start_worker, wait_task):
    """completeBuild makes the hub ask for a buildNotification, which the worker mails. The
    build's own tagging asks with ignore_success, so a successful build sends one mail, not two."""
    hub = srpm_target
    hub.add_package(DEST, "hello-noarch")
    hub.add_notification(USER, package="hello-noarch", email="watcher@example.org")
    with SmtpServer() as smtp:
        start_worker(maxjobs=4, smtphost=smtp.host)
        _, task = build_hello(client, hub, wait_task)
        assert task["state"] == "CLOSED", failure(task)
        (notice,) = [t for t in hub.tasks.values() if t["method"].endswith("Notification")]
        assert notice["method"] == "buildNotification"
        assert wait_task(notice["id"])["state"] == "CLOSED"
        (mail,) = smtp.wait(1)
    assert mail.rcpt_to == ("watcher@example.org",)
    assert mail.message["Subject"] == (f"Package: hello-noarch-1.0-1 Tag: {DEST} Status: complete "
                                       f"Built by: {USER}"), mail.message["Subject"]
    assert "Task Info: " in mail.message.get_content()


def test_uploaded_srpm_is_rebuilt_with_the_tag_macros_first(srpm_target, client, start_worker, wait_task):
    hub = srpm_target
    extra = tag_info(hub, TAG)["extra"]
    del extra["rebuild_srpm"]                       # the default: rebuild
    extra["rpm.macro.packager"] = "E2E Packagers"   # a tag macro only the rebuilt SRPM can carry
    hub.add_package(DEST, "hello-noarch")
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "CLOSED", failure(task)
    subtasks = children(hub, task_id)
    assert set(subtasks) == {"srpm", "noarch", "tag"}
    srpm_task = subtasks["srpm"]
    assert srpm_task["method"] == "rebuildSRPM" and srpm_task["state"] == "CLOSED"
    assert srpm_task["request"][:2] == [hub.srpms["hello-noarch"], tag_info(hub, TAG)["id"]]
    assert subtasks["noarch"]["request"][0] == srpm_task["result"]["srpm"]   # buildArch builds the rebuilt SRPM

    (build,) = client.listBuilds(taskID=task_id)
    assert [r["arch"] for r in hub.build(build["id"])["rpms"]].count("src") == 1
    path = Path(koji.PathInfo(topdir=str(hub.topdir)).build(build)) / "src" / "hello-noarch-1.0-1.src.rpm"
    packager = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", "%{PACKAGER}", str(path)],
                              capture_output=True, text=True, check=True).stdout
    assert packager == "E2E Packagers"
    assert hub.tagged(DEST) == ["hello-noarch-1.0-1"]
    assert hub.violations == []


def test_scratch_build_leaves_no_build_record(target, client, start_worker, wait_task):
    """A packager's scratch build of an uploaded SRPM: the default policies allow it (build_rpm only)."""
    hub = target
    start_worker(maxjobs=4)   # a scratch build needs no package listing
    task_id, task = build_hello(client, hub, wait_task, {"scratch": True})
    assert task["state"] == "CLOSED", failure(task)
    assert hub.asserted_policies == [("build_rpm", build_policy_data(hub, task_id, USER, scratch=True))]
    assert set(children(hub, task_id)) == {"noarch"}
    assert hub.builds == {} and hub.tagged(DEST) == []
    scratch = hub.topdir / "scratch" / USER / f"task_{task_id}"
    assert sorted(p.name for p in scratch.glob("*.rpm")) == ["hello-noarch-1.0-1.noarch.rpm",
                                                               "hello-noarch-1.0-1.src.rpm"]
    assert {"build.log", "root.log"} <= {p.name for p in (scratch / "logs" / "noarch").iterdir()}
    assert hub.violations == []


def test_unlisted_package_fails_before_anything_is_built(srpm_target, client, start_worker, wait_task):
    hub = srpm_target
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.BuildError.faultCode
    message = failure(task)
    assert f"package hello-noarch is not in the package list of tag {DEST}" in message
    assert f"koji add-pkg {DEST} hello-noarch" in message and "Traceback" not in message
    assert children(hub, task_id) == {} and hub.builds == {}


def test_the_hub_build_rpm_policy_can_refuse_the_build(srpm_target, client, start_worker, wait_task):
    hub = srpm_target
    hub.set_policy("build_rpm", "match source git* :: allow\nall :: deny no builds from uploaded SRPMs")
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.ActionNotAllowed.faultCode
    assert "policy violation (build_rpm): no builds from uploaded SRPMs" in failure(task)
    data = build_policy_data(hub, task_id, USER)
    assert hub.asserted_policies == [("build_from_srpm", data), ("build_rpm", data)]
    assert children(hub, task_id) == {} and hub.builds == {}


# -- kojihub's default build policies ------------------------------------------------

def test_by_default_only_an_admin_builds_an_uploaded_srpm(target, client, start_worker, wait_task):
    """build_from_srpm refuses the packager's build before anything is built; the admin's builds."""
    hub = target
    hub.add_package(DEST, "hello-noarch")
    start_worker(maxjobs=4)
    refused_id, refused = build_hello(client, hub, wait_task)
    assert refused["state"] == "FAILED"
    assert refused["fault"]["faultCode"] == koji.ActionNotAllowed.faultCode
    assert "policy violation (build_from_srpm): Only admin can do this via default policy" in failure(refused)
    assert hub.asserted_policies == [("build_from_srpm", build_policy_data(hub, refused_id, USER))]
    assert children(hub, refused_id) == {} and hub.builds == {}

    hub.asserted_policies.clear()
    task_id, task = build_hello(admin_client(hub), hub, wait_task)
    assert task["state"] == "CLOSED", failure(task)
    data = build_policy_data(hub, task_id, "hubsim-admin")
    assert hub.asserted_policies == [("build_from_srpm", data), ("build_rpm", data)]
    assert hub.tagged(DEST) == ["hello-noarch-1.0-1"]
    assert {v["method"] for v in hub.violations} == {"host.assertPolicy"}


def test_by_default_only_an_admin_builds_from_a_given_repo(target, client, start_worker, wait_task):
    """build_from_repo_id refuses the packager's scratch build from a given repo (scratch: no build_from_srpm)."""
    hub = target
    start_worker(maxjobs=4)
    task_id, task = build_hello(client, hub, wait_task, {"scratch": True, "repo_id": hub.repo_id})
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.ActionNotAllowed.faultCode
    assert "policy violation (build_from_repo_id): Only admin can do this via default policy" in failure(task)
    data = build_policy_data(hub, task_id, USER, scratch=True, repo_id=hub.repo_id)
    assert hub.asserted_policies == [("build_from_repo_id", data)]
    assert children(hub, task_id) == {} and hub.builds == {}


# -- one arch fails: the others are cancelled --------------------------------------


SECOND_ARCH, SECOND_HOST_ARCH = "i686", "i386"   # koji routes i686 builds to i386 hosts


def build_two_arches(hub) -> None:
    """The target's tags have ARCH and SECOND_ARCH, the builder takes both, the repo has both."""
    for name in (TAG, DEST):
        tag_info(hub, name)["arches"] = f"{ARCH} {SECOND_ARCH}"
    hub.hosts[hub.builder_id]["arches"] = f"{ARCH} {SECOND_HOST_ARCH}"
    hub.hosts[hub.builder_id]["capacity"] = 4.0
    repo = hub.topdir / "repos" / TAG / str(hub.repo_id)
    shutil.copytree(repo / ARCH, repo / koji.canonArch(SECOND_ARCH))   # the hub writes repos per canonical arch


def upload_srpm(spec: Path, base: Path, workdir: Path) -> str:
    """The SRPM of ``spec`` (host rpmbuild -bs) where a user's upload lands: its path under work/."""
    subprocess.run(["rpmbuild", "-bs", "--quiet", "--define", f"_topdir {base}", "--define", f"_srcrpmdir {base}",
                    str(spec)], check=True, capture_output=True)
    (srpm,) = base.glob(f"{spec.stem}-*.src.rpm")
    shutil.copy(srpm, workdir / "e2e" / srpm.name)
    return f"e2e/{srpm.name}"


def arch_fail_srpm(base, workdir) -> str:
    """A package that fails at once on i686 and builds for minutes elsewhere."""
    spec = base / "arch-fail.spec"
    spec.write_text(textwrap.dedent(f"""\
        Name: arch-fail
        Version: 1.0
        Release: 1
        Summary: fails on {SECOND_ARCH} only
        License: MIT
        AutoReqProv: no

        %description
        Its {SECOND_ARCH} build fails; the others take long enough to be cancelled.

        %prep

        %build
        %ifarch {SECOND_ARCH}
        echo "arch-fail: intentional failure on %{{_target_cpu}}"
        exit 1
        %else
        echo "arch-fail: building slowly on %{{_target_cpu}}"
        sleep 300
        %endif

        %install
        mkdir -p %{{buildroot}}/usr/share/arch-fail

        %files
        /usr/share/arch-fail
        """))
    return upload_srpm(spec, base, workdir)


def test_a_failed_arch_cancels_the_others_and_fails_the_build(srpm_target, client, start_worker, wait_task,
                                                               wait_until, e2e_tmp, e2e_worker_id):
    hub = srpm_target
    build_two_arches(hub)
    hub.add_package(DEST, "arch-fail")
    srpm = arch_fail_srpm(e2e_tmp, hub.workdir)
    start_worker(maxjobs=4)
    task_id = login(client).build(srpm, TARGET)
    task = wait_task(task_id, timeout=240)   # well before the other arch's 300 s build could end
    assert task["state"] == "FAILED"

    subtasks = children(hub, task_id)
    assert set(subtasks) == {ARCH, SECOND_ARCH}
    failed, other = subtasks[SECOND_ARCH], subtasks[ARCH]
    assert failed["state"] == "FAILED" and failed["arch"] == SECOND_HOST_ARCH
    assert failed["fault"]["faultCode"] == koji.BuildError.faultCode and "build.log" in failure(failed)
    assert other["state"] == "CANCELED"
    assert failure(task) == failure(failed)
    assert "intentional failure on i686" in hub.log(failed["id"], "build.log")

    (build,) = client.listBuilds(taskID=task_id)
    assert hub.build(build["id"])["state"] == "FAILED"
    assert hub.tagged(DEST) == []
    # the worker kills the cancelled build: its buildroot is expired and its containers removed
    wait_until(lambda: all(br["state"] == "EXPIRED" for br in hub.buildroots) and not worker_containers(e2e_worker_id),
               "the cancelled build's buildroot and containers to go", timeout=60)
    # what the hub refused were the cancelled task's own last calls, nothing else
    assert {v["message"] for v in hub.violations} <= {f"host {hub.builder_id} does not own task {other['id']}"}, \
        hub.violations


# -- a noarch subpackage built on two arches ---------------------------------------

def test_noarch_copies_built_on_two_arches_must_not_differ(srpm_target, client, start_worker, wait_task, e2e_tmp):
    """Each buildArch uploads kojid's noarch_rpmdiff.json; the hub keeps one copy of a noarch RPM
    made on both arches if the copies match (file contents aside), else fails the build."""
    hub = srpm_target
    build_two_arches(hub)
    srpms = {}
    for name, arch_dependent in (("noarch-same", False), ("noarch-differs", True)):
        hub.add_package(DEST, name)
        srpms[name] = upload_srpm(write_spec(e2e_tmp / name, name, arch_dependent), e2e_tmp / name, hub.workdir)
    start_worker(maxjobs=6)
    session = login(client)
    same_id, differs_id = (session.build(srpms[name], TARGET) for name in ("noarch-same", "noarch-differs"))

    differs = wait_task(differs_id, timeout=300)
    assert differs["state"] == "FAILED"
    assert differs["fault"]["faultCode"] == koji.BuildError.faultCode
    assert ("The following noarch package built differently on different architectures: "
            "noarch-differs-data-1.0-1.noarch.rpm\nrpmdiff output was:\n"
            f"added       /usr/share/noarch-differs/built-on-{SECOND_ARCH}\n"
            f"removed     /usr/share/noarch-differs/built-on-{ARCH}") in failure(differs)
    (failed_build,) = client.listBuilds(taskID=differs_id)
    assert hub.build(failed_build["id"])["state"] == "FAILED"

    same = wait_task(same_id, timeout=300)
    assert same["state"] == "CLOSED", failure(same)
    (build,) = client.listBuilds(taskID=same_id)
    info = hub.build(build["id"])
    assert {f"{r['name']}.{r['arch']}" for r in info["rpms"]} == {
        "noarch-same-data.noarch", f"noarch-same.{ARCH}", f"noarch-same.{SECOND_ARCH}", "noarch-same.src"}
    assert len(info["rpms"]) == 4   # the noarch copy kept once
    logs = Path(koji.PathInfo(topdir=str(hub.topdir)).build_logs(info))
    hashes = {}
    for arch, subtask in children(hub, same_id).items():
        if subtask["method"] == "buildArch":
            assert f"{koji.pathinfo.taskrelpath(subtask['id'])}/noarch_rpmdiff.json" in subtask["result"]["logs"]
            (task_hashes,) = json.loads((logs / arch / "noarch_rpmdiff.json").read_text()).items()
            assert task_hashes[0] == str(subtask["id"])
            hashes[arch] = task_hashes[1]
    assert set(hashes) == {ARCH, SECOND_ARCH}
    assert hashes[ARCH] == hashes[SECOND_ARCH] and list(hashes[ARCH]) == ["noarch-same-data-1.0-1.noarch.rpm"]
    # the hub refused one call: the differing build's completeBuild
    assert [(v["method"], v["code"]) for v in hub.violations] == [("host.completeBuild", koji.BuildError.faultCode)]


# -- tagBuild on its own -----------------------------------------------------------

def imported_hello(hub, base) -> int:
    """hello-noarch built on the host and imported as a COMPLETE build, tagged nowhere."""
    srpm, rpms = host_rpmbuild(EXAMPLES / "hello-noarch" / "hello-noarch.spec", base)
    return hub.import_build([srpm, *rpms])


def test_refused_tagging_fails_the_task_and_asks_the_hub_to_notify(target, start_worker, wait_task, e2e_tmp):
    hub = target
    build_id = imported_hello(hub, e2e_tmp / "rpmbuild")
    hub.add_notification(USER, tag=DEST)
    dest_id = tag_info(hub, DEST)["id"]
    start_worker(maxjobs=4)
    task_id = hub.create_task("tagBuild", [dest_id, build_id, False, None, False], owner=USER, arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.TagError.faultCode
    assert f"Package hello-noarch not in list for {dest_id}" in failure(task)
    assert hub.tagged(DEST) == []

    (notice,) = [t for t in hub.tasks.values() if t["method"] == "tagNotification"]
    request = hub.task(notice["id"])["request"]
    recipients, success, tag, fromtag, build, user_id, ignore_success, message = request
    assert (success, tag, fromtag, build, ignore_success) == (False, dest_id, None, build_id, False)
    assert recipients == [f"{USER}@hubsim.test"] and user_id == hub.rpc_getUser(USER)["id"]
    assert message.startswith("TagError: ") and "not in list" in message
    assert wait_task(notice["id"])["state"] == "CLOSED"   # no smtphost: the worker logs the mail


def test_tagging_a_listed_package_notifies_success(target, start_worker, wait_task, e2e_tmp):
    hub = target
    build_id = imported_hello(hub, e2e_tmp / "rpmbuild")
    hub.add_package(DEST, "hello-noarch")
    hub.add_notification(USER, tag=DEST)
    dest_id = tag_info(hub, DEST)["id"]
    start_worker(maxjobs=4)
    task_id = hub.create_task("tagBuild", [dest_id, build_id, False, None, False], owner=USER, arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", failure(task)
    assert hub.tagged(DEST) == ["hello-noarch-1.0-1"]
    (notice,) = [t for t in hub.tasks.values() if t["method"] == "tagNotification"]
    assert hub.task(notice["id"])["request"][1] is True
    assert wait_task(notice["id"])["state"] == "CLOSED"
    assert hub.violations == []
