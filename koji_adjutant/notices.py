"""The mails a builder sends for the hub: tag operations and finished builds.

kojid's tagNotification and buildNotification tasks write these; mail filters
people have set up match kojid's subjects and X-Koji-* headers, so those are
kept as kojid writes them. Everything here is pure: the handlers gather the
facts from the hub into the dataclasses below, and mail.py delivers.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import urlencode

#: RFC 5322's limit; the default 78 folds kojid's long subjects.
_ONE_LINE_HEADERS = email.policy.default.clone(max_line_length=998)
#: Task states in the order kojid lists them in a build mail.
_LISTED_STATES = ("failed", "canceled", "closed")


@dataclass(frozen=True)
class Mail:
    from_addr: str
    recipients: tuple[str, ...]
    subject: str
    body: str
    headers: tuple[tuple[str, str], ...] = ()

    def message(self) -> EmailMessage:
        # headers on one line, as kojid writes them: filters match the subject as a whole
        msg = EmailMessage(policy=_ONE_LINE_HEADERS)
        msg["From"] = self.from_addr
        msg["To"] = ", ".join(self.recipients)
        msg["Subject"] = self.subject
        for name, value in self.headers:
            msg[name] = value
        # 7bit when it can be: a mail server without 8BITMIME takes it as it is
        msg.set_content(self.body, cte="7bit" if self.body.isascii() else "quoted-printable")
        return msg


@dataclass(frozen=True)
class TagOperation:
    """One tag, untag or move of a build, as host.tagNotification reports it."""

    nvr: str
    package: str
    user: str
    successful: bool
    into_tag: str | None = None
    from_tag: str | None = None
    failure: str = ""

    @property
    def action(self) -> str:
        if self.into_tag and self.from_tag:
            return "moved"
        return "tagged" if self.into_tag else "untagged"


def tag_mail(op: TagOperation, from_addr: str, recipients: Sequence[str]) -> Mail:
    operation = op.action
    details = [f"Tag Operation: {op.action}"]
    tag_headers = []
    if op.from_tag:
        operation += f" from {op.from_tag}"
        details.append(f"From Tag: {op.from_tag}")
        tag_headers.append(("X-Koji-Tag", op.from_tag))
    if op.into_tag:
        operation += f" into {op.into_tag}"
        details.append(f"Into Tag: {op.into_tag}")
        tag_headers.append(("X-Koji-Tag", op.into_tag))
    result = "successfully" if op.successful else "unsuccessfully"
    status = "complete" if op.successful else "failed"
    summary = f"{op.nvr} {result} {operation} by {op.user}"
    lines = [f"Package: {op.package}", f"NVR: {op.nvr}", f"User: {op.user}", f"Status: {status}",
             *details, "", summary]
    if not op.successful:
        lines += ["", "Operation failed with the error:", f"    {op.failure}"]
    headers = (("X-Koji-Package", op.package), ("X-Koji-NVR", op.nvr), ("X-Koji-User", op.user),
               ("X-Koji-Status", status), *tag_headers)
    return Mail(from_addr, tuple(recipients), summary, "\n".join(lines) + "\n", headers)


@dataclass(frozen=True)
class TaskOutcome:
    """One task of a build's task tree and the files it wrote."""

    id: int
    label: str
    state: str
    host: str | None
    arch: str
    result: str
    logs: tuple[str, ...] = ()
    rpms: tuple[str, ...] = ()
    srpms: tuple[str, ...] = ()
    misc: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildOutcome:
    """A finished (or failed, or canceled) build, as buildNotification reports it."""

    id: int
    nvr: str
    package: str
    owner: str
    state: str
    dest_tag: str | None
    started: str
    finished: str
    task_id: int | None
    weburl: str
    #: where the build's RPMs are published: <topurl>/packages/N/V/R (koji.PathInfo.build)
    packages_url: str
    changelog: str = ""
    canceled_by: str | None = None
    tasks: tuple[TaskOutcome, ...] = field(default=())


def _task_file_url(weburl: str, task_id: int, name: str) -> str:
    return f"{weburl}/getfile?{urlencode({'taskID': task_id, 'name': name})}"


def _rpm_url(build: BuildOutcome, task: TaskOutcome, name: str) -> str:
    """Published RPMs are under the build's packages directory; others only in the task's output."""
    if build.state == "complete":
        arch = name[:-len(".rpm")].rsplit(".", 1)[-1]
        return f"{build.packages_url}/{arch}/{name}"
    return _task_file_url(build.weburl, task.id, name)


def _task_section(build: BuildOutcome, state: str, tasks: list[TaskOutcome]) -> list[str]:
    lines = [f"{state.capitalize()} tasks:", "-" * (len(state) + 7), ""]
    for task in tasks:
        lines.append(f"Task {task.id}" + (f" on {task.host}" if task.host else ""))
        lines.append(f"Task Type: {task.label}")
        for kind, names in (("logs", task.logs), ("rpms", task.rpms), ("misc", task.misc)):
            if names:
                lines.append(f"{kind}:")
                for name in names:
                    url = _rpm_url(build, task, name) if kind == "rpms" else \
                        _task_file_url(build.weburl, task.id, name)
                    lines.append(f"  {url}")
        lines.append("")
    return lines


def build_mail(build: BuildOutcome, from_addr: str, recipients: Sequence[str]) -> Mail:
    dest_tag = build.dest_tag or "None"
    subject = f"Package: {build.nvr} Tag: {dest_tag} Status: {build.state} Built by: {build.owner}"
    lines = [f"Package: {build.nvr}", f"Tag: {dest_tag}", f"Status: {build.state}"]
    if build.state == "canceled" and build.canceled_by:
        lines.append(f"Canceled by: {build.canceled_by}")
    lines += [f"Built by: {build.owner}", f"ID: {build.id}", f"Started: {build.started}",
              f"Finished: {build.finished}", ""]
    if build.changelog:
        lines += ["Changelog:", build.changelog.rstrip("\n"), ""]
    if build.state == "failed":
        failed = [t for t in build.tasks if t.state == "failed"]
        hosts = ", ".join(f"{t.host} ({t.arch})" for t in failed if t.host)
        top = next((t for t in build.tasks if t.id == build.task_id), None)
        lines += [f"{build.nvr} ({build.id}) failed on {hosts or 'no host'}:",
                  f"  {top.result if top else 'Unknown'}", ""]
    srpms = sorted({name for task in build.tasks for name in task.srpms})
    if srpms:
        lines += ["SRPMS:", *(f"  {name}" for name in srpms), ""]
    for state in _LISTED_STATES:
        tasks = [t for t in build.tasks if t.state == state]
        if tasks:
            lines += _task_section(build, state, tasks)
    if build.task_id is not None:
        lines.append(f"Task Info: {build.weburl}/taskinfo?taskID={build.task_id}")
    lines.append(f"Build Info: {build.weburl}/buildinfo?buildID={build.id}")
    headers = (("X-Koji-Tag", dest_tag), ("X-Koji-Package", build.package), ("X-Koji-Builder", build.owner),
               ("X-Koji-Status", build.state))
    return Mail(from_addr, tuple(recipients), subject, "\n".join(lines) + "\n", headers)
