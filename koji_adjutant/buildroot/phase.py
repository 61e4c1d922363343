"""A phase: one throwaway container whose own process is a step of the init script.

Every step that runs package code (evaluating BuildRequires, the source
command, rpmbuild) is a phase. Its container is attached from its first byte
and removed afterwards, whatever happens; nothing it writes survives except
the results directory it names, which leaves on stdout as a tar stream:

    sh -c PHASE_SCRIPT adjutant-phase RESULTS COMMAND...

The script sends everything the command prints to stderr (the log). When the
command succeeds it writes RESULTS as a tar stream to stdout; last, a line
with the exit status. The worker takes the status from that line, so it needs
no wait for podman to notice the exit (ADR 0003). Values reach the script as
arguments, never as script text.

The stream is untrusted: the package's code ran in that container and may
have written to the same stdout. It is spooled with a size bound and
unpacked by container/archive.py, which refuses anything but plain files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..container.archive import ResultLimits, ResultSpool, extract_untrusted
from ..container.interface import ContainerHandle, ContainerManager, ContainerSpec, Stream
from ..errors import AdjutantError, BuildError, ContainerTimeoutError, ResultTooLargeError
from ..resources import Resources
from .logs import BuildLogs

log = logging.getLogger(__name__)

PHASE_SCRIPT = ('results=$1; shift; "$@" >&2; status=$?; '
                'if [ "$status" -eq 0 ]; then tar -C "$results" -cf - . || exit; fi; '
                'printf "\\n%s %d\\n" adjutant-phase-exit "$status"; exit "$status"')
_PHASE_EXIT = re.compile(rb"\nadjutant-phase-exit (\d+)\n\Z")

#: How long a phase whose output has ended may take to exit, before it is killed.
EXIT_GRACE = 60

RPMBUILD_TIMEOUT_HINT = ("if the build legitimately takes longer, raise the timeout "
                         "(build-local --timeout, kojid.conf rpmbuild_timeout)")


def phase_command(command: Sequence[str], results: str) -> list[str]:
    return ["/bin/sh", "-c", PHASE_SCRIPT, "adjutant-phase", results, *command]


def phase_exit(output: BinaryIO) -> int | None:
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


@dataclass(frozen=True)
class Phase:
    """What a phase is called in logs and errors, and where its results are."""

    #: what runs, for the timeout message ("rpmbuild -bs of hello.spec")
    what: str
    #: the error when the command fails
    failed: str
    #: what to do about such a failure
    hint: str
    #: the directory inside the container whose content is the phase's result
    results: str
    timeout: int
    timeout_hint: str = RPMBUILD_TIMEOUT_HINT
    #: the log the command's output goes to
    log: str = "build"


class PhaseFailed(BuildError):
    """A phase's command ended with a non-zero status (``exit_code``)."""

    def __init__(self, message: str, exit_code: int, **kwargs):
        super().__init__(message, **kwargs)
        self.exit_code = exit_code


#: Offered the container of a command that failed by itself; True when it took the container,
#: which is then not removed (kept.py keeps a failed build's).
Keeper = Callable[[ContainerHandle, PhaseFailed], bool]


@contextmanager
def run_phase(manager: ContainerManager, container: ContainerSpec, phase: Phase, logs: BuildLogs,
              limits: ResultLimits = ResultLimits(), keep: Keeper | None = None) -> Iterator[Path]:
    """Run ``container`` to its end; yield a host directory holding what it left in ``phase.results``.

    A command that fails raises PhaseFailed; one that runs too long, BuildError;
    results over ``limits``, or more output than they allow, ResultTooLargeError
    (the container is killed at once). All name the log. The container and the
    directory are removed whatever happens, except a container ``keep`` takes: one
    whose command ended by itself with a failure (not killed, not over a limit).
    """
    kept: list[ContainerHandle] = []
    with Resources() as resources:
        handle = manager.create(dataclasses.replace(container, command=phase_command(container.command,
                                                                                     phase.results)))

        def remove() -> None:
            if not kept:
                manager.remove(handle)
        resources.release(f"remove container {handle.name}", remove)
        staging = Path(tempfile.mkdtemp(prefix="adjutant-results-"))
        resources.callback(shutil.rmtree, staging, ignore_errors=True)
        origin = f"the {phase.what} container"
        spool = resources.enter_context(ResultSpool(limits, origin))
        to_log = logs.sink(phase.log)
        overflow: list[ResultTooLargeError] = []

        def sink(stream: Stream, data: bytes) -> None:
            if stream is not Stream.STDOUT:
                to_log(stream, data)
            elif not spool.overflowed:
                try:
                    spool.write(data)
                except ResultTooLargeError as exc:
                    overflow.append(exc)
                    manager.kill(handle)

        try:
            manager.start_attached(handle, sink, phase.timeout)
        except ContainerTimeoutError as exc:
            raise BuildError(f"{phase.what} ran over its timeout of {phase.timeout} s and was killed",
                             hint=phase.timeout_hint, log_path=str(logs.path(phase.log))) from exc
        if overflow:
            overflow[0].log_path = str(logs.path(phase.log))
            raise overflow[0]
        status = phase_exit(spool.file)
        if status != 0:  # what podman saw tells a breached limit from a plain failure
            exit_code = manager.wait(handle, timeout=EXIT_GRACE).exit_code
            exit_code = exit_code if status is None else status
            failure = PhaseFailed(f"{phase.failed} (exit {exit_code})", exit_code,
                                  log_path=str(logs.path(phase.log)), hint=phase.hint)
            if status is not None and keep is not None and _offer(keep, handle, failure):
                kept.append(handle)
            raise failure
        extract_untrusted(spool.file, staging, origin, limits)
        yield staging


def _offer(keep: Keeper, handle: ContainerHandle, failure: PhaseFailed) -> bool:
    """Whether ``keep`` took the container; a container it could not keep is removed as any other."""
    try:
        return keep(handle, failure)
    except AdjutantError as exc:
        log.warning("could not keep the container %s of a failed phase; removing it: %s", handle.name, exc)
        return False
