"""Turning an SRPM, repos and an image into RPMs, in two containers.

Dependency phase: a container of the base image, with network only when a
repo is remote, sets the buildroot up and installs the build group and the
BuildRequires (deps.py); it is committed to an image. Build phase: a
container of that image, with no network at all, runs rpmbuild as the
unprivileged build user; its results leave as a tar stream on its stdout.
Only the mounts listed in ``dependency_mounts``/``build_mounts`` ever enter a
container (docs/adr/0003-buildroot-initialization.md).

Making an SRPM (``make_srpm``) uses the same phases: the dependency phase
installs only the group (srpm-build); a source tree's source command runs in
a container of its own, the one step besides dependencies that may use the
network (docs/adr/0008-scm-checkout.md); ``rpmbuild -bs`` has none.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..container.archive import extract_untrusted
from ..container.interface import (LABEL_PURPOSE, ContainerHandle, ContainerManager, ContainerSpec,
                                   ImageInfo, Mount, Network, ResourceLimits, Stream)
from ..errors import AdjutantError, BuildError, BuildrootError, ContainerTimeoutError
from . import deps
from .cache import BuildrootCache
from .installed import InstalledPackage, parse_rpm_list, write_installed
from .logs import BuildLogs
from .render import INIT_SCRIPT, INPUT_DIR, REPOS_DIR, SETUP_DIR, SOURCE_TREE, render
from .spec import BuildrootSpec
from .srpm import check_srpm, check_srpm_name

log = logging.getLogger(__name__)

_RPMBUILD_TIMEOUT_HINT = ("if the build legitimately takes longer, raise the timeout "
                          "(build-local --timeout, kojid.conf rpmbuild_timeout)")

TOPDIR = "/builddir/build"

#: How long a phase whose output has ended may take to exit, before it is killed.
_EXIT_GRACE = 60


@dataclass(frozen=True)
class SourceTree:
    """A package as its SCM holds it: a directory with the spec, and what fetches the rest.

    ``source_cmd`` (kojid's, e.g. ``make sources``) runs inside the buildroot,
    in a copy of ``directory``, as the build user; None runs nothing.
    """

    directory: Path
    spec_name: str
    source_cmd: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SrpmResult:
    srpm: Path
    logs: tuple[Path, ...]
    installed: tuple[InstalledPackage, ...]
    base_image: ImageInfo
    phase_seconds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildResult:
    rpms: tuple[Path, ...]
    srpm: Path
    logs: tuple[Path, ...]
    installed: tuple[InstalledPackage, ...]
    base_image: ImageInfo
    phase_seconds: Mapping[str, float] = field(default_factory=dict)


def dependency_mounts(spec: BuildrootSpec, setup_dir: Path, input_dir: Path) -> list[Mount]:
    """The dependency phase sees the rendered setup, its input, and local repos; all read-only."""
    mounts = [Mount(setup_dir, SETUP_DIR), Mount(input_dir, INPUT_DIR)]
    mounts += [Mount(repo.local_path, f"{REPOS_DIR}/{repo.repo_id}") for repo in spec.repos if repo.is_local]
    return mounts


def build_mounts(setup_dir: Path, input_dir: Path) -> list[Mount]:
    """The build phase sees the rendered setup and its input SRPM, read-only; results leave on its stdout."""
    return [Mount(setup_dir, SETUP_DIR), Mount(input_dir, INPUT_DIR)]


#: How a phase's command runs: all its output on stderr (the log); then, on stdout, the
#: results directory as a tar stream if it succeeded, and a last line with its exit
#: status. Values reach the shell as arguments, never as script text.
_PHASE_SCRIPT = ('results=$1; shift; "$@" >&2; status=$?; '
                 'if [ "$status" -eq 0 ]; then tar -C "$results" -cf - . || exit; fi; '
                 'printf "\\n%s %d\\n" adjutant-phase-exit "$status"; exit "$status"')
_PHASE_EXIT = re.compile(rb"\nadjutant-phase-exit (\d+)\n\Z")


def _phase_command(command: Sequence[str], results: str) -> list[str]:
    return ["/bin/sh", "-c", _PHASE_SCRIPT, "adjutant-phase", results, *command]


def _phase_exit(output: BinaryIO) -> int | None:
    """The exit status the phase script printed last on stdout, which it then cuts off; None if it
    printed none (the container was killed, or packing the results failed)."""
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - 64))
    found = _PHASE_EXIT.search(output.read())
    if found is None:
        return None
    output.truncate(size - len(found.group(0)))
    output.seek(0)
    return int(found.group(1))


def _installed(run: deps.StepRunner, image_nevras: frozenset[str] = frozenset()) -> list[InstalledPackage]:
    result = run("list-installed", quiet=True)
    if result.exit_code != 0:
        raise BuildrootError(f"could not list the packages of the buildroot: {result.output.strip()}")
    return parse_rpm_list(result.output, image_nevras)


def _readable_by_all(root: Path) -> None:
    for directory, _dirs, files in os.walk(root):
        Path(directory).chmod(Path(directory).stat().st_mode | 0o555)
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o444)


class _Workspace:
    """The host-side directory of one build: rendered files and the input (an SRPM, or a source tree).

    World-readable on purpose: the build user inside the container maps to a
    subordinate uid of the worker, not to the worker itself.
    """

    def __init__(self, spec: BuildrootSpec, source: Path):
        self.root = Path(tempfile.mkdtemp(prefix="adjutant-buildroot-"))
        self.root.chmod(0o755)
        self.setup = self.root / "setup"
        self.input = self.root / "input"
        for directory in (self.setup, self.input):
            directory.mkdir(mode=0o755)
            directory.chmod(0o755)
        for rendered in render(spec):
            path = self.setup / rendered.name
            path.write_text(rendered.content)
            path.chmod(rendered.mode)
        #: the input SRPM; None when the input is a source tree
        self.srpm: Path | None = None
        if source.is_dir():
            shutil.copytree(source, self.input, symlinks=True, dirs_exist_ok=True)
            _readable_by_all(self.input)
        else:
            self.srpm = self.input / source.name
            shutil.copyfile(source, self.srpm)
            self.srpm.chmod(0o644)

    def fresh_dir(self, name: str) -> Path:
        """An empty, world-readable directory of the workspace (an input of a later phase)."""
        path = self.root / name
        path.mkdir(mode=0o755)
        path.chmod(0o755)
        return path

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class _Ready:
    """A buildroot ready for a build's own phases; they add their times to ``phase_seconds``."""

    workspace: _Workspace
    base: ImageInfo
    ref: str
    installed: list[InstalledPackage]
    phase_seconds: dict[str, float]


class BuildrootRunner:
    def __init__(self, manager: ContainerManager, labels: Mapping[str, str],
                 limits: ResourceLimits = ResourceLimits(), dependency_network: Network = Network.HOST,
                 cache: BuildrootCache | None = None):
        """``dependency_network`` is used only when a repo is remote; offline, no phase has network.
        ``cache``: reuse dependency phases across builds (see cache.py)."""
        self._cache = cache
        self._manager = manager
        self._labels = dict(labels)
        self._limits = limits
        self._dependency_network = dependency_network

    def build(self, spec: BuildrootSpec, srpm: Path, resultdir: Path, logs: BuildLogs,
              on_dependencies: Callable[[list[InstalledPackage]], None] | None = None) -> BuildResult:
        """Build ``srpm``; ``on_dependencies`` hears the buildroot's packages before rpmbuild starts."""
        check_srpm(srpm)
        with self._buildroot(spec, Path(srpm), resultdir, logs, on_dependencies) as ready:
            started = time.monotonic()
            rpms, rebuilt_srpm = self._build_phase(spec, ready.workspace, ready.ref, resultdir, logs)
            ready.phase_seconds["build"] = time.monotonic() - started
        return BuildResult(rpms=tuple(rpms), srpm=rebuilt_srpm, logs=tuple(logs.files()),
                           installed=tuple(ready.installed), base_image=ready.base,
                           phase_seconds=ready.phase_seconds)

    def make_srpm(self, spec: BuildrootSpec, source: Path | SourceTree, resultdir: Path, logs: BuildLogs,
                  on_dependencies: Callable[[list[InstalledPackage]], None] | None = None) -> SrpmResult:
        """An SRPM made in a buildroot of ``spec.group`` (srpm-build), so the tag's macros
        (%dist, packager, vendor, distribution) are in it: ``source`` is an SRPM to rebuild,
        or a source tree. rpmbuild has no network; the file is named after its header."""
        if isinstance(source, SourceTree):
            if not (source.directory / source.spec_name).is_file():
                raise BuildError(f"{source.spec_name} is not in {source.directory}")
            input_path = source.directory
        else:
            check_srpm(source)
            input_path = Path(source)
        with self._buildroot(spec, input_path, resultdir, logs, on_dependencies, build_requires=False) as ready:
            workspace, started = ready.workspace, time.monotonic()
            if workspace.srpm is not None:
                input_dir, target = workspace.input, f"{INPUT_DIR}/{workspace.srpm.name}"
            elif source.source_cmd:
                input_dir = self._source_phase(spec, workspace, ready.ref, source.source_cmd, logs)
                target = f"{INPUT_DIR}/{source.spec_name}"
                ready.phase_seconds["sources"] = time.monotonic() - started
                started = time.monotonic()
            else:
                input_dir, target = workspace.input, f"{INPUT_DIR}/{source.spec_name}"
            srpm = self._srpm_phase(spec, workspace.setup, input_dir, target, ready.ref, resultdir, logs)
            ready.phase_seconds["srpm"] = time.monotonic() - started
        check_srpm_name(srpm)
        return SrpmResult(srpm=srpm, logs=tuple(logs.files()), installed=tuple(ready.installed),
                          base_image=ready.base, phase_seconds=ready.phase_seconds)

    @contextmanager
    def _buildroot(self, spec: BuildrootSpec, source: Path, resultdir: Path, logs: BuildLogs,
                   on_dependencies: Callable[[list[InstalledPackage]], None] | None,
                   build_requires: bool = True) -> Iterator[_Ready]:
        """What every build shares up to its own phases: a workspace holding ``source``, and a
        buildroot image with the group (and, with ``build_requires``, the SRPM's BuildRequires).

        The workspace goes afterwards; on success the installed packages are written to the logs.
        """
        for repo in spec.repos:
            repo.check()
        base = self._manager.ensure_image(spec.image)
        resultdir.mkdir(parents=True, exist_ok=True)
        workspace = _Workspace(spec, source)
        try:
            logs.note("root", f"image {base.ref} digest {base.digest}")
            started = time.monotonic()
            deps_srpm = workspace.srpm if build_requires else None
            with self._environment(spec, deps_srpm, base, workspace, logs) as (buildroot_ref, installed):
                ready = _Ready(workspace, base, buildroot_ref, installed,
                               {"dependencies": time.monotonic() - started})
                if on_dependencies is not None:
                    on_dependencies(installed)
                yield ready
        finally:
            workspace.remove()
        write_installed(ready.installed, logs.logdir)

    @contextmanager
    def _environment(self, spec: BuildrootSpec, srpm: Path | None, base: ImageInfo, workspace: _Workspace,
                     logs: BuildLogs) -> Iterator[tuple[str, list[InstalledPackage]]]:
        """The image the build phase starts from, with the packages in it: the group,
        and the BuildRequires of ``srpm`` unless it is None.

        With a cache: a reused environment, or a new one made and kept. Without:
        a fresh one, removed after the build.
        """
        if self._cache is None:
            ref = f"localhost/adjutant-{spec.tag}-{spec.arch}-{spec.content_hash()[:12]}:{uuid.uuid4().hex[:8]}"
            try:
                installed, _image = self._dependency_phase(spec, workspace, srpm, ref, logs)
                yield ref, installed
            finally:
                self._manager.remove_image(ref)
            return
        with self._cache.slot(spec, srpm, base) as slot:
            if slot.hit:
                logs.state(f"Start: dependency phase (cached environment {slot.name})")
                logs.note("root", f"reusing cached buildroot {slot.name}: no dependency installation")
                logs.state("Finish: dependency phase")
                installed = slot.installed
            else:
                installed, image = self._dependency_phase(spec, workspace, srpm, slot.ref, logs,
                                                          self._cache.image_labels(slot))
                self._cache.record(slot, spec, base, installed, image)
        yield slot.ref, installed

    def srpm_from_spec(self, image: str, spec_file: Path, outdir: Path, logs: BuildLogs) -> Path:
        """Make an SRPM from a spec and the sources beside it, in a container with no network."""
        spec_file = Path(spec_file).resolve()
        if not spec_file.is_file():
            raise BuildError(f"{spec_file} does not exist", hint="give the path of an SRPM or a spec")
        self._manager.ensure_image(image)
        inside = f"{INPUT_DIR}/{spec_file.name}"
        container = self._container(
            "srpm", image=image, network=Network.NONE, mounts=[Mount(spec_file.parent, INPUT_DIR)],
            command=["rpmbuild", "-bs", "--nodeps", "--define", "_topdir /tmp/srpm",
                     "--define", f"_sourcedir {INPUT_DIR}", "--define", f"_specdir {INPUT_DIR}", inside])
        logs.state(f"Start: making an SRPM from {spec_file.name}")
        outdir.mkdir(parents=True, exist_ok=True)
        with self._run_to_end(container, logs, 600, what=f"rpmbuild -bs of {spec_file.name}",
                              failed=f"could not make an SRPM from {spec_file.name}: rpmbuild -bs failed",
                              hint="a spec syntax error or a missing source", log="root",
                              timeout_hint="making an SRPM takes seconds; look for what the spec waits on",
                              results="/tmp/srpm/SRPMS") as made:
            srpm = self._take_srpm(made, outdir)
        logs.state(f"Finish: making an SRPM from {spec_file.name}")
        return srpm

    # -- phases ----------------------------------------------------------------
    def _container(self, purpose: str, **kwargs) -> ContainerSpec:
        return ContainerSpec(labels={**self._labels, LABEL_PURPOSE: purpose}, limits=self._limits, **kwargs)

    @contextmanager
    def _run_to_end(self, container: ContainerSpec, logs: BuildLogs, timeout: int, what: str, failed: str,
                    hint: str, results: str, timeout_hint: str = _RPMBUILD_TIMEOUT_HINT,
                    log: str = "build") -> Iterator[Path]:
        """Run a phase's command to its end, its output in ``log`` (build.log); yield a host
        directory holding what it left in ``results``, a directory inside the container.

        The command is the container's own process, attached from its first byte
        (_PHASE_SCRIPT): its output goes to the log, and its results and exit status
        come on stdout. So a phase is one container with no exec, no copy request,
        and no wait for podman to notice the exit: the least podman time and CPU per
        build (ADR 0003). A phase that fails or runs too long becomes a BuildError
        naming its log; the container and the directory are removed whatever happens.
        """
        handle = self._manager.create(dataclasses.replace(container,
                                                          command=_phase_command(container.command, results)))
        staging = Path(tempfile.mkdtemp(prefix="adjutant-results-"))
        try:
            with tempfile.TemporaryFile(prefix="adjutant-results-") as output:
                to_log = logs.sink(log)

                def sink(stream: Stream, data: bytes) -> None:
                    if stream is Stream.STDOUT:
                        output.write(data)
                    else:
                        to_log(stream, data)

                try:
                    self._manager.start_attached(handle, sink, timeout)
                except ContainerTimeoutError as exc:
                    raise BuildError(f"{what} ran over its timeout of {timeout} s and was killed",
                                     hint=timeout_hint, log_path=str(logs.path(log))) from exc
                status = _phase_exit(output)
                if status != 0:  # what podman saw tells a breached limit from a plain failure
                    exit_code = self._manager.wait(handle, timeout=_EXIT_GRACE).exit_code
                    raise BuildError(f"{failed} (exit {exit_code if status is None else status})",
                                     log_path=str(logs.path(log)), hint=hint)
                extract_untrusted(output, staging, f"{handle.name}:{results}")
            yield staging
        finally:
            self._manager.remove(handle)
            shutil.rmtree(staging, ignore_errors=True)

    def _dependency_phase(self, spec: BuildrootSpec, workspace: _Workspace, srpm: Path | None,
                          buildroot_ref: str, logs: BuildLogs, image_labels: Mapping[str, str] | None = None
                          ) -> tuple[list[InstalledPackage], ImageInfo]:
        container = self._container(
            "dependencies", image=spec.image, command=["sleep", "infinity"],
            network=Network.NONE if spec.offline else self._dependency_network,
            mounts=dependency_mounts(spec, workspace.setup, workspace.input),
            env=dict(spec.environment), workdir="/builddir")
        logs.state("Start: dependency phase" + (" (offline, no network)" if spec.offline else ""))
        handle = self._manager.create(container)
        try:
            self._manager.start(handle)
            run = self._step_runner(handle, spec, logs)
            try:
                image_packages = frozenset(p.nevra for p in _installed(run))
                if run("setup").exit_code != 0:
                    raise BuildrootError("buildroot setup failed")
                deps.check_install(run("install-group"), f"installing the @{spec.group.value} group")
                if srpm is not None:
                    unpacked = run("unpack", f"{INPUT_DIR}/{srpm.name}", as_builder=True)
                    if unpacked.exit_code != 0:
                        raise BuildError(f"{srpm.name} could not be unpacked: it is corrupt or not an SRPM")
                    deps.install_build_requires(run)
                installed = _installed(run, image_packages)
            except AdjutantError as exc:
                exc.log_path = exc.log_path or str(logs.path("root"))
                raise
            self._manager.kill(handle)
            self._manager.wait(handle)
            image = self._manager.commit(handle, buildroot_ref, image_labels)
        finally:
            self._manager.remove(handle)
        logs.state("Finish: dependency phase")
        return installed, image

    def _source_phase(self, spec: BuildrootSpec, workspace: _Workspace, buildroot_ref: str,
                      source_cmd: tuple[str, ...], logs: BuildLogs) -> Path:
        """Run the source command in a copy of the tree; the tree it leaves, on the host.

        It may fetch (a lookaside cache), so it has the dependency phase's network
        even offline; it runs the repository's own code, so never on the host.
        """
        container = self._container(
            "sources", image=buildroot_ref, command=[INIT_SCRIPT, "sources", INPUT_DIR, *source_cmd],
            user=spec.build_user, network=self._dependency_network,
            mounts=build_mounts(workspace.setup, workspace.input), env=dict(spec.environment), workdir=TOPDIR)
        shown = " ".join(source_cmd)
        logs.state(f"Start: source phase ({self._dependency_network.value} network)")
        with self._run_to_end(container, logs, spec.timeouts.dependencies, what=f"the source command {shown}",
                              failed=f"error retrieving sources: {shown} failed",
                              hint="fix the command (allowed_scms or the build_from_scm policy set it) "
                                   "or what it fetches",
                              timeout_hint="check that the server it fetches from answers",
                              results=SOURCE_TREE) as left:
            tree = workspace.fresh_dir("sources")
            for entry in left.iterdir():
                shutil.move(str(entry), tree / entry.name)
        _readable_by_all(tree)
        logs.state("Finish: source phase")
        return tree

    def _srpm_phase(self, spec: BuildrootSpec, setup_dir: Path, input_dir: Path, target: str,
                    buildroot_ref: str, resultdir: Path, logs: BuildLogs) -> Path:
        """``rpmbuild -bs`` of ``target`` (an SRPM, or a spec with its sources beside it), with no network."""
        container = self._container(
            "srpm", image=buildroot_ref, command=[INIT_SCRIPT, "srpm", target], user=spec.build_user,
            network=Network.NONE, mounts=build_mounts(setup_dir, input_dir), env=dict(spec.environment),
            workdir=TOPDIR)
        logs.state("Start: SRPM build phase (no network)")
        with self._run_to_end(container, logs, spec.timeouts.rpmbuild, what="rpmbuild -bs",
                              failed="error building the SRPM: rpmbuild -bs failed",
                              hint="a spec syntax error or a missing source; read the end of the log",
                              results=f"{TOPDIR}/SRPMS") as made:
            srpm = self._take_srpm(made, resultdir)
        logs.state("Finish: SRPM build phase")
        return srpm

    def _take_srpm(self, made: Path, resultdir: Path) -> Path:
        """The one SRPM ``rpmbuild -bs`` left in ``made``, moved into ``resultdir``."""
        srpms = sorted(made.glob("*.src.rpm"))
        if len(srpms) != 1:
            raise BuildError(f"rpmbuild -bs made {len(srpms)} SRPMs instead of one: "
                             f"{', '.join(p.name for p in srpms) or 'none'}")
        return Path(shutil.move(str(srpms[0]), resultdir / srpms[0].name))

    def _build_phase(self, spec: BuildrootSpec, workspace: _Workspace, buildroot_ref: str,
                     resultdir: Path, logs: BuildLogs) -> tuple[list[Path], Path]:
        container = self._container(
            "build", image=buildroot_ref, command=[INIT_SCRIPT, "build", f"{INPUT_DIR}/{workspace.srpm.name}"],
            user=spec.build_user, network=Network.NONE, mounts=build_mounts(workspace.setup, workspace.input),
            env=dict(spec.environment),
            workdir=TOPDIR)
        logs.state("Start: build phase (no network)")
        with self._run_to_end(container, logs, spec.timeouts.rpmbuild, what="rpmbuild", failed="rpmbuild failed",
                              hint="the package's own build failed; read the end of the log",
                              results=f"{TOPDIR}/RPMS") as made:  # the SRPM is moved in there too
            rpms, srpm = self._collect(made, resultdir)
        logs.state("Finish: build phase")
        return rpms, srpm

    def _collect(self, made: Path, resultdir: Path) -> tuple[list[Path], Path]:
        rpms = [Path(shutil.move(str(path), resultdir / path.name))
                for path in sorted(made.rglob("*.rpm")) if not path.name.endswith(".src.rpm")]
        srpms = sorted(made.glob("*.src.rpm"))
        if len(srpms) != 1 or not rpms:
            raise BuildError(f"rpmbuild produced {len(rpms)} RPMs and {len(srpms)} SRPMs; "
                             "expected RPMs and exactly one SRPM")
        return rpms, Path(shutil.move(str(srpms[0]), resultdir / srpms[0].name))

    def _step_runner(self, handle: ContainerHandle, spec: BuildrootSpec, logs: BuildLogs) -> deps.StepRunner:
        root_sink = logs.sink("root")

        def run(step: str, *args: str, as_builder: bool = False, quiet: bool = False) -> deps.StepOutput:
            chunks: list[bytes] = []

            def sink(stream: Stream, data: bytes) -> None:
                chunks.append(data)
                if not quiet:
                    root_sink(stream, data)

            exit_code = self._manager.exec(
                handle, [INIT_SCRIPT, step, *args], sink=sink,
                user=spec.build_user if as_builder else "root", env=dict(spec.environment),
                workdir="/builddir", timeout=spec.timeouts.dependencies)
            return deps.StepOutput(exit_code, b"".join(chunks).decode(errors="replace"))

        return run
