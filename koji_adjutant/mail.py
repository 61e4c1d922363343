"""Delivering notification mail: SMTP when a mail server is configured, the log otherwise.

kojid always connects to ``smtphost``, whose default is the placeholder
``example.com``; a builder without a mail server then fails every
notification task. Here an unset, empty or placeholder ``smtphost`` means "no
mail server": the message goes to the daemon's log and the task succeeds, so
the hub's notification tasks never pile up as failures on such a builder.
"""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass

from .errors import NotificationError
from .notices import Mail

log = logging.getLogger(__name__)

#: kojid's default smtphost: a reserved name that no mail server answers for.
PLACEHOLDER_SMTPHOST = "example.com"
_TIMEOUT = 60.0


@dataclass(frozen=True)
class MailServer:
    """``host`` is smtplib's: a name or address, optionally ``:port``."""

    host: str
    user: str | None = None
    password: str | None = None

    @classmethod
    def from_options(cls, options) -> MailServer | None:
        host = (options.smtphost or "").strip()
        if not host or host == PLACEHOLDER_SMTPHOST:
            return None
        return cls(host, options.smtp_user, options.smtp_pass)


def deliver(mail: Mail, server: MailServer | None) -> str:
    """Send ``mail`` (or log it, without a server); a sentence saying what was done."""
    recipients = ", ".join(mail.recipients)
    if server is None:
        log.info("no smtphost configured: notification for %s not sent, it reads:\n%s",
                 recipients, mail.message().as_string())
        return f"no smtphost configured; notification for {recipients} logged by the builder, not sent"
    try:
        with smtplib.SMTP(server.host, timeout=_TIMEOUT) as smtp:
            # kojid logs in only when both are set
            if server.user is not None and server.password is not None:
                smtp.login(server.user, server.password)
            refused = smtp.send_message(mail.message(), mail.from_addr, list(mail.recipients))
    except (smtplib.SMTPException, OSError) as exc:
        raise NotificationError(f"could not send the notification for {recipients} through {server.host}: {exc}",
                                hint="check [kojid] smtphost, smtp_user and smtp_pass, and that the mail "
                                     "server accepts mail from this builder") from exc
    if refused:
        log.warning("the mail server refused some recipients: %s", refused)
    sent = [r for r in mail.recipients if r not in refused]
    return f"sent notification to: {', '.join(sent)}"
