"""Turning an SRPM, repos and an image into RPMs, in containers that each do one thing.

Dependencies: the package manager makes the buildroot image layer by layer
(provision.py): the install group, then each round of BuildRequires.
Between the rounds the package's BuildRequires are evaluated in throwaway
containers (requirements.py), the loop being deps.py. Build: a throwaway
container of that image runs rpmbuild as the build user with no network and
no capabilities (phase.py); it checks first that the package, evaluated there,
asks for nothing its image lacks. Package code thus runs only in containers
whose writes are discarded (docs/adr/0003-buildroot-initialization.md,
docs/adr/0006-cached-buildroots.md); with ``keep_failed``, the container of a
failed rpmbuild is kept for an operator to look into until it expires, and
never used by a build again (kept.py).

Making an SRPM (``make_srpm``) uses the group layer only (srpm-build); a
source tree's source command runs in a container of its own, the one phase
of package code that may use a network (docs/adr/0008-scm-checkout.md).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..container.archive import ResultLimits
from ..container.interface import (
    LABEL_PURPOSE,
    LABEL_TASK,
    ContainerHandle,
    ContainerManager,
    ContainerSpec,
    ImageInfo,
    Mount,
    Network,
    ResourceLimits,
)
from ..errors import BuildError
from ..resources import Resources
from . import deps, kept
from .cache import BuildrootCache
from .cachekey import resolution_key
from .installed import InstalledPackage, write_installed
from .layers import BuildrootImage
from .logs import BuildLogs
from .phase import Keeper, Phase, PhaseFailed, run_phase
from .provision import Provisioner
from .render import INIT_SCRIPT, INPUT_DIR, SETUP_DIR, SOURCE_TREE
from .requirements import Evaluation, read_evaluation, write_expected
from .spec import BuildrootSpec
from .srpm import check_srpm, check_srpm_name
from .workspace import Workspace, default_work_root, readable_by_all

log = logging.getLogger(__name__)

TOPDIR = "/builddir/build"
#: Where the evaluate step leaves what the package asks for (inside its container).
_EVALUATED = "/tmp/adjutant-evaluated"
#: The init script's exit status when the input SRPM cannot be unpacked.
_UNPACK_FAILED = 65


@dataclass(frozen=True)
class SourceTree:
    """A package as its SCM holds it: a directory with the spec, and what fetches the rest.

    ``source_cmd`` (kojid's, e.g. ``make sources``) runs inside the buildroot,
    in a copy of ``directory``, as the build user; None runs nothing. ``spec_name``
    and ``sources_dir`` are relative to ``directory`` (SPECS/x.spec and SOURCES in
    rpm's own layout).
    """

    directory: Path
    spec_name: str
    source_cmd: tuple[str, ...] | None = None
    sources_dir: str = "."


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


def phase_mounts(setup_dir: Path, input_dir: Path) -> list[Mount]:
    """A phase sees the rendered setup and its input, read-only; results leave on its stdout."""
    return [Mount(setup_dir, SETUP_DIR), Mount(input_dir, INPUT_DIR)]


@dataclass
class _Buildroot:
    """One build's buildroot while its own phases run; they add their times to ``phase_seconds``."""

    spec: BuildrootSpec
    workspace: Workspace
    base: ImageInfo
    image: BuildrootImage
    provisioner: Provisioner
    logs: BuildLogs
    phase_seconds: dict[str, float]

    @property
    def srpm(self) -> Path:
        """The SRPM in the workspace; the phases that ask for it come after there is one."""
        assert self.workspace.srpm is not None, "a phase of an SRPM ran before there was one"
        return self.workspace.srpm


class BuildrootRunner:
    def __init__(self, manager: ContainerManager, labels: Mapping[str, str],
                 limits: ResourceLimits = ResourceLimits(), dependency_network: Network = Network.HOST,
                 cache: BuildrootCache | None = None, work_root: Path | None = None,
                 source_network: Network = Network.PRIVATE, result_limits: ResultLimits = ResultLimits(),
                 proxy: str | None = None, keep_failed: int = 0):
        """``dependency_network``: the package manager's, only when a repo is remote; offline,
        no phase has network. ``source_network``: a source command's (a lookaside cache).
        ``cache``: reuse buildroot layers across builds (cache.py). ``work_root``: where
        workspaces are made (workspace.py). ``result_limits``: what a phase may send back.
        ``proxy``: the package manager's (kojid.conf yum_proxy), never package code's.
        ``keep_failed``: seconds the container of a build whose rpmbuild failed is kept for an
        operator (kojid.conf failed_buildroot_lifetime, kept.py); 0 keeps none. Kept buildroots
        are found by task, so it needs a task label."""
        if keep_failed > 0 and LABEL_TASK not in labels:
            raise ValueError("keeping failed buildroots needs the task label: they are found by task")
        self._manager = manager
        self._labels = dict(labels)
        self._limits = limits
        self._dependency_network = dependency_network
        self._source_network = source_network
        self._cache = cache
        self._work_root = work_root or default_work_root()
        self._result_limits = result_limits
        self._proxy = proxy
        self._keep_failed = max(keep_failed, 0)

    def build(self, spec: BuildrootSpec, srpm: Path, resultdir: Path, logs: BuildLogs,
              on_dependencies: Callable[[list[InstalledPackage]], None] | None = None) -> BuildResult:
        """Build ``srpm``; ``on_dependencies`` hears the buildroot's packages before rpmbuild starts."""
        check_srpm(srpm)
        with self._buildroot(spec, Path(srpm), resultdir, logs, on_dependencies, build_requires=True) as root:
            started = time.monotonic()
            rpms, rebuilt_srpm = self._build_phase(root, resultdir)
            root.phase_seconds["build"] = time.monotonic() - started
        return BuildResult(rpms=tuple(rpms), srpm=rebuilt_srpm, logs=tuple(logs.files()),
                           installed=root.image.installed, base_image=root.base, phase_seconds=root.phase_seconds)

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
        with self._buildroot(spec, input_path, resultdir, logs, on_dependencies, build_requires=False) as root:
            workspace, started = root.workspace, time.monotonic()
            if workspace.srpm is not None:
                input_dir, target = workspace.input, [f"{INPUT_DIR}/{workspace.srpm.name}"]
            else:
                assert isinstance(source, SourceTree)   # a source tree's workspace has no SRPM
                input_dir = workspace.input
                if source.source_cmd:
                    input_dir = self._source_phase(root, source.source_cmd)
                    root.phase_seconds["sources"] = time.monotonic() - started
                    started = time.monotonic()
                target = [f"{INPUT_DIR}/{source.spec_name}", f"{INPUT_DIR}/{source.sources_dir}"]
            srpm = self._srpm_phase(root, input_dir, target, resultdir)
            root.phase_seconds["srpm"] = time.monotonic() - started
        check_srpm_name(srpm)
        return SrpmResult(srpm=srpm, logs=tuple(logs.files()), installed=root.image.installed,
                          base_image=root.base, phase_seconds=root.phase_seconds)

    def srpm_from_spec(self, image: str, spec_file: Path, outdir: Path, logs: BuildLogs) -> Path:
        """Make an SRPM from a spec and the sources beside it, in a container with no network."""
        spec_file = Path(spec_file).resolve()
        if not spec_file.is_file():
            raise BuildError(f"{spec_file} does not exist", hint="give the path of an SRPM or a spec")
        self._manager.ensure_image(image)
        container = self._container(
            "srpm", image, [*_RPMBUILD_BS, "--define", f"_sourcedir {INPUT_DIR}", "--define",
                            f"_specdir {INPUT_DIR}", f"{INPUT_DIR}/{spec_file.name}"],
            [Mount(spec_file.parent, INPUT_DIR)])
        phase = Phase(what=f"rpmbuild -bs of {spec_file.name}",
                      failed=f"could not make an SRPM from {spec_file.name}: rpmbuild -bs failed",
                      hint="a spec syntax error or a missing source", results="/tmp/srpm/SRPMS", timeout=600,
                      timeout_hint="making an SRPM takes seconds; look for what the spec waits on", log="root")
        logs.state(f"Start: making an SRPM from {spec_file.name}")
        outdir.mkdir(parents=True, exist_ok=True)
        with self._run_phase(container, phase, logs) as made:
            srpm = _take_srpm(made, outdir)
        logs.state(f"Finish: making an SRPM from {spec_file.name}")
        return srpm

    # -- the buildroot ---------------------------------------------------------------
    @contextmanager
    def _buildroot(self, spec: BuildrootSpec, source: Path, resultdir: Path, logs: BuildLogs,
                   on_dependencies: Callable[[list[InstalledPackage]], None] | None,
                   build_requires: bool) -> Iterator[_Buildroot]:
        """What every build shares up to its own phases: a workspace holding ``source``, and a
        buildroot image with the group (and, with ``build_requires``, the SRPM's BuildRequires).

        The workspace and the images made for this build only go afterwards; on
        success the installed packages are written to the logs.
        """
        for repo in spec.repos:
            repo.check()
        base = self._manager.ensure_image(spec.image)
        resultdir.mkdir(parents=True, exist_ok=True)
        provisioner = Provisioner(self._manager, self._labels, self._limits, self._dependency_network, self._cache,
                                  self._proxy)
        with Resources() as resources:
            workspace = resources.enter_context(Workspace(self._work_root, spec, source))
            resources.release("remove the images made for this build", provisioner.close)
            logs.note("root", f"image {base.ref} digest {base.digest}")
            started = time.monotonic()
            logs.state("Start: dependency phase" + (" (offline, no network)" if spec.offline else ""))
            image = provisioner.group(spec, workspace.setup, base, logs)
            _note_reuse(logs, image)
            root = _Buildroot(spec, workspace, base, image, provisioner, logs, {})
            if build_requires:
                root.image = self._resolve(root)
            logs.state("Finish: dependency phase")
            root.phase_seconds["dependencies"] = time.monotonic() - started
            if on_dependencies is not None:
                on_dependencies(list(root.image.installed))
            yield root
        write_installed(list(root.image.installed), logs.logdir)

    def _resolve(self, root: _Buildroot) -> BuildrootImage:
        """The image with every BuildRequires of the SRPM: remembered for this exact SRPM, or resolved."""
        cache = self._cache
        key = resolution_key(root.image.key, root.srpm) if cache else None
        if cache is not None and key is not None:
            remembered = cache.recall(key, root.base, root.image)
            if remembered is not None:
                if remembered.name != root.image.name:
                    _note_reuse(root.logs, remembered)
                return remembered
        image = self._resolve_from(root, root.image)
        if cache is not None and key is not None:
            cache.remember(key, image)
        return image

    def _resolve_from(self, root: _Buildroot, image: BuildrootImage) -> BuildrootImage:
        def install(parent: BuildrootImage, wanted: frozenset[str]) -> BuildrootImage:
            made = root.provisioner.requirements(root.spec, root.workspace.setup, root.base, root.logs, parent,
                                                 wanted)
            _note_reuse(root.logs, made)
            return made
        resolved, _asked = deps.resolve(image, image.requirements, lambda current: self._evaluate(root, current),
                                        install)
        return resolved

    # -- phases ----------------------------------------------------------------------
    def _container(self, purpose: str, image: str, command: list[str], mounts: list[Mount],
                   spec: BuildrootSpec | None = None, network: Network = Network.NONE) -> ContainerSpec:
        """A container of package code, with no capabilities; as the build user, in the tag's
        environment, when ``spec`` is given."""
        return ContainerSpec(image=image, command=command, labels={**self._labels, LABEL_PURPOSE: purpose},
                             limits=self._limits, network=network, mounts=mounts,
                             user=spec.build_user if spec else None, workdir=TOPDIR if spec else None,
                             env=dict(spec.env_vars) if spec else {})

    def _run_phase(self, container: ContainerSpec, phase: Phase, logs: BuildLogs, keep: Keeper | None = None):
        return run_phase(self._manager, container, phase, logs, self._result_limits, keep)

    def _evaluate(self, root: _Buildroot, image: BuildrootImage) -> Evaluation:
        """What the SRPM asks for in ``image``, learned in a throwaway container with no network."""
        spec, srpm = root.spec, root.srpm
        container = self._container("evaluate", image.ref,
                                    [INIT_SCRIPT, "evaluate", f"{INPUT_DIR}/{srpm.name}", _EVALUATED],
                                    phase_mounts(root.workspace.setup, root.workspace.input), spec)
        phase = Phase(what="evaluating the BuildRequires",
                      failed=f"the spec of {srpm.name} could not be parsed for {spec.rpmbuild_target}",
                      hint="read the end of root.log: rpm's error about the spec or the SRPM",
                      results=_EVALUATED, timeout=spec.timeouts.dependencies,
                      timeout_hint="evaluating a spec takes seconds; look for what it waits on", log="root")
        with _unpack_errors(srpm), self._run_phase(container, phase, root.logs) as evaluated:
            return read_evaluation(evaluated)

    def _build_phase(self, root: _Buildroot, resultdir: Path) -> tuple[list[Path], Path]:
        """rpmbuild; when the package asks for more than its image holds, that is installed
        (a new layer) and the phase runs again."""
        spec, srpm = root.spec, root.srpm
        phase = Phase(what="rpmbuild", failed="rpmbuild failed",
                      hint="the package's own build failed; read the end of the log",
                      results=f"{TOPDIR}/RPMS", timeout=spec.timeouts.rpmbuild)  # the SRPM is moved in there too
        for _ in range(deps.MAX_ROUNDS):
            expected = write_expected(root.image.requirements, root.workspace.setup)
            container = self._container(
                "build", root.image.ref,
                [INIT_SCRIPT, "build", f"{INPUT_DIR}/{srpm.name}", f"{SETUP_DIR}/{expected.name}"],
                phase_mounts(root.workspace.setup, root.workspace.input), spec)
            keep = None
            if self._keep_failed:
                package = srpm.name.removesuffix(".src.rpm")
                container = dataclasses.replace(
                    container, labels={**container.labels, **kept.keep_labels(self._keep_failed, package)})
                keep = self._keeper(root)
            root.logs.state("Start: build phase (no network)")
            try:
                with _unpack_errors(srpm), self._run_phase(container, phase, root.logs, keep) as made:
                    built = _collect(made, resultdir)
            except PhaseFailed as exc:
                if exc.exit_code != deps.MORE_REQUIREMENTS:
                    raise
                root.logs.note("root", "the package asks for BuildRequires its buildroot lacks; installing them")
                started = time.monotonic()
                root.image = self._resolve_from(root, root.image)
                root.phase_seconds["dependencies"] += time.monotonic() - started
                continue
            root.logs.state("Finish: build phase")
            return built
        raise BuildError(f"the package kept asking for more BuildRequires after {deps.MAX_ROUNDS} rounds")

    def _keeper(self, root: _Buildroot) -> Keeper:
        """Keeps the container of a build that failed by itself (kept.py), and says in root.log
        how to enter it; not when the package asked for more BuildRequires or its SRPM could not
        be unpacked, which leave nothing of the package's to look into."""
        def keep(handle: ContainerHandle, failure: PhaseFailed) -> bool:
            if failure.exit_code in (deps.MORE_REQUIREMENTS, _UNPACK_FAILED):
                return False
            name = kept.keep(self._manager, handle)
            task, until = self._labels[LABEL_TASK], kept.when(time.time() + self._keep_failed)
            root.logs.note("root", f"the failed buildroot is kept until {until} (failed_buildroot_lifetime): "
                                   f"to look into it, {kept.how_to_enter(task)}")
            log.warning("kept the failed buildroot of task %s as container %s until %s: %s", task, name, until,
                        kept.how_to_enter(task))
            return True
        return keep

    def _source_phase(self, root: _Buildroot, source_cmd: tuple[str, ...]) -> Path:
        """Run the source command in a copy of the tree; the tree it leaves, on the host.

        It may fetch (a lookaside cache), so it has a network of its own, even
        offline; it runs the repository's own code, so never on the host.
        """
        spec = root.spec
        container = self._container("sources", root.image.ref, [INIT_SCRIPT, "sources", INPUT_DIR, *source_cmd],
                                    phase_mounts(root.workspace.setup, root.workspace.input), spec,
                                    network=self._source_network)
        shown = " ".join(source_cmd)
        phase = Phase(what=f"the source command {shown}", failed=f"error retrieving sources: {shown} failed",
                      hint="fix the command (allowed_scms or the build_from_scm policy set it) or what it fetches",
                      results=SOURCE_TREE, timeout=spec.timeouts.dependencies,
                      timeout_hint="check that the server it fetches from answers")
        root.logs.state(f"Start: source phase ({self._source_network.value} network)")
        with self._run_phase(container, phase, root.logs) as left:
            tree = root.workspace.shared_dir("sources")
            for entry in left.iterdir():
                shutil.move(str(entry), tree / entry.name)
        readable_by_all(tree)
        root.logs.state("Finish: source phase")
        return tree

    def _srpm_phase(self, root: _Buildroot, input_dir: Path, target: list[str], resultdir: Path) -> Path:
        """``rpmbuild -bs`` of ``target`` (an SRPM, or a spec and its sources directory), with no network."""
        spec = root.spec
        container = self._container("srpm", root.image.ref, [INIT_SCRIPT, "srpm", *target],
                                    phase_mounts(root.workspace.setup, input_dir), spec)
        phase = Phase(what="rpmbuild -bs", failed="error building the SRPM: rpmbuild -bs failed",
                      hint="a spec syntax error or a missing source; read the end of the log",
                      results=f"{TOPDIR}/SRPMS", timeout=spec.timeouts.rpmbuild)
        root.logs.state("Start: SRPM build phase (no network)")
        with _unpack_errors(Path(target[0])), self._run_phase(container, phase, root.logs) as made:
            srpm = _take_srpm(made, resultdir)
        root.logs.state("Finish: SRPM build phase")
        return srpm


_RPMBUILD_BS = ["rpmbuild", "-bs", "--nodeps", "--define", "_topdir /tmp/srpm"]


def _note_reuse(logs: BuildLogs, image: BuildrootImage) -> None:
    if image.reused:
        pulled = f", pulled from the shared cache {image.pulled_from}" if image.pulled_from else ""
        logs.note("root", f"reusing cached buildroot {image.name}{pulled}: no dependency installation")


@contextmanager
def _unpack_errors(srpm: Path) -> Iterator[None]:
    """A phase that could not unpack its SRPM says so, not that the spec was wrong."""
    try:
        yield
    except PhaseFailed as exc:
        if exc.exit_code == _UNPACK_FAILED:
            raise BuildError(f"{srpm.name} could not be unpacked: it is corrupt or not an SRPM",
                             hint="upload the SRPM again; rpm's error is in the log",
                             log_path=exc.log_path) from exc
        raise


def _take_srpm(made: Path, resultdir: Path) -> Path:
    """The one SRPM ``rpmbuild -bs`` left in ``made``, moved into ``resultdir``."""
    srpms = sorted(made.glob("*.src.rpm"))
    if len(srpms) != 1:
        raise BuildError(f"rpmbuild -bs made {len(srpms)} SRPMs instead of one: "
                         f"{', '.join(p.name for p in srpms) or 'none'}")
    return Path(shutil.move(str(srpms[0]), resultdir / srpms[0].name))


def _collect(made: Path, resultdir: Path) -> tuple[list[Path], Path]:
    rpms = [Path(shutil.move(str(path), resultdir / path.name))
            for path in sorted(made.rglob("*.rpm")) if not path.name.endswith(".src.rpm")]
    srpms = sorted(made.glob("*.src.rpm"))
    if len(srpms) != 1 or not rpms:
        raise BuildError(f"rpmbuild produced {len(rpms)} RPMs and {len(srpms)} SRPMs; "
                         "expected RPMs and exactly one SRPM")
    return rpms, Path(shutil.move(str(srpms[0]), resultdir / srpms[0].name))
