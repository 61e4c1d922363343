"""The koji-adjutant command line."""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

from . import __version__, entercli, envcli
from .buildroot.cache import BuildrootCache
from .buildroot.logs import BuildLogs
from .buildroot.runner import BuildrootRunner
from .buildroot.spec import BuildrootSpec, InstallGroup, PackageManagerOptions, RepoSource, Timeouts, kojid_macros
from .container.interface import LABEL_WORKER
from .container.limits import default_limits
from .defaults import DEV_IMAGE
from .errors import AdjutantError, ConfigError

log = logging.getLogger(__name__)


def _parse_define(text: str) -> tuple[str, str]:
    name, _, value = text.strip().partition(" ")
    name = name.lstrip("%")
    if not name or not value.strip():
        raise argparse.ArgumentTypeError(f"--define takes 'NAME VALUE', got {text!r}")
    return name, value.strip()


def _repo_sources(locations: list[str]) -> tuple[RepoSource, ...]:
    repos = []
    for index, location in enumerate(locations):
        if "://" not in location:
            location = str(Path(location).resolve())
        repos.append(RepoSource(repo_id=f"local-{index}" if index else "local", location=location))
    return tuple(repos)


def _progress(started: float):
    def show(source: str, text: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {text}", file=sys.stderr, flush=True)
    return show


def _local_adjutant(config_path: Path | None):
    """The [adjutant] section build-local shares the cache of: that of ``config_path`` if given,
    else the defaults, which need no kojid.conf on a developer's machine."""
    from .config import AdjutantOptions, load_config

    return load_config(config_path).adjutant if config_path is not None else AdjutantOptions()


def cmd_build_local(args: argparse.Namespace) -> int:
    from .container.factory import open_manager

    started = time.monotonic()
    source = Path(args.source).resolve()
    resultdir = Path(args.resultdir).resolve()
    if not args.repo:
        raise ConfigError("build-local needs at least one --repo (a directory made by createrepo_c, or a URL)")
    repos = _repo_sources(args.repo)
    for repo in repos:
        repo.check()  # before any container: a wrong --repo is the commonest mistake
    macros = kojid_macros(args.arch)
    macros.update(dict(args.define or []))
    phase_seconds: dict[str, float] = {}
    print(f"build-local: {source.name} for {args.arch} in {args.image}; results in {resultdir}", file=sys.stderr)
    adjutant = _local_adjutant(args.config)
    with BuildLogs(resultdir, listener=_progress(started)) as logs, \
            open_manager(args.podman_socket, insecure_registries=adjutant.insecure_registries) as manager:
        cache = BuildrootCache.configured(adjutant, manager) if args.cache else None
        runner = BuildrootRunner(manager, {LABEL_WORKER: "build-local"}, limits=default_limits(), cache=cache)
        srpm = source
        if source.suffix == ".spec":
            phase_started = time.monotonic()
            srpm = runner.srpm_from_spec(args.image, source, resultdir / "input", logs)
            phase_seconds["srpm"] = time.monotonic() - phase_started
        image = manager.ensure_image(args.image)
        spec = BuildrootSpec(
            image=image.ref, image_digest=image.digest, arch=args.arch, repos=repos,
            group=None if args.no_group else args.group, extra_packages=tuple(args.install or ()),
            macros=macros,
            package_manager=PackageManagerOptions(releasever=args.releasever),
            timeouts=Timeouts(rpmbuild=args.timeout))
        result = runner.build(spec, srpm, resultdir, logs)
    phase_seconds.update(result.phase_seconds)
    print("\nbuild-local: success", file=sys.stderr)
    for rpm in (*result.rpms, result.srpm):
        print(f"  {rpm}")
    times = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in phase_seconds.items())
    print(f"  time: {times}, total {time.monotonic() - started:.1f}s", file=sys.stderr)
    print(f"  logs: {', '.join(p.name for p in result.logs)} in {resultdir}", file=sys.stderr)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .container.factory import open_manager

    with open_manager(args.podman_socket) as manager:
        print(f"podman: reachable; resource limits enforced by {manager.limit_mode.value}")
        image = manager.image_info(args.image)
        if image is None:
            print(f"image {args.image}: missing")
            return 1
        print(f"image {args.image}: {image.digest}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from .config import load_config
    from .tasks import handled_methods

    config = load_config(args.config)
    for key, value in config.effective_items():
        print(f"{key} = {value}")
    for note in config.ignored:
        print(f"warning: {note}")
    print(f"methods handled: {' '.join(handled_methods())}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .daemon import run

    config = load_config(args.config)
    if config.kojid.log_level:
        logging.getLogger().setLevel(config.kojid.log_level)
    if not args.fg:
        _daemonize(args.logfile or config.adjutant.state_dir / "koji-adjutant.log")
    logging.getLogger().handlers[0].setFormatter(
        logging.Formatter("%(asctime)s [%(levelname)s] %(name)s: %(message)s"))
    return run(config, force_lock=args.force_lock)


def _daemonize(logfile: Path) -> None:
    """Detach as kojid does without --fg; the log goes to ``logfile``."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    log_fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(null, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="koji-adjutant",
        description="A Koji builder that runs every buildroot in a rootless podman container.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    parser.add_argument("--podman-socket", metavar="PATH",
                        help="podman API socket (default: the user's own, or a private service started for the run)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = commands.add_parser("build-local", help="build a package locally, like mock --rebuild",
                                description="Build an SRPM (or a spec with its sources beside it) in a "
                                            "container buildroot, with dependencies from the given repos.")
    local.add_argument("source", metavar="SRPM|SPEC", help="the source RPM, or a spec file")
    local.add_argument("--repo", action="append", metavar="DIR|URL",
                       help="a package repository for the build group and BuildRequires (repeatable); "
                            "a directory means offline mode: no network in any phase")
    local.add_argument("--image", default=DEV_IMAGE, help=f"buildroot image (default {DEV_IMAGE})")
    local.add_argument("--arch", default=platform.machine(), help="target arch (default: this host's)")
    local.add_argument("--define", action="append", type=_parse_define, metavar="'NAME VALUE'",
                       help="an rpm macro for the buildroot (repeatable)")
    local.add_argument("--group", default=InstallGroup.BUILD.value, metavar="GROUP",
                       help="the comps group installed first, as koji's build tag has it (default %(default)s)")
    local.add_argument("--no-group", action="store_true",
                       help="install no group (for repos without comps groups); name packages with --install")
    local.add_argument("--install", action="append", metavar="PKG",
                       help="a package installed with the group, like mock's chroot_setup_cmd (repeatable)")
    local.add_argument("--releasever", help="dnf releasever (default: what the image's dnf detects)")
    local.add_argument("--resultdir", default="results", help="where RPMs and logs go (default ./results)")
    local.add_argument("--timeout", type=int, default=Timeouts.rpmbuild, metavar="SECONDS",
                       help="rpmbuild timeout (default %(default)s)")
    local.add_argument("--cache", action="store_true",
                       help="reuse (and keep) the installed buildroot for later builds with the same inputs; "
                            "see 'koji-adjutant env list'")
    local.add_argument("-c", "--config", metavar="FILE", type=Path,
                       help="with --cache: share the cache of the worker configured by this kojid.conf "
                            "(default: the [adjutant] defaults)")
    local.set_defaults(func=cmd_build_local)

    check = commands.add_parser("check", help="check that podman works and the image is present")
    check.add_argument("--image", default=DEV_IMAGE)
    check.set_defaults(func=cmd_check)

    daemon = commands.add_parser("run", help="run the builder daemon (kojid's job)",
                                 description="Log in to the hub and build what it assigns, like kojid.")
    daemon.add_argument("-c", "--config", metavar="FILE", type=Path, help="kojid.conf (default /etc/kojid/kojid.conf)")
    daemon.add_argument("--fg", action="store_true", help="stay in the foreground, log to stderr")
    daemon.add_argument("--force-lock", action="store_true", help="take the host's session even if another holds it")
    daemon.add_argument("--logfile", type=Path, help="log file when not --fg (default STATE_DIR/koji-adjutant.log)")
    daemon.set_defaults(func=cmd_run)

    envcli.register(commands)
    entercli.register(commands)

    check_config = commands.add_parser("check-config", help="validate kojid.conf and print the effective configuration")
    check_config.add_argument("-c", "--config", metavar="FILE", type=Path,
                              help="configuration file (default /etc/kojid/kojid.conf)")
    check_config.set_defaults(func=cmd_check_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:
        logging.getLogger("urllib3").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except AdjutantError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
