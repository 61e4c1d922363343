"""A real container registry on 127.0.0.1 for tests: Debian's docker-registry (distribution 2.8).

scripts/setup-host.sh installs it (and htpasswd, for a registry that asks for
credentials). Each Registry keeps its storage in a directory of its own and is
stopped, and its storage removed, when the context ends. With ``access_log`` it
writes an access log (one combined-format line per request, with the bytes of
each response), for a benchmark to count what it served (bench/farm.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from pathlib import Path

REGISTRY = "docker-registry"
DEV_IMAGE = "localhost/koji-adjutant-buildroot:dev"
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Registry:
    """``docker-registry serve`` on a free port; with ``user``/``password`` it asks for them (htpasswd)."""

    def __init__(self, user: str | None = None, password: str | None = None, access_log: bool = False):
        self.user, self.password = user, password
        self.access_log = access_log
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._dir = Path(tempfile.mkdtemp(prefix="adjutant-registry-"))
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> Registry:
        auth = ""
        if self.user:
            htpasswd = subprocess.run(["htpasswd", "-Bbn", self.user, self.password or ""], check=True,
                                      capture_output=True, text=True).stdout
            (self._dir / "htpasswd").write_text(htpasswd)
            auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {self._dir / 'htpasswd'}\n"
        (self._dir / "config.yml").write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n"
            f"    disabled: {'false' if self.access_log else 'true'}\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self._dir / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: test-secret\n{auth}")
        self.start()
        return self

    def start(self) -> None:
        """Serve (again, after stop(): the same port and storage)."""
        with open(self.access_log_path, "ab") as stdout, open(self._dir / "log", "wb") as stderr:
            self._process = subprocess.Popen([REGISTRY, "serve", str(self._dir / "config.yml")],
                                             stdout=stdout if self.access_log else subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 20
        while self._status("/v2/") is None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"docker-registry did not start: {(self._dir / 'log').read_text()[-2000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc_info) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)

    @property
    def access_log_path(self) -> Path:
        """Where the access log goes (docker-registry writes it on its stdout); empty without ``access_log``."""
        return self._dir / "access.log"

    @property
    def storage(self) -> Path:
        """The registry's filesystem storage: its blobs and repositories."""
        return self._dir / "data"

    def stop(self) -> None:
        """Stop serving (a registry that is down); the storage stays until the context ends."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)

    def _request(self, path: str, method: str = "GET", accept: tuple[str, ...] = ()) -> urllib.request.Request:
        request = urllib.request.Request(f"http://{self.host}{path}", method=method)
        if self.user:
            token = b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        if accept:
            request.add_header("Accept", ", ".join(accept))
        return request

    def _status(self, path: str) -> int | None:
        try:
            with urllib.request.urlopen(self._request(path), timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return None

    def digest(self, repository: str, tag: str) -> str | None:
        """The manifest digest the registry serves for repository:tag; None if it has none."""
        request = self._request(f"/v2/{repository}/manifests/{tag}", "HEAD", MANIFEST_TYPES)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def tags(self, repository: str) -> list[str]:
        try:
            with urllib.request.urlopen(self._request(f"/v2/{repository}/tags/list"), timeout=10) as response:
                return sorted(json.load(response).get("tags") or [])
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return []
            raise


def build_from_dev(label: str) -> str:
    """A new image: the dev image with a label of its own (no build step needs the network)."""
    ref = f"localhost/adjutant-test-{label}-{uuid.uuid4().hex[:8]}"
    subprocess.run(["podman", "build", "-q", "--network", "none", "--pull=never", "--label", f"build={ref}",
                    "-t", ref, "-f", "-", "."], input=f"FROM {DEV_IMAGE}\n", text=True, check=True,
                   capture_output=True, cwd="/")
    return ref


def publish(manager, image: str, ref: str) -> None:
    """What the image maintainers do: push ``image`` as ``ref``; this builder then has neither."""
    manager.push_image(image, ref)
    manager.remove_image(image)
    assert manager.image_info(image) is None
