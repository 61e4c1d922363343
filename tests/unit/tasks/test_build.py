"""The pure parts of the build parent task: merging buildArch results, initBuild data, chain groups,
the hub policies it asks and with what."""

from __future__ import annotations

from types import SimpleNamespace

import koji
import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.rpmheader import RpmHeader
from koji_adjutant.tasks.build import (
    ArchBuilds,
    BuildTask,
    Destination,
    build_policies,
    check_custom_user_metadata,
    initbuild_data,
    merge_arch_results,
    policy_data,
)
from koji_adjutant.tasks.chain import split_level


def arch_result(task: int, rpms: list[str], srpm: bool, brootid: int) -> dict:
    base = f"tasks/{task}/{task}"
    return {"rpms": [f"{base}/{name}" for name in rpms], "srpms": [f"{base}/p-1-1.src.rpm"] if srpm else [],
            "logs": [f"{base}/build.log", f"{base}/root.log"], "brootid": brootid}


def test_results_of_all_arches_become_complete_build_arguments():
    merged = merge_arch_results({
        "x86_64": arch_result(11, ["p-1-1.x86_64.rpm", "p-devel-1-1.x86_64.rpm"], True, 7),
        "i686": arch_result(12, ["p-1-1.i686.rpm"], False, 8),
    })
    assert merged == ArchBuilds(
        srpm="tasks/11/11/p-1-1.src.rpm",
        rpms=["tasks/11/11/p-1-1.x86_64.rpm", "tasks/11/11/p-devel-1-1.x86_64.rpm", "tasks/12/12/p-1-1.i686.rpm"],
        brmap={"tasks/11/11/p-1-1.x86_64.rpm": 7, "tasks/11/11/p-devel-1-1.x86_64.rpm": 7,
               "tasks/12/12/p-1-1.i686.rpm": 8, "tasks/11/11/p-1-1.src.rpm": 7},
        logs={"x86_64": ["tasks/11/11/build.log", "tasks/11/11/root.log"],
              "i686": ["tasks/12/12/build.log", "tasks/12/12/root.log"]})


def test_noarch_rpmdiff_hashes_reach_the_hub_among_each_arch_logs():
    """kojihub's check_noarch_rpms finds each buildArch's noarch_rpmdiff.json in completeBuild's logs."""
    x86 = arch_result(11, ["p-data-1-1.noarch.rpm"], True, 7)
    i686 = arch_result(12, ["p-data-1-1.noarch.rpm"], False, 8)
    x86["logs"].append("tasks/11/11/noarch_rpmdiff.json")
    i686["logs"].append("tasks/12/12/noarch_rpmdiff.json")
    merged = merge_arch_results({"x86_64": x86, "i686": i686})
    assert merged.rpms == ["tasks/11/11/p-data-1-1.noarch.rpm", "tasks/12/12/p-data-1-1.noarch.rpm"]
    assert merged.logs["x86_64"][-1] == "tasks/11/11/noarch_rpmdiff.json"
    assert merged.logs["i686"][-1] == "tasks/12/12/noarch_rpmdiff.json"


def test_exactly_one_arch_must_return_the_srpm():
    with pytest.raises(BuildError, match="no buildArch subtask returned the SRPM"):
        merge_arch_results({"x86_64": arch_result(11, ["p-1-1.x86_64.rpm"], False, 7)})
    with pytest.raises(BuildError, match="more than one buildArch returned an SRPM"):
        merge_arch_results({"x86_64": arch_result(11, [], True, 7), "i686": arch_result(12, [], True, 8)})


def source_header(name: str, version: str, release: str) -> RpmHeader:
    return RpmHeader(name=name, version=version, release=release, epoch=None, arch="src", is_source=True,
                     packager="", vendor="", distribution="")


def test_initbuild_data_carries_the_source_of_an_scm_build():
    header = source_header("p", "1", "2.fc40")
    assert initbuild_data(header, 5, None, {}) == {"name": "p", "version": "1", "release": "2.fc40",
                                                   "epoch": None, "task_id": 5}
    source = {"source": "git+https://h/p.git#0123abc", "url": "git+https://h/p.git#main"}
    data = initbuild_data(header, 5, source, {})
    assert data["source"] == "git+https://h/p.git#0123abc"
    assert data["extra"] == {"source": {"original_url": "git+https://h/p.git#main"}}


def test_initbuild_data_passes_drafts_and_custom_user_metadata_through():
    header = source_header("p", "1", "2")
    source = {"source": "s#abc", "url": "s#main"}
    data = initbuild_data(header, 5, source, {"draft": True, "custom_user_metadata": {"team": "base"}})
    assert data["draft"] is True
    assert data["extra"] == {"source": {"original_url": "s#main"}, "custom_user_metadata": {"team": "base"}}


@pytest.mark.parametrize("metadata, message", [
    (["not", "a", "dict"], "must be serializable to a JSON object"),
    ({"when": object()}, "is not JSON serializable"),
])
def test_custom_user_metadata_must_be_a_json_object(metadata, message):
    with pytest.raises(BuildError, match=message):
        check_custom_user_metadata({"custom_user_metadata": metadata})


def test_a_chain_group_splits_into_urls_to_build_and_existing_builds():
    level = ["git+https://h/a.git#1", "libgreet-1.0-1", "git://h/b#2"]
    assert split_level(level) == (["git+https://h/a.git#1", "git://h/b#2"], ["libgreet-1.0-1"])


# -- hub policies, as kojid's BuildTask.handler asks them ----------------------------

SRPM = "cli-build/1700000000.1.abc/p-1-1.src.rpm"
GIT = "git+https://src.example.org/rpms/p.git#0123abc"


@pytest.mark.parametrize("src, opts, names", [
    (SRPM, {}, ["build_from_srpm", "build_rpm"]),
    (SRPM, {"scratch": True}, ["build_rpm"]),
    (SRPM, {"repo_id": 5}, ["build_from_srpm", "build_from_repo_id", "build_rpm"]),
    (SRPM, {"scratch": True, "repo_id": 0}, ["build_from_repo_id", "build_rpm"]),   # repo 0 is a repo
    (GIT, {}, ["build_rpm"]),
    (GIT, {"repo_id": 5, "scratch": False}, ["build_from_repo_id", "build_rpm"]),
])
def test_policies_asked_in_kojids_order(src, opts, names):
    assert build_policies(src, opts) == names


def test_policy_data_of_a_tagged_build_for_a_target():
    where = Destination(build_tag=3, dest_tag=4, dest_tag_name="f40", target_name="f40-candidate", skip_tag=False)
    assert policy_data(7, SRPM, 99, where, {}) == {
        "user_id": 7, "source": SRPM, "task_id": 99, "build_tag": 3, "skip_tag": False, "scratch": None,
        "draft": None, "from_scm": False, "repo_id": None, "target": "f40-candidate", "tag": 4}


def test_policy_data_without_target_or_tagging_leaves_those_keys_out():
    where = Destination(build_tag=3, dest_tag=3, dest_tag_name="f40-build", target_name=None, skip_tag=True)
    opts = {"scratch": True, "draft": False, "repo_id": 12}
    assert policy_data(7, GIT, 99, where, opts) == {
        "user_id": 7, "source": GIT, "task_id": 99, "build_tag": 3, "skip_tag": True, "scratch": True,
        "draft": False, "from_scm": True, "repo_id": 12}


class Stop(Exception):
    """Ends the handler where the test has seen what it needs."""


@pytest.fixture
def session(mocker):
    session = mocker.MagicMock()
    session.host = mocker.MagicMock(unsafe=True)   # host.assertPolicy is no mock assertion
    session.getTaskInfo.return_value = {"id": 99, "owner": 7, "arch": "noarch", "channel_id": 1}
    session.getBuildTarget.return_value = {"id": 2, "name": "f40-candidate", "build_tag": 3,
                                           "build_tag_name": "f40-build", "dest_tag": 4, "dest_tag_name": "f40"}
    session.repoInfo.return_value = {"id": 12, "state": koji.REPO_STATES["READY"], "create_event": 500,
                                     "tag_id": 3, "tag_name": "f40-build"}
    return session


def build_task(session) -> BuildTask:
    return BuildTask(99, "build", [], session, SimpleNamespace(workdir="/nonexistent"))


def test_handler_asserts_the_policies_before_it_waits_for_a_repo(mocker, session):
    def get_repo(*args, **kwargs):
        assert session.host.assertPolicy.call_count == 2
        raise Stop

    mocker.patch.object(BuildTask, "getRepo", side_effect=get_repo)
    with pytest.raises(Stop):
        build_task(session).handler(SRPM, "f40-candidate")
    data = {"user_id": 7, "source": SRPM, "task_id": 99, "build_tag": 3, "skip_tag": False, "scratch": None,
            "draft": None, "from_scm": False, "repo_id": None, "target": "f40-candidate", "tag": 4}
    assert session.host.assertPolicy.call_args_list == [mocker.call("build_from_srpm", data),
                                                         mocker.call("build_rpm", data)]


def test_handler_with_a_repo_and_no_target_asks_build_from_repo_id(mocker, session):
    session.getBuildConfig.side_effect = Stop
    with pytest.raises(Stop):
        build_task(session).handler(SRPM, None, {"repo_id": 12, "scratch": True})
    data = {"user_id": 7, "source": SRPM, "task_id": 99, "build_tag": 3, "skip_tag": True, "scratch": True,
            "draft": None, "from_scm": False, "repo_id": 12}
    assert session.host.assertPolicy.call_args_list == [mocker.call("build_from_repo_id", data),
                                                         mocker.call("build_rpm", data)]


def test_a_refusing_policy_ends_the_handler(mocker, session):
    session.host.assertPolicy.side_effect = koji.ActionNotAllowed(
        "policy violation (build_from_srpm): Only admin can do this via default policy")
    get_repo = mocker.patch.object(BuildTask, "getRepo")
    with pytest.raises(koji.ActionNotAllowed, match="Only admin"):
        build_task(session).handler(SRPM, "f40-candidate")
    assert session.host.assertPolicy.call_count == 1
    get_repo.assert_not_called()
