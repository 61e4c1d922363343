"""Thin helpers over koji.ClientSession: login, buildroot records, log uploads.

Everything here speaks the hub's own calls with the hub's own arguments
(../shared/koji-builder-contract.md); nothing here knows about containers.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import koji
from koji.daemon import incremental_upload

from .buildroot.installed import ORIGIN_REPO, InstalledPackage
from .config import kerberos_principal
from .errors import BuildrootError, ConfigError

log = logging.getLogger(__name__)

#: Packages kojid never reports (its fake group package and gpg keys).
_NEVER_REPORTED = {"buildsys-build", "gpg-pubkey"}
_REPO_NS = "{http://linux.duke.edu/metadata/repo}"


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


def rpmlist(packages: Iterable[InstalledPackage], origins: dict[str, dict] | None = None) -> list[dict]:
    """The buildroot's packages in the form the hub accepts.

    Only packages the buildroot's repo installed are reported: they are Koji
    RPMs, or external ones when ``origins`` (from pkgorigins) says so.
    Packages that came with the image are not Koji's and the hub would refuse
    them; they are recorded in installed_pkgs.log and the image digest in
    container.log instead (docs/adr/0004-daemon-and-hub-contract.md).
    """
    entries = []
    for package in packages:
        if package.origin != ORIGIN_REPO or package.name in _NEVER_REPORTED:
            continue
        entry = package.rpmlist_entry()
        external = (origins or {}).get(f"{package.name}-{package.version}-{package.release}.{package.arch}")
        if external is not None:
            entry["external_repo"] = external
            entry["location"] = external["external_repo_id"]
        entries.append(entry)
    return entries


def external_origins(session: koji.ClientSession, repo_info: dict, arch: str, topurl: str) -> dict[str, dict]:
    """nvra → external repo, for the RPMs of a repo merged from external repos (kojid's rule)."""
    external_repos = session.getExternalRepoList(repo_info["tag_id"], event=repo_info["create_event"])
    if not external_repos:
        return {}
    by_url = {repo["url"].replace("$arch", arch): repo for repo in external_repos}
    repodir = f"{koji.PathInfo(topdir=topurl).repo(repo_info['id'], repo_info['tag_name'])}/{arch}"
    repomd = ET.fromstring(_fetch(f"{repodir}/repodata/repomd.xml"))
    location = None
    for data in repomd.findall(f"{_REPO_NS}data"):
        if data.get("type") == "origin":
            location = data.find(f"{_REPO_NS}location").get("href")
    if location is None:
        raise BuildrootError(f"repo {repo_info['id']} has external repos but no pkgorigins in its repodata")
    origins: dict[str, dict] = {}
    local_tail = f"/repo_{repo_info['id']}_premerge/"
    for line in gzip.decompress(_fetch(f"{repodir}/{location}")).decode().splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        nvra = koji.parse_NVRA(re.sub(r"^\d+:", "", parts[0]))  # yum writes [epoch:]n-v-r.a
        key = "{name}-{version}-{release}.{arch}".format(**nvra)
        if parts[1] in by_url:
            origins[key] = by_url[parts[1]]
        elif not (parts[1].startswith("file://") and parts[1].endswith(local_tail)):
            raise BuildrootError(f"unknown origin for {key}: {parts[1]}")
    return origins


def _fetch(url: str) -> bytes:
    import requests

    response = requests.get(url, timeout=60)
    response.raise_for_status()
    return response.content


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
