"""Thin helpers over koji.ClientSession: login, buildroot records, log uploads (the
buildroot's package list is rpmlist.py's).

Everything here speaks the hub's own calls with the hub's own arguments
(../shared/koji-builder-contract.md); nothing here knows about containers.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import BinaryIO

import koji
from koji.daemon import incremental_upload

from .config import kerberos_principal
from .errors import BuildrootError, ConfigError

log = logging.getLogger(__name__)



def make_session(options) -> koji.ClientSession:
    """A ClientSession with kojid's retry, timeout and upload settings."""
    session_opts = koji.grab_session_options(options)
    session_opts["krb_rdns"] = False
    return koji.ClientSession(options.server, session_opts)


def login(session: koji.ClientSession, options) -> None:
    """Log in as kojid does (builder/kojid main): client certificate, then user and password,
    then Kerberos as krb_principal or host_principal_format filled with this host's FQDN."""
    if options.cert and Path(options.cert).is_file():
        session.ssl_login(options.cert, None, options.serverca)
    elif options.user:
        session.login()
    else:
        ccache = Path(options.ccache)
        if ccache.is_file() and ccache.stat().st_size == 0:
            ccache.unlink()  # an empty ccache makes the keytab login fail
        session.gssapi_login(principal=kerberos_principal(options), keytab=options.keytab, ccache=options.ccache)
    if not session.logged_in:
        raise ConfigError(f"the hub at {options.server} did not accept our login")


class HubBuildroot:
    """The hub's record of one buildroot: INIT → BUILDING → EXPIRED."""

    def __init__(self, session: koji.ClientSession, repo_id: int, arch: str, task_id: int):
        self._session = session
        self.task_id = task_id
        self.id = session.host.newBuildRoot(repo_id, arch, task_id=task_id)
        if self.id is None:
            raise BuildrootError("the hub gave no buildroot id")
        self.state = "INIT"

    def building(self, rpmlist: list[dict]) -> None:
        self._session.host.setBuildRootList(self.id, rpmlist, task_id=self.task_id)
        self._session.host.setBuildRootState(self.id, "BUILDING", task_id=self.task_id)
        self.state = "BUILDING"

    def update(self, rpmlist: list[dict]) -> None:
        self._session.host.updateBuildRootList(self.id, rpmlist, task_id=self.task_id)

    def expire(self) -> None:
        if self.state != "EXPIRED":
            self._session.host.setBuildRootState(self.id, "EXPIRED", task_id=self.task_id)
            self.state = "EXPIRED"


class LogUploader(threading.Thread):
    """Uploads the growing log files of a task every second, as kojid does.

    It runs on its own subsession: a ClientSession must never be used by two
    threads at once, and the task's thread keeps talking to the hub.
    """

    def __init__(self, session: koji.ClientSession, logdir: Path, uploadpath: str, interval: float = 1.0):
        super().__init__(name=f"adjutant-logupload-{uploadpath}", daemon=True)
        self._session = session.subsession()
        self._logdir = Path(logdir)
        self._uploadpath = uploadpath
        self._interval = interval
        self._stop_event = threading.Event()
        self._files: dict[str, BinaryIO] = {}

    def run(self) -> None:
        while not self._stop_event.wait(self._interval):
            self._upload_new_bytes()

    def _upload_new_bytes(self) -> None:
        for path in sorted(self._logdir.glob("*.log")):
            handle = self._files.get(path.name)
            if handle is None:
                handle = self._files[path.name] = open(path, "rb")
            try:
                incremental_upload(self._session, path.name, handle, self._uploadpath, logger=log)
            except Exception as exc:  # the next round retries; the final flush reports
                log.warning("log upload of %s failed for now: %s", path.name, exc)

    def finish(self) -> list[str]:
        """Stop, upload what is left, and return the uploaded log paths."""
        self._stop_event.set()
        if self.is_alive():
            self.join()
        self._upload_new_bytes()
        for handle in self._files.values():
            handle.close()
        names = sorted(self._files)
        self._session.logout()
        return [f"{self._uploadpath}/{name}" for name in names]
