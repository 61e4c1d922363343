"""tagBuild: tag a build on the hub, then have the hub tell whoever wants to know.

The hub already ran its cheap checks when the task was made; host.tagBuild
runs them again and does the tagging. Success or failure, the hub is asked
for a tagNotification (it makes one only when someone is subscribed).
"""

from __future__ import annotations

import logging

from .base import AdjutantTask

log = logging.getLogger(__name__)


class TagBuildTask(AdjutantTask):
    Methods = ["tagBuild"]
    _taskWeight = 1.0

    def handler(self, tag_id, build_id, force=False, fromtag=None, ignore_success=False):
        user_id = self.taskinfo["owner"]
        try:
            self.session.getBuild(build_id, strict=True)
            self.session.getTag(tag_id, strict=True)
            self.session.host.tagBuild(self.id, tag_id, build_id, force=force, fromtag=fromtag)
        except Exception as exc:
            log.info("task %s: tagging build %s into tag %s failed: %s", self.id, build_id, tag_id, exc)
            self.session.host.tagNotification(False, tag_id, fromtag, build_id, user_id, ignore_success,
                                              f"{type(exc).__name__}: {exc}")
            raise
        self.session.host.tagNotification(True, tag_id, fromtag, build_id, user_id, ignore_success)
