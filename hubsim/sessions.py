"""Logins and sessions, users, permissions and the calling host (kojihub/auth.py Session)."""

from __future__ import annotations

import secrets
import time

import koji
import koji.util

from .state import Service
from .values import by_id_or_name
from .values import iso as _iso

# kojihub/auth.py RetryWhitelist: the only calls that may repeat a callnum
RETRY_WHITELIST = frozenset((
    'host.taskWait', 'host.taskUnwait', 'host.taskSetWait', 'host.updateHost',
    'host.setBuildRootState', 'repoExpire', 'repoDelete', 'repoProblem'))
# exclusive-lock check is skipped for these (kojixmlrpc.check_session)
LOCK_EXEMPT = ('exclusiveSession', 'login', 'logout')


class Session:
    def __init__(self, sid, user_id, authtype, master=None):
        self.id, self.user_id, self.authtype, self.master = sid, user_id, authtype, master
        self.key = '%s-%s' % (user_id, secrets.token_urlsafe(14))
        self.exclusive = self.closed = self.expired = False
        self.callnum = None          # last *committed* callnum
        self.start_ts = self.update_ts = time.time()

    def sinfo(self):
        return {'session-id': self.id, 'session-key': self.key, 'header-auth': True}


class Sessions(Service):
    """Logins, sessions and their callnums, users and permissions (kojihub/auth.py: Session).

    Public: check_session (kojihub/kojixmlrpc.py: check_session), current_host (kojihub.py: Host,
    Host.verify), has_perm, add_user; the login/session/user RPCs."""

    uses = ()

    def check_session(self, auth, method):
        """kojihub/auth.py Session.__init__ + kojixmlrpc check_session."""
        sid = auth.get('id')
        if sid is None:
            return None
        s = self.state.sessions.get(sid)
        if s is None or s.key != auth.get('key') or s.closed:
            raise koji.AuthError('Invalid session or bad credentials')
        callnum = auth.get('callnum')
        # NB: kojihub (1.34-1.36) reads the callnum from a "Koji-Callnum" header while
        # ClientSession sends "Koji-Session-Callnum", so a real hub skips this check for
        # header-auth sessions. hubsim applies the rule kojihub's code intends.
        if not self.state.enforce_callnum:
            callnum = auth['callnum'] = None
        if callnum is not None and s.callnum is not None:
            if s.callnum > callnum:
                raise koji.SequenceError("%s > %s (session %s)" % (s.callnum, callnum, s.id))
            if s.callnum == callnum and method not in RETRY_WHITELIST:
                raise koji.RetryError("unable to retry call %s (method %s) for session %s"
                                      % (callnum, method, s.id))
        user = self.state.users[s.user_id]
        if user['status'] != koji.USER_STATUS['NORMAL']:
            raise koji.AuthError('logins by %s are not allowed' % user['name'])
        s.update_ts = time.time()
        if not self._exclusive(s) and method not in LOCK_EXEMPT:
            if self._locker(s.user_id) is not None:
                raise koji.AuthLockError("User locked by another session")
        return s

    def _locker(self, user_id):
        for o in self.state.sessions.values():
            if o.user_id == user_id and o.exclusive and not o.closed:
                return o
        return None

    def _exclusive(self, s):
        master = self.state.sessions.get(s.master)
        return s.exclusive or bool(master and master.exclusive and not master.closed)

    def _new_session(self, user_id, authtype, master=None):
        s = Session(self.state.next_id('sessions'), user_id, authtype, master)
        self.state.sessions[s.id] = s
        return s

    def current_host(self):
        """kojihub/kojihub.py: Host() + Host.verify()"""
        s = self.state.session
        if s is None:
            raise koji.AuthError("Not logged-in")
        host = next((h for h in self.state.hosts.values() if h['user_id'] == s.user_id), None)
        if host is None:
            raise koji.AuthError("User %i is not a host" % s.user_id)
        if not self._exclusive(s):
            raise koji.AuthError("This method requires an exclusive session")
        return host

    def has_perm(self, perm):
        s = self.state.session
        return s is not None and perm in self.state.users[s.user_id]['perms']

    def rpc_login(self, user, password, opts=None, renew=False, exclusive=False):
        """kojihub/auth.py: Session.login"""
        if not isinstance(password, str) or len(password) == 0:
            raise koji.AuthError('invalid username or password')
        if self.state.session is not None:
            raise koji.AuthError("Already logged in")
        u = next((u for u in self.state.users.values() if u['name'] == user), None)
        if u is None or u['password'] != password:
            raise koji.AuthError('invalid username or password')
        if u['status'] != koji.USER_STATUS['NORMAL']:
            raise koji.AuthError('logins by %s are not allowed' % u['name'])
        s = self._new_session(u['id'], koji.AUTHTYPES['NORMAL'])
        if exclusive:
            self.state.local.session = s
            self.rpc_exclusiveSession()
        return s.sinfo()

    def rpc_sslLogin(self, proxyuser=None, proxyauthtype=None, renew=False, exclusive=None):
        """kojihub/auth.py: Session.sslLogin"""
        raise koji.AuthError('could not verify client: None')

    def rpc_logout(self, session_id=None):
        """kojihub/auth.py: Session.logout"""
        s = self.state.session
        if s is None:
            raise koji.AuthError("Not logged in")
        if session_id:
            other = self.state.sessions.get(session_id)
            if not self.has_perm('admin') and (other is None or other.user_id != s.user_id):
                raise koji.ActionNotAllowed('only admins or owner may logout other session')
        target = session_id or s.id
        for o in self.state.sessions.values():
            if o.id == target or o.master == target:
                o.expired = o.closed = True
                o.exclusive = False

    def rpc_logoutChild(self, session_id):
        """kojihub/auth.py: Session.logoutChild"""
        s = self.state.session
        if s is None:
            raise koji.AuthError("Not logged in")
        child = self.state.sessions.get(session_id)
        if child is not None and child.master == s.id:
            child.expired = child.closed = True
            child.exclusive = False

    def rpc_subsession(self):
        """kojihub/auth.py: Session.subsession"""
        s = self.state.session
        if s is None:
            raise koji.AuthError("Not logged in")
        return self._new_session(s.user_id, s.authtype, master=s.master or s.id).sinfo()

    def rpc_exclusiveSession(self, force=False):
        """kojihub/auth.py: exclusiveSession (Session.makeExclusive)"""
        s = self.state.session
        if s is None:
            raise koji.AuthError("Not logged in")   # kojihub: AttributeError on user_id
        if s.master is not None:
            raise koji.GenericError("subsessions cannot become exclusive")
        if s.exclusive:
            raise koji.GenericError("session is already exclusive")
        other = self._locker(s.user_id)
        if other is not None:
            if not force:
                raise koji.AuthLockError("Cannot get exclusive session")
            other.expired = other.closed = True
            other.exclusive = False
        s.exclusive = True

    def rpc_sharedSession(self):
        """kojihub/auth.py: sharedSession (Session.makeShared)"""
        if self.state.session is not None:
            self.state.session.exclusive = False

    def rpc_getSessionInfo(self, details=False, user_id=None):
        """kojihub/kojihub.py: RootExports.getSessionInfo"""
        s = self.state.session
        if s is None:
            return None
        info = {'user_id': s.user_id, 'expired': s.expired, 'master': s.master,
                'authtype': s.authtype, 'callnum': s.callnum, 'exclusive': s.exclusive or None,
                'start_time': _iso(s.start_ts), 'start_ts': s.start_ts,
                'update_time': _iso(s.update_ts), 'update_ts': s.update_ts,
                'renew_time': None, 'renew_ts': None}
        if details:
            info.update(hostip='127.0.0.1', id=s.id)
        return info

    def rpc_getLoggedInUser(self):
        """kojihub/kojihub.py: RootExports.getLoggedInUser"""
        if self.state.session is None:
            return None
        me = self.rpc_getUser(self.state.session.user_id)
        me['authtype'] = self.state.session.authtype
        return me

    def rpc_getUser(self, userInfo=None, strict=False, krb_princs=True, groups=False):
        """kojihub/kojihub.py: RootExports.getUser (get_user)"""
        if userInfo is None:
            if self.state.session is None:
                raise koji.GenericError("No user provided")
            userInfo = self.state.session.user_id
        u = by_id_or_name(self.state.users, userInfo)
        if u is None:
            if strict:
                raise koji.GenericError("No such user: %r" % userInfo)
            return None
        return {'id': u['id'], 'name': u['name'], 'status': u['status'],
                'usertype': u['usertype'], 'krb_principals': []}

    def rpc_hello(self, *args):
        """kojihub/kojihub.py: RootExports.hello"""
        return "Hello World"

    def rpc_echo(self, *args):
        """kojihub/kojihub.py: RootExports.echo"""
        return args

    def rpc_getAPIVersion(self):
        """kojihub/kojihub.py: RootExports.getAPIVersion"""
        return koji.API_VERSION

    def rpc_getKojiVersion(self):
        """kojihub/kojihub.py: RootExports.getKojiVersion"""
        return koji.__version__

    def add_user(self, name, password, perms=(), usertype='NORMAL'):
        with self.state.lock:
            uid = self.state.next_id('users')
            self.state.users[uid] = {'id': uid, 'name': name, 'password': password,
                                     'status': koji.USER_STATUS['NORMAL'],
                                     'usertype': koji.USERTYPES[usertype], 'perms': set(perms)}
            return uid
