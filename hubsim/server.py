"""The simulated hub as tests use it: HTTP transport, Koji's session parameters,
marshalling and fault encoding (as kojihub/kojixmlrpc.py does), and HubSimulator,
which composes the shared state, the services and the XML-RPC front."""

from __future__ import annotations

import functools
import secrets
import threading
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import koji
import koji.util
from koji.xmlrpcplus import Fault, dumps, getparser

from .buildroots import Buildroots
from .builds import Builds
from .distrepos import DistRepos
from .files import FileServer, stop_server
from .front import Front
from .hosts import Hosts
from .policies import Policy
from .repos import Repos
from .sessions import Sessions
from .state import HubState
from .tags import Tags
from .tasks import Tasks
from .uploads import Uploads

#: the hub's services, by the name the others know them by
SERVICES = {'sessions': Sessions, 'tasks': Tasks, 'hosts': Hosts, 'buildroots': Buildroots,
            'tags': Tags, 'builds': Builds, 'repos': Repos, 'distrepos': DistRepos,
            'policy': Policy, 'uploads': Uploads}
#: what tests call on the hub besides the RPCs: service -> method names
TEST_API = {
    'sessions': ('add_user',),
    'hosts': ('add_host', 'set_host_enabled', 'host'),
    'tags': ('add_tag', 'add_target', 'add_external_repo', 'tag'),
    'repos': ('add_repo', 'repo', 'write_repo_rpmlist'),
    'buildroots': ('add_rpm',),
    'builds': ('add_package', 'add_past_build', 'import_build', 'add_notification', 'add_group',
               'build', 'tagged', 'tag_rows'),
    'distrepos': ('dist_repo', 'add_rpm_sig', 'write_signed_rpm'),
    'policy': ('set_policy',),
    'tasks': ('create_task', 'assign', 'cancel_task', 'run_scheduler', 'task', 'wait_task'),
    'uploads': ('uploaded',),
}
EXPORT_PREFIXES = {'rpc_': '', 'host_': 'host.', 'repo_': 'repo.'}


def exported(cls):
    """(XML-RPC name, method name) of a service class's exported calls."""
    for attr in dir(cls):
        for prefix, ns in EXPORT_PREFIXES.items():
            if attr.startswith(prefix):
                yield ns + attr[len(prefix):], attr


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


class HubSimulator:
    """A Koji hub on 127.0.0.1 (XML-RPC at .url) plus a file server for topdir
    (.topurl).  Its data are the HubState's (hub.tasks, hub.users, ... read and set
    through it), its rules the services' (hub.svc.<name>); every RPC is also a
    method here (hub.rpc_getUser, hub.host_openTask, ...) that a subclass may wrap,
    and the test API (TEST_API) is the services' own.  All of it is thread-safe."""

    def __init__(self, topdir):
        self.state = HubState(topdir)
        services = {name: cls(self.state) for name, cls in SERVICES.items()}
        for service in services.values():
            service.connect(services)
        self.svc = types.SimpleNamespace(**services)
        self.svc.policy.load_defaults()
        self.state.admin_id = self.svc.sessions.add_user('hubsim-admin', secrets.token_hex(8),
                                                         perms=('admin',))
        registry = {name: getattr(self, attr) for cls in SERVICES.values()
                    for name, attr in exported(cls)}
        self.front = Front(self.state, self.svc.sessions, self.svc.uploads, registry)
        self.files = FileServer(self.topdir)
        self._server = None
        self._port = 0
        self._drops = {}
        self._timer = None

    # -- the shared state's data, as attributes of the hub
    def __getattr__(self, name):
        state = self.__dict__.get('state')
        if state is None or name.startswith('__'):
            raise AttributeError(name)
        return getattr(state, name)

    def __setattr__(self, name, value):
        state = self.__dict__.get('state')
        if state is not None and name not in self.__dict__ and hasattr(state, name):
            setattr(state, name, value)
        else:
            object.__setattr__(self, name, value)

    def dispatch(self, method, params, auth):
        return self.front.dispatch(method, params, auth)

    def upload(self, qargs, body, auth):
        return self.front.upload(qargs, body, auth)

    @property
    def buildroots(self):
        return self.svc.buildroots.buildroots

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
        stop_server(server)

    @property
    def url(self):
        return 'http://127.0.0.1:%d/kojihub' % self._port

    @property
    def topurl(self):
        return self.files.url


def _rpc(service, attr):
    """HubSimulator.<attr>: the service's call, its arguments checked as kojixmlrpc does."""
    def call(self, *args, **kwargs):
        return koji.util.call_with_argcheck(getattr(getattr(self.svc, service), attr), args, kwargs)
    call.__name__ = call.__qualname__ = attr
    call.__doc__ = getattr(SERVICES[service], attr).__doc__
    return call


def _test_api(service, attr):
    @functools.wraps(getattr(SERVICES[service], attr))
    def call(self, *args, **kwargs):
        return getattr(getattr(self.svc, service), attr)(*args, **kwargs)
    return call


def _install():
    seen = {}
    for service, cls in SERVICES.items():
        for name, attr in exported(cls):
            assert name not in seen, "%s exported by %s and %s" % (name, seen[name], service)
            seen[name] = service
            setattr(HubSimulator, attr, _rpc(service, attr))
    for service, attrs in TEST_API.items():
        for attr in attrs:
            setattr(HubSimulator, attr, _test_api(service, attr))


_install()
