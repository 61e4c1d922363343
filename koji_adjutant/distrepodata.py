"""One arch of a dist repo (``koji dist-repo``): which copy of each RPM, the layout, createrepo_c.

The counterpart of repodata.py for the distRepo/createdistrepo tasks
(tasks/distrepo.py). Unlike a tag's build repo, a dist repo holds the RPMs
themselves, each the copy signed with the first of the requested keys that it
has: ``<build dir>/data/signed/<key>/<arch>/<file>`` on the hub's storage,
written there by the hub's writeSignedRPM from the signature header it keeps
under ``data/sigcache``. The worker lays the arch out in its work directory —
``kojipkgs`` (what each file is), ``pkglist``, ``Packages/<letter>/<file>``
symlinks to the hub's copies so that createrepo_c reads them in place — makes
the repodata on the host (ADR 0007) and uploads everything but the symlinks;
the hub's distRepoMove then links the RPMs into the repo.

The rules are kojid's (builder/kojid createDistRepoTask: get_rpms, pick_key,
split_pkgs, write_kojipkgs, write_pkglist, link_pkgs, do_createrepo,
upload_repo); the hub side is kojihub/kojihub.py dist_repo_init and
HostExports.distRepoMove.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import koji

from .errors import RepoError
from .repodata import CREATEREPO, EMPTY_REPO_NOTE, recycle_repodata, run

#: The RPM arches one repo arch holds, best first (kojid createDistRepoTask.compat).
RPM_ARCHES = {
    "i386": ("athlon", "i686", "i586", "i486", "i386", "noarch"),
    "x86_64": ("amd64", "ia32e", "x86_64", "noarch"),
    "ia64": ("ia64", "noarch"),
    "ppc": ("ppc", "noarch"),
    "ppc64": ("ppc64p7", "ppc64pseries", "ppc64iseries", "ppc64", "noarch"),
    "ppc64le": ("ppc64le", "noarch"),
    "s390": ("s390", "noarch"),
    "s390x": ("s390x", "noarch"),
    "sparc": ("sparcv9v", "sparcv9", "sparcv8", "sparc", "noarch"),
    "sparc64": ("sparc64v", "sparc64", "noarch"),
    "alpha": ("alphaev6", "alphaev56", "alphaev5", "alpha", "noarch"),
    "arm": ("arm", "armv4l", "armv4tl", "armv5tel", "armv5tejl", "armv6l", "armv7l", "noarch"),
    "armhfp": ("armv7hl", "armv7hnl", "noarch"),
    "aarch64": ("aarch64", "noarch"),
    "riscv64": ("riscv64", "noarch"),
    "sw_64": ("sw_64", "noarch"),
    "loongarch64": ("loongarch64", "noarch"),
    "src": ("src",),
}
#: The subrepo debuginfo RPMs go to with the split_debuginfo option.
DEBUG_SUBREPO = "debug"
MULTILIB_REFUSED = (
    "the multilib option of dist repos is not supported by koji-adjutant: kojid picks the multilib "
    "packages with python-multilib's DevelMultilibMethod and resolves their dependencies with the dnf "
    "Python API, and dnf's Python module is not on PyPI, so a worker installed with pip cannot have it")


@dataclass(frozen=True)
class DistRepoOptions:
    """The task_opts of a distRepo task that the worker acts on: what ``koji dist-repo`` sends (cli
    handle_dist_repo), and the event kojihub's distRepo adds. Defaults are the CLI's, for callers
    that leave one out. ``comps`` and ``volume`` are the hub's business (dist_repo_init);
    ``multilib`` is refused."""

    arches: tuple[str, ...] = ()
    event: int | None = None
    inherit: bool = True
    latest: bool = True
    #: ids of dist repos whose RPMs createrepo_c makes delta RPMs against
    delta: tuple[int, ...] = ()
    split_debuginfo: bool = False
    skip_missing_signatures: bool = False
    allow_missing_signatures: bool = False
    zck: bool = False
    zck_dict_dir: str | None = None
    write_signed_rpms: bool = False
    #: overrides kojid.conf distrepo_skip_stat for the main repo (not the debug subrepo), as in kojid
    createrepo_skip_stat: bool | None = None

    @classmethod
    def from_task(cls, opts: dict) -> DistRepoOptions:
        """Read task_opts; refuse what this worker cannot do before anything is made."""
        if opts.get("multilib"):
            raise RepoError(MULTILIB_REFUSED,
                            hint="make the repo without --multilib, or let a kojid builder of the createrepo "
                                 "channel make it")
        if opts.get("zck_dict_dir") and not opts.get("zck"):
            raise RepoError("--zck-dict-dir makes no sense without --zck", hint="add --zck or drop --zck-dict-dir")
        return cls(arches=tuple(opts.get("arch") or ()), event=opts.get("event"),
                   inherit=bool(opts.get("inherit", True)), latest=opts.get("latest", True),
                   delta=tuple(opts.get("delta") or ()),
                   split_debuginfo=bool(opts.get("split_debuginfo")),
                   skip_missing_signatures=bool(opts.get("skip_missing_signatures")),
                   allow_missing_signatures=bool(opts.get("allow_missing_signatures")),
                   zck=bool(opts.get("zck")), zck_dict_dir=opts.get("zck_dict_dir"),
                   write_signed_rpms=bool(opts.get("write_signed_rpms")),
                   createrepo_skip_stat=opts.get("createrepo_skip_stat"))


def repo_arches(arches: Iterable[str]) -> list[str]:
    """The repo's arches (one createdistrepo subtask each): canonical, each once."""
    canonical = sorted({koji.canonArch(arch) for arch in arches})
    if not canonical:
        raise RepoError("no arches given for the dist repo, and its tag has none",
                        hint="pass --arch to koji dist-repo, or set the tag's arches (koji edit-tag --arches)")
    return canonical


def rpm_arches(arch: str) -> tuple[str, ...]:
    try:
        return RPM_ARCHES[arch]
    except KeyError:
        raise RepoError(f"no RPM arches are known for the repo arch {arch}",
                        hint=f"use one of {', '.join(sorted(RPM_ARCHES))}") from None


def nvra(info: dict) -> str:
    return "{name}-{version}-{release}.{arch}".format(**info)


@dataclass(frozen=True)
class KeyChoice:
    """Per RPM of the tag, the copy chosen: its listTaggedRPMS row with ``sigkey`` the requested
    key its copy carries, or None when it has none of them (then only the primary, unsigned copy
    could be used)."""

    rows: dict[int, dict]
    #: rpm id -> every key the hub has a signature header of ('' stands for unsigned)
    available: dict[int, list[str]]

    @property
    def unsigned(self) -> list[dict]:
        return sorted((row for row in self.rows.values() if row["sigkey"] is None), key=nvra)


def choose_keys(rows: Iterable[dict], keys: Sequence[str]) -> KeyChoice:
    """listTaggedRPMS(rpmsigs=True) gives one row per RPM and signature (sigkey None when the hub
    has none: its LEFT OUTER JOIN of rpmsigs); keep one row per RPM, as kojid's get_rpms does."""
    wanted = [key.lower() for key in keys]
    by_rpm: dict[int, list[dict]] = {}
    for row in rows:
        by_rpm.setdefault(row["id"], []).append(row)
    chosen, available = {}, {}
    for rpm_id, sigs in by_rpm.items():
        have = {row["sigkey"].lower(): row for row in sigs if row["sigkey"] is not None}
        available[rpm_id] = sorted(have)
        best = next((key for key in wanted if key in have), None)  # the earlier a key is given, the better
        chosen[rpm_id] = dict(have[best] if best is not None else sigs[0], sigkey=best)
    return KeyChoice(rows=chosen, available=available)


@dataclass(frozen=True)
class RpmCopy:
    """One file of the repo: the hub's row of the RPM (``sigkey`` as chosen) and the path on the
    hub's storage of the copy that goes in."""

    info: dict
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def packages_path(self) -> str:
        """Where the file lies in the repo (kojid link_pkgs, kojihub distRepoMove)."""
        return f"Packages/{self.filename[0].lower()}/{self.filename}"


def copy_path(info: dict, builddir: str) -> Path:
    """The signed copy of the chosen key, else the primary copy (koji.pathinfo.signed / rpm)."""
    if info["sigkey"]:
        return Path(builddir) / koji.pathinfo.signed(info, info["sigkey"])
    return Path(builddir) / koji.pathinfo.rpm(info)


def locate(choice: KeyChoice, builddirs: dict[int, str], skip_unsigned: bool) -> tuple[list[RpmCopy], list[Path]]:
    """The copies that go in (RPMs without a requested key left out with skip_unsigned), and the
    paths of those that are not on the storage."""
    copies, missing = [], []
    for info in sorted(choice.rows.values(), key=nvra):
        if info["sigkey"] is None and skip_unsigned:
            continue
        path = copy_path(info, builddirs[info["build_id"]])
        if path.exists():
            copies.append(RpmCopy(info=info, path=path))
        else:
            missing.append(path)
    return copies, missing


def missing_files_report(paths: Sequence[Path]) -> str:
    """missing_files.log, as kojid words it."""
    return ("Some rpm files were missing.\nMost likely, you want to create these signed copies.\n\n"
            "Missing files:\n" + "".join(f"{path}\n" for path in sorted(paths)))


def missing_signatures_report(choice: KeyChoice, keys: Sequence[str], skipped: bool) -> str:
    """missing_signatures.log: each RPM without a requested key and the keys it has."""
    lines = ["Some rpms were missing requested signatures.\n"]
    if skipped:
        lines.append("The skip_missing_signatures option was specified, so these files were excluded.\n")
    lines.append(f"Requested keys: {[key.lower() for key in keys]!r}\n\n# RPM name: available keys\n")
    lines += [f"{nvra(row)}: {choice.available[row['id']]!r}\n" for row in choice.unsigned]
    return "".join(lines)


def write_layout(repodir: Path, copies: Sequence[RpmCopy], split_debuginfo: bool) -> list[Path]:
    """kojipkgs, the pkglists and the Packages/ symlinks of one arch under repodir; returns the
    directories to index, repodir first (debuginfo goes to debug/ with split_debuginfo)."""
    repodir.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"": []}
    kojipkgs = {}
    for copy in copies:
        subrepo = DEBUG_SUBREPO if split_debuginfo and koji.is_debuginfo(copy.info["name"]) else ""
        entry = dict(copy.info, _pkgpath=str(copy.path))
        if subrepo:
            entry["_subrepo"] = subrepo
            lists.setdefault(subrepo, []).append(f"../{copy.packages_path}\n")
        else:
            lists[""].append(f"{copy.packages_path}\n")
        kojipkgs[copy.filename] = entry
        link = repodir / copy.packages_path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(copy.path)
    (repodir / "kojipkgs").write_text(json.dumps(kojipkgs, indent=2))
    dirs = []
    for subrepo, lines in lists.items():
        subdir = repodir / subrepo
        subdir.mkdir(exist_ok=True)
        (subdir / "pkglist").write_text("".join(lines))
        dirs.append(subdir)
    return dirs


def zck_dict_dir(path: str | None) -> Path | None:
    """The zchunk dictionaries directory on this builder, checked as kojid checks it."""
    if not path:
        return None
    directory = Path(os.path.normpath(path))
    if directory.is_file():
        raise RepoError(f"zchunk dir path is file: {directory}", hint="--zck-dict-dir names a directory")
    if not directory.is_dir():
        raise RepoError(f"zchunk dir path doesn't exist: {directory}",
                        hint="--zck-dict-dir names a directory on the builder")
    return directory


def createrepo_command(repodir: Path, groupfile: Path | None, *, update: bool, skip_stat: bool,
                       oldpackagedirs: Sequence[Path] = (), zck: bool = False,
                       zck_dict: Path | None = None) -> list[str]:
    """kojid's do_createrepo: createrepo_c over repodir's own pkglist, its repodata in place."""
    command = [CREATEREPO, "--error-exit-val", "-vd", "-i", str(repodir / "pkglist")]
    if groupfile is not None:
        command += ["-g", str(groupfile)]
    if update:
        command.append("--update")
        if skip_stat:
            command.append("--skip-stat")
    if oldpackagedirs:
        command.append("--deltas")
        for directory in oldpackagedirs:
            command += ["--oldpackagedirs", str(directory)]
    if zck:
        command.append("--zck")
    if zck_dict is not None:
        command += ["--zck-dict-dir", str(zck_dict)]
    command.append(str(repodir))
    return command


@dataclass(frozen=True)
class RepodataInputs:
    """What createrepo_c needs besides the layout: the repo's comps, the previous dist repo's arch
    directory to recycle (None: no --update), and the dist repos to make delta RPMs against."""

    groupfile: Path | None
    old_archdir: Path | None
    oldpackagedirs: tuple[Path, ...]
    skip_stat: bool
    #: kojid.conf distrepo_skip_stat, for the subrepos
    default_skip_stat: bool
    zck: bool
    zck_dict: Path | None


def make_dist_repodata(repodirs: Sequence[Path], inputs: RepodataInputs, logdir: Path, empty: bool) -> None:
    """The repodata of the arch (repodirs[0]) and of each subrepo, each logged to its own
    createrepo[_<subrepo>].log; an empty repo is marked as kojid marks it."""
    root = repodirs[0]
    for repodir in repodirs:
        sub = repodir.relative_to(root).as_posix()
        old = None
        if inputs.old_archdir is not None:
            old = inputs.old_archdir / ("repodata" if sub == "." else f"{sub}/repodata")
        update = old is not None and recycle_repodata(old, repodir / "repodata")
        skip_stat = inputs.skip_stat if sub == "." else inputs.default_skip_stat
        command = createrepo_command(repodir, inputs.groupfile, update=update, skip_stat=skip_stat,
                                     oldpackagedirs=inputs.oldpackagedirs, zck=inputs.zck, zck_dict=inputs.zck_dict)
        run(command, logdir / ("createrepo.log" if sub == "." else f"createrepo_{sub}.log"))
    if empty:
        (root / "repodata" / "EMPTY_REPO").write_text(EMPTY_REPO_NOTE)


def repo_files(repodir: Path) -> list[str]:
    """Every file of the layout but the symlinks to the RPMs, relative to repodir: what is uploaded
    and listed in repo_manifest for distRepoMove."""
    found = []
    for dirpath, _dirs, files in os.walk(repodir):
        for name in files:
            path = Path(dirpath) / name
            if not path.is_symlink():
                found.append(path.relative_to(repodir).as_posix())
    return sorted(found)
