"""buildArch: build one SRPM for one arch and hand the results to the hub."""

from __future__ import annotations

from pathlib import Path

import koji

from ..buildroot.srpm import check_build_system_tags
from ..errors import BuildError
from .base import AdjutantTask
from .buildroots import TaskBuildroot


class BuildArchTask(AdjutantTask):
    Methods = ["buildArch"]
    _taskWeight = 1.5

    def checkHost(self, hostdata):
        """Refuse when none of the tag's arches is one of this host's (as kojid does)."""
        build_config = self.session.getBuildConfig(self.params[1])
        if not build_config or not build_config.get("arches"):
            return True
        tag_arches = {koji.canonArch(a) for a in build_config["arches"].split()}
        return bool(tag_arches & set(hostdata["arches"].split()))

    def handler(self, pkg, root, arch, keep_srpm, opts=None):
        opts = opts or {}
        repo_id = opts.get("repo_id")
        if not repo_id:
            raise BuildError("a repo id must be provided")
        srpm = Path(self.localPath(f"work/{pkg}"))
        if not srpm.is_file():
            raise BuildError(f"SRPM file missing: work/{pkg}")
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
