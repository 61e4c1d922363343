"""Which arch a task's buildroot has and which arch rpmbuild targets, as kojid's BuildRoot decides."""

from __future__ import annotations

import pytest

from koji_adjutant.buildroot.spec import InstallGroup
from koji_adjutant.tasks.buildroots import TaskBuildroot

REPO = {"id": 7, "state": 1, "create_event": 99, "tag_id": 3, "tag_name": "f40-build"}  # state 1: READY


@pytest.fixture
def task(mocker):
    from koji.tasks import BaseTaskHandler

    task = mocker.Mock()
    task.session.repoInfo.return_value = REPO
    task.session.getBuildConfig.return_value = {"id": 3, "name": "f40-build", "arches": "i686 x86_64 aarch64"}
    task.session.host.getHost.return_value = {"name": "b1", "arches": "x86_64 i386 i686"}
    task.taskinfo = {"arch": "noarch"}
    # kojid's own arch choice for noarch (koji.tasks), on the mock task
    task.find_arch.side_effect = lambda *args, **kwargs: BaseTaskHandler.find_arch(task, *args, **kwargs)
    return task


@pytest.mark.parametrize("arch, br_arch, target", [
    ("i686", "i386", "i686"),          # the hub writes the repo of i686 builds at .../i386
    ("x86_64", "x86_64", "x86_64"),
    ("armhfp", "armhfp", "armv7hl"),   # autoconf knows no armhfp
])
def test_the_buildroot_has_the_canonical_arch_and_rpmbuild_the_tasks(task, arch, br_arch, target):
    buildroot = TaskBuildroot(task, "f40-build", arch, 7)
    assert (buildroot.br_arch, buildroot.target_arch) == (br_arch, target)


def test_a_noarch_build_targets_noarch_in_the_buildroot_the_hub_routed_it_to(task):
    task.taskinfo = {"arch": "x86_64"}
    buildroot = TaskBuildroot(task, "f40-build", "noarch", 7)
    assert (buildroot.br_arch, buildroot.target_arch) == ("x86_64", "noarch")


def test_an_srpm_is_made_with_target_noarch_in_the_srpm_build_group(task):
    buildroot = TaskBuildroot.for_srpm(task, "f40-build", 7)
    assert buildroot.target_arch == "noarch"
    assert buildroot.br_arch in ("x86_64", "i386")
    assert buildroot.group is InstallGroup.SRPM_BUILD


# -- buildArch's weight, as kojid's BuildArchTask.updateWeight ------------------------------

@pytest.mark.parametrize("average, weight", [
    (None, None), (0, None), (-5, None),      # never built (or a broken average): weight left as is
    (3600, 2.25),                             # +0.75 an hour
    (30 * 3600, 19.5),                        # at most +18
])
def test_weight_from_the_average_build_duration(average, weight):
    from koji_adjutant.tasks.buildarch import weight_for

    assert weight_for(average, 1.5) == weight


def test_update_weight_asks_the_last_six_months_and_falls_back_for_old_hubs(mocker, tmp_path):
    import koji

    from koji_adjutant.tasks.buildarch import BuildArchTask

    task = BuildArchTask(42, "buildArch", [], mocker.Mock(), mocker.Mock(), str(tmp_path / "work"))
    task.session.getAverageBuildDuration.side_effect = [koji.ParameterError("age"), 9600.0]
    task.update_weight("bash")
    assert task.session.getAverageBuildDuration.call_args_list == [mocker.call("bash", age=6), mocker.call("bash")]
    task.session.host.setTaskWeight.assert_called_once_with(42, 3.5)


def test_a_failure_names_the_tasks_uploaded_log_not_a_path_on_the_builder(mocker, tmp_path):
    import koji

    from koji_adjutant.errors import BuildError
    from koji_adjutant.tasks.base import AdjutantTask

    class Failing(AdjutantTask):
        Methods = ["failing"]

        def handler(self):
            raise BuildError("rpmbuild failed (exit 1)", log_path="/var/tmp/koji/tasks/90/90/result/build.log",
                             hint="read the end of the log")

    with pytest.raises(koji.BuildError) as caught:
        # run() empties and removes the task's workdir, as koji's BaseTaskHandler does
        Failing(90, "failing", [], mocker.Mock(), mocker.Mock(), str(tmp_path / "work")).run()
    assert str(caught.value) == ("rpmbuild failed (exit 1); see build.log of task 90 (koji watch-logs 90); "
                                 "read the end of the log")


# -- tag extras of mock -----------------------------------------------------------------------

def test_the_tags_mock_extras_reach_the_package_manager():
    from koji_adjutant.tasks.buildroots import package_manager_options

    options = package_manager_options("el8-build", {
        "mock.yum.best": False, "mock.package_manager": "yum", "mock.releasever": 8,
        "mock.module_setup_commands": [["enable", "nodejs:18"], ["disable", "python39"]]})
    assert (options.best, options.command, options.releasever) == (False, "yum", "8")
    assert options.module_setup == (("enable", "nodejs:18"), ("disable", "python39"))
    assert options.sync_image is False


@pytest.mark.parametrize("value, sync", [(True, True), ("yes", True), ("1", True), (False, False), ("0", False)])
def test_sync_image_packages_is_a_tag_extra(value, sync):
    from koji_adjutant.tasks.buildroots import package_manager_options

    assert package_manager_options("f40-build", {"adjutant.sync_image_packages": value}).sync_image is sync


@pytest.mark.parametrize("extra, message", [
    ({"mock.forcearch": "aarch64"}, "sets mock.forcearch = 'aarch64', which koji-adjutant cannot honour"),
    ({"mock.package_manager": "microdnf"}, "package manager 'microdnf' is not supported"),
    ({"mock.module_setup_commands": [["frobnicate", "x"]]}, "module setup command ['frobnicate', 'x'] is not one"),
])
def test_what_cannot_work_fails_the_task_naming_the_extra(extra, message):
    from koji_adjutant.errors import BuildrootError
    from koji_adjutant.tasks.buildroots import package_manager_options

    with pytest.raises(BuildrootError) as caught:
        package_manager_options("f40-build", extra)
    assert message in caught.value.message and "f40-build" in caught.value.message
