"""Finding, or starting, the podman API service of the worker's own user.

podman-py needs an API socket. A configured socket is used as given; else the
user's standard socket if something answers on it; else koji-adjutant starts
``podman system service`` on a private socket and stops it on close, so a
fresh machine with no systemd user session still works.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import PodmanNotInstalledError, PodmanUnreachableError

log = logging.getLogger(__name__)

_START_TIMEOUT = 20.0


def _socket_path(uri: str) -> Path:
    return Path(uri.removeprefix("unix://"))


def _answers(uri: str) -> bool:
    """True when a podman service answers a ping on the unix socket ``uri``."""
    path = _socket_path(uri)
    if not path.exists():
        return False
    try:
        from podman import PodmanClient

        with PodmanClient(base_url=f"unix://{path}") as client:
            return bool(client.ping())
    except Exception:  # podman-py raises its own and requests' errors for a dead socket
        return False


_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    """In the service's child process: be stopped when the worker dies, even by SIGKILL.

    The service runs in its own session (a terminal's ^C must not stop it
    before the worker has removed its containers), so nothing else would end it.
    """
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PodmanService:
    """The API socket in use, and the service process when we started it."""

    def __init__(self, socket: str | None = None):
        if shutil.which("podman") is None:
            raise PodmanNotInstalledError("podman is not installed (no 'podman' on PATH)")
        self._process: subprocess.Popen | None = None
        self._tmpdir: str | None = None
        self.uri = self._resolve(socket)

    def _resolve(self, socket: str | None) -> str:
        if socket:
            uri = socket if socket.startswith("unix://") else f"unix://{socket}"
            if not _answers(uri):
                raise PodmanUnreachableError(f"no podman service answers on the configured socket {uri}")
            return uri
        runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
        if runtime_dir:
            uri = f"unix://{runtime_dir}/podman/podman.sock"
            if _answers(uri):
                log.debug("using the user's podman socket %s", uri)
                return uri
        return self._start()

    def _start(self) -> str:
        self._tmpdir = tempfile.mkdtemp(prefix="adjutant-podman-")
        return self._launch(f"unix://{self._tmpdir}/podman.sock")

    @property
    def _log_path(self) -> Path:
        """The service's output, in the socket directory of a service we started."""
        assert self._tmpdir is not None, "only a service we started has a log"
        return Path(self._tmpdir) / "service.log"

    def _launch(self, uri: str) -> str:
        """Start the service on ``uri`` (in our socket directory) and wait until it answers."""
        try:
            with open(self._log_path, "wb") as errlog:
                self._process = subprocess.Popen(
                    ["podman", "system", "service", "--time=0", uri],
                    stdin=subprocess.DEVNULL, stdout=errlog, stderr=errlog, start_new_session=True,
                    preexec_fn=_die_with_parent)
            deadline = time.monotonic() + _START_TIMEOUT
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    break
                if _answers(uri):
                    log.debug("started podman service pid %d on %s", self._process.pid, uri)
                    return uri
                time.sleep(0.05)
        except BaseException:
            self.close()  # interrupted while starting: leave no service or socket dir behind
            raise
        output = self._service_log()
        self.close()
        raise PodmanUnreachableError(
            f"could not start 'podman system service' for this user: {output or 'no answer on ' + uri}",
            hint="run 'podman info' as this user to see what podman needs (storage.conf, subuid ranges)")

    def _service_log(self) -> str:
        return self._log_path.read_text(errors="replace").strip()

    def ensure_running(self) -> bool:
        """Start our own service again, on the same socket, if it died; True when it had to.

        Clients keep the socket path, so a long-running worker and its tasks carry
        on after podman crashed or was killed, instead of failing every task.
        A socket we did not start is someone else's to keep running.
        """
        if self._process is None or self._process.poll() is None:
            return False
        status = self._process.returncode
        output = self._service_log()[-2000:]
        log.error("the podman service (pid %d) exited with status %s; starting it again on %s. Its log:\n%s",
                  self._process.pid, status, self.uri, output or "(empty)")
        Path(self.uri.removeprefix("unix://")).unlink(missing_ok=True)
        self._launch(self.uri)
        return True

    def close(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
