"""Resources whose release must not hide why a build failed.

A task acquires several resources one after another (a hub buildroot record,
a log uploader on its own subsession, log files, a podman service, containers).
Each is registered on an ExitStack the moment it exists, so a failure at any
later step releases exactly what was acquired before it, in reverse order.
When the block failed, a release that fails too is logged and the original
error goes on to the hub; when the block succeeded, a failing release is the
task's error (a record left BUILDING or logs never uploaded are real failures).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

log = logging.getLogger(__name__)


class Resources(ExitStack):
    """An ExitStack with releases that never mask the error that unwinds it."""

    def release(self, what: str, step: Callable[[], object]) -> None:
        """Call ``step`` when the stack unwinds; ``what`` names it in a warning if it fails then."""
        self._push(what, step, always=True)

    def on_failure(self, what: str, step: Callable[[], object]) -> None:
        """Call ``step`` only when the stack unwinds with an error: undo a half-made thing."""
        self._push(what, step, always=False)

    def _push(self, what: str, step: Callable[[], object], always: bool) -> None:
        def exit_(exc_type, exc, traceback) -> bool:
            if exc_type is None:
                if always:
                    step()
            else:
                try:
                    step()
                except Exception as err:
                    log.warning("could not %s after the failure (%s): %s", what, exc, err)
            return False
        self.push(exit_)
