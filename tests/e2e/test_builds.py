"""buildArch end to end: the daemon takes the task from the hub, builds in podman, and
hands back what kojid would (results, uploads, buildroot record, logs)."""

from __future__ import annotations

import json
import re
import subprocess

import koji
import pytest

from .harness import ARCH, DEV_IMAGE, TAG, cached_environments, unrecorded_images

pytestmark = pytest.mark.podman

RESULT_KEYS = {"rpms", "srpms", "logs", "brootid"}
REQUIRED_LOGS = {"root.log", "build.log", "state.log", "container.log"}
IMAGE_PACKAGE = "koji-adjutant-dev-image-provides"


def header(path, fmt: str) -> str:
    return subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", fmt, str(path)],
                          capture_output=True, text=True, check=True).stdout


def check_buildroot(hub, task_id: int, brootid: int | None, repo_names: set[str], needed: set[str]) -> dict:
    """The task's one buildroot went INIT → BUILDING → EXPIRED and lists only repo packages."""
    (broot,) = hub.buildroots_of(task_id)
    if brootid is not None:
        assert broot["id"] == brootid
    assert hub.br_history[broot["id"]] == ["INIT", "BUILDING", "EXPIRED"]
    assert broot["state"] == "EXPIRED" and broot["repo_id"] == hub.repo_id and broot["arch"] == ARCH
    listed = {rpm["name"] for rpm in broot["rpmlist"]}
    assert IMAGE_PACKAGE not in listed
    assert listed <= repo_names, f"packages the repo does not have: {listed - repo_names}"
    assert needed <= listed, f"missing from the buildroot listing: {needed - listed}"
    assert all(rpm["external_repo_id"] == 0 for rpm in broot["rpmlist"])
    return broot


@pytest.mark.parametrize("sample, keep_srpm, expected_rpms, needed", [
    ("hello-noarch", True, ["hello-noarch-1.0-1.noarch.rpm"], {"sample-buildsys-build"}),
    ("hello-c", False, [f"hello-c-1.0-1.{ARCH}.rpm"], {"sample-buildsys-build", "libgreet-devel"}),
    ("dynamic-br", True, ["dynamic-br-1.0-1.noarch.rpm"], {"sample-buildsys-build", "libgreet-devel"}),
])
def test_build_arch_closes_with_kojid_results(hub, start_worker, wait_task, e2e_inputs, podman_manager,
                                               e2e_worker_id, sample, keep_srpm, expected_rpms, needed):
    worker = start_worker()
    task_id = hub.submit(sample, keep_srpm=keep_srpm)
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    result = task["result"]
    assert set(result) == RESULT_KEYS
    taskdir = koji.pathinfo.taskrelpath(task_id)

    for path in (*result["rpms"], *result["srpms"], *result["logs"]):
        assert path.startswith(f"{taskdir}/") and "/" not in path[len(taskdir) + 1:]
        assert hub.uploaded(path), f"{path} is empty"
    assert sorted(p.rsplit("/", 1)[1] for p in result["rpms"]) == expected_rpms
    for path in result["rpms"]:
        nvra = header(hub.workdir / path, "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm")
        assert path.endswith(f"/{nvra}")
    if keep_srpm:
        assert result["srpms"] == [f"{taskdir}/{sample}-1.0-1.src.rpm"]
        srpm = hub.workdir / result["srpms"][0]
        assert header(srpm, "%{NAME}-%{VERSION}-%{RELEASE}.src.rpm") == f"{sample}-1.0-1.src.rpm"
        assert header(srpm, "%{SOURCERPM}") == "(none)"
        assert header(srpm, "%{PACKAGER}|%{VENDOR}|%{DISTRIBUTION}") == "Koji|Koji|Koji"
    else:
        assert result["srpms"] == []

    logs = {p.rsplit("/", 1)[1] for p in result["logs"]}
    assert REQUIRED_LOGS <= logs
    container_log = hub.log(task_id, "container.log")
    digest = podman_manager.image_info(DEV_IMAGE).digest
    assert f"image: {DEV_IMAGE}\n" in container_log
    assert f"digest: {digest}\n" in container_log and digest
    assert "chosen by: config default_image" in container_log
    assert "Finish: build phase" in hub.log(task_id, "state.log")
    assert "sample-buildsys-build" in hub.log(task_id, "root.log")
    assert sample in hub.log(task_id, "build.log")

    repo_names = {rpm["name"] for rpm in e2e_inputs.repo_rpms}
    check_buildroot(hub, task_id, result["brootid"], repo_names, needed)
    assert "not found in rpmlist.jsonl" not in worker.log_text()   # every Koji RPM mapped to its id
    assert hub.policy_data and hub.policy_data[-1]["tag"] == TAG
    assert hub.violations == []
    # a cold build: its layers were made, and are kept as cached environments: the group, and one
    # with the BuildRequires when there are any
    assert "reusing cached buildroot" not in hub.log(task_id, "root.log")
    layers = cached_environments(hub)
    assert len(layers) == (1 if sample == "hello-noarch" else 2)
    for env in layers:
        assert (env.tag, env.arch, env.base_digest) == (TAG, ARCH, digest)
    assert unrecorded_images(hub, e2e_worker_id) == []


def test_a_repo_rpm_that_is_not_kojis_file_fails_the_build_as_kojid_does(hub, start_worker, wait_task):
    """kojid's mapInternalRPMs: a buildroot package whose sigmd5 is not that of Koji's RPM of the
    same N-V-R.A (rpmlist.jsonl) is refused."""
    rpmlist = hub.topdir / "repos" / TAG / str(hub.repo_id) / ARCH / "rpmlist.jsonl"
    rows = [json.loads(line) for line in rpmlist.read_text().splitlines()]
    for row in rows:
        if row["name"] == "sample-buildsys-build":
            row["payloadhash"] = "0" * 32
    rpmlist.write_text("".join(json.dumps(row) + "\n" for row in rows))
    start_worker()
    task = wait_task(hub.submit("hello-noarch"))
    assert task["state"] == "FAILED"
    fault = task["fault"]["faultString"]
    assert re.search(r"RPM: sample-buildsys-build-\S+: payloadhash: [0-9a-f]{32} mismatch expected 0{32} in "
                     r"rpmlist.jsonl", fault), fault


def test_image_packages_are_listed_under_the_operators_external_repo(hub, start_worker, wait_task):
    """[adjutant] image_packages_repo: koji list-buildroot answers "which compiler built this?"."""
    hub.add_external_repo("adjutant-image-packages", "https://images.example.invalid/")
    start_worker(adjutant={"image_packages_repo": "adjutant-image-packages"})
    task_id = hub.submit("hello-noarch")
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    (broot,) = hub.buildroots_of(task_id)
    by_name = {rpm["name"]: rpm for rpm in broot["rpmlist"]}
    assert by_name[IMAGE_PACKAGE]["external_repo_name"] == "adjutant-image-packages"
    assert by_name["sample-buildsys-build"]["external_repo_id"] == 0   # the Koji build of the tag's repo


def test_an_image_packages_repo_the_hub_lacks_fails_the_task_saying_so(hub, start_worker, wait_task):
    start_worker(adjutant={"image_packages_repo": "no-such-repo"})
    task = wait_task(hub.submit("hello-noarch"))
    assert task["state"] == "FAILED"
    assert ("image_packages_repo = no-such-repo: the hub has no external repo of that name"
            in task["fault"]["faultString"])
    assert hub.buildroots_of(task["id"]) == []   # said before any buildroot was made


def test_second_build_reuses_the_cached_buildroot_and_reports_the_same_rpmlist(hub, start_worker, wait_task):
    start_worker()
    first = hub.submit("hello-c")
    assert wait_task(first)["state"] == "CLOSED"
    second = hub.submit("hello-c", keep_srpm=False)
    task = wait_task(second)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    layers = {" ".join(env.inputs["requirements"]) or "group": env for env in cached_environments(hub)}
    assert set(layers) == {"group", "gcc libgreet-devel"}
    assert layers["gcc libgreet-devel"].use_count == 1
    assert f"reusing cached buildroot {layers['gcc libgreet-devel'].name}" in hub.log(second, "root.log")
    assert "Start: installing" not in hub.log(second, "root.log")
    assert task["result"]["rpms"] == [f"{koji.pathinfo.taskrelpath(second)}/hello-c-1.0-1.{ARCH}.rpm"]
    (cold,), (warm,) = hub.buildroots_of(first), hub.buildroots_of(second)
    assert hub.br_history[warm["id"]] == ["INIT", "BUILDING", "EXPIRED"]
    assert warm["rpmlist"] == cold["rpmlist"] and warm["rpmlist"]
    assert hub.violations == []


def test_failed_build_is_a_build_error_naming_build_log(hub, start_worker, wait_task, e2e_inputs):
    start_worker()
    task_id = hub.submit("fail-build")
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultCode"] == koji.BuildError.faultCode == 1005
    message = task["fault"]["faultString"]
    assert f"see build.log of task {task_id} (koji watch-logs {task_id})" in message
    assert "/" not in message.split("see ", 1)[1].split(";")[0], "a path on the builder means nothing to users"
    assert "Traceback" not in message
    assert "intentional failure in %build" in hub.log(task_id, "build.log")
    repo_names = {rpm["name"] for rpm in e2e_inputs.repo_rpms}
    check_buildroot(hub, task_id, None, repo_names, {"sample-buildsys-build"})
    assert hub.violations == []


def test_image_chosen_by_hub_policy(hub, start_worker, wait_task):
    hub.set_policy("buildroot_image", f"match tag {TAG} :: image {DEV_IMAGE}")
    start_worker()
    task_id = hub.submit("hello-noarch")
    assert wait_task(task_id)["state"] == "CLOSED"
    container_log = hub.log(task_id, "container.log")
    assert f"image: {DEV_IMAGE}\n" in container_log
    assert "chosen by: hub policy buildroot_image\n" in container_log
    (data,) = hub.policy_data
    assert data["tag"] == TAG and data["arch"] == ARCH and data["task_id"] == task_id
    assert hub.violations == []


def test_image_chosen_by_tag_extra(hub, start_worker, wait_task):
    del hub.policies["buildroot_image"]  # the hub has no such policy
    next(tag for tag in hub.tags.values() if tag["name"] == TAG)["extra"]["adjutant.image"] = DEV_IMAGE
    start_worker()
    task_id = hub.submit("hello-noarch")
    assert wait_task(task_id)["state"] == "CLOSED"
    container_log = hub.log(task_id, "container.log")
    assert f"image: {DEV_IMAGE}\n" in container_log
    assert "chosen by: tag extra adjutant.image\n" in container_log
    # the only error the hub raised: its answer to the policy it does not have
    assert {v["method"] for v in hub.violations} == {"host.evalPolicy"}
    assert all(re.fullmatch(r"no such policy: buildroot_image", v["message"]) for v in hub.violations)
