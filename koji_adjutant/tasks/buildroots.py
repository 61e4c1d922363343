"""Building in a buildroot the hub knows about: the steps every RPM task shares.

From the hub's data (repo, tag build config, host) to a BuildrootSpec; then
one build with its hub record walked INIT → BUILDING → EXPIRED, its logs
uploaded while it runs, and its containers gone afterwards whatever happens.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import koji

from ..buildroot.cache import BuildrootCache
from ..buildroot.installed import InstalledPackage
from ..buildroot.logs import BuildLogs
from ..buildroot.runner import BuildResult, BuildrootRunner, SourceTree, SrpmResult
from ..buildroot.spec import (BuildrootSpec, InstallGroup, PackageManagerOptions, RepoSource, Timeouts,
                              kojid_macros)
from ..container.archive import ResultLimits
from ..container.interface import LABEL_BROOT, LABEL_TASK, LABEL_WORKER, ResourceLimits
from ..container.podman import PodmanManager
from ..envstore.store import EnvironmentStore
from ..errors import BuildrootError, ConfigError
from ..hub import HubBuildroot, LogUploader
from ..policy import ImageChoice, choose_image
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
    environment = {key[len(_ENV_PREFIX):]: str(value) for key, value in extra.items()
                   if key.startswith(_ENV_PREFIX)}
    repo_path = f"{koji.PathInfo(topdir='').repo(repo_info['id'], repo_info['tag_name'])}/{br_arch}"
    location = f"{kojid.topdir}{repo_path}" if adjutant.offline else f"{kojid.topurl}{repo_path}"
    return BuildrootSpec(
        image=image.ref, image_digest=image_digest, arch=br_arch, target_arch=target_arch,
        repos=(RepoSource(repo_id=f"koji-{repo_info['id']}", location=location),),
        group=group, macros=macros, environment=environment, tag=repo_info["tag_name"],
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


def environment_store(adjutant) -> EnvironmentStore:
    return EnvironmentStore(Path(adjutant.state_dir) / "environments.sqlite")


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
                           cache=BuildrootCache(environment_store(adjutant), manager), work_root=work_root(adjutant),
                           source_network=adjutant.source_network, keep_failed=options.failed_buildroot_lifetime,
                           result_limits=ResultLimits.from_mb(adjutant.result_max_file_mb,
                                                              adjutant.result_max_total_mb, adjutant.result_max_files))


class TaskBuildroot:
    """One buildroot of one task, from hub data to results."""

    def __init__(self, task, tag, arch: str, repo_id: int, group: InstallGroup = InstallGroup.BUILD):
        self._task = task
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
        task = self._task
        options = task.options
        image = choose_image(self._session, options.adjutant.image_policy, self.build_config, self.br_arch,
                             options.adjutant.default_image,
                             extra_data={"task_id": task.id, "method": task.method})
        content = repo_content(self._session, self.repo_info, self.br_arch, options.topurl)
        image_repo = image_packages_repo(self._session, options.adjutant.image_packages_repo)
        broot = HubBuildroot(self._session, self.repo_info["id"], self.br_arch, task.id)
        labels = {**task.container_labels(), LABEL_BROOT: str(broot.id)}
        logs = BuildLogs(resultdir, max_bytes=options.adjutant.log_max_mb << 20)
        uploader = LogUploader(self._session, resultdir, task.getUploadDir())
        uploader.start()

        def dependencies_installed(packages: list[InstalledPackage]) -> None:
            broot.building(rpmlist(packages, content, image_repo))

        try:
            with PodmanManager(socket=options.adjutant.podman_socket,
                               container_root=options.adjutant.container_root) as manager:
                base = manager.ensure_image(image.ref, options.adjutant.image_pull_policy)
                logs.write("container", (f"image: {base.ref}\ndigest: {base.digest}\nchosen by: {image.reason}\n"
                                         f"buildroot: {broot.id} ({self.br_arch}, repo {self.repo_info['id']})\n"
                                         ).encode())
                spec = buildroot_spec(options, self.build_config, self.repo_info, self.br_arch, self.target_arch,
                                      image, base.digest, self.group)
                try:
                    result = work(buildroot_runner(options, manager, labels), spec, logs, dependencies_installed)
                finally:
                    manager.remove_by_label({LABEL_WORKER: labels[LABEL_WORKER], LABEL_TASK: labels[LABEL_TASK]})
            broot.update(rpmlist(result.installed, content, image_repo))  # more, when the build asked for more
        except BaseException:
            # The build already failed (or the task was canceled, and the hub now refuses
            # this task's calls): wind down without hiding why. The daemon expires a
            # buildroot left BUILDING on its next loop.
            logs.close()
            _best_effort(uploader.finish, "upload the last of the logs")
            _best_effort(broot.expire, f"expire buildroot {broot.id}")
            raise
        logs.close()
        log_paths = uploader.finish()
        broot.expire()
        return HubBuildResult(build=result, brootid=broot.id, log_paths=log_paths)


def _best_effort(step, what: str) -> None:
    try:
        step()
    except Exception as exc:
        log.warning("could not %s after the build failed: %s", what, exc)
