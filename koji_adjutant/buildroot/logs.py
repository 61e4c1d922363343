"""The log files of one build, written while the containers run.

root.log takes buildroot setup and package-manager output, build.log the
rpmbuild output, state.log one timestamped line per Start:/Finish: of each
step (as mock's state.log). Files are flushed on every chunk so a reader
(the CLI's progress, or the incremental upload to the hub) sees them live.

What the containers print is untrusted: a build can print without end. So
each log file stops at a size cap (kojid.conf ``log_max_mb``) with one line
saying so, the build going on (its timeout bounds it); a line is kept in
memory only up to a few KiB; and a step's output is held for parsing only by
its start and its end (HeadTailBuffer).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..container.interface import LogSink, Stream

log = logging.getLogger(__name__)

_STATE_LINE = re.compile(rb"^(Start|Finish): ")

MiB = 1024 * 1024
#: The default cap of each log file. The longest real build logs (big C++ projects
#: with verbose test suites) are some hundreds of MiB; past 1 GiB a log helps no reader,
#: and a build printing without end must not fill the worker's disk.
DEFAULT_LOG_MAX_BYTES = 1024 * MiB
#: Most bytes of one line kept in memory until its newline: state lines are short,
#: and a build printing one endless line must not grow the worker's memory.
_MAX_LINE = 4096

#: Called with (log name, state text) for every Start:/Finish: line.
StateListener = Callable[[str, str], None]


class BuildLogs:
    def __init__(self, logdir: Path, listener: StateListener | None = None,
                 max_bytes: int = DEFAULT_LOG_MAX_BYTES):
        """``max_bytes``: the cap of each log file, state.log included."""
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._listener = listener
        self._max_bytes = max_bytes
        self._files: dict[str, BinaryIO] = {}
        self._sizes: dict[str, int] = {}
        self._partial: dict[str, bytes] = {}
        self._lock = threading.Lock()
        for stale in (*self.logdir.glob("*.log"), self.logdir / "installed_pkgs.json"):
            stale.unlink(missing_ok=True)  # an earlier build's logs must not pass for this one's
        self._open("state.log")

    def _open(self, filename: str) -> BinaryIO:
        handle = self._files.get(filename)
        if handle is None:
            handle = open(self.logdir / filename, "ab")
            self._files[filename] = handle
        return handle

    def path(self, name: str) -> Path:
        return self.logdir / f"{name}.log"

    def _append(self, filename: str, data: bytes) -> bytes:
        """Write what fits under the cap and return it. The write that reaches the cap
        ends the file with one line saying so; anything later is dropped."""
        size = self._sizes.get(filename, 0)
        if size >= self._max_bytes:
            return b""
        kept = data[:self._max_bytes - size]
        self._sizes[filename] = size + len(kept)
        handle = self._open(filename)
        handle.write(kept)
        if self._sizes[filename] >= self._max_bytes:
            cap = f"{self._max_bytes / MiB:g} MiB"
            handle.write(b"" if kept.endswith(b"\n") else b"\n")
            handle.write(f"[koji-adjutant] log truncated at {cap}; further output dropped\n".encode())
            log.warning("%s reached its cap of %s; further output dropped", self.logdir / filename, cap)
        handle.flush()
        return kept

    def write(self, name: str, data: bytes) -> None:
        with self._lock:
            kept = self._append(f"{name}.log", data)
            lines = (self._partial.pop(name, b"") + kept).split(b"\n")
            self._partial[name] = lines.pop()[:_MAX_LINE]
        for line in lines:
            if _STATE_LINE.match(line):
                self.state(line[:_MAX_LINE].decode(errors="replace"), source=name)

    def sink(self, name: str) -> LogSink:
        """A container sink that writes both streams, interleaved, to ``name``.log."""
        def write(stream: Stream, data: bytes) -> None:
            self.write(name, data)
        return write

    def note(self, name: str, text: str) -> None:
        """A line of koji-adjutant's own in ``name``.log, marked as such."""
        self.write(name, f"[koji-adjutant] {text}\n".encode())

    def state(self, text: str, source: str = "adjutant") -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
        with self._lock:
            self._append("state.log", f"{stamp} - {text}\n".encode())
        if self._listener is not None:
            self._listener(source, text)

    def files(self) -> list[Path]:
        return sorted(p for p in self.logdir.glob("*.log") if p.is_file())

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()

    def __enter__(self) -> BuildLogs:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class HeadTailBuffer:
    """The first ``head`` and the last ``tail`` bytes of a step's output, for parsing it.

    What is parsed (dnf's "No match for argument" lines, rpm's package list)
    lies at the start or the end, and the whole output is in the log anyway; a
    step printing without end must not grow the worker's memory. Whatever is left
    out in between is replaced by one marked line, so a parser expecting every
    line (the package list) fails on it instead of reading a short list; ``dropped``
    says how much was left out.
    """

    def __init__(self, head: int = MiB, tail: int = MiB):
        self._head_size = head
        self._tail_size = tail
        self._head = bytearray()
        self._tail = bytearray()
        self.dropped = 0

    def append(self, data: bytes) -> None:
        room = self._head_size - len(self._head)
        self._head += data[:room]
        self._tail += data[room:]
        excess = len(self._tail) - self._tail_size
        if excess > 0:
            del self._tail[:excess]
            self.dropped += excess

    def getvalue(self) -> bytes:
        if not self.dropped:
            return bytes(self._head + self._tail)
        marker = f"\n[koji-adjutant] {self.dropped} bytes of output left out here\n".encode()
        return bytes(self._head + marker + self._tail)

    def text(self) -> str:
        return self.getvalue().decode(errors="replace")
