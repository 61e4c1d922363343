"""distRepo and createdistrepo: a dist repo (``koji dist-repo TAG KEYID...``), made as kojid makes it.

The hub's distRepo call has laid the repo out already (kojihub/kojihub.py
dist_repo_init: a repo row with dist=True, ``<topdir>/repos-dist/<tag>/<id>/<arch>/``,
``groups/comps.xml`` when --comps was given) and queued distRepo in the createrepo
channel. distRepo starts one createdistrepo subtask per arch; each picks the
signed copy of every RPM of the tag, makes the arch's repodata on the host
(ADR 0007) and uploads its files with a repo_manifest; distRepo then moves each
arch into the repo (host.distRepoMove) and marks it READY (host.repoDone).
The steps are builder/kojid NewDistRepoTask and createDistRepoTask; the pure
rules are in distrepodata.py.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from pathlib import Path

import koji
from koji.tasks import RefuseTask
from koji.xmlrpcplus import Fault

from ..distrepodata import (
    DistRepoOptions,
    KeyChoice,
    RepodataInputs,
    RpmCopy,
    choose_keys,
    locate,
    make_dist_repodata,
    missing_files_report,
    missing_signatures_report,
    nvra,
    repo_arches,
    repo_files,
    rpm_arches,
    write_layout,
    zck_dict_dir,
)
from ..errors import RepoError
from .base import AdjutantTask
from .subtasks import start_subtask, wait_all

log = logging.getLogger(__name__)

#: How many RPM names an error message lists before it refers to the log.
_NAMED_IN_ERRORS = 5


def dist_pathinfo(topdir: str, rinfo: dict) -> tuple[koji.PathInfo, Path]:
    """Paths under topdir, and the repo's directory there, once the hub's dist repos are visible
    on this builder; otherwise the task is refused so that another builder of the createrepo
    channel takes it (kojid's CreaterepoTask check, applied to repos-dist)."""
    pathinfo = koji.PathInfo(topdir=topdir)
    repodir = Path(pathinfo.distrepo(rinfo["id"], rinfo["tag_name"]))
    if repodir.is_dir():
        return pathinfo, repodir
    top = Path(topdir) / "repos-dist"
    if not (top.is_dir() and os.access(top, os.R_OK | os.X_OK)):
        raise RefuseTask(f"no access to {top}: the hub's shared storage (kojid.conf topdir) is not mounted "
                         "or not readable on this builder; another builder of the createrepo channel may take it")
    raise RepoError(f"dist repo directory {repodir} is missing",
                    hint="topdir must be the hub's own storage, not a copy; make the dist repo again")


def _named(rows: list[dict]) -> str:
    names = [nvra(row) for row in rows[:_NAMED_IN_ERRORS]]
    return ", ".join(names) + (", ..." if len(rows) > _NAMED_IN_ERRORS else "")


class DistRepoTask(AdjutantTask):
    """builder/kojid NewDistRepoTask; its arguments are those kojihub/kojihub.py
    RootExports.distRepo gives make_task: [tag, repo_id, keys, task_opts]."""

    Methods = ["distRepo"]
    _taskWeight = 0.1

    def handler(self, tag, repo_id, keys, task_opts):
        opts = DistRepoOptions.from_task(task_opts)
        tinfo = self.session.getTag(tag, strict=True, event=opts.event)
        if not opts.arches:
            task_opts = dict(task_opts, arch=(tinfo["arches"] or "").split())
        # The multilib option, the only reason kojid orders the 32-bit arches first, is refused
        # (distrepodata.MULTILIB_REFUSED): every arch is made at once.
        subtasks = {arch: start_subtask(self, "createdistrepo", [tag, repo_id, arch, keys, task_opts],
                                        label=arch, arch="noarch")
                    for arch in repo_arches(task_opts["arch"])}
        wait_all(self, list(subtasks.values()))
        for arch, subtask_id in subtasks.items():
            # kojihub HostExports.distRepoMove(repo_id, uploadpath, arch)
            self.session.host.distRepoMove(repo_id, koji.pathinfo.taskrelpath(subtask_id), arch)
        # kojihub HostExports.repoDone: a dist repo's files are in place already, so no data
        self.session.host.repoDone(repo_id, {})
        return f"Dist repository #{repo_id} successfully generated"


class CreateDistRepoTask(AdjutantTask):
    """builder/kojid createDistRepoTask: one arch of a dist repo, uploaded for
    kojihub HostExports.distRepoMove (repo_manifest, kojipkgs, pkglist, repodata)."""

    Methods = ["createdistrepo"]
    _taskWeight = 1.5

    def handler(self, tag, repo_id, arch, keys, opts):
        options = DistRepoOptions.from_task(opts)
        rinfo = self.session.repoInfo(repo_id, strict=True)
        if rinfo["state"] != koji.REPO_INIT:
            raise RepoError(f"repo {repo_id} is {koji.REPO_STATES[rinfo['state']]}, not INIT",
                            hint="only a dist repo that a distRepo task is making can be filled; "
                                 "run koji dist-repo again")
        pathinfo, hub_repodir = dist_pathinfo(self.options.topdir, rinfo)
        inputs = self._repodata_inputs(tag, rinfo, arch, options, pathinfo, hub_repodir)
        workdir = Path(self.workdir)
        repodir = workdir / "repo"
        with self.live_logs() as logdir:
            copies = self._copies(tag, arch, keys, options, pathinfo, logdir)
            repodirs = write_layout(repodir, copies, options.split_debuginfo)
            make_dist_repodata(repodirs, inputs, logdir, empty=not copies)
        self._upload(repodir, workdir / "repo_manifest", self.getUploadDir())

    def _repodata_inputs(self, tag, rinfo: dict, arch: str, options: DistRepoOptions, pathinfo: koji.PathInfo,
                         hub_repodir: Path) -> RepodataInputs:
        """What createrepo_c reads besides the layout: comps, the previous READY dist repo of the
        tag (recycled with --update when kojid.conf createrepo_update is on), delta bases."""
        oldpackagedirs = []
        for delta_id in options.delta:
            delta = self.session.repoInfo(delta_id, strict=True)
            if not delta["dist"]:
                raise RepoError(f"repo {delta_id} is not a dist repo; base repos for deltas must be dist repos",
                                hint="give --delta-rpms a dist repo id, or a tag that has a dist repo")
            path = Path(pathinfo.distrepo(delta_id, delta["tag_name"]))
            if not path.exists():
                raise RepoError(f"base drpm repo missing: {path}",
                                hint="give --delta-rpms a dist repo that still exists")
            oldpackagedirs.append(path)
        old_archdir = None
        if self.options.createrepo_update:
            oldrepo = self.session.getRepo(tag, dist=True, state=koji.REPO_READY)
            if oldrepo:
                old_archdir = Path(pathinfo.distrepo(oldrepo["id"], rinfo["tag_name"])) / arch
        groupfile = hub_repodir / "groups" / "comps.xml"
        default_skip_stat = self.options.distrepo_skip_stat
        return RepodataInputs(
            groupfile=groupfile if groupfile.is_file() else None, old_archdir=old_archdir,
            oldpackagedirs=tuple(oldpackagedirs),
            skip_stat=default_skip_stat if options.createrepo_skip_stat is None else bool(options.createrepo_skip_stat),
            default_skip_stat=default_skip_stat, zck=options.zck, zck_dict=zck_dict_dir(options.zck_dict_dir))

    def _copies(self, tag, arch: str, keys: list[str], options: DistRepoOptions, pathinfo: koji.PathInfo,
                logdir: Path) -> list[RpmCopy]:
        """The copy of each RPM that goes in; fails, after writing the log that lists them, when
        files are missing or RPMs lack the requested signatures (kojid get_rpms)."""
        rows, builddirs = [], {}
        for rpm_arch in rpm_arches(arch):
            # kojihub RootExports.listTaggedRPMS: [rpms, builds], one row per RPM and signature
            tagged, builds = self.session.listTaggedRPMS(tag, event=options.event, arch=rpm_arch,
                                                         latest=options.latest, inherit=options.inherit,
                                                         rpmsigs=True)
            for build in builds:
                if build.get("draft"):
                    raise RepoError(f"draft build {build['nvr']} is not allowed in a dist repo",
                                    hint="promote the build (koji promote-build) or untag it")
                builddirs[build["id"]] = pathinfo.build(build)
            rows += tagged
        choice = choose_keys(rows, keys)
        if options.write_signed_rpms:
            self._write_signed(choice, logdir / "written_signed_rpms.log")
        copies, missing = locate(choice, builddirs, skip_unsigned=options.skip_missing_signatures)
        if missing:
            (logdir / "missing_files.log").write_text(missing_files_report(missing))
            raise RepoError(f"{len(missing)} RPM file(s) missing from the hub's storage, first {missing[0]}",
                            log_path="missing_files.log",
                            hint="write the signed copies on the hub (koji write-signed-rpm KEY NVR..., "
                                 "or koji dist-repo --write-signed-rpms)")
        unsigned = choice.unsigned
        if unsigned:
            skipped = options.skip_missing_signatures
            (logdir / "missing_signatures.log").write_text(missing_signatures_report(choice, keys, skipped))
            if not (skipped or options.allow_missing_signatures):
                raise RepoError(f"{len(unsigned)} RPM(s) not signed with any of the requested keys "
                                f"({', '.join(keys) or 'none given'}): {_named(unsigned)}",
                                log_path="missing_signatures.log",
                                hint="import their signatures (koji import-sig), or make the repo with "
                                     "--allow-missing-signatures (unsigned copies go in) or "
                                     "--skip-missing-signatures (they are left out)")
            log.warning("dist repo %s: %d RPM(s) without a requested signature %s", arch, len(unsigned),
                        "left out" if skipped else "taken unsigned")
        return copies

    def _write_signed(self, choice: KeyChoice, logfile: Path) -> None:
        """Ask the hub to write the signed copies (kojihub HostExports.writeSignedRPM(an_rpm, sigkey)),
        in batches; a failure is logged, and shows as a missing file right after."""
        wanted = [row for row in choice.rows.values() if row["sigkey"]]
        with self.session.multicall(batch=1000) as multicall:
            calls = [(row, multicall.host.writeSignedRPM(row["id"], row["sigkey"])) for row in wanted]
        lines = []
        for row, call in calls:
            try:
                call.result
            except (koji.GenericError, Fault) as exc:
                lines.append(f"FAILED: Signed RPM {nvra(row)} is not written with {row['sigkey']} key, error: {exc}\n")
            else:
                lines.append(f"Signed RPM {nvra(row)} is written with {row['sigkey']} key.\n")
        if lines:
            logfile.write_text("".join(lines))

    def _upload(self, repodir: Path, manifest: Path, uploadpath: str) -> None:
        """Every file of the layout but the RPM links, then the repo_manifest listing them."""
        files = repo_files(repodir)
        for relpath in files:
            reldir, name = posixpath.split(relpath)
            self.session.uploadWrapper(str(repodir / relpath), posixpath.normpath(posixpath.join(uploadpath, reldir)),
                                       name)
        manifest.write_text(json.dumps(files, indent=4))
        self.session.uploadWrapper(str(manifest), uploadpath, manifest.name)
