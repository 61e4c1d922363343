"""The steps every handler that makes a buildroot of a build tag shares (kojid's BaseBuildTask).

buildArch, rebuildSRPM and buildSRPMFromSCM each take the build tag as their
second parameter and need a repo of it, refuse a host none of whose arches the
tag builds for, and hand an SRPM to the hub only once kojid's header check has
passed. Kept here once, so each handler is its own steps and nothing else.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..buildroot.srpm import check_build_system_tags
from ..errors import BuildError
from .base import AdjutantTask
from .buildroots import tag_fits_host

log = logging.getLogger(__name__)


class BuildrootTask(AdjutantTask):
    """Base of the handlers called as ``(source, build_tag, ...)`` that build in a buildroot of build_tag."""

    def checkHost(self, hostdata):
        return tag_fits_host(self.session, self.params[1], hostdata)

    @staticmethod
    def required_repo(opts: dict | None) -> int:
        """The repo the parent task chose; never guessed here, as the parent's waitrepo already ran."""
        repo_id = (opts or {}).get("repo_id")
        if not repo_id:
            raise BuildError("a repo id must be provided", hint="pass opts {'repo_id': N}, as the build task does")
        return repo_id

    def input_srpm(self, relpath: str) -> Path:
        """An uploaded SRPM under work/, fetched from topurl like any task input."""
        path = Path(self.localPath(f"work/{relpath}"))
        if not path.is_file():
            raise BuildError(f"SRPM file missing: work/{relpath}")
        return path

    @property
    def resultdir(self) -> Path:
        return Path(self.workdir) / "result"

    def upload_srpm(self, srpm: Path) -> str:
        """Upload an SRPM this task made, refused (as kojid does) if the tag's build system headers are
        missing from it; its path in the upload directory."""
        check_build_system_tags(srpm)
        self.uploadFile(str(srpm))
        return f"{self.getUploadDir()}/{srpm.name}"
