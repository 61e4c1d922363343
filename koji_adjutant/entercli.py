"""``koji-adjutant enter``: a shell, or a command, in the kept buildroot of a failed build.

cli.py wires this in with ``register(subparsers)``. The buildroot is the one
the daemon kept for failed_buildroot_lifetime seconds (buildroot/kept.py);
it holds what the package's own code wrote, so the operator gets a new
container of a copy of it, with no network, no capability and no mount, which
goes when the shell ends. Run it as the worker's user on the worker's host:
the containers are in that user's podman storage.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .buildroot import kept
from .container.interface import Stream
from .errors import ConfigError


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="FILE", type=Path,
                        help="the worker's kojid.conf (default /etc/kojid/kojid.conf)")
    parser.add_argument("--list", action="store_true", help="list the kept failed buildroots and when they expire")


_USAGE = "koji-adjutant enter TASK_ID [-c FILE] [-- COMMAND...] | --list [-c FILE]"


def register(commands) -> None:
    enter = commands.add_parser(
        "enter", help="enter the kept buildroot of a failed build", usage=_USAGE,
        description="Run a shell (or COMMAND, without a terminal) in a new container made from the buildroot "
                    "a failed build left behind, kept for failed_buildroot_lifetime seconds. The container has "
                    "no network, no capability and no mount, runs as the build did, and is removed afterwards "
                    "with all that was done in it. Run this as the worker's user on the worker's host.")
    _options(enter)
    enter.add_argument("rest", nargs=argparse.REMAINDER, metavar="TASK_ID [-- COMMAND...]",
                       help="the buildArch task whose rpmbuild failed; the command to run instead of a shell")
    enter.set_defaults(func=cmd_enter)


def _late_options(args: argparse.Namespace) -> list[str]:
    """argparse hands TASK_ID and all after it to one remainder (a positional TASK_ID would take
    a ``--`` that follows it, and the options after it would be lost): TASK_ID becomes
    ``args.task``, the options before ``--`` are parsed here, and what follows ``--`` is the
    command, returned."""
    rest = args.rest[1:] if args.rest[:1] == ["--"] else list(args.rest)
    args.task = rest.pop(0) if rest and not rest[0].startswith("-") else None
    cut = rest.index("--") if "--" in rest else len(rest)
    late = argparse.ArgumentParser(prog="koji-adjutant enter", usage=_USAGE, add_help=False)
    _options(late)
    late.parse_args(rest[:cut], namespace=args)
    return rest[cut + 1:]


def _printable(text: str) -> str:
    """A label for the terminal: it came from a build's input, so no control characters."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _write(stream: Stream, data: bytes) -> None:
    out = sys.stdout.buffer if stream is Stream.STDOUT else sys.stderr.buffer
    out.write(data)
    out.flush()


def cmd_enter(args: argparse.Namespace) -> int:
    from .config import load_config
    from .container.factory import manager_for
    from .tasks.buildroots import resource_limits

    command = _late_options(args)
    if not args.list and not args.task:
        raise ConfigError("enter needs the TASK_ID of a failed build, or --list")
    if not args.list and not command and not sys.stdin.isatty():
        raise ConfigError("a shell needs a terminal, and this one has none",
                          hint=f"give a command after --: koji-adjutant enter {args.task} -- ls /builddir/build")
    config = load_config(args.config)
    adjutant = config.adjutant
    with manager_for(adjutant) as manager:
        now = time.time()
        if args.list:
            _print_list(kept.list_kept(manager, adjutant.worker_id), now)
            return 0
        buildroot = kept.find(manager, adjutant.worker_id, args.task, now)
        if not command:
            print(f"entering a copy of the failed buildroot of task {buildroot.task} "
                  f"({_printable(buildroot.package)}); nothing done in it is kept", file=sys.stderr)
        return kept.enter(manager, buildroot, command, resource_limits(adjutant, config.kojid.rlimits), _write)


def _print_list(buildroots: list[kept.KeptBuildroot], now: float) -> None:
    if not buildroots:
        print("no failed buildroots are kept")
        return
    rows = [("TASK", "PACKAGE", "EXPIRES", "CONTAINER")]
    rows += [(_printable(b.task), _printable(b.package),
              kept.when(b.expires_at) + (" (expired)" if b.expired(now) else ""), b.name) for b in buildroots]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
