"""buildArch: build one SRPM for one arch and hand the results to the hub."""

from __future__ import annotations

from pathlib import Path

import logging

import koji

from ..buildroot.srpm import check_build_system_tags, srpm_headers
from ..errors import BuildError
from .base import AdjutantTask
from .buildroots import TaskBuildroot, tag_fits_host

log = logging.getLogger(__name__)

#: kojid adds 0.75 to a buildArch's weight for every hour a build of the package takes on
#: average, at most 18 (24 hours), so hosts are not over-committed with heavy packages.
_SECONDS_PER_WEIGHT = 4800.0
_MAX_EXTRA_WEIGHT = 18.0


def weight_for(average_seconds: float | None, base: float) -> float | None:
    """The task weight kojid's BuildArchTask.updateWeight sets; None to leave it."""
    if not average_seconds or average_seconds < 0:
        return None
    return base + min(_MAX_EXTRA_WEIGHT, average_seconds / _SECONDS_PER_WEIGHT)


class BuildArchTask(AdjutantTask):
    Methods = ["buildArch"]
    _taskWeight = 1.5

    def update_weight(self, name: str) -> None:
        """As kojid: the hub's average build time of the package (last 6 months) sets the weight."""
        try:
            average = self.session.getAverageBuildDuration(name, age=6)
        except koji.ParameterError:  # a hub before 1.23 takes no age
            average = self.session.getAverageBuildDuration(name)
        if average is not None and average < 0:
            log.warning("negative average build duration for %s: %s", name, average)
        weight = weight_for(average, self._taskWeight)
        if weight is not None:
            self.session.host.setTaskWeight(self.id, weight)

    def checkHost(self, hostdata):
        return tag_fits_host(self.session, self.params[1], hostdata)

    def handler(self, pkg, root, arch, keep_srpm, opts=None):
        opts = opts or {}
        repo_id = opts.get("repo_id")
        if not repo_id:
            raise BuildError("a repo id must be provided")
        srpm = Path(self.localPath(f"work/{pkg}"))
        if not srpm.is_file():
            raise BuildError(f"SRPM file missing: work/{pkg}")
        self.update_weight(srpm_headers(srpm, ("NAME",))["NAME"])
        buildroot = TaskBuildroot(self, root, arch, repo_id)
        done = buildroot.build(srpm, Path(self.workdir) / "result")

        uploaddir = self.getUploadDir()
        for rpm in done.build.rpms:
            self.uploadFile(str(rpm))
        srpms = []
        if keep_srpm:
            check_build_system_tags(done.build.srpm)
            self.uploadFile(str(done.build.srpm))
            srpms = [f"{uploaddir}/{done.build.srpm.name}"]
        return {
            "rpms": [f"{uploaddir}/{rpm.name}" for rpm in done.build.rpms],
            "srpms": srpms,
            "logs": done.log_paths,
            "brootid": done.brootid,
        }
