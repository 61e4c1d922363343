"""What each buildroot layer is keyed on.

mock keys nothing: every build installs its buildroot afresh. Keying on the
repo id would miss on every new Koji repo, even one whose packages did not
change. So the group layer's key takes each repo's *package set* (the pkgid
checksums of its primary metadata, packageset.py) instead of its id or URL, with everything
else of the BuildrootSpec; each BuildRequires layer's key is its parent's key
and every requirement string the package asked for, as evaluated inside the
buildroot (docs/adr/0006-cached-buildroots.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .packageset import PackageSetMemo, repo_package_set
from .spec import BuildrootSpec


def group_inputs(spec: BuildrootSpec, memo: PackageSetMemo | None = None) -> dict:
    """Everything the group layer (setup files, install group) depends on. ``memo`` (the
    cache's store) remembers the package sets of repos that never change, so each is read once."""
    inputs = spec.inputs()
    inputs["repos"] = [repo_package_set(repo, memo) for repo in spec.repos]
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
