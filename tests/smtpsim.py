"""A small SMTP server on 127.0.0.1 for tests: it speaks enough RFC 5321 for smtplib
(EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT) and keeps what it received.

Python 3.12 dropped the standard library's smtpd; this is the part of it the tests
need. ``SmtpServer(users={'name': 'password'})`` requires AUTH PLAIN with one of
those logins before MAIL; without users it takes mail from anyone.
"""

from __future__ import annotations

import base64
import email
import email.policy
import socketserver
import threading
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_to: tuple[str, ...]
    login: str | None
    message: EmailMessage


def _address(argument: str) -> str:
    """'FROM:<a@b> SIZE=1' -> 'a@b'"""
    value = argument.split(":", 1)[1].strip()
    return value.split(">", 1)[0].lstrip("<") if value.startswith("<") else value.split()[0]


class _Session(socketserver.StreamRequestHandler):
    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        server: SmtpServer = self.server.owner
        login, mail_from, rcpt = None, None, []
        self.reply("220 smtpsim ready")
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            verb, _, argument = raw.decode(errors="replace").rstrip("\r\n").partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-smtpsim")
                self.reply("250-8BITMIME")
                self.reply("250 AUTH PLAIN" if server.users else "250 HELP")
            elif verb == "HELO":
                self.reply("250 smtpsim")
            elif verb == "AUTH":
                mechanism, _, initial = argument.partition(" ")
                _, name, password = base64.b64decode(initial or "").decode().split("\0")
                if mechanism.upper() == "PLAIN" and server.users.get(name) == password:
                    login = name
                    self.reply("235 2.7.0 Authentication successful")
                else:
                    self.reply("535 5.7.8 Authentication credentials invalid")
            elif verb == "MAIL":
                if server.users and login is None:
                    self.reply("530 5.7.0 Authentication required")
                else:
                    mail_from, rcpt = _address(argument), []
                    self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(_address(argument))
                self.reply("250 OK")
            elif verb == "DATA":
                if mail_from is None or not rcpt:
                    self.reply("503 5.5.1 MAIL and RCPT first")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (line := self.rfile.readline()) not in (b".\r\n", b""):
                    data += line[1:] if line.startswith(b"..") else line
                message = email.message_from_bytes(bytes(data).replace(b"\r\n", b"\n"), policy=email.policy.default)
                server.add(Received(mail_from, tuple(rcpt), login, message))
                mail_from, rcpt = None, []
                self.reply("250 OK: queued")
            elif verb in ("RSET", "NOOP"):
                mail_from, rcpt = (None, []) if verb == "RSET" else (mail_from, rcpt)
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 5.5.2 Command not recognized")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SmtpServer:
    def __init__(self, users: dict[str, str] | None = None):
        self.users = dict(users or {})
        self.received: list[Received] = []
        self._changed = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Session)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="smtpsim",
                                        daemon=True)

    @property
    def host(self) -> str:
        """The server as kojid.conf's smtphost names it (smtplib's host:port)."""
        return "%s:%d" % self._server.server_address

    def add(self, received: Received) -> None:
        with self._changed:
            self.received.append(received)
            self._changed.notify_all()

    def wait(self, count: int = 1, timeout: float = 30.0) -> list[Received]:
        """The first `count` messages, once they have arrived; TimeoutError if they do not."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise TimeoutError(f"{len(self.received)} of {count} mails arrived within {timeout} s")
            return self.received[:count]

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
