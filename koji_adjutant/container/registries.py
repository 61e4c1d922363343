"""Registries: which one an image reference names, and the credentials the worker uses for one.

Credentials come from a file of the worker's own, never from kojid.conf (which
operators share and paste) and never mounted into any container: a build's
code must not be able to push to the farm's cache.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import ConfigError
from .interface import RegistryAuth


def registry_of(ref: str) -> str:
    """The registry host (host[:port]) ``ref`` names; "" for a short name, which podman resolves
    through its registries.conf."""
    first, _, rest = ref.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def read_auth(path: Path) -> RegistryAuth:
    """``username:password`` from the first line of ``path`` (podman's --creds form).

    The file must be a regular file that only its owner can read: a password any
    local user could read would let any of them push to the shared cache.
    """
    hint = f"write 'username:password' to {path}, owned by the worker's user, mode 0600"
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"registry credentials {path} are not a regular file", hint=hint)
        if info.st_mode & 0o077:
            raise ConfigError(f"registry credentials {path} can be read by other users "
                              f"(mode {stat.S_IMODE(info.st_mode):04o})", hint=hint)
        line = path.read_text().splitlines()[0] if path.read_text().strip() else ""
    except OSError as exc:
        raise ConfigError(f"cannot read the registry credentials {path}: {exc.strerror or exc}", hint=hint) from exc
    username, sep, password = line.strip().partition(":")
    if not sep or not username or not password:
        raise ConfigError(f"registry credentials {path} are not of the form username:password", hint=hint)
    return RegistryAuth(username, password)
