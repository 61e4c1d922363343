"""Git repositories over plain HTTP, as an SCM that builds come from."""

from __future__ import annotations

import functools
import http.server
import subprocess
import threading
from pathlib import Path


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, fmt, *args):
        self.server.requests.append(self.path)


class GitServer:
    """Bare git repositories and a lookaside directory, served over plain (dumb) HTTP."""

    def __init__(self, root: Path):
        self.root = root
        (root / "git").mkdir()
        (root / "lookaside").mkdir()
        (root / "lookaside" / "greeting.txt").write_text("hello from the lookaside cache\n")
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
        self.httpd.requests = []
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    def publish(self, name: str, files: dict[str, str]) -> str:
        """A bare repository holding ``files`` on branch main; its commit id."""
        work = self.root / "work" / name
        work.mkdir(parents=True)
        for path, content in files.items():
            (work / path).write_text(content)
        git = ["git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "-C", str(work)]
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "sample"], check=True)
        bare = self.root / "git" / f"{name}.git"
        subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
        subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
        return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()

    def url(self, name: str, rev: str = "main") -> str:
        return f"git+http://127.0.0.1:{self.port}/git/{name}.git#{rev}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
