"""newRepo and createrepo: a tag's build repo, made as kojid makes it.

The hub lays the repo out (host.repoInit), one createrepo subtask per arch
writes and uploads its repodata, and newRepo hands the lot back with
host.repoDone. Both read the hub's shared storage under topdir; a builder
without it refuses the task so that another builder of the createrepo
channel takes it. The metadata is made on the host (ADR 0007).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import koji
from koji.tasks import RefuseTask

from ..errors import RepoError
from ..repodata import ArchInputs, ExternalRepo, make_repodata
from .base import AdjutantTask

log = logging.getLogger(__name__)

def shared_pathinfo(topdir: str) -> koji.PathInfo:
    """Paths under topdir, once we know the hub's repos are visible here."""
    repos = Path(topdir) / "repos"
    if not (repos.is_dir() and os.access(repos, os.R_OK | os.X_OK)):
        raise RefuseTask(f"no access to {repos}: the hub's shared storage (kojid.conf topdir) is not mounted "
                         "or not readable on this builder; another builder of the createrepo channel may take it")
    return koji.PathInfo(topdir=topdir)


def legacy_opts(opts: dict | None, **legacy) -> dict | None:
    """The repo options of a newRepo task, folding in the pre-1.35 src/debuginfo/separate_src arguments."""
    given = {name: bool(value) for name, value in legacy.items() if value is not None}
    if not given:
        return opts
    if opts is not None:
        raise koji.ParameterError("opts parameter cannot be combined with legacy options")
    return given


class NewRepoTask(AdjutantTask):
    Methods = ["newRepo"]
    _taskWeight = 0.1

    def handler(self, tag, event=None, src=None, debuginfo=None, separate_src=None, opts=None):
        tinfo = self.session.getTag(tag, strict=True, event=event)
        opts = legacy_opts(opts, src=src, debuginfo=debuginfo, separate_src=separate_src)
        pathinfo = shared_pathinfo(self.options.topdir)
        init = {"task_id": self.id, "opts": opts}
        if event is not None:
            init["event"] = event
        repo_id, event_id = self.session.host.repoInit(tinfo["id"], **init)
        repodir = Path(pathinfo.repo(repo_id, tinfo["name"]))
        if not repodir.is_dir():
            raise RepoError(f"repo directory {repodir} is missing after repoInit",
                            hint="topdir must be the hub's own storage, not a copy")
        arches = sorted(p.name for p in repodir.iterdir() if (p / "pkglist").is_file())
        oldrepo = self._old_repo(tinfo) if self.options.createrepo_update else None
        subtasks = {arch: self.session.host.subtask(method="createrepo", arglist=[repo_id, arch, oldrepo],
                                                    label=arch, parent=self.id, arch="noarch")
                    for arch in arches}
        data = {}
        if subtasks:
            results = self.wait(list(subtasks.values()), all=True, failany=True)
            data = {arch: results[task_id] for arch, task_id in subtasks.items()}
        self.session.host.repoDone(repo_id, data)
        return repo_id, event_id

    def _old_repo(self, tinfo: dict) -> dict | None:
        """A repo whose repodata createrepo_c --update recycles, found as kojid's get_old_repo
        finds it: the tag's current repo, else one of its repo.oldrepo_hint tags', else one of
        the tags it inherits from, nearest first. getRepo is on every hub since 1.34."""
        candidates = [tinfo]
        hints = (tinfo.get("extra") or {}).get("repo.oldrepo_hint", [])
        for name in hints if isinstance(hints, list) else [hints]:
            hinted = self.session.getTag(name, strict=False)
            if hinted:
                candidates.append(hinted)
            else:
                log.warning("repo.oldrepo_hint of tag %s names no tag: %s", tinfo["name"], name)
        parents = sorted(self.session.getFullInheritance(tinfo["id"]), key=lambda link: link["currdepth"])
        candidates += [{"id": link["parent_id"], "name": link["name"]} for link in parents]
        for candidate in candidates:
            old = self.session.getRepo(candidate["id"])
            if old:
                return {"id": old["id"], "tag_name": candidate["name"]}
        return None


class CreaterepoTask(AdjutantTask):
    Methods = ["createrepo"]
    _taskWeight = 1.5

    def handler(self, repo_id, arch, oldrepo):
        rinfo = self.session.repoInfo(repo_id, strict=True)
        if rinfo["state"] != koji.REPO_INIT:
            raise RepoError(f"repo {repo_id} is {koji.REPO_STATES[rinfo['state']]}, not INIT",
                            hint="only a repo being made by a newRepo task can be filled; regenerate the repo")
        pathinfo = shared_pathinfo(self.options.topdir)
        inputs = ArchInputs.read(Path(pathinfo.repo(repo_id, rinfo["tag_name"])), arch)
        old = Path(pathinfo.repo(oldrepo["id"], oldrepo["tag_name"])) / arch / "repodata" if oldrepo else None
        external = [ExternalRepo.from_hub(entry) for entry in
                    self.session.getExternalRepoList(rinfo["tag_id"], event=rinfo["create_event"])]
        workdir = Path(self.workdir)
        uploadpath = self.getUploadDir()
        with self.live_logs() as logdir:
            datadir = make_repodata(inputs, arch, workdir, logdir / "createrepo.log", repo_id=repo_id,
                                    old_repodata=old, external=external, update=self.options.createrepo_update,
                                    skip_stat=self.options.createrepo_skip_stat)
        files = sorted(path.name for path in datadir.iterdir())
        for name in files:
            self.session.uploadWrapper(str(datadir / name), uploadpath, name)
        return [uploadpath, files]
