"""rebuildSRPM and buildSRPMFromSCM: the SRPM of a build, made in the tag's srpm-build buildroot.

kojid makes every SRPM it builds from in a buildroot of the build tag, so the
tag's macros (%dist, packager, vendor, distribution) are in it. Both tasks take
``(src, build_tag, opts)`` with ``opts['repo_id']`` required (``scratch`` is
passed to the build_from_scm policy) and return
``{'srpm', 'logs', 'brootid', 'source'}``, all paths relative to the task's
upload directory.
"""

from __future__ import annotations

from pathlib import Path

from ..buildroot.srpm import check_build_system_tags
from ..errors import BuildError
from ..scm import allowed_scm, checkout
from .base import AdjutantTask
from .buildroots import HubBuildResult, TaskBuildroot, tag_fits_host


class _SrpmTask(AdjutantTask):
    _taskWeight = 1.0

    def checkHost(self, hostdata):
        return tag_fits_host(self.session, self.params[1], hostdata)

    def _buildroot(self, build_tag, opts: dict) -> TaskBuildroot:
        repo_id = opts.get("repo_id")
        if not repo_id:
            raise BuildError("a repo id must be provided", hint="pass opts {'repo_id': N}, as the build task does")
        return TaskBuildroot.for_srpm(self, build_tag, repo_id)

    @property
    def _resultdir(self) -> Path:
        return Path(self.workdir) / "result"

    def _result(self, done: HubBuildResult, source: dict, extra_logs: tuple[str, ...] = ()) -> dict:
        srpm = done.build.srpm
        check_build_system_tags(srpm)
        self.uploadFile(str(srpm))
        uploaddir = self.getUploadDir()
        return {"srpm": f"{uploaddir}/{srpm.name}", "logs": [*extra_logs, *done.log_paths],
                "brootid": done.brootid, "source": source}


class RebuildSRPMTask(_SrpmTask):
    """The uploaded SRPM rebuilt with the tag's macros (its release gets the tag's %dist)."""

    Methods = ["rebuildSRPM"]

    def handler(self, srpm, build_tag, opts=None):
        buildroot = self._buildroot(build_tag, opts or {})
        path = Path(self.localPath(f"work/{srpm}"))
        if not path.is_file():
            raise BuildError(f"SRPM file missing: work/{srpm}")
        done = buildroot.make_srpm(path, self._resultdir)
        return self._result(done, {"source": path.name, "url": path.name})


class BuildSRPMFromSCMTask(_SrpmTask):
    """An SRPM from an allowed SCM URL; the result's source is pinned to the commit built."""

    Methods = ["buildSRPMFromSCM"]

    def handler(self, url, build_tag, opts=None):
        opts = opts or {}
        scm = allowed_scm(url, self.options, self.session, lambda: self._policy_data(opts))
        buildroot = self._buildroot(build_tag, opts)
        uploaddir = self.getUploadDir()
        fetched = checkout(scm, Path(self.workdir) / "scm", self.session, uploaddir,
                           rpm_layout=self.options.support_rpm_source_layout)
        done = buildroot.make_srpm(fetched.tree, self._resultdir)
        return self._result(done, fetched.source, extra_logs=(f"{uploaddir}/{fetched.log.name}",))

    def _policy_data(self, opts: dict) -> dict:
        """What kojid gives the build_from_scm policy besides the SCM's own fields."""
        channel = self.session.getChannel(self.taskinfo["channel_id"], strict=True)
        return {"user_id": self.taskinfo["owner"], "channel": channel["name"], "scratch": opts.get("scratch")}
