"""Unpacking a tar stream that came out of a container, which is untrusted."""

from __future__ import annotations

import logging
import tarfile
from pathlib import Path
from typing import BinaryIO

from ..errors import ContainerError

log = logging.getLogger(__name__)


def _plain_members(tar: tarfile.TarFile, origin: str) -> list[tarfile.TarInfo]:
    """Only regular files and directories, inside the target: this Python may predate tarfile's filters."""
    members = []
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise ContainerError(f"refusing to copy {member.name!r} out of {origin}: it points outside the target")
        if member.isfile() or member.isdir():
            member.mode &= 0o755
            member.uid = member.gid = -1
            members.append(member)
        else:
            log.warning("not copying %s out of %s: not a regular file or directory", member.name, origin)
    return members


def extract_untrusted(archive: BinaryIO, target_dir: Path, origin: str) -> None:
    """Unpack ``archive`` into ``target_dir``: regular files and directories only, owned by
    the worker, no set-id bits; a member that points outside ``target_dir`` fails the whole copy."""
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=archive) as tar:
            tar.extractall(target_dir, members=_plain_members(tar, origin))
    except tarfile.TarError as exc:
        raise ContainerError(f"what came out of {origin} is not a readable tar archive: {exc}") from exc
