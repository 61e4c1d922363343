"""The log files of one build, written while the containers run.

root.log takes buildroot setup and package-manager output, build.log the
rpmbuild output, state.log one timestamped line per Start:/Finish: of each
step (as mock's state.log). Files are flushed on every chunk so a reader
(the CLI's progress, or the incremental upload to the hub) sees them live.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..container.interface import LogSink, Stream

_STATE_LINE = re.compile(rb"^(Start|Finish): ")

#: Called with (log name, state text) for every Start:/Finish: line.
StateListener = Callable[[str, str], None]


class BuildLogs:
    def __init__(self, logdir: Path, listener: StateListener | None = None):
        self.logdir = Path(logdir)
        self.logdir.mkdir(parents=True, exist_ok=True)
        self._listener = listener
        self._files: dict[str, BinaryIO] = {}
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

    def write(self, name: str, data: bytes) -> None:
        with self._lock:
            handle = self._open(f"{name}.log")
            handle.write(data)
            handle.flush()
            lines = (self._partial.pop(name, b"") + data).split(b"\n")
            self._partial[name] = lines.pop()
        for line in lines:
            if _STATE_LINE.match(line):
                self.state(line.decode(errors="replace"), source=name)

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
            handle = self._open("state.log")
            handle.write(f"{stamp} - {text}\n".encode())
            handle.flush()
        if self._listener is not None:
            self._listener(source, text)

    def write_file(self, filename: str, content: str) -> Path:
        path = self.logdir / filename
        path.write_text(content)
        return path

    def files(self) -> list[Path]:
        return sorted(p for p in self.logdir.glob("*.log") if p.is_file())

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
