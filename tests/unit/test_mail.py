"""Delivering notification mail: through a real SMTP server on 127.0.0.1, or to the log."""

from __future__ import annotations

import logging
import uuid
from types import SimpleNamespace

import pytest
from smtpsim import SmtpServer

from koji_adjutant.errors import NotificationError
from koji_adjutant.mail import MailServer, deliver
from koji_adjutant.notices import Mail

MAIL = Mail("Koji <koji@example.org>", ("a@example.org", "b@example.org"), "hello-1.0-1 successfully tagged",
            "Package: hello\n", (("X-Koji-Package", "hello"),))


def options(smtphost, user=None, password=None):
    return SimpleNamespace(smtphost=smtphost, smtp_user=user, smtp_pass=password)


@pytest.mark.parametrize("smtphost", [None, "", "  ", "example.com"])
def test_no_mail_server_configured(smtphost):
    """kojid's default smtphost is the placeholder example.com: no server either."""
    assert MailServer.from_options(options(smtphost)) is None


def test_delivered_to_every_recipient():
    with SmtpServer() as server:
        result = deliver(MAIL, MailServer.from_options(options(server.host)))
        (received,) = server.wait(1)
    assert result == "sent notification to: a@example.org, b@example.org"
    assert received.mail_from == "koji@example.org"
    assert received.rcpt_to == ("a@example.org", "b@example.org")
    assert received.login is None
    assert received.message["Subject"] == "hello-1.0-1 successfully tagged"
    assert received.message["X-Koji-Package"] == "hello"
    assert received.message.get_content() == "Package: hello\n"


def test_logs_in_when_user_and_password_are_set():
    with SmtpServer(users={"koji": "s3cret"}) as server:
        deliver(MAIL, MailServer.from_options(options(server.host, "koji", "s3cret")))
        (received,) = server.wait(1)
    assert received.login == "koji"


def test_refused_login_fails_with_what_to_check():
    with SmtpServer(users={"koji": "s3cret"}) as server:
        with pytest.raises(NotificationError) as failure:
            deliver(MAIL, MailServer.from_options(options(server.host, "koji", "wrong")))
        assert server.received == []
    text = str(failure.value)
    assert f"could not send the notification for a@example.org, b@example.org through {server.host}" in text
    assert "check [kojid] smtphost, smtp_user and smtp_pass" in text
    assert "wrong" not in text


def test_unreachable_server_fails_with_what_to_check():
    with SmtpServer() as server:
        host = server.host
    with pytest.raises(NotificationError, match=f"through {host}: .*Connection refused"):
        deliver(MAIL, MailServer(host))


def test_without_a_server_the_message_is_logged(caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.mail")
    result = deliver(MAIL, None)
    assert result == ("no smtphost configured; notification for a@example.org, b@example.org "
                      "logged by the builder, not sent")
    assert "Subject: hello-1.0-1 successfully tagged" in caplog.text
    assert "To: a@example.org, b@example.org" in caplog.text


# -- kojid.conf admin_emails: the worker's errors by mail, as kojid sends them -------------------

@pytest.fixture
def mailed_loggers():
    """The loggers mail_errors attaches to, with their handlers restored afterwards."""
    from koji_adjutant.daemon import MAILED_LOGGERS

    loggers = [logging.getLogger(name) for name in MAILED_LOGGERS]
    before = [(list(logger.handlers), logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)   # as the daemon sets them; another test may have raised one
    yield loggers
    for logger, (handlers, level) in zip(loggers, before):
        logger.handlers[:] = handlers
        logger.setLevel(level)


def test_admin_emails_get_the_workers_errors(mailed_loggers):
    from logging.handlers import SMTPHandler

    from koji_adjutant.daemon import mail_errors

    mail_errors("ops@example.org,oncall@example.org")
    with SmtpServer() as server:
        host, port = server.host.split(":")
        for logger in mailed_loggers:
            (handler,) = [h for h in logger.handlers if isinstance(h, SMTPHandler)]
            handler.mailhost, handler.mailport = host, int(port)  # koji's handler sends to localhost:25
        kojis, ours = (logger.getChild(f"mail-test-{uuid.uuid4().hex}") for logger in mailed_loggers)
        ours.warning("not mailed")
        ours.error("the build of hello crashed")
        kojis.error("task 7 failed to start")
        received = server.wait(2)
    assert {r.rcpt_to for r in received} == {("ops@example.org", "oncall@example.org")}
    assert all(r.message["Subject"].endswith(": error notice") for r in received)
    # decoded: a long path in the record makes the body quoted-printable, wrapped at 76 columns
    bodies = sorted(r.message.get_payload(decode=True).decode() for r in received)
    assert "the build of hello crashed" in bodies[0] + bodies[1] and "task 7 failed to start" in bodies[0] + bodies[1]
    assert not any("not mailed" in body for body in bodies)


def test_no_admin_emails_no_mail_handler(mailed_loggers):
    from koji_adjutant.daemon import mail_errors

    before = [list(logger.handlers) for logger in mailed_loggers]
    mail_errors(None)
    assert [list(logger.handlers) for logger in mailed_loggers] == before
