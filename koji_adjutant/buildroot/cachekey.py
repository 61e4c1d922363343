"""What each buildroot layer is keyed on.

mock keys nothing: every build installs its buildroot afresh. Keying on the
repo id would miss on every new Koji repo, even one whose packages did not
change. So the group layer's key takes each repo's *package set* (the pkgid
checksums of its primary metadata) instead of its id or URL, with everything
else of the BuildrootSpec; each BuildRequires layer's key is its parent's key
and every requirement string the package asked for, as evaluated inside the
buildroot (docs/adr/0006-cached-buildroots.md).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from ..errors import BuildrootError
from ..repomd import REPO_NS, location_href
from .spec import BuildrootSpec, RepoSource

_COMMON_NS = "{http://linux.duke.edu/metadata/common}"


def _read(repo: RepoSource, relative: str) -> bytes:
    if repo.is_local:
        return (repo.local_path / relative).read_bytes()
    with urllib.request.urlopen(f"{repo.location.rstrip('/')}/{relative}", timeout=120) as response:
        return response.read()


def repo_package_set(repo: RepoSource) -> str:
    """A digest of the packages a repo offers, independent of its id, URL and timestamps."""
    try:
        repomd = ET.fromstring(_read(repo, "repodata/repomd.xml"))
        primary = next(d for d in repomd.findall(f"{REPO_NS}data") if d.get("type") == "primary")
        href = location_href(primary)
        data = _read(repo, href)
        if href.endswith(".gz"):
            data = gzip.decompress(data)
        root = ET.fromstring(data)
    except (OSError, StopIteration, AttributeError, ET.ParseError) as exc:
        raise BuildrootError(f"cannot read the package list of repo {repo.location}: {exc}") from exc
    pkgids = sorted(checksum.text or "" for checksum in root.iter(f"{_COMMON_NS}checksum")
                    if checksum.get("pkgid") == "YES")
    return hashlib.sha256("\n".join(pkgids).encode()).hexdigest()


def group_inputs(spec: BuildrootSpec) -> dict:
    """Everything the group layer (setup files, install group) depends on."""
    inputs = spec.inputs()
    inputs["repos"] = [repo_package_set(repo) for repo in spec.repos]
    return {"layer": "group", **inputs}


def requirements_inputs(parent_key: str, requirements: frozenset[str]) -> dict:
    """A BuildRequires layer: its parent, and every requirement asked for up to it."""
    return {"layer": "requirements", "parent": parent_key, "requirements": sorted(requirements)}


def resolution_key(group_key: str, srpm: Path) -> str:
    """An exact SRPM in a group layer: it always resolves to the same layers (its code is the same)."""
    return key_of({"layer": "resolution", "group": group_key,
                   "srpm_sha256": hashlib.sha256(Path(srpm).read_bytes()).hexdigest()})


def key_of(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
