"""Building in a buildroot the hub knows about: the steps every RPM task shares.

From the hub's data (repo, tag build config, host) to a BuildrootSpec; then
one build with its hub record walked INIT → BUILDING → EXPIRED, its logs
uploaded while it runs, and its containers gone afterwards whatever happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import koji

from ..buildroot.cache import BuildrootCache
from ..buildroot.installed import InstalledPackage
from ..buildroot.logs import BuildLogs
from ..buildroot.runner import BuildResult, BuildrootRunner, SourceTree, SrpmResult
from ..buildroot.spec import BuildrootSpec, InstallGroup, PackageManagerOptions, RepoSource, Timeouts, kojid_macros
from ..container.archive import ResultLimits
from ..container.factory import manager_for
from ..container.interface import LABEL_BROOT, LABEL_TASK, LABEL_WORKER, ResourceLimits
from ..errors import BuildrootError, ConfigError
from ..hub import HubBuildroot, LogUploader
from ..policy import ImageChoice, choose_image
from ..resources import Resources
from ..rpmlist import image_packages_repo, repo_content, rpmlist

log = logging.getLogger(__name__)

_MACRO_PREFIX = "rpm.macro."
_ENV_PREFIX = "rpm.env."


@dataclass(frozen=True)
class HubBuildResult:
    build: BuildResult | SrpmResult
    brootid: int
    log_paths: list[str]


def _truthy(value) -> bool:
    return value in (True, 1) or str(value).lower() in ("1", "true", "yes", "on")


def buildroot_spec(options, build_config: dict, repo_info: dict, br_arch: str, target_arch: str,
                   image: ImageChoice, image_digest: str, group: InstallGroup) -> BuildrootSpec:
    """The buildroot kojid would ask mock for, as a BuildrootSpec."""
    kojid, adjutant = options, options.adjutant
    extra = build_config.get("extra") or {}
    macros = kojid_macros(br_arch, packager=kojid.packager, vendor=kojid.vendor,
                          distribution=kojid.distribution, mockhost=kojid.mockhost)
    macros.update({key[len(_MACRO_PREFIX):]: str(value) for key, value in extra.items()
                   if key.startswith(_MACRO_PREFIX)})
    env_vars = {key[len(_ENV_PREFIX):]: str(value) for key, value in extra.items()
                   if key.startswith(_ENV_PREFIX)}
    repo_path = f"{koji.PathInfo(topdir='').repo(repo_info['id'], repo_info['tag_name'])}/{br_arch}"
    location = f"{kojid.topdir}{repo_path}" if adjutant.offline else f"{kojid.topurl}{repo_path}"
    return BuildrootSpec(
        image=image.ref, image_digest=image_digest, arch=br_arch, target_arch=target_arch,
        repos=(RepoSource(repo_id=f"koji-{repo_info['id']}", location=location, immutable=True),),
        group=group, macros=macros, env_vars=env_vars, tag=repo_info["tag_name"],
        package_manager=package_manager_options(repo_info["tag_name"], extra),
        timeouts=Timeouts(rpmbuild=kojid.rpmbuild_timeout))


#: Tag extras of mock that cannot work here, and why.
_UNSUPPORTED_EXTRAS = {
    "mock.forcearch": "koji-adjutant builds each arch natively, with no emulation (qemu-user-static)",
}


def package_manager_options(tag: str, extra: dict) -> PackageManagerOptions:
    """The tag extras kojid passes to mock for the package manager (mock.*), or a clear refusal."""
    for key, why in _UNSUPPORTED_EXTRAS.items():
        if key in extra:
            raise BuildrootError(f"tag {tag} sets {key} = {extra[key]!r}, which koji-adjutant cannot honour: {why}",
                                 hint=f"remove it (koji edit-tag --remove-extra={key} {tag}), or build this tag "
                                      "on kojid")
    releasever = extra.get("mock.releasever")
    try:
        return PackageManagerOptions(
            releasever=str(releasever) if releasever else None,
            module_hotfixes=_truthy(extra.get("mock.yum.module_hotfixes", False)),
            best=_truthy(extra.get("mock.yum.best", True)),
            sync_image=_truthy(extra.get("adjutant.sync_image_packages", False)),
            command=str(extra.get("mock.package_manager", "dnf")),
            module_setup=tuple(tuple(c) if isinstance(c, (list, tuple)) else (c,)
                               for c in extra.get("mock.module_setup_commands") or ()))
    except ConfigError as exc:
        raise BuildrootError(f"tag {tag}: {exc.message}", hint=exc.hint) from exc


def tag_fits_host(session, tag, hostdata: dict) -> bool:
    """kojid's checkHostArch: refuse a task whose tag has arches, none of them this host's."""
    build_config = session.getBuildConfig(tag)
    if not build_config or not build_config.get("arches"):
        return True
    tag_arches = {koji.canonArch(a) for a in build_config["arches"].split()}
    return bool(tag_arches & set(hostdata["arches"].split()))


def work_root(adjutant) -> Path:
    """Where builds keep their workspaces (swept when the daemon starts)."""
    return Path(adjutant.state_dir) / "work"


def resource_limits(adjutant, rlimits: Mapping[str, tuple[int, ...]] = MappingProxyType({})) -> ResourceLimits:
    """[adjutant] limits, and kojid.conf's RLIMIT_* (kojid sets them on itself, so on mock's
    builds; here they are the build containers' ulimits)."""
    memory = adjutant.memory_limit_mb * 1024 * 1024 if adjutant.memory_limit_mb else None
    ulimits = tuple((name[len("RLIMIT_"):].lower(), limits[0], limits[-1]) for name, limits in sorted(rlimits.items()))
    return ResourceLimits(memory_bytes=memory, pids=adjutant.pids_limit, cpus=adjutant.cpus, rlimits=ulimits)


def buildroot_runner(options, manager, labels) -> BuildrootRunner:
    """The runner of a task's buildroot, as kojid.conf sets it up."""
    adjutant = options.adjutant
    return BuildrootRunner(manager, labels, limits=resource_limits(adjutant, options.rlimits),
                           dependency_network=adjutant.deps_network, proxy=options.yum_proxy,
                           cache=BuildrootCache.configured(adjutant, manager), work_root=work_root(adjutant),
                           source_network=adjutant.source_network, keep_failed=options.failed_buildroot_lifetime,
                           result_limits=ResultLimits.from_mb(adjutant.result_max_file_mb,
                                                              adjutant.result_max_total_mb, adjutant.result_max_files))


class TaskBuildroot:
    """One buildroot of one task, from hub data to results."""

    def __init__(self, task, tag, arch: str, repo_id: int, group: InstallGroup = InstallGroup.BUILD):
        self.task = task
        self._session = task.session
        self.repo_info = self._session.repoInfo(repo_id, strict=True)
        if koji.REPO_STATES[self.repo_info["state"]] not in ("READY", "EXPIRED"):
            raise BuildrootError(f"repo {repo_id} is {koji.REPO_STATES[self.repo_info['state']]}, not ready")
        self.build_config = self._session.getBuildConfig(tag, event=self.repo_info["create_event"])
        if self.build_config["id"] != self.repo_info["tag_id"]:
            raise BuildrootError(f"tag/repo mismatch: {self.build_config['name']} vs {self.repo_info['tag_name']}")
        # As kojid's BuildRoot: rpmbuild targets the task's arch (noarch stays noarch; autoconf knows
        # no armhfp), the buildroot and its repo are of the canonical arch (i686 builds in i386).
        self.target_arch = "armv7hl" if arch == "armhfp" else arch
        preferred = task.taskinfo["arch"] if arch == "noarch" else None
        self.br_arch = koji.canonArch(task.find_arch(arch, self._session.host.getHost(), self.build_config,
                                                     preferred_arch=preferred))
        self.group = group

    @classmethod
    def for_srpm(cls, task, tag, repo_id: int) -> TaskBuildroot:
        """The buildroot kojid makes SRPMs in: group srpm-build, on an arch of both host and tag,
        rpmbuild --target noarch."""
        return cls(task, tag, "noarch", repo_id, group=InstallGroup.SRPM_BUILD)

    def build(self, srpm: Path, resultdir: Path) -> HubBuildResult:
        """RPMs (and the SRPM rebuilt) from ``srpm``."""
        return self._run(resultdir, lambda runner, spec, logs, on_dependencies: runner.build(
            spec, srpm, resultdir, logs, on_dependencies=on_dependencies))

    def make_srpm(self, source: Path | SourceTree, resultdir: Path) -> HubBuildResult:
        """An SRPM, rebuilt from an SRPM or made from a source tree (runner.make_srpm)."""
        return self._run(resultdir, lambda runner, spec, logs, on_dependencies: runner.make_srpm(
            spec, source, resultdir, logs, on_dependencies=on_dependencies))

    def _run(self, resultdir: Path, work: Callable[..., BuildResult | SrpmResult]) -> HubBuildResult:
        """``work(runner, spec, logs, on_dependencies)`` in this buildroot, with its hub record and logs."""
        with Buildroot(self, resultdir) as root:
            result = work(root.runner, root.spec, root.logs, root.dependencies_installed)
            root.installed(result.installed)   # more, when the build asked for more
        return HubBuildResult(build=result, brootid=root.record.id, log_paths=root.log_paths)


class Buildroot:
    """Every resource of one buildroot, owned by one stack (resources.Resources).

    Each is registered for release the moment it exists, so a failure at any
    step, or in the build itself, releases what came before it: the build's
    containers removed, the podman service stopped, the logs closed and their
    last bytes uploaded, the hub record expired (a canceled task's calls are
    refused by the hub; the daemon expires a record left BUILDING on its next loop).
    """

    def __init__(self, buildroot: TaskBuildroot, resultdir: Path):
        self._buildroot = buildroot
        self._task = buildroot.task
        self._resultdir = resultdir
        self._resources = Resources()
        self.log_paths: list[str] = []

    def __enter__(self) -> Buildroot:
        with self._resources as resources:
            self._choose()
            self._record(resources)
            self._upload_logs(resources)
            self._open_logs(resources)
            self._containers(resources)
            self._prepare()
            self._resources = resources.pop_all()
        return self

    def __exit__(self, *exc_info) -> bool | None:
        return self._resources.__exit__(*exc_info)

    # -- acquisitions, in order ------------------------------------------------
    def _choose(self) -> None:
        """The image and the repos' content: hub queries, nothing to release."""
        session, options, buildroot = self._task.session, self._task.options, self._buildroot
        self.image = choose_image(session, options.adjutant.image_policy, buildroot.build_config, buildroot.br_arch,
                                  options.adjutant.default_image,
                                  extra_data={"task_id": self._task.id, "method": self._task.method})
        self._content = repo_content(session, buildroot.repo_info, buildroot.br_arch, options.topurl)
        self._image_repo = image_packages_repo(session, options.adjutant.image_packages_repo)

    def _record(self, resources: Resources) -> None:
        self.record = HubBuildroot(self._task.session, self._buildroot.repo_info["id"], self._buildroot.br_arch,
                                   self._task.id)
        resources.release(f"expire buildroot {self.record.id}", self.record.expire)

    def _upload_logs(self, resources: Resources) -> None:
        """Before the logs are opened, so that they are closed before their last upload."""
        uploader = LogUploader(self._task.session, self._resultdir, self._task.getUploadDir())
        uploader.start()
        resources.release("upload the last of the logs", lambda: self.log_paths.extend(uploader.finish()))

    def _open_logs(self, resources: Resources) -> None:
        self.logs = BuildLogs(self._resultdir, max_bytes=self._task.options.adjutant.log_max_mb << 20)
        resources.release("close the logs", self.logs.close)

    def _containers(self, resources: Resources) -> None:
        """The container manager, and the removal of every container of this task."""
        self._labels = {**self._task.container_labels(), LABEL_BROOT: str(self.record.id)}
        self._manager = resources.enter_context(manager_for(self._task.options.adjutant))
        owned = {LABEL_WORKER: self._labels[LABEL_WORKER], LABEL_TASK: self._labels[LABEL_TASK]}
        resources.release("remove the build's containers", lambda: self._manager.remove_by_label(owned))

    def _prepare(self) -> None:
        """The base image present, the spec and the runner; all owned by what came before."""
        options, buildroot = self._task.options, self._buildroot
        base = self._manager.ensure_image(self.image.ref, options.adjutant.image_pull_policy)
        self.logs.write("container", (f"image: {base.ref}\ndigest: {base.digest}\nchosen by: {self.image.reason}\n"
                                      f"buildroot: {self.record.id} ({buildroot.br_arch}, "
                                      f"repo {buildroot.repo_info['id']})\n").encode())
        self.spec = buildroot_spec(options, buildroot.build_config, buildroot.repo_info, buildroot.br_arch,
                                   buildroot.target_arch, self.image, base.digest, buildroot.group)
        self.runner = buildroot_runner(options, self._manager, self._labels)

    # -- what the build reports ----------------------------------------------
    def dependencies_installed(self, packages: list[InstalledPackage]) -> None:
        """The hub record goes BUILDING with the packages of the buildroot."""
        self.record.building(rpmlist(packages, self._content, self._image_repo))

    def installed(self, packages: Sequence[InstalledPackage]) -> None:
        self.record.update(rpmlist(packages, self._content, self._image_repo))


