"""buildArch: build one SRPM for one arch and hand the results to the hub."""

from __future__ import annotations

from pathlib import Path

from ..buildroot.srpm import check_build_system_tags
from ..errors import BuildError
from .base import AdjutantTask
from .buildroots import TaskBuildroot, tag_fits_host


class BuildArchTask(AdjutantTask):
    Methods = ["buildArch"]
    _taskWeight = 1.5

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
