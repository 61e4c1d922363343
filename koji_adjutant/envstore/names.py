"""Names and labels of cached environments.

A name is derived from the environment's inputs so that every task computes
the same one without asking anybody, and it must be usable both as an image
name and as a lock file name.
"""

from __future__ import annotations

import logging
import re

from .errors import EnvironmentStoreError

log = logging.getLogger(__name__)

#: Label on every image of a cached environment, and so on every container made from one.
LABEL_ENVIRONMENT = "io.koji-adjutant.environment"

#: Label on every image of a cached environment: the store that records it (EnvironmentStore.identity).
LABEL_STORE = "io.koji-adjutant.store"

_MAX_NAME_LENGTH = 200  # keeps "<name>.lock" and the image reference well inside their limits

_SEPARATOR_RUN = re.compile(r"[^a-z0-9]+")
_VALID_SEPARATOR = re.compile(r"\.|_|__|-+")


def _image_name_component(text: str) -> str:
    """``text`` made a valid image name path component: lower-case alphanumerics
    joined by '.', '_', '__' or dashes; any other run of characters becomes '-'."""
    def fix(match: re.Match) -> str:
        run = match.group(0)
        return run if _VALID_SEPARATOR.fullmatch(run) else "-"
    return _SEPARATOR_RUN.sub(fix, text.lower()).strip("._-")


def environment_name(tag: str, arch: str, inputs_hash: str) -> str:
    """The deterministic name of a cached environment: ``adjutant-<tag>-<arch>-<hash12>``,
    lower-cased, with what an image name cannot hold replaced by '-'."""
    parts = {"tag": tag, "arch": arch, "inputs hash": inputs_hash}
    for what, value in parts.items():
        if not _image_name_component(str(value or "")):
            raise EnvironmentStoreError(f"cannot name an environment: the {what} {value!r} is empty "
                                        "or has no letters or digits")
    hash12 = _image_name_component(inputs_hash)[:12]
    arch = _image_name_component(arch)
    room = _MAX_NAME_LENGTH - len(f"adjutant--{arch}-{hash12}")
    tag = _image_name_component(_image_name_component(tag)[:max(room, 1)])
    return _image_name_component(f"adjutant-{tag}-{arch}-{hash12}")


def image_ref(name: str) -> str:
    """The podman image reference of the environment ``name``."""
    return f"localhost/{name}:latest"


def check_name(name: str) -> None:
    """Refuse a name that could escape the lock directory before it reaches a path."""
    if not name or "/" in name or name in (".", "..") or "\0" in name:
        raise EnvironmentStoreError(f"{name!r} is not a valid environment name",
                                    hint="environment names come from environment_name()")
