"""Steps of the tasks that drive other tasks (build, chainbuild): subtasks and SRPM headers.

A parent task holds no buildroot; it asks the hub for subtasks and waits on
them with koji's own BaseTaskHandler.wait, so the TaskManager wakes it when
they finish and cancels the rest when one fails (failany).
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..buildroot.srpm import check_srpm
from ..errors import BuildError
from .arches import ArchHeader

log = logging.getLogger(__name__)

_FIELDS = ("NAME", "VERSION", "RELEASE", "EPOCH")
_ARRAYS = ("BUILDARCHS", "EXCLUSIVEARCH", "EXCLUDEARCH")


def start_subtask(task, method: str, arglist: list, label: str, arch: str | None = None) -> int:
    """A subtask of ``task``; ``label`` makes a retried parent get its existing child back."""
    opts = {"label": label} if arch is None else {"label": label, "arch": arch}
    subtask_id = task.session.host.subtask(method, arglist, task.id, **opts)
    log.info("task %s: %s subtask %s (%s)", task.id, method, subtask_id, label)
    return subtask_id


def run_subtask(task, method: str, arglist: list, label: str, arch: str | None = None):
    """Start one subtask and return its result (its fault is raised here)."""
    subtask_id = start_subtask(task, method, arglist, label, arch)
    return task.wait(subtask_id)[subtask_id]


def wait_all(task, subtask_ids: list[int], failany: bool = True) -> dict[int, dict]:
    """Results of all the subtasks; with failany, the first failure cancels the others."""
    return task.wait(subtask_ids, all=True, failany=failany)


@dataclass(frozen=True)
class SrpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arches: ArchHeader

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


def parse_srpm_query(output: str) -> SrpmHeader:
    """The header from the output of ``rpm -qp --qf srpm_query_format()``."""
    lines = output.split("\n")
    if len(lines) < len(_FIELDS) + len(_ARRAYS):
        raise BuildError(f"unexpected rpm query output: {output!r}")
    name, version, release, epoch = lines[:len(_FIELDS)]
    buildarchs, exclusive, exclude = (tuple(line.split()) for line in lines[len(_FIELDS):len(_FIELDS) + 3])
    return SrpmHeader(name=name, version=version, release=release,
                      epoch=None if epoch in ("", "(none)") else int(epoch),
                      arches=ArchHeader(buildarchs=buildarchs, exclusivearch=exclusive, excludearch=exclude))


def srpm_query_format() -> str:
    scalars = "".join(f"%{{{tag}}}\\n" for tag in _FIELDS)
    arrays = "".join(f"[%{{{tag}}} ]\\n" for tag in _ARRAYS)
    return scalars + arrays


def read_srpm_header(task, relpath: str) -> SrpmHeader:
    """The header of ``<topdir>/work/<relpath>``, fetched from topurl like any task input."""
    path = Path(task.localPath(f"work/{relpath}"))
    check_srpm(path)
    result = subprocess.run(["rpm", "-qp", "--nosignature", "--nodigest", "--qf", srpm_query_format(), str(path)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BuildError(f"could not read the header of {path.name}: {result.stderr.strip()}")
    return parse_srpm_query(result.stdout)
