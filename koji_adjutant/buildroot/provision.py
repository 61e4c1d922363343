"""Buildroot images, made by the package manager alone.

Every image a build starts from comes from here, layer by layer (layers.py):
the group layer, then a layer per round of BuildRequires. Each layer is made in
a package-manager container: root with only the package manager's
capabilities, network only when a repo is remote, the rendered setup and the
local repos as its only mounts, and nothing run in it but the init script's
setup, modules, sync, install-group, install and list-installed steps. It is then committed.
That is the only kind of container ever committed (ContainerManager.commit
refuses any other), and nothing of a package's own ever runs in one, not even
its SRPM is mounted there: an image holds only what dnf installed from the
tag's repos, so one build cannot reach another through it (ADR 0006).

With a cache each layer is looked up by its key before it is made and kept
afterwards; without one, the layers live for one build and ``close`` removes them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from pathlib import Path

from ..container.interface import (
    LABEL_PURPOSE,
    ContainerManager,
    ContainerSpec,
    ImageInfo,
    Mount,
    Network,
    Privileges,
    ResourceLimits,
    Stream,
)
from ..errors import AdjutantError, BuildrootError
from ..resources import Resources
from .cache import BuildrootCache, LabelsFor, MakeLayer
from .cachekey import group_inputs, requirements_inputs
from .deps import check_install
from .installed import ORIGIN_IMAGE, InstalledPackage, parse_rpm_list
from .layers import BuildrootImage, Layer
from .logs import BuildLogs, HeadTailBuffer
from .render import INIT_SCRIPT, REPOS_DIR, SETUP_DIR
from .spec import BuildrootSpec

log = logging.getLogger(__name__)

PURPOSE = "dependencies"
#: The environment variable the init script takes the package manager's proxy from.
PROXY_VARIABLE = "ADJUTANT_PROXY"


def package_manager_mounts(spec: BuildrootSpec, setup_dir: Path) -> list[Mount]:
    """The rendered setup and the local repos, read-only; never anything of the package's."""
    mounts = [Mount(setup_dir, SETUP_DIR)]
    mounts += [Mount(repo.local_path, f"{REPOS_DIR}/{repo.repo_id}") for repo in spec.repos if repo.is_local]
    return mounts


class Provisioner:
    """Finds or makes the layers of one build's buildroot images."""

    def __init__(self, manager: ContainerManager, labels: Mapping[str, str], limits: ResourceLimits,
                 dependency_network: Network, cache: BuildrootCache | None, proxy: str | None = None):
        """``dependency_network`` is used only when a repo is remote. ``proxy`` (kojid.conf
        yum_proxy) reaches dnf through the environment of its steps only, so nothing of it is
        in a file or an image that package code could read."""
        self._manager = manager
        self._labels = {**labels, LABEL_PURPOSE: PURPOSE}
        self._limits = limits
        self._network = dependency_network
        self._cache = cache
        self._step_env = {PROXY_VARIABLE: proxy} if proxy else {}
        self._made: list[str] = []

    def group(self, spec: BuildrootSpec, setup_dir: Path, base: ImageInfo, logs: BuildLogs) -> BuildrootImage:
        """The base image set up (repo file, macros) with the install group (and what else
        the spec installs first)."""
        steps = [("setup", "set the buildroot up")]
        if spec.package_manager.module_setup:
            steps.append(("modules", "setting the modules up (mock.module_setup_commands)"))
        if spec.package_manager.sync_image:
            steps.append(("sync", "aligning the image's packages to the repos (adjutant.sync_image_packages)"))
        if spec.first_install:
            steps.append(("install-group", f"installing {spec.first_install}"))

        def make(ref: str, labels: LabelsFor) -> tuple[list[InstalledPackage], ImageInfo]:
            return self._make(spec, spec.image, setup_dir, logs, ref, labels, None, *steps)
        inputs = group_inputs(spec, self._cache.store if self._cache is not None else None)
        return self._obtain(Layer(spec.tag, spec.arch, inputs), base, make)

    def requirements(self, spec: BuildrootSpec, setup_dir: Path, base: ImageInfo, logs: BuildLogs,
                     parent: BuildrootImage, wanted: frozenset[str]) -> BuildrootImage:
        """``parent`` with every requirement of ``wanted`` installed."""
        image_nevras = frozenset(p.nevra for p in parent.installed if p.origin == ORIGIN_IMAGE)

        def make(ref: str, labels: LabelsFor) -> tuple[list[InstalledPackage], ImageInfo]:
            return self._make(spec, parent.ref, setup_dir, logs, ref, labels, image_nevras,
                              ("install", "installing BuildRequires", *sorted(wanted)))
        layer = Layer(spec.tag, spec.arch, requirements_inputs(parent.key, wanted), wanted, parent)
        return self._obtain(layer, base, make)

    def close(self) -> None:
        """Remove the images made for this build only."""
        for ref in self._made:
            self._manager.remove_image(ref)
        self._made.clear()

    def _obtain(self, layer: Layer, base: ImageInfo, make: MakeLayer) -> BuildrootImage:
        if self._cache is not None:
            image = self._cache.obtain(layer, base, make)
            return image
        ref = f"localhost/adjutant-{layer.tag}-{layer.arch}-{layer.key[:12]}:{uuid.uuid4().hex[:8]}"
        self._made.append(ref)
        installed, _image = make(ref, lambda _installed: {})
        return BuildrootImage(ref=ref, key=layer.key, installed=tuple(installed), requirements=layer.requirements)

    def _make(self, spec: BuildrootSpec, image: str, setup_dir: Path, logs: BuildLogs, ref: str,
              labels: LabelsFor, image_nevras: frozenset[str] | None,
              *steps: tuple[str, ...]) -> tuple[list[InstalledPackage], ImageInfo]:
        """Run ``steps`` (step, what it does, arguments...) as root in a package-manager container
        of ``image``; commit it to ``ref``. ``image_nevras`` None: list them first (the base image's)."""
        container = ContainerSpec(
            image=image, command=["sleep", "infinity"], labels=self._labels, limits=self._limits,
            privileges=Privileges.PACKAGE_MANAGER, network=Network.NONE if spec.offline else self._network,
            mounts=package_manager_mounts(spec, setup_dir), env=dict(spec.env_vars), workdir="/builddir")
        with Resources() as resources:
            handle = self._manager.create(container)
            resources.release(f"remove container {handle.name}", lambda: self._manager.remove(handle))
            self._manager.start(handle)
            try:
                if image_nevras is None:
                    image_nevras = frozenset(p.nevra for p in self._installed(handle, spec, logs))
                for step, what, *args in steps:
                    exit_code, output = self._run(handle, spec, logs, step, *args)
                    check_install(exit_code, output, what)
                installed = self._installed(handle, spec, logs, image_nevras)
            except AdjutantError as exc:
                exc.log_path = exc.log_path or str(logs.path("root"))
                raise
            self._manager.stop(handle)
            return installed, self._manager.commit(handle, ref, labels(installed))

    def _run(self, handle, spec: BuildrootSpec, logs: BuildLogs, step: str, *args: str,
             quiet: bool = False) -> tuple[int, str]:
        """One step of the init script, as root; its exit code and (bounded) output."""
        to_log = logs.sink("root")
        output = HeadTailBuffer()

        def sink(stream: Stream, data: bytes) -> None:
            output.append(data)
            if not quiet:
                to_log(stream, data)

        exit_code = self._manager.exec(handle, [INIT_SCRIPT, step, *args], sink=sink, user="root",
                                       env={**spec.env_vars, **self._step_env}, workdir="/builddir",
                                       timeout=spec.timeouts.dependencies)
        return exit_code, output.text()

    def _installed(self, handle, spec: BuildrootSpec, logs: BuildLogs,
                   image_nevras: frozenset[str] = frozenset()) -> list[InstalledPackage]:
        exit_code, output = self._run(handle, spec, logs, "list-installed", quiet=True)
        if exit_code != 0:
            raise BuildrootError(f"could not list the packages of the buildroot: {output.strip()[-500:]}")
        return parse_rpm_list(output, image_nevras)
