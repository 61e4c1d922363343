"""tagNotification and buildNotification: the hub's mails, written and sent by a builder.

The hub creates these tasks (host.tagNotification after a tag operation,
build_notification after a build ends) with the recipients already chosen;
the builder gathers what the mail says from the hub, as kojid does, and
delivers it (mail.py).
"""

from __future__ import annotations

import koji
import koji.util

from ..mail import MailServer, deliver
from ..notices import BuildOutcome, TagOperation, TaskOutcome, build_mail, tag_mail
from .base import AdjutantTask


class TagNotificationTask(AdjutantTask):
    Methods = ["tagNotification"]
    _taskWeight = 0.1

    def handler(self, recipients, is_successful, tag_info, from_info, build_info, user_info,
                ignore_success=None, failure_msg=""):
        if not recipients:
            self.logger.debug("task %i: no recipients, no notification", self.id)
            return None
        if ignore_success and is_successful:
            self.logger.debug("task %i: successful and ignore_success set, no notification", self.id)
            return None
        build = self.session.getBuild(build_info, strict=True)
        operation = TagOperation(
            nvr=koji.buildLabel(build), package=build["package_name"],
            user=self.session.getUser(user_info, strict=True)["name"], successful=bool(is_successful),
            into_tag=self.session.getTag(tag_info, strict=True)["name"] if tag_info else None,
            from_tag=self.session.getTag(from_info, strict=True)["name"] if from_info else None,
            failure=failure_msg or "")
        return deliver(tag_mail(operation, self.options.from_addr, recipients),
                       MailServer.from_options(self.options))


class BuildNotificationTask(AdjutantTask):
    Methods = ["buildNotification"]
    _taskWeight = 0.1

    def handler(self, recipients, build, target, weburl):
        if not recipients:
            self.logger.debug("task %i: no recipients, no notification", self.id)
            return None
        state = koji.BUILD_STATES[build["state"]].lower()
        canceled_by = None
        if state == "canceled":
            # the hub makes the canceling user the owner of this task
            owner = self.session.getTaskInfo(self.id)["owner"]
            canceled_by = owner and self.session.getUser(owner)["name"]
        task_id = build.get("task_id")
        outcome = BuildOutcome(
            id=build["id"], nvr=koji.buildLabel(build), package=build["package_name"],
            owner=build["owner_name"], state=state,
            dest_tag=target["dest_tag_name"] if target else None,
            started=koji.formatTimeLong(build.get("creation_time")),
            finished=koji.formatTimeLong(build.get("completion_time")),
            task_id=task_id, weburl=weburl.rstrip("/"),
            packages_url=koji.PathInfo(topdir=self.options.topurl).build(build),
            changelog=koji.util.formatChangelog(
                self.session.getChangelogEntries(build["id"], queryOpts={"limit": 3})),
            canceled_by=canceled_by,
            tasks=tuple(self._task_tree(task_id)) if task_id else ())
        return deliver(build_mail(outcome, self.options.from_addr, recipients),
                       MailServer.from_options(self.options))

    def _task_tree(self, task_id):
        info = self.session.getTaskInfo(task_id)
        if not info:
            return
        host = self.session.getHost(info["host_id"]) if info["host_id"] else None
        try:
            result = str(self.session.getTaskResult(task_id))
        except koji.GenericError as exc:  # failed and canceled tasks: the fault is the result
            result = str(exc).strip()
        except koji.xmlrpcplus.Fault as exc:
            result = exc.faultString.strip()
        files = sorted(self.session.listTaskOutput(task_id))
        logs = tuple(f for f in files if f.endswith(".log"))
        srpms = tuple(f for f in files if f.endswith(".src.rpm"))
        rpms = tuple(f for f in files if f.endswith(".rpm") and f not in srpms)
        yield TaskOutcome(
            id=info["id"], label=koji.taskLabel(info), state=koji.TASK_STATES[info["state"]].lower(),
            host=host["name"] if host else None, arch=info["arch"], result=result or "Unknown",
            logs=logs, rpms=rpms, srpms=srpms, misc=tuple(f for f in files if f not in (*logs, *rpms, *srpms)))
        for child in self.session.getTaskChildren(task_id):
            yield from self._task_tree(child["id"])
