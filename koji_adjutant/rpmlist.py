"""The buildroot's package list as the hub takes it (host.setBuildRootList / updateBuildRootList).

kojid's BuildRoot sends every package the buildroot's repo installed: a Koji
RPM carries the id the hub wrote beside the repo (``rpmlist.jsonl``, so a
draft and a regular build of one N-V-R.A are told apart, and a package whose
file differs from Koji's is refused), an external one the external repo that
pkgorigins names. Packages that came with the image are not Koji's: the hub
takes them only under an external repo (kojihub BuildRoot._setList →
add_external_rpm), so they go under the operator's ``[adjutant]
image_packages_repo`` when there is one, and otherwise only to
installed_pkgs.log (docs/adr/0004-daemon-and-hub-contract.md).
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field

import koji
import requests

from .buildroot.installed import ORIGIN_REPO, InstalledPackage
from .errors import BuildrootError
from .repomd import REPO_NS, location_href

log = logging.getLogger(__name__)

#: Packages kojid never reports (its fake group package and gpg keys).
_NEVER_REPORTED = {"buildsys-build", "gpg-pubkey"}


def _nvra(info) -> str:
    return "{name}-{version}-{release}.{arch}".format(**info)


@dataclass(frozen=True)
class RepoContent:
    """What the hub says one arch of a buildroot's repo holds."""

    #: N-V-R.A → the hub's rpm row, for Koji's own RPMs (rpmlist.jsonl)
    internal: dict[str, dict] = field(default_factory=dict)
    #: N-V-R.A → external repo, for RPMs merged in from external repos (pkgorigins)
    external: dict[str, dict] = field(default_factory=dict)
    #: the repo predates rpmlist.jsonl: only its draft RPMs are known, as kojid falls back to
    compat: bool = False


def repo_content(session: koji.ClientSession, repo_info: dict, arch: str, topurl: str) -> RepoContent:
    """kojid's BuildRoot.mapInternalRPMs and getPackageList sources, for ``arch`` of the repo."""
    repodir = f"{koji.PathInfo(topdir=topurl).repo(repo_info['id'], repo_info['tag_name'])}/{arch}"
    internal, compat = _internal_rpms(session, repo_info, repodir)
    return RepoContent(internal=internal, external=_external_origins(session, repo_info, arch, repodir),
                       compat=compat)


def _internal_rpms(session: koji.ClientSession, repo_info: dict, repodir: str) -> tuple[dict[str, dict], bool]:
    try:
        text = _fetch(f"{repodir}/rpmlist.jsonl").decode()
    except requests.HTTPError as exc:
        if exc.response is None or exc.response.status_code != 404:
            raise BuildrootError(f"cannot read the package list of repo {repo_info['id']}: {exc}") from exc
        log.warning("repo %s has no rpmlist.jsonl (made by an older hub): asking the hub for its drafts",
                    repo_info["id"])
        drafts, _builds = session.listTaggedRPMS(tag=repo_info["tag_id"], event=repo_info["create_event"],
                                                 latest=True, draft=True)
        return {_nvra(rpm): rpm for rpm in drafts}, True
    return {_nvra(row): row for row in map(json.loads, filter(str.strip, text.splitlines()))}, False


def _external_origins(session: koji.ClientSession, repo_info: dict, arch: str, repodir: str) -> dict[str, dict]:
    """nvra → external repo, for the RPMs of a repo merged from external repos (kojid's rule)."""
    external_repos = session.getExternalRepoList(repo_info["tag_id"], event=repo_info["create_event"])
    if not external_repos:
        return {}
    by_url = {repo["url"].replace("$arch", arch): repo for repo in external_repos}
    repomd = ET.fromstring(_fetch(f"{repodir}/repodata/repomd.xml"))
    location = None
    for data in repomd.findall(f"{REPO_NS}data"):
        if data.get("type") == "origin":
            location = location_href(data)
    if location is None:
        raise BuildrootError(f"repo {repo_info['id']} has external repos but no pkgorigins in its repodata")
    origins: dict[str, dict] = {}
    local_tail = f"/repo_{repo_info['id']}_premerge/"
    for line in gzip.decompress(_fetch(f"{repodir}/{location}")).decode().splitlines():
        parts = line.split(None, 2)
        if len(parts) < 2:
            continue
        key = _nvra(koji.parse_NVRA(re.sub(r"^\d+:", "", parts[0])))  # yum writes [epoch:]n-v-r.a
        if parts[1] in by_url:
            origins[key] = by_url[parts[1]]
        elif not (parts[1].startswith("file://") and parts[1].endswith(local_tail)):
            raise BuildrootError(f"unknown origin for {key}: {parts[1]}")
    return origins


def rpmlist(packages: Iterable[InstalledPackage], content: RepoContent = RepoContent(),
            image_repo: str | None = None) -> list[dict]:
    """The buildroot's packages in the form the hub accepts; see the module's docstring."""
    entries = []
    for package in packages:
        if package.name in _NEVER_REPORTED or (package.origin != ORIGIN_REPO and image_repo is None):
            continue
        entry = package.rpmlist_entry()
        nvra = _nvra(entry)
        external = content.external.get(nvra)
        if package.origin != ORIGIN_REPO:
            entry["location"] = image_repo
        elif external is not None:
            entry["external_repo"] = external
            entry["location"] = external["external_repo_id"]
        else:
            _map_internal(entry, nvra, content)
        entries.append(entry)
    return entries


def _map_internal(entry: dict, nvra: str, content: RepoContent) -> None:
    """kojid's mapInternalRPMs: the hub's id for a Koji RPM, and a refusal when the file differs."""
    known = content.internal.get(nvra)
    if known is None:
        if not content.compat:
            log.warning("%s not found in rpmlist.jsonl", nvra)
        return
    if known["payloadhash"] != entry["payloadhash"]:
        raise BuildrootError(f"RPM: {nvra}: payloadhash: {entry['payloadhash']} mismatch expected "
                             f"{known['payloadhash']} in rpmlist.jsonl",
                             hint="the repo's copy of this RPM is not the file Koji built: regenerate the "
                                  "repo (koji regen-repo) or check the hub's storage")
    entry["id"] = known["id"]


def image_packages_repo(session: koji.ClientSession, name: str | None) -> str | None:
    """``name``, once the hub is known to have that external repo: a missing one would fail
    every build at its first buildroot list, after the dependencies were installed."""
    if name is not None and session.getExternalRepo(name, strict=False) is None:
        raise BuildrootError(f"[adjutant] image_packages_repo = {name}: the hub has no external repo of that name",
                             hint=f"create it (koji add-external-repo {name} URL, any URL: no tag needs it) "
                                  "or unset the option")
    return name


def _fetch(url: str) -> bytes:
    response = requests.get(url, timeout=60)
    response.raise_for_status()
    return response.content
