"""Plain HTTP file server for the hub's topdir (what kojid reaches as topurl):
<topurl>/work/... and <topurl>/repos/<tag>/<repo_id>/<arch>/..."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def stop_server(server):
    """Shut an http.server down (its serve_forever thread ends) and close its socket."""
    if server is not None:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class FileServer:
    def __init__(self, root):
        self.root = Path(root)
        self._server = None

    def start(self):
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self._server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name='hubsim-files',
                         daemon=True).start()
        return self

    def stop(self):
        server, self._server = self._server, None
        stop_server(server)

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self._server.server_address[1]
