"""chainbuild: build groups of packages in order, each group against the one before.

Every group's builds run side by side as ``build`` subtasks; an entry that
is not an SCM URL names an existing build (N-V-R) the next group needs.
Before a group starts, a repo of the build tag must contain everything the
groups before it built: as kojid does, a waitrepo subtask waits for one
(arguments every hub since 1.34 takes), and the hub's repo manager
regenerates it.
"""

from __future__ import annotations

import logging

from koji.daemon import SCM

from ..errors import BuildError
from .base import AdjutantTask
from .subtasks import start_subtask, wait_all

log = logging.getLogger(__name__)


def split_level(level: list[str]) -> tuple[list[str], list[str]]:
    """(SCM URLs to build, N-V-Rs of existing builds) of one group."""
    urls = [src for src in level if SCM.is_scm_url(src)]
    return urls, [src for src in level if not SCM.is_scm_url(src)]


class ChainBuildTask(AdjutantTask):
    Methods = ["chainbuild"]
    _taskWeight = 0.1

    def handler(self, srcs, target, opts=None):
        opts = dict(opts or {})
        if opts.get("scratch"):
            raise BuildError("a chain build cannot be a scratch build", hint="build the packages one by one")
        target_info = self.session.getBuildTarget(target)
        if not target_info:
            raise BuildError(f"unknown build target: {target}", hint="koji list-targets shows the known ones")
        nvrs: list[str] = []
        for level_no, level in enumerate(srcs):
            if nvrs:
                waiting = self.session.host.subtask(method="waitrepo",
                                                    arglist=[target_info["build_tag_name"], None, nvrs],
                                                    label=f"wait {level_no}", parent=self.id)
                self.wait(waiting, all=True, failany=True)
                log.info("task %s: group %s builds once the repo has %s", self.id, level_no, ", ".join(nvrs))
            urls, nvrs = split_level(level)
            tasks = [start_subtask(self, "build", [url, target, opts], label=f"build {level_no},{index}")
                     for index, url in enumerate(urls)]
            if tasks:
                wait_all(self, tasks, failany=True)
                nvrs.extend(self._built_nvr(task_id) for task_id in tasks)

    def _built_nvr(self, task_id: int) -> str:
        builds = self.session.listBuilds(taskID=task_id)
        if not builds:
            raise BuildError(f"build task {task_id} closed without a build")
        return builds[0]["nvr"]
