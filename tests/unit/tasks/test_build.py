"""The pure parts of the build parent task: merging buildArch results, initBuild data, chain groups."""

from __future__ import annotations

import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.tasks.arches import ArchHeader
from koji_adjutant.tasks.build import ArchBuilds, initbuild_data, merge_arch_results
from koji_adjutant.tasks.chain import split_level
from koji_adjutant.tasks.subtasks import SrpmHeader


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


def test_exactly_one_arch_must_return_the_srpm():
    with pytest.raises(BuildError, match="no buildArch subtask returned the SRPM"):
        merge_arch_results({"x86_64": arch_result(11, ["p-1-1.x86_64.rpm"], False, 7)})
    with pytest.raises(BuildError, match="more than one buildArch returned an SRPM"):
        merge_arch_results({"x86_64": arch_result(11, [], True, 7), "i686": arch_result(12, [], True, 8)})


def test_initbuild_data_carries_the_source_of_an_scm_build():
    header = SrpmHeader("p", "1", "2.fc40", None, ArchHeader())
    assert initbuild_data(header, 5, None) == {"name": "p", "version": "1", "release": "2.fc40", "epoch": None,
                                               "task_id": 5}
    source = {"source": "git+https://h/p.git#0123abc", "url": "git+https://h/p.git#main"}
    data = initbuild_data(header, 5, source)
    assert data["source"] == "git+https://h/p.git#0123abc"
    assert data["extra"] == {"source": {"original_url": "git+https://h/p.git#main"}}


def test_a_chain_group_splits_into_urls_to_build_and_existing_builds():
    level = ["git+https://h/a.git#1", "libgreet-1.0-1", "git://h/b#2"]
    assert split_level(level) == (["git+https://h/a.git#1", "git://h/b#2"], ["libgreet-1.0-1"])
