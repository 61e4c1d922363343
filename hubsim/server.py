"""The XML-RPC side of the simulated hub: HTTP transport, Koji's session
parameters, marshalling and fault encoding (as kojihub/kojixmlrpc.py does)."""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import koji
from koji.xmlrpcplus import Fault, dumps, getparser

from .files import FileServer
from .state import HubState


def _auth(headers, qargs):
    """Session id/key/callnum: Koji-Session-* headers, else the legacy URL args."""
    def first(name):
        return qargs.get(name, [None])[0]
    if headers.get('Koji-Session-Id') is not None:
        sid, key = headers['Koji-Session-Id'], headers.get('Koji-Session-Key')
        callnum = headers.get('Koji-Session-Callnum', headers.get('Koji-Callnum'))
    else:
        sid, key, callnum = first('session-id'), first('session-key'), first('callnum')
    try:
        return {'id': None if sid is None else int(sid), 'key': key,
                'callnum': None if callnum is None else int(callnum)}
    except ValueError:
        raise koji.AuthError("Invalid session or callnum: %r/%r" % (sid, callnum))


def _fault(e):
    """kojixmlrpc._log_exception: koji errors keep faultCode and text, others are 1."""
    if isinstance(e, Fault):
        return e
    if isinstance(e, koji.GenericError):
        return Fault(e.faultCode, str(e))
    return Fault(getattr(e, 'faultCode', 1), "%s: %s" % (type(e), e))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.0'      # one request per connection: suspend() is clean

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._reply(405, b"Method Not Allowed\nThis is an XML-RPC server. "
                         b"Only POST requests are accepted.\n", 'text/plain')

    def do_POST(self):
        hub = self.server.hub
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        qargs = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        method = 'rawUpload'
        try:
            auth = _auth(self.headers, qargs)
            if self.headers.get('Content-Type') == 'application/octet-stream':
                result = hub.upload(qargs, body, auth)
            else:
                parser, unmarshaller = getparser()
                parser.feed(body)
                parser.close()
                params, method = unmarshaller.close(), unmarshaller.getmethodname()
                result = hub.dispatch(method, params, auth)
            response = dumps((result,), methodresponse=1, allow_none=1)
        except Exception as e:
            response = dumps(_fault(e), allow_none=1)
        if hub._take_drop(method):
            self.close_connection = True   # processed, but the client never hears back
            return
        self._reply(200, response.encode(), 'text/xml')

    def _reply(self, code, data, ctype):
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Koji-Version', koji.__version__)
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class HubSimulator(HubState):
    """A Koji hub on 127.0.0.1 (XML-RPC at .url) plus a file server for topdir
    (.topurl).  All HubState test-API methods are thread-safe."""

    def __init__(self, topdir):
        super().__init__(topdir)
        self.files = FileServer(self.topdir)
        self._server = None
        self._port = 0
        self._drops = {}
        self._timer = None

    # -- lifecycle
    def start(self):
        self.files.start()
        self._listen()
        return self

    def stop(self):
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close()
        self.files.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def suspend(self, seconds=None):
        """Make the hub unreachable (connections refused); back after `seconds`
        on the same port, or on resume()."""
        self._close()
        if seconds is not None:
            self._timer = threading.Timer(seconds, self.resume)
            self._timer.daemon = True
            self._timer.start()

    def resume(self):
        if self._server is None:
            self._listen()

    def drop_response(self, method, count=1):
        """Process the next `count` calls of `method` but close the connection
        without answering (a lost reply: the client retries with the same callnum)."""
        with self.lock:
            self._drops[method] = self._drops.get(method, 0) + count

    def _take_drop(self, method):
        with self.lock:
            if self._drops.get(method):
                self._drops[method] -= 1
                return True
            return False

    def _listen(self):
        server = _Server(('127.0.0.1', self._port), _Handler)
        server.hub = self
        self._port = server.server_address[1]
        threading.Thread(target=server.serve_forever, args=(0.05,), name='hubsim-rpc',
                         daemon=True).start()
        self._server = server

    def _close(self):
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    @property
    def url(self):
        return 'http://127.0.0.1:%d/kojihub' % self._port

    @property
    def topurl(self):
        return self.files.url
