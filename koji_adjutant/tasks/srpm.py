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

from ..scm import allowed_scm, checkout
from .buildbase import BuildrootTask
from .buildroots import HubBuildResult, TaskBuildroot


class _SrpmTask(BuildrootTask):
    _taskWeight = 1.0

    def _buildroot(self, build_tag, opts: dict | None) -> TaskBuildroot:
        return TaskBuildroot.for_srpm(self, build_tag, self.required_repo(opts))

    def _result(self, done: HubBuildResult, source: dict, extra_logs: tuple[str, ...] = ()) -> dict:
        return {"srpm": self.upload_srpm(done.build.srpm), "logs": [*extra_logs, *done.log_paths],
                "brootid": done.brootid, "source": source}


class RebuildSRPMTask(_SrpmTask):
    """The uploaded SRPM rebuilt with the tag's macros (its release gets the tag's %dist)."""

    Methods = ["rebuildSRPM"]

    def handler(self, srpm, build_tag, opts=None):
        buildroot = self._buildroot(build_tag, opts)
        path = self.input_srpm(srpm)
        done = buildroot.make_srpm(path, self.resultdir)
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
        done = buildroot.make_srpm(fetched.tree, self.resultdir)
        return self._result(done, fetched.source, extra_logs=(f"{uploaddir}/{fetched.log.name}",))

    def _policy_data(self, opts: dict) -> dict:
        """What kojid gives the build_from_scm policy besides the SCM's own fields."""
        channel = self.session.getChannel(self.taskinfo["channel_id"], strict=True)
        return {"user_id": self.taskinfo["owner"], "channel": channel["name"], "scratch": opts.get("scratch")}
