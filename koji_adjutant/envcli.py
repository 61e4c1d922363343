"""``koji-adjutant env``: list, show and clean the cached buildroot environments.

cli.py wires this in with ``register(subparsers)``. Every command function
takes the parsed arguments and returns an exit code; podman is only started
when something must really be removed, or for ``clean --all`` (never for list
or show). The store and the cache limits come from the worker's kojid.conf,
read as ``koji-adjutant run`` reads it, so these commands act on the store the
daemon uses; ``--store`` names a store file directly.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .config import DEFAULT_CONFIG_PATH, AdjutantOptions, load_config
from .container.interface import ImageInfo
from .envstore.cleanup import footprint, select_evictions
from .envstore.names import LABEL_ENVIRONMENT
from .envstore.records import Environment
from .envstore.settings import GIB, StoreSettings, store_settings
from .envstore.store import EnvironmentStore
from .errors import AdjutantError, ConfigError

log = logging.getLogger(__name__)

_COLUMNS = ("NAME", "TAG", "ARCH", "OWN SIZE", "USES", "LAST USED", "ORIGIN", "VERSION")
_BASE_COLUMNS = ("BASE IMAGE", "DIGEST", "SIZE", "USED BY")


def human_size(size: int) -> str:
    """Bytes for people: 512 B, 1.5 KiB, 20.0 GiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _when(env: Environment) -> str:
    return env.used.strftime("%Y-%m-%d %H:%M:%SZ")


def _adjutant(args: argparse.Namespace) -> AdjutantOptions:
    """The [adjutant] section of the worker whose kojid.conf is ``--config`` (default that of
    ``koji-adjutant run``); ``--store`` alone needs no kojid.conf: the defaults then."""
    config_path, store = getattr(args, "config", None), getattr(args, "store", None)
    if store is not None and config_path is None:
        return AdjutantOptions()
    try:
        return load_config(config_path).adjutant
    except ConfigError as exc:
        raise ConfigError(exc.message, hint="give the worker's kojid.conf with -c/--config, "
                                            "or the store file with --store") from exc


def settings_for(args: argparse.Namespace) -> StoreSettings:
    """The store and limits of that worker, the store file ``--store`` if given."""
    found = store_settings(_adjutant(args))
    store = getattr(args, "store", None)
    return found if store is None else dataclasses.replace(found, path=store)


def _store(args: argparse.Namespace) -> EnvironmentStore:
    return settings_for(args).open()


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def cmd_env_list(args: argparse.Namespace) -> int:
    environments = _store(args).list()
    if not environments:
        print("no cached environments")
        return 0
    rows = [_COLUMNS]
    rows += [(env.name, env.tag, env.arch, human_size(env.added), str(env.use_count), _when(env), env.origin,
              env.version) for env in environments]
    print(_table(rows))
    bases: dict[str, list[Environment]] = {}
    for env in environments:
        bases.setdefault(env.base_digest, []).append(env)
    print()
    print(_table([_BASE_COLUMNS] + [(envs[0].base_image, digest[:19], human_size(envs[0].base_size), str(len(envs)))
                                    for digest, envs in bases.items()]))
    own = sum(env.added for env in environments)
    many = len(environments) != 1
    print(f"{len(environments)} environment{'s' if many else ''}: {human_size(own)} in {'their' if many else 'its'} "
          f"own layers + {human_size(footprint(environments) - own)} in {len(bases)} shared base "
          f"image{'s' if len(bases) != 1 else ''} = {human_size(footprint(environments))}")
    return 0


def cmd_env_show(args: argparse.Namespace) -> int:
    env = _store(args).get(args.name)
    if env is None:
        raise AdjutantError(f"no cached environment named {args.name!r}",
                            hint="'koji-adjutant env list' shows the cached environments")
    values = env.as_dict()
    inputs = values.pop("inputs")
    values["size"] = f"{env.size} ({human_size(env.size)}, whole image)"
    values["own_size"] = f"{env.added} ({human_size(env.added)}, its own layers)"
    values["image"] = env.image_ref
    width = max(len(key) for key in (*values, "inputs"))
    for key, value in values.items():
        print(f"{key + ':':<{width + 1}} {'' if value is None else value}")
    print("inputs:")
    for line in json.dumps(inputs, indent=2, sort_keys=True).splitlines():
        print(f"  {line}")
    return 0


def _select(args: argparse.Namespace, store: EnvironmentStore,
            limits: StoreSettings) -> tuple[list[str], list[str]]:
    """The names to clean, and the explicitly named ones that have no record."""
    if args.all and (args.names or args.older_than is not None):
        raise ConfigError("env clean: --all cannot be combined with --older-than or names",
                          hint="--all already cleans every cached environment")
    if args.names and args.older_than is not None:
        raise ConfigError("env clean: give either names or --older-than, not both")
    environments = store.list()
    if args.all:
        return [env.name for env in environments], []
    if args.names:
        known = {env.name for env in environments}
        return list(dict.fromkeys(args.names)), [name for name in args.names if name not in known]
    if args.older_than is not None:
        return [env.name for env in select_evictions(environments, None, args.older_than)], []
    limit = limits.max_total_bytes if args.max_size_gb is None else int(args.max_size_gb * GIB)
    age = limits.max_age_days if args.max_age_days is None else args.max_age_days
    return [env.name for env in select_evictions(environments, limit, age)], []


@contextmanager
def _podman(args: argparse.Namespace, manager=None) -> Iterator:
    """``manager`` if given, else one as the worker makes it: on ``--podman-socket``, else its
    kojid.conf's podman_socket (the storage its environments are in), else the user's own."""
    if manager is not None:
        yield manager
        return
    from .container.factory import manager_for

    with manager_for(_adjutant(args), socket=getattr(args, "podman_socket", None)) as podman:
        yield podman


def cmd_env_clean(args: argparse.Namespace, manager=None) -> int:
    """``manager``: a ContainerManager to use instead of opening one.

    ``--all`` also removes this store's images that no record names (a worker
    killed between commit and record leaves one), so it needs podman even for
    a dry run."""
    found = settings_for(args)
    store = found.open()
    names, unknown = _select(args, store, found)
    for name in unknown:
        print(f"{name}: no record in the store; removing any image or container left of it", file=sys.stderr)
    if args.dry_run:
        lines = [f"would remove {env.name} ({human_size(env.added)})" for env in store.clean(None, names, dry_run=True)]
        if args.all:
            with _podman(args, manager) as podman:
                lines += [f"would remove {_unrecorded(image)}" for image in store.unrecorded_images(podman)]
        print("\n".join(lines) if lines else "nothing to clean")
        return 0
    if not names and not args.all:
        print("nothing to clean")
        return 0
    with _podman(args, manager) as podman:
        lines = [f"removed {env.name}" for env in store.clean(podman, names)]
        if args.all:
            lines += [f"removed {_unrecorded(image)}" for image in store.clean_unrecorded(podman)]
    print("\n".join(lines) if lines else "nothing to clean")
    return 0


def _unrecorded(image: ImageInfo) -> str:
    return (f"image {image.id.removeprefix('sha256:')[:12]} of {image.labels.get(LABEL_ENVIRONMENT, '?')} "
            f"({human_size(image.size)}, no record)")


def _nonnegative(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
        return value
    return parse


def _store_options(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument("-c", "--config", type=Path, metavar="FILE", default=default,
                        help=f"the worker's kojid.conf, whose [adjutant] state_dir holds the store "
                             f"(default {DEFAULT_CONFIG_PATH})")
    parser.add_argument("--store", type=Path, metavar="PATH", default=default,
                        help="the environment store file itself, instead of the one kojid.conf names")


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``env`` command group to a parser's subcommands; returns its parser."""
    env = subparsers.add_parser(
        "env", help="list, show and clean cached buildroot environments",
        description="Cached buildroot environments are podman images of prepared buildroots, "
                    "recorded in a per-user store.")
    _store_options(env, None)
    common = argparse.ArgumentParser(add_help=False)
    _store_options(common, argparse.SUPPRESS)  # given after the subcommand; not to reset what came before it
    commands = env.add_subparsers(dest="env_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser("list", parents=[common],
                                  help="list the cached environments, most recently used first")
    listing.set_defaults(func=cmd_env_list)

    show = commands.add_parser("show", parents=[common], help="show everything recorded about one environment")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(func=cmd_env_show)

    clean = commands.add_parser(
        "clean", parents=[common], help="remove cached environments (image, containers, record)",
        description="Without --all, --older-than or names: remove what the cache limits select, "
                    "environments unused for longer than --max-age-days, then the least recently "
                    "used until the rest fit in --max-size-gb.")
    clean.add_argument("names", nargs="*", metavar="NAME", help="environments to remove")
    clean.add_argument("--dry-run", action="store_true", help="only print what would be removed")
    clean.add_argument("--all", action="store_true",
                       help="remove every cached environment, and any image of this store that no record names")
    clean.add_argument("--older-than", type=_nonnegative(float), metavar="DAYS",
                       help="remove the environments not used for more than DAYS days")
    clean.add_argument("--max-size-gb", type=_nonnegative(float), metavar="GB",
                       help="cache size limit in GiB (default: cache_max_size_gb of kojid.conf)")
    clean.add_argument("--max-age-days", type=_nonnegative(float), metavar="DAYS",
                       help="cache age limit in days (default: cache_max_age_days of kojid.conf)")
    clean.set_defaults(func=cmd_env_clean)
    return env
