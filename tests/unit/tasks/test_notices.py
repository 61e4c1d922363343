"""The notification mails, composed from facts the handlers gathered (kojid's subjects and headers)."""

from __future__ import annotations

import pytest

from koji_adjutant.notices import BuildOutcome, TagOperation, TaskOutcome, build_mail, tag_mail

FROM = "Koji Build System <buildsys@example.org>"


@pytest.mark.parametrize("into_tag, from_tag, action, subject_operation", [
    ("f40", None, "tagged", "tagged into f40"),
    (None, "f40-testing", "untagged", "untagged from f40-testing"),
    ("f40", "f40-testing", "moved", "moved from f40-testing into f40"),
])
def test_tag_mail_names_the_operation_as_kojid(into_tag, from_tag, action, subject_operation):
    op = TagOperation(nvr="hello-1.0-1", package="hello", user="alice", successful=True,
                      into_tag=into_tag, from_tag=from_tag)
    mail = tag_mail(op, FROM, ["a@example.org", "b@example.org"])
    assert mail.subject == f"hello-1.0-1 successfully {subject_operation} by alice"
    assert mail.recipients == ("a@example.org", "b@example.org")
    msg = mail.message()
    assert msg["To"] == "a@example.org, b@example.org" and msg["From"] == FROM
    assert msg["X-Koji-Package"] == "hello" and msg["X-Koji-NVR"] == "hello-1.0-1"
    assert msg["X-Koji-User"] == "alice" and msg["X-Koji-Status"] == "complete"
    assert msg.get_all("X-Koji-Tag") == [t for t in (from_tag, into_tag) if t]
    body = msg.get_content()
    assert f"Tag Operation: {action}\n" in body
    assert ("From Tag: f40-testing\n" in body) == bool(from_tag)
    assert ("Into Tag: f40\n" in body) == bool(into_tag)
    assert "failed with the error" not in body


def test_failed_tag_mail_carries_the_error():
    op = TagOperation(nvr="hello-1.0-1", package="hello", user="alice", successful=False, into_tag="f40",
                      failure="package hello not in list for tag f40")
    mail = tag_mail(op, FROM, ["a@example.org"])
    assert mail.subject == "hello-1.0-1 unsuccessfully tagged into f40 by alice"
    msg = mail.message()
    assert msg["X-Koji-Status"] == "failed"
    assert "Operation failed with the error:\n    package hello not in list for tag f40\n" in msg.get_content()


def _build(state="complete", **changes):
    tasks = (
        TaskOutcome(id=10, label="build (f40-candidate, hello-1.0-1.src.rpm)", state="closed" if state != "failed"
                    else "failed", host=None, arch="noarch", result="BuildError: rpmbuild failed"),
        TaskOutcome(id=11, label="buildArch (hello-1.0-1.src.rpm, x86_64)", state="closed" if state != "failed"
                    else "failed", host="builder1", arch="x86_64", result="{}",
                    logs=("build.log", "root.log"), rpms=("hello-1.0-1.x86_64.rpm",),
                    srpms=("hello-1.0-1.src.rpm",)),
    )
    values = dict(id=7, nvr="hello-1.0-1", package="hello", owner="alice", state=state, dest_tag="f40",
                  started="Mon, 01 Jan 2024 10:00:00 UTC", finished="Mon, 01 Jan 2024 10:05:00 UTC",
                  task_id=10, weburl="https://koji.example.org/koji",
                  packages_url="https://koji.example.org/kojifiles/packages/hello/1.0/1",
                  changelog="* Mon Jan 01 2024 Alice <alice@example.org> - 1.0-1\n- first\n\n", tasks=tasks)
    values.update(changes)
    return BuildOutcome(**values)


def test_build_mail_lists_tasks_files_and_links():
    mail = build_mail(_build(), FROM, ["alice@example.org"])
    assert mail.subject == "Package: hello-1.0-1 Tag: f40 Status: complete Built by: alice"
    msg = mail.message()
    assert (msg["X-Koji-Tag"], msg["X-Koji-Package"], msg["X-Koji-Builder"], msg["X-Koji-Status"]) == \
        ("f40", "hello", "alice", "complete")
    body = msg.get_content()
    assert body.startswith("Package: hello-1.0-1\nTag: f40\nStatus: complete\nBuilt by: alice\nID: 7\n")
    assert "Changelog:\n* Mon Jan 01 2024 Alice <alice@example.org> - 1.0-1\n- first\n" in body
    assert "SRPMS:\n  hello-1.0-1.src.rpm\n" in body
    assert "Closed tasks:\n-------------\n" in body
    assert "Task 11 on builder1\nTask Type: buildArch (hello-1.0-1.src.rpm, x86_64)\n" in body
    # a complete build's RPMs are published under packages/; logs stay task output
    assert "  https://koji.example.org/kojifiles/packages/hello/1.0/1/x86_64/hello-1.0-1.x86_64.rpm\n" in body
    assert "  https://koji.example.org/koji/getfile?taskID=11&name=build.log\n" in body
    assert body.rstrip().endswith("Task Info: https://koji.example.org/koji/taskinfo?taskID=10\n"
                                  "Build Info: https://koji.example.org/koji/buildinfo?buildID=7")
    assert "failed on" not in body


def test_failed_build_mail_says_where_and_why():
    body = build_mail(_build(state="failed"), FROM, ["alice@example.org"]).message().get_content()
    assert "Status: failed\n" in body
    assert "hello-1.0-1 (7) failed on builder1 (x86_64):\n  BuildError: rpmbuild failed\n" in body
    assert "Failed tasks:\n-------------\n" in body
    # not published: the RPM link is the task output
    assert "  https://koji.example.org/koji/getfile?taskID=11&name=hello-1.0-1.x86_64.rpm\n" in body


def test_canceled_build_mail_names_who_canceled():
    body = build_mail(_build(state="canceled", canceled_by="bob"), FROM, ["a@example.org"]).message().get_content()
    assert "Status: canceled\nCanceled by: bob\nBuilt by: alice\n" in body


def test_build_mail_without_target_or_task():
    mail = build_mail(_build(dest_tag=None, task_id=None, tasks=(), changelog=""), FROM, ["a@example.org"])
    assert mail.subject == "Package: hello-1.0-1 Tag: None Status: complete Built by: alice"
    body = mail.message().get_content()
    assert "Task Info" not in body and "Changelog" not in body
    assert body.rstrip().endswith("Build Info: https://koji.example.org/koji/buildinfo?buildID=7")


def test_non_ascii_names_are_encoded():
    op = TagOperation(nvr="hello-1.0-1", package="hello", user="Zoë Ångström", successful=True, into_tag="f40")
    raw = tag_mail(op, FROM, ["a@example.org"]).message().as_bytes()
    assert raw.isascii()
    assert "Zoë" not in raw.decode()
    assert "by Zoë Ångström" in tag_mail(op, FROM, ["a@example.org"]).message().get_content()


def test_long_subjects_stay_on_one_line():
    op = TagOperation(nvr="a-very-long-package-name-1.0-1.el9", package="a-very-long-package-name",
                      user="someone-with-a-long-name", successful=False, into_tag="rhel-9-candidate",
                      from_tag="rhel-9-testing-candidate")
    raw = tag_mail(op, FROM, ["a@example.org"]).message().as_string()
    (subject,) = [line for line in raw.splitlines() if line.startswith("Subject:")]
    assert subject == ("Subject: a-very-long-package-name-1.0-1.el9 unsuccessfully moved from "
                       "rhel-9-testing-candidate into rhel-9-candidate by someone-with-a-long-name")
