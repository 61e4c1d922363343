"""Following a container's output streams while it runs (attach and exec), on podman-py.

A thread pumps the multiplexed stream into a sink; the caller waits for the
stream to end while watching the container, which may die under it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from podman.api import stream_frames

from .interface import LogSink, Stream

#: How often the container is looked at while its output has not ended.
EXEC_CHECK_INTERVAL = 1.0
#: How long the rest of the output may take to arrive once the container stopped.
LOG_DRAIN_TIMEOUT = 10.0


def pump(open_stream: Callable[[], Any], sink: LogSink | None, outcome: dict) -> None:
    """Feed a multiplexed output stream to ``sink``; an error goes into ``outcome`` for the caller."""
    try:
        for stdout, stderr in stream_frames(open_stream(), demux=True):
            if sink is not None and stdout:
                sink(Stream.STDOUT, bytes(stdout))
            if sink is not None and stderr:
                sink(Stream.STDERR, bytes(stderr))
    except Exception as exc:  # reported to the caller, which waits for the container too
        outcome["error"] = exc


def await_output(get_container: Callable[[], Any], pumper: threading.Thread,
             deadline: float | None, final_state: bool = True) -> Mapping | None:
    """Wait for an output stream to end; the container's state then, or None past the deadline.

    ``get_container``: the podman-py container, asked for once (then reloaded).

    An exec's stream does not always end when its container dies under it, so
    the container is checked while waiting, not only afterwards. Without
    ``final_state`` a stream that ends costs no check (the state is then {}).
    """
    container = None
    while True:
        pumper.join(EXEC_CHECK_INTERVAL)
        if deadline is not None and pumper.is_alive() and time.monotonic() > deadline:
            return None
        if not final_state and not pumper.is_alive():
            return {}
        if container is None:
            container = get_container()
        else:
            container.reload()
        state = container.attrs.get("State", {})
        if not pumper.is_alive():
            return state
        if state.get("Status") != "running":
            pumper.join(LOG_DRAIN_TIMEOUT)
            return state
