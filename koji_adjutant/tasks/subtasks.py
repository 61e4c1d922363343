"""Steps of the tasks that drive other tasks (build, chainbuild): subtasks and SRPM headers.

A parent task holds no buildroot; it asks the hub for subtasks and waits on
them with koji's own BaseTaskHandler.wait, so the TaskManager wakes it when
they finish and cancels the rest when one fails (failany).
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import rpmheader
from ..rpmheader import RpmHeader

log = logging.getLogger(__name__)


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


def read_srpm_header(task, relpath: str) -> RpmHeader:
    """The header of ``<topdir>/work/<relpath>``, fetched from topurl like any task input."""
    return rpmheader.read_srpm_header(Path(task.localPath(f"work/{relpath}")))
