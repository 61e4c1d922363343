"""kojihub's comparison of the noarch copies of one build (check_noarch_rpms), on RPMs built with
the host's rpmbuild and laid out as buildArch tasks upload them."""

from __future__ import annotations

import json
import shutil

import koji
import pytest

from hubsim.noarch import check_noarch_rpms
from koji_adjutant.tasks.buildarch import noarch_rpmdiff
from tests.noarchrpms import build_noarch_copies

TASKS = {"x86_64": 11, "i686": 12}


def uploaded(workdir, copies, arch_rpms=()):
    """The copies under each arch's task dir, as relative paths: {arch: relpath}, the arch RPMs after."""
    paths = {}
    for arch, path in copies.items():
        relpath = f"tasks/{TASKS[arch]}/{TASKS[arch]}/{path.name}"
        (workdir / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, workdir / relpath)
        paths[arch] = relpath
    return paths


def hash_logs(workdir, hashes):
    """noarch_rpmdiff.json of each task, with the given {arch: {name: hash}}: the logs argument."""
    logs = {}
    for arch, task_hashes in hashes.items():
        relpath = f"tasks/{TASKS[arch]}/{TASKS[arch]}/noarch_rpmdiff.json"
        (workdir / relpath).write_text(json.dumps({str(TASKS[arch]): task_hashes}))
        logs[arch] = [f"tasks/{TASKS[arch]}/{TASKS[arch]}/build.log", relpath]
    return logs


@pytest.fixture(scope="module")
def same(tmp_path_factory):
    return build_noarch_copies(tmp_path_factory.mktemp("same"), "same", list(TASKS), arch_dependent=False)


@pytest.fixture(scope="module")
def differing(tmp_path_factory):
    return build_noarch_copies(tmp_path_factory.mktemp("differing"), "differing", list(TASKS), arch_dependent=True)


def test_equal_copies_are_kept_once_the_first(tmp_path, same):
    paths = uploaded(tmp_path, same)
    rpms = [paths["x86_64"], "tasks/11/11/same-1.0-1.x86_64.rpm", paths["i686"], "tasks/12/12/same-1.0-1.i686.rpm"]
    logs = hash_logs(tmp_path, {arch: noarch_rpmdiff([same[arch]]) for arch in TASKS})
    assert check_noarch_rpms(str(tmp_path), rpms, logs) == [
        paths["x86_64"], "tasks/11/11/same-1.0-1.x86_64.rpm", "tasks/12/12/same-1.0-1.i686.rpm"]


def test_equal_copies_without_hashes_are_compared_and_kept_once(tmp_path, same):
    paths = uploaded(tmp_path, same)
    assert check_noarch_rpms(str(tmp_path), [paths["x86_64"], paths["i686"]]) == [paths["x86_64"]]


def test_differing_copies_fail_with_kojihubs_message_and_rpmdiff_output(tmp_path, differing):
    paths = uploaded(tmp_path, differing)
    logs = hash_logs(tmp_path, {arch: noarch_rpmdiff([differing[arch]]) for arch in TASKS})
    with pytest.raises(koji.BuildError) as failed:
        check_noarch_rpms(str(tmp_path), [paths["x86_64"], paths["i686"]], logs)
    assert str(failed.value) == (
        "The following noarch package built differently on different architectures: "
        "differing-data-1.0-1.noarch.rpm\nrpmdiff output was:\n"
        "added       /usr/share/differing/built-on-i686\n"
        "removed     /usr/share/differing/built-on-x86_64")


def test_equal_hashes_are_trusted_as_kojihub_does(tmp_path, differing):
    """Hashes the builders computed skip the comparison of the files when they match."""
    paths = uploaded(tmp_path, differing)
    logs = hash_logs(tmp_path, {arch: {"differing-data-1.0-1.noarch.rpm": "0" * 64} for arch in TASKS})
    assert check_noarch_rpms(str(tmp_path), [paths["x86_64"], paths["i686"]], logs) == [paths["x86_64"]]
