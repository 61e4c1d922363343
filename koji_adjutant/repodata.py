"""Repository metadata of one arch of a tag repo: createrepo_c, then mergerepo_c.

Runs on the worker's host, over the hub's shared storage (ADR 0007): the inputs
are what host.repoInit wrote under <topdir>/repos/<tag>/<id>/<arch> (pkglist,
blocklist, the toplink to <topdir>) and the tag's comps.xml; the output is a
repodata directory in the task's work directory, which the task uploads. No
package is built or installed, only headers are read, so no container is needed.
The command lines are kojid's (CreaterepoTask.create_local_repo / merge_repos).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import RepoError

log = logging.getLogger(__name__)

#: The system's tools, by path as kojid runs them: a createrepo_c that a virtualenv puts first on
#: PATH (PyPI's createrepo-c ships one) may be another version, with other defaults.
CREATEREPO = "/usr/bin/createrepo_c"
MERGEREPO = "/usr/bin/mergerepo_c"
#: Written into repodata when the tag has nothing for the arch, as kojid does.
EMPTY_REPO_NOTE = "This repo is empty because its tag has no content for this arch\n"
#: Merge modes of a tag's external repos, and mergerepo_c's options for each.
MERGE_MODES = {"koji": ("--koji",), "simple": ("--koji", "--simple"), "bare": ("--pkgorigins", "--all")}


@dataclass(frozen=True)
class ArchInputs:
    """What repoInit wrote for one arch."""

    archdir: Path
    #: None when the tag has no package for this arch (an empty pkglist)
    pkglist: Path | None
    groupfile: Path | None
    blocklist: Path | None

    @classmethod
    def read(cls, repodir: Path, arch: str) -> ArchInputs:
        archdir = repodir / arch
        pkglist = archdir / "pkglist"
        if not pkglist.is_file():
            raise RepoError(f"repo directory {archdir} has no pkglist",
                            hint="the hub's repoInit did not prepare this arch; regenerate the repo")
        groupfile = repodir / "groups" / "comps.xml"
        blocklist = archdir / "blocklist"
        return cls(archdir=archdir, pkglist=pkglist if pkglist.stat().st_size else None,
                   groupfile=groupfile if groupfile.is_file() else None,
                   blocklist=blocklist if blocklist.is_file() else None)


@dataclass(frozen=True)
class ExternalRepo:
    name: str
    url: str
    merge_mode: str
    #: arches it serves; empty: all
    arches: tuple[str, ...] = ()

    @classmethod
    def from_hub(cls, entry: dict) -> ExternalRepo:
        """An entry of getExternalRepoList."""
        return cls(name=entry["external_repo_name"], url=entry["url"],
                   merge_mode=entry.get("merge_mode") or "koji", arches=tuple((entry.get("arches") or "").split()))

    def url_for(self, arch: str) -> str | None:
        if self.arches and arch not in self.arches:
            return None
        return self.url.replace("$arch", arch)


def createrepo_command(inputs: ArchInputs, outdir: Path, update: bool, skip_stat: bool) -> list[str]:
    """createrepo_c over the arch directory (the pkglist's paths are relative to it)."""
    command = [CREATEREPO, "--error-exit-val", "-vd", "-o", str(outdir)]
    if inputs.pkglist is not None:
        command += ["-i", str(inputs.pkglist)]
    if inputs.groupfile is not None:
        command += ["-g", str(inputs.groupfile)]
    if update and inputs.pkglist is not None:
        command.append("--update")
        if skip_stat:
            command.append("--skip-stat")
    command.append(str(inputs.archdir if inputs.pkglist is not None else outdir))
    return command


def merge_mode(repos: list[ExternalRepo]) -> str:
    modes = sorted({repo.merge_mode for repo in repos})
    if len(modes) > 1:
        raise RepoError(f"the tag's external repos use different merge modes: {', '.join(modes)}",
                        hint="give all external repos of the tag the same merge mode (koji edit-tag-external-repo)")
    if modes[0] not in MERGE_MODES:
        raise RepoError(f"unknown merge mode {modes[0]!r} of external repos",
                        hint=f"use one of {', '.join(MERGE_MODES)}")
    return modes[0]


def mergerepo_command(mode: str, arch: str, outdir: Path, sources: list[str], inputs: ArchInputs) -> list[str]:
    """mergerepo_c of our premerge repo (first source) with the external repos."""
    command = [MERGEREPO, *MERGE_MODES[mode], "-a", arch, "-o", str(outdir)]
    if inputs.groupfile is not None:
        command += ["-g", str(inputs.groupfile)]
    if inputs.blocklist is not None and "--koji" in command:
        command += ["-b", str(inputs.blocklist)]
    for source in sources:
        command += ["-r", source]
    return command


def run(command: list[str], logfile: Path) -> None:
    """Run one command, its output appended to logfile; fail naming the log."""
    with open(logfile, "ab") as stream:
        stream.write(("$ " + " ".join(command) + "\n").encode())
        stream.flush()
        try:
            status = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    check=False).returncode
        except FileNotFoundError:
            raise RepoError(f"{command[0]} is not installed on this builder",
                            hint="install createrepo_c (scripts/setup-host.sh does)") from None
    if status != 0:
        raise RepoError(f"{command[0]} failed with exit status {status}", log_path=logfile.name,
                        hint="check the tag's packages and external repos, then regenerate the repo")


def recycle_repodata(old_repodata: Path, datadir: Path) -> bool:
    """Copy a previous repo's repodata to datadir for ``createrepo_c --update``, as kojid
    recycles it; False (and nothing copied) when it is gone. Its pkgorigins.gz is dropped:
    only a merge rewrites it, and only for the new repo's external repos."""
    if not old_repodata.is_dir():
        log.warning("old repodata is missing: %s", old_repodata)
        return False
    shutil.copytree(old_repodata, datadir)
    (datadir / "pkgorigins.gz").unlink(missing_ok=True)
    return True


def make_repodata(inputs: ArchInputs, arch: str, workdir: Path, logfile: Path, *, repo_id: int,
                  old_repodata: Path | None, external: list[ExternalRepo], update: bool,
                  skip_stat: bool) -> Path:
    """The repodata directory of one arch, made under workdir; returns its path."""
    outdir = workdir / "repo"
    datadir = outdir / "repodata"
    outdir.mkdir(parents=True)
    recycle = (update and inputs.pkglist is not None and old_repodata is not None
               and recycle_repodata(old_repodata, datadir))
    run(createrepo_command(inputs, outdir, update=recycle, skip_stat=skip_stat), logfile)
    if external:
        sources = [url for url in (repo.url_for(arch) for repo in external) if url]
        premerge = workdir / f"repo_{repo_id}_premerge"
        outdir.rename(premerge)
        outdir.mkdir()
        run(mergerepo_command(merge_mode(external), arch, outdir, [f"file://{premerge}/", *sources], inputs),
            logfile)
    elif inputs.pkglist is None:
        (datadir / "EMPTY_REPO").write_text(EMPTY_REPO_NOTE)
    return datadir
