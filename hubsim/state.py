"""State and rules of the simulated Koji hub.

Exported calls are the methods named ``rpc_<name>`` (XML-RPC ``<name>``),
``host_<name>`` (XML-RPC ``host.<name>``) and ``repo_<name>`` (``repo.<name>``).
Each keeps kojihub's argument names and defaults, return shapes, exception classes and messages, so that
an unmodified ``koji.ClientSession`` sees what it would see against a real
hub.  Where the simulator is deliberately *stricter* than kojihub (to catch
worker bugs the real hub would only notice later, or never), the check is
marked ``hubsim:`` in its message and can be switched off with the
``strict_*`` attributes.

Every exception raised to a client is appended to ``violations``; oddities
that kojihub only logs (and accepts) go to ``warnings``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time
import xmlrpc.client
from pathlib import Path

import koji
import koji.util
from koji.xmlrpcplus import Fault, dumps

from .builds import BuildsMixin
from .distrepos import DistReposMixin
from .policies import DEFAULT_POLICIES, compile_policy
from .repos import ReposMixin
from .values import as_int as _int, iso as _iso

TS = koji.TASK_STATES
BRS = koji.BR_STATES
FINISHED = (TS['CLOSED'], TS['CANCELED'], TS['FAILED'])

# kojihub/auth.py RetryWhitelist: the only calls that may repeat a callnum
RETRY_WHITELIST = frozenset((
    'host.taskWait', 'host.taskUnwait', 'host.taskSetWait', 'host.updateHost',
    'host.setBuildRootState', 'repoExpire', 'repoDelete', 'repoProblem'))
# Calls that write to the hub database.  kojihub stores a session's callnum
# only in a transaction that commits, i.e. after a successful writing call.
COMMITTING = frozenset((
    'exclusiveSession', 'sharedSession', 'logout', 'logoutChild', 'subsession',
    'cancelTask', 'cancelTaskChildren', 'host.updateHost', 'host.setHostData',
    'host.openTask', 'host.closeTask', 'host.failTask', 'host.freeTasks',
    'host.setTaskWeight', 'host.refuseTask', 'host.subtask', 'host.subtask2',
    'host.taskSetWait', 'host.taskWait', 'host.taskWaitResults',
    'host.newBuildRoot', 'host.setBuildRootState', 'host.setBuildRootList',
    'host.updateBuildRootList'))
# exclusive-lock check is skipped for these (kojixmlrpc.check_session)
LOCK_EXEMPT = ('exclusiveSession', 'login', 'logout')
TASK_FIELDS = ('id', 'state', 'create_time', 'create_ts', 'start_time', 'start_ts',
               'completion_time', 'completion_ts', 'channel_id', 'host_id', 'parent',
               'label', 'waiting', 'awaited', 'owner', 'method', 'arch', 'priority', 'weight')
# task methods whose result names uploaded files (relative to <topdir>/work), and
# the result keys the parent build task (kojid BuildTask) reads from them
FILE_RESULT_METHODS = {'buildArch': ('rpms', 'srpms', 'logs', 'brootid'),
                       'rebuildSRPM': ('srpm', 'logs', 'brootid'),
                       'buildSRPMFromSCM': ('srpm', 'logs', 'brootid', 'source')}
# kojihub/scheduler.py TaskScheduler timeouts (seconds)
READY_TIMEOUT, ASSIGN_TIMEOUT, HOST_TIMEOUT = 180, 300, 900


def _verify_class(verify):
    """kojihub get_verify_class"""
    if verify == 'md5':
        return hashlib.md5
    if verify == 'adler32':
        return koji.util.adler32_constructor
    if verify == 'sha256':
        return hashlib.sha256
    if verify:
        raise koji.GenericError("Unsupported verify type: %s" % verify)
    return None


class Session:
    def __init__(self, sid, user_id, authtype, master=None):
        self.id, self.user_id, self.authtype, self.master = sid, user_id, authtype, master
        self.key = '%s-%s' % (user_id, secrets.token_urlsafe(14))
        self.exclusive = self.closed = self.expired = False
        self.callnum = None          # last *committed* callnum
        self.start_ts = self.update_ts = time.time()

    def sinfo(self):
        return {'session-id': self.id, 'session-key': self.key, 'header-auth': True}


class HubState(DistReposMixin, BuildsMixin, ReposMixin):
    strict_rpm_match = True    # hubsim: also compare epoch/payloadhash of Koji RPMs
    strict_task_paths = True   # hubsim: tasks/<id % 10000>/<id>, not tasks/<any>/<id>
    strict_results = True      # hubsim: check task responses and result files
    enforce_callnum = True     # False: as deployed hubs behave (see _check_session)

    def __init__(self, topdir):
        self.topdir = Path(topdir)
        self.workdir = self.topdir / 'work'
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.topdir / 'repos').mkdir(exist_ok=True)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self._local = threading.local()
        self._seq = {}
        self.event = 1000
        self.auto_assign = False
        self.calls, self.violations, self.warnings = [], [], []
        self.users, self.sessions, self.hosts, self.tags, self.targets = {}, {}, {}, {}, {}
        self.repos, self.ext_repos, self.tag_ext_repos, self.rpms = {}, {}, {}, {}
        self.tasks, self.brs = {}, {}
        # policy name -> koji.policy.SimpleRuleSet (policies.py); set_policy replaces one
        self.policies = {name: compile_policy(self, text) for name, text in DEFAULT_POLICIES.items()}
        # builds and tags (calls in builds.py): build id -> kojihub get_build() dict;
        # tag id -> {package name -> {'blocked': bool, 'owner_id': user id}};
        # tag_listing rows {'tag_id', 'build_id', 'create_event', 'revoke_event', 'active'};
        # tag id -> {group name -> [package names]} (written as comps.xml by repoInit).
        # RPMs of a build live in self.rpms with 'build_id' set, their files under
        # <topdir>/packages as koji.pathinfo places them.
        self.builds, self.packages, self.tag_listing, self.groups = {}, {}, [], {}
        # package name -> id; notification subscriptions (builds.py add_notification)
        self.package_ids, self.notifications = {}, []
        # repo generation requests (calls in repos.py): request id -> kojihub repo.request dict
        self.regen_requests = {}
        # RPM signature headers (distrepos.py): kojihub rpmsigs rows {'rpm_id', 'sigkey', 'sighash'}
        self.rpmsigs = []
        # event id -> time it happened (getLastEvent(before=...), repo request lag)
        self.event_ts = {self.event: time.time()}
        self.channels = {1: 'default', 2: 'createrepo'}
        self._seq['channels'] = 2
        self.admin_id = self.add_user('hubsim-admin', secrets.token_hex(8), perms=('admin',))
        self.registry = {'system.listMethods': self._list_methods}
        for name in dir(self):
            if name.startswith('rpc_'):
                self.registry[name[4:]] = getattr(self, name)
            elif name.startswith('host_'):
                self.registry['host.' + name[5:]] = getattr(self, name)
            elif name.startswith('repo_'):
                self.registry['repo.' + name[5:]] = getattr(self, name)

    # ------------------------------------------------------------------ helpers
    def _next(self, table):
        self._seq[table] = self._seq.get(table, 0) + 1
        return self._seq[table]

    def _next_event(self):
        self.event += 1
        self.event_ts[self.event] = time.time()
        return self.event

    def _warn(self, msg):
        self.warnings.append(msg)

    @property
    def _session(self):
        return getattr(self._local, 'session', None)

    def _list_methods(self):
        return sorted(self.registry)

    # ------------------------------------------------------------- dispatching
    def dispatch(self, method, params, auth):
        """Run one XML-RPC call.  auth: {'id', 'key', 'callnum'} from the request."""
        with self.changed:
            func = self.registry.get(method)
            if method in ('multiCall', 'system.multicall'):
                func = self._multicall
            return self._run(method, auth, method, lambda: self._invoke(func, method, params))

    def upload(self, qargs, body, auth):
        """Raw POST upload (kojihub handle_upload).  kojihub runs it with method None."""
        with self.changed:
            return self._run('rawUpload', auth, None, lambda: self._raw_upload(qargs, body))

    def _run(self, label, auth, method, call):
        self._local.committed = False
        user = None
        s = self.sessions.get(auth.get('id'))
        if s is not None and s.key == auth.get('key'):
            user = self.users[s.user_id]['name']
        self.calls.append((label, user))
        try:
            if label != 'rawUpload' and label not in self.registry and \
                    label not in ('multiCall', 'system.multicall'):
                raise koji.GenericError("Invalid method: %s" % label)
            self._local.session = self._check_session(auth, method)
            result = call()
            s = self._session
            if s is not None and auth.get('callnum') is not None and \
                    (label in COMMITTING or self._local.committed):
                s.callnum = auth['callnum']
            return result
        except Fault:
            raise                      # a stored task fault passed through (getTaskResult)
        except Exception as e:
            self._record(label, user, e)
            raise
        finally:
            self._local.session = None
            self.changed.notify_all()

    def _record(self, method, user, e):
        self.violations.append({'method': method, 'user': user, 'error': type(e).__name__,
                                'code': getattr(e, 'faultCode', 1), 'message': str(e)})

    def _invoke(self, func, method, params):
        args, opts = koji.decode_args(*params)
        if func is self._multicall:
            return self._multicall(*args, **opts)
        return koji.util.call_with_argcheck(func, args, opts)

    def _multicall(self, calls):
        results = []
        for call in calls:
            name, params = call['methodName'], call['params']
            try:
                func = self.registry.get(name)
                if func is None:
                    raise koji.GenericError("Invalid method: %s" % name)
                results.append([self._invoke(func, name, params)])
                self._local.committed |= name in COMMITTING
            except Fault as f:
                results.append({'faultCode': f.faultCode, 'faultString': f.faultString})
            except Exception as e:
                self._record(name, None, e)
                results.append({'faultCode': getattr(e, 'faultCode', 1),
                                'faultString': ', '.join(str(a) for a in e.args)})
        return results

    def _check_session(self, auth, method):
        """kojihub/auth.py Session.__init__ + kojixmlrpc check_session."""
        sid = auth.get('id')
        if sid is None:
            return None
        s = self.sessions.get(sid)
        if s is None or s.key != auth.get('key') or s.closed:
            raise koji.AuthError('Invalid session or bad credentials')
        callnum = auth.get('callnum')
        # NB: kojihub (1.34-1.36) reads the callnum from a "Koji-Callnum" header while
        # ClientSession sends "Koji-Session-Callnum", so a real hub skips this check for
        # header-auth sessions. hubsim applies the rule kojihub's code intends.
        if not self.enforce_callnum:
            callnum = auth['callnum'] = None
        if callnum is not None and s.callnum is not None:
            if s.callnum > callnum:
                raise koji.SequenceError("%s > %s (session %s)" % (s.callnum, callnum, s.id))
            if s.callnum == callnum and method not in RETRY_WHITELIST:
                raise koji.RetryError("unable to retry call %s (method %s) for session %s"
                                      % (callnum, method, s.id))
        user = self.users[s.user_id]
        if user['status'] != koji.USER_STATUS['NORMAL']:
            raise koji.AuthError('logins by %s are not allowed' % user['name'])
        s.update_ts = time.time()
        if not self._exclusive(s) and method not in LOCK_EXEMPT:
            if self._locker(s.user_id) is not None:
                raise koji.AuthLockError("User locked by another session")
        return s

    def _locker(self, user_id):
        for o in self.sessions.values():
            if o.user_id == user_id and o.exclusive and not o.closed:
                return o
        return None

    def _exclusive(self, s):
        master = self.sessions.get(s.master)
        return s.exclusive or bool(master and master.exclusive and not master.closed)

    def _new_session(self, user_id, authtype, master=None):
        s = Session(self._next('sessions'), user_id, authtype, master)
        self.sessions[s.id] = s
        return s

    def _host(self):
        """kojihub Host() + Host.verify()"""
        s = self._session
        if s is None:
            raise koji.AuthError("Not logged-in")
        host = next((h for h in self.hosts.values() if h['user_id'] == s.user_id), None)
        if host is None:
            raise koji.AuthError("User %i is not a host" % s.user_id)
        if not self._exclusive(s):
            raise koji.AuthError("This method requires an exclusive session")
        return host

    def _has_perm(self, perm):
        s = self._session
        return s is not None and perm in self.users[s.user_id]['perms']

    # --------------------------------------------------------- auth exports
    def rpc_login(self, user, password, opts=None, renew=False, exclusive=False):
        if not isinstance(password, str) or len(password) == 0:
            raise koji.AuthError('invalid username or password')
        if self._session is not None:
            raise koji.AuthError("Already logged in")
        u = next((u for u in self.users.values() if u['name'] == user), None)
        if u is None or u['password'] != password:
            raise koji.AuthError('invalid username or password')
        if u['status'] != koji.USER_STATUS['NORMAL']:
            raise koji.AuthError('logins by %s are not allowed' % u['name'])
        s = self._new_session(u['id'], koji.AUTHTYPES['NORMAL'])
        if exclusive:
            self._local.session = s
            self.rpc_exclusiveSession()
        return s.sinfo()

    def rpc_sslLogin(self, proxyuser=None, proxyauthtype=None, renew=False, exclusive=None):
        raise koji.AuthError('could not verify client: None')

    def rpc_logout(self, session_id=None):
        s = self._session
        if s is None:
            raise koji.AuthError("Not logged in")
        if session_id:
            other = self.sessions.get(session_id)
            if not self._has_perm('admin') and (other is None or other.user_id != s.user_id):
                raise koji.ActionNotAllowed('only admins or owner may logout other session')
        target = session_id or s.id
        for o in self.sessions.values():
            if o.id == target or o.master == target:
                o.expired = o.closed = True
                o.exclusive = False

    def rpc_logoutChild(self, session_id):
        s = self._session
        if s is None:
            raise koji.AuthError("Not logged in")
        child = self.sessions.get(session_id)
        if child is not None and child.master == s.id:
            child.expired = child.closed = True
            child.exclusive = False

    def rpc_subsession(self):
        s = self._session
        if s is None:
            raise koji.AuthError("Not logged in")
        return self._new_session(s.user_id, s.authtype, master=s.master or s.id).sinfo()

    def rpc_exclusiveSession(self, force=False):
        s = self._session
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
        if self._session is not None:
            self._session.exclusive = False

    def rpc_getSessionInfo(self, details=False, user_id=None):
        s = self._session
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
        if self._session is None:
            return None
        me = self.rpc_getUser(self._session.user_id)
        me['authtype'] = self._session.authtype
        return me

    def rpc_getUser(self, userInfo=None, strict=False, krb_princs=True, groups=False):
        if userInfo is None:
            if self._session is None:
                raise koji.GenericError("No user provided")
            userInfo = self._session.user_id
        u = self.users.get(userInfo) if isinstance(userInfo, int) else next(
            (u for u in self.users.values() if u['name'] == userInfo), None)
        if u is None:
            if strict:
                raise koji.GenericError("No such user: %r" % userInfo)
            return None
        return {'id': u['id'], 'name': u['name'], 'status': u['status'],
                'usertype': u['usertype'], 'krb_principals': []}

    def rpc_hello(self, *args):
        return "Hello World"

    def rpc_echo(self, *args):
        return args

    def rpc_getAPIVersion(self):
        return koji.API_VERSION

    def rpc_getKojiVersion(self):
        return koji.__version__

    # ------------------------------------------------------------------ tasks
    def _task(self, task_id):
        task_id = _int(task_id)
        if task_id not in self.tasks:
            raise koji.GenericError("No such task: %i" % task_id)
        return self.tasks[task_id]

    @staticmethod
    def _owns(t, host):
        """kojihub Task.verifyHost: OPEN and locked by this host"""
        return t['state'] == TS['OPEN'] and t['host_id'] == host['id']

    def _assert_owns(self, t, host):
        if not self._owns(t, host):
            raise koji.ActionNotAllowed("host %d does not own task %d" % (host['id'], t['id']))

    def _info(self, t, request=False):
        info = {k: t[k] for k in TASK_FIELDS}
        if request:
            info['request'] = list(xmlrpc.client.loads(t['request'])[0])
        return info

    def _make_task(self, method, arglist, owner, arch='noarch', channel='default',
                   priority=koji.PRIO_DEFAULT, parent=None, label=None, assign=None):
        """kojihub make_task; assign: a host id or name the task is ASSIGNED to at once"""
        arch = koji.parse_arches(arch, strict=True, allow_none=True)
        if assign is not None and not isinstance(assign, int):
            assign = self.rpc_getHost(assign, strict=True)['id']
        channel_id = next((i for i, n in self.channels.items() if n == channel), None)
        if channel_id is None:
            raise koji.GenericError('No such channel: %s' % channel)
        now = time.time()
        t = {'id': self._next('task'), 'state': TS['FREE'], 'create_ts': now,
             'create_time': _iso(now), 'start_ts': None, 'start_time': None,
             'completion_ts': None, 'completion_time': None, 'channel_id': channel_id,
             'host_id': None, 'parent': parent, 'label': label, 'waiting': None,
             'awaited': None, 'owner': owner, 'method': method, 'arch': arch,
             'priority': priority, 'weight': 1.0, 'result': None, 'assign_ts': None,
             'request': dumps(tuple(arglist), methodname=method), 'refusals': []}
        if assign:
            t.update(state=TS['ASSIGNED'], host_id=assign, assign_ts=now)
        self.tasks[t['id']] = t
        return t['id']

    def _lock(self, t, host_id, newstate):
        """kojihub Task.lock: True if the task is now ASSIGNED/OPEN for host_id."""
        state, other = t['state'], t['host_id']
        if state == TS['ASSIGNED']:
            if other != host_id:
                return False
            if newstate == 'ASSIGNED':
                return True
        elif state == TS['OPEN']:
            if other == host_id:
                self._warn("task %d is already open and handled by %d (double open)"
                           % (t['id'], host_id))
            return False
        elif state != TS['FREE']:
            return False            # CANCELED, CLOSED or FAILED
        elif newstate == 'OPEN':
            self._warn("host %d opened task %d that was FREE (not assigned to it)"
                       % (host_id, t['id']))
        t['state'], t['host_id'] = TS[newstate], host_id
        if newstate == 'OPEN':
            t['start_ts'] = time.time()
            t['start_time'] = _iso(t['start_ts'])
        else:
            t['assign_ts'] = time.time()
        return True

    def _free(self, t):
        """kojihub Task.free"""
        if t['state'] in FINISHED:
            raise koji.GenericError("Cannot free task %i, state is %s"
                                    % (t['id'], TS[t['state']]))
        t['state'], t['host_id'] = TS['FREE'], None

    def _cancel(self, t, recurse=True):
        """kojihub Task.cancel"""
        if t['state'] in (TS['CLOSED'], TS['FAILED']):
            return False
        if t['state'] != TS['CANCELED']:
            t['state'] = TS['CANCELED']
            t['completion_ts'] = time.time()
            t['completion_time'] = _iso(t['completion_ts'])
            self._cancel_builds(t['id'])
            if recurse:
                for child in self._children(t['id']):
                    self._cancel(child)
        return True

    def _children(self, task_id):
        return [c for c in self.tasks.values() if c['parent'] == task_id]

    def _result(self, t, raise_fault=True):
        """kojihub Task.getResult"""
        if t['state'] == TS['CANCELED']:
            raise koji.GenericError("Task %i is canceled" % t['id'])
        if t['state'] not in (TS['CLOSED'], TS['FAILED']):
            raise koji.GenericError("Task %i is not finished" % t['id'])
        try:
            return xmlrpc.client.loads(t['result'])[0][0]
        except Fault as f:
            if raise_fault:
                raise
            return {'faultCode': f.faultCode, 'faultString': f.faultString}

    def rpc_getTaskInfo(self, task_id, request=False, strict=False):
        ids = task_id if isinstance(task_id, (list, tuple)) else [task_id]
        ret = []
        for tid in ids:
            t = self.tasks.get(_int(tid))
            if t is None and strict:
                raise koji.GenericError('query returned no rows')
            ret.append(t and self._info(t, request))
        return ret if isinstance(task_id, (list, tuple)) else ret[0]

    def rpc_getTaskRequest(self, taskId):
        return list(xmlrpc.client.loads(self._task(taskId)['request'])[0])

    def rpc_getTaskResult(self, taskId, raise_fault=True):
        return self._result(self._task(taskId), raise_fault)

    def rpc_getTaskChildren(self, task_id, request=False, strict=False):
        if strict:
            self._task(task_id)
        return [self._info(c, request) for c in self._children(_int(task_id))]

    def rpc_taskFinished(self, taskId):
        return self._task(taskId)['state'] in FINISHED

    def rpc_cancelTask(self, task_id, recurse=True):
        t = self._task(task_id)
        s = self._session
        host = next((h for h in self.hosts.values() if s and h['user_id'] == s.user_id), None)
        owner = s is not None and t['owner'] == s.user_id
        if not owner and not (host and self._owns(t, host)) and not self._has_perm('admin'):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        self._cancel(t, recurse)

    def rpc_cancelTaskChildren(self, task_id):
        if self._session is None:
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        t = self._task(task_id)
        host = next((h for h in self.hosts.values()
                     if h['user_id'] == self._session.user_id), None)
        if t['owner'] != self._session.user_id and not (host and self._owns(t, host)) \
                and not self._has_perm('admin'):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        for child in self._children(t['id']):
            self._cancel(child)

    def rpc_listTaskOutput(self, taskID, stat=False, all_volumes=False, strict=False):
        if strict:
            self._task(taskID)
        base = self.workdir / koji.pathinfo.taskrelpath(_int(taskID))
        result = {} if (stat or all_volumes) else []
        for path, _dirs, files in os.walk(base):
            for fn in files:
                rel = os.path.relpath(os.path.join(path, fn), base)
                if stat:
                    st = os.stat(os.path.join(path, fn))
                    info = {'st_size': str(st.st_size), 'st_atime': st.st_atime,
                            'st_mtime': st.st_mtime, 'st_ctime': st.st_ctime}
                    result[rel] = {'DEFAULT': info} if all_volumes else info
                elif all_volumes:
                    result[rel] = ['DEFAULT']
                else:
                    result.append(rel)
        return result

    def rpc_downloadTaskOutput(self, taskID, fileName, offset=0, size=-1, volume=None):
        size = _int(size)
        self._volume(volume)
        if '..' in fileName:
            raise koji.GenericError('Invalid file name: %s' % fileName)
        path = os.path.normpath('%s/%s/%s' % (self.workdir, koji.pathinfo.taskrelpath(taskID),
                                              fileName))
        if not os.path.isfile(path):
            raise koji.GenericError('no file "%s" output by task %i' % (fileName, taskID))
        with open(path, 'rb') as f:
            offset = int(offset)
            if offset > 0:
                f.seek(offset, 0)
            elif offset < 0:
                f.seek(offset, 2)
            return koji.util.base64encode(f.read(size))

    # ------------------------------------------------------------ host exports
    def host_getID(self):
        return self._host()['id']

    def host_getHost(self):
        return self.rpc_getHost(self._host()['id'])

    def host_isEnabled(self):
        return self._host()['enabled']

    def host_updateHost(self, task_load, ready, data=None):
        host = self._host()
        host['task_load'], host['ready'] = float(task_load), ready
        host['update_ts'] = time.time()
        host['heartbeats'].append(host['update_ts'])
        if data is not None:
            host['data'] = data

    def host_setHostData(self, hostdata):
        self._host()['data'] = hostdata

    def host_getHostTasks(self):
        host = self._host()
        tasks = []
        for t in self.tasks.values():
            if self._owns(t, host):
                entry = {'id': t['id'], 'waiting': t['waiting'], 'weight': t['weight']}
                if t['waiting'] and self._wait_check(t['id'])[0]:
                    entry['alert'] = True
                tasks.append(entry)
        return tasks

    def host_getTasks(self):
        """scheduler.get_tasks_for_host: ASSIGNED tasks (auto_assign plays scheduler)"""
        host = self._host()
        if self.auto_assign and host['ready'] and host['enabled']:
            arches = host['arches'].split() + ['noarch']
            free = sorted((t for t in self.tasks.values() if t['state'] == TS['FREE']),
                          key=lambda t: (t['priority'], t['create_ts']))
            for t in free:
                if t['arch'] in arches and self.channels[t['channel_id']] in host['channels'] \
                        and host['id'] not in t['refusals']:
                    self._lock(t, host['id'], 'ASSIGNED')
        return [{'id': t['id'], 'state': t['state'], 'channel_id': t['channel_id'],
                 'host_id': t['host_id'], 'arch': t['arch'], 'method': t['method'],
                 'priority': t['priority'], 'create_ts': t['create_ts']}
                for t in self.tasks.values()
                if t['state'] == TS['ASSIGNED'] and t['host_id'] == host['id']]

    def host_openTask(self, task_id):
        host = self._host()
        t = self._task(task_id)
        if not self._lock(t, host['id'], 'OPEN'):
            return None
        info = self._info(t)
        info['request'] = t['request']     # kojihub returns the raw XML request here
        return info

    def host_closeTask(self, task_id, response):
        host = self._host()
        t = self._task(task_id)
        self._assert_owns(t, host)
        if self.strict_results:
            self._check_response(t, response, fault=False)
        self._finish(t, response, TS['CLOSED'])

    def host_failTask(self, task_id, response):
        host = self._host()
        t = self._task(task_id)
        self._assert_owns(t, host)
        if self.strict_results:
            self._check_response(t, response, fault=True)
        self._finish(t, response, TS['FAILED'])

    def _finish(self, t, response, state):
        t['result'], t['state'] = response, state
        t['completion_ts'] = time.time()
        t['completion_time'] = _iso(t['completion_ts'])

    def host_freeTasks(self, tasks):
        host = self._host()
        for task_id in tasks:
            t = self._task(task_id)
            if not self._owns(t, host):
                self._warn("host %d freeTasks: task %d is not open on it (skipped)"
                           % (host['id'], t['id']))
                continue
            self._free(t)

    def host_setTaskWeight(self, task_id, weight):
        host = self._host()
        t = self._task(task_id)
        self._assert_owns(t, host)
        try:
            t['weight'] = float(weight)
        except (TypeError, ValueError):
            raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                      % (weight, type(weight), float))

    def host_refuseTask(self, task_id, soft=True, msg=''):
        soft, msg = bool(soft), str(msg)
        host = self._host()
        t = self._task(task_id)
        if t['host_id'] != host['id']:
            self._warn('Host %s refused unrelated task: %s' % (host['id'], t['id']))
            return None
        t['refusals'].append(host['id'])
        t.setdefault('refusal_log', []).append({'host_id': host['id'], 'soft': soft, 'msg': msg})
        self._free(t)

    def host_subtask(self, method, arglist, parent, **opts):
        host = self._host()
        ptask = self._task(parent)
        self._assert_owns(ptask, host)
        if 'label' in opts:
            for c in self._children(ptask['id']):
                if c['label'] == opts['label']:
                    return c['id']
        if 'kwargs' in opts:
            arglist = koji.encode_args(*arglist, **opts.pop('kwargs'))
        return self._make_task(method, arglist, ptask['owner'],
                               arch=opts.get('arch', ptask['arch']),
                               channel=opts.get('channel', self.channels[ptask['channel_id']]),
                               priority=opts.get('priority', ptask['priority'] - 1),
                               parent=ptask['id'], label=opts.get('label'),
                               assign=opts.get('assign'))

    def host_subtask2(self, parent_, taskopts_, method_, *args, **opts):
        return self.host_subtask(method_, koji.encode_args(*args, **opts), parent_, **taskopts_)

    def _wait_check(self, parent):
        finished, unfinished = [], []
        for c in self._children(parent):
            if c['awaited']:
                (finished if c['state'] in FINISHED else unfinished).append(c['id'])
        return finished, unfinished

    def host_taskSetWait(self, parent, tasks):
        self._host()
        self._task(parent)['waiting'] = True
        for c in self._children(parent):
            if tasks is None or c['id'] in tasks:
                c['awaited'] = True
            elif c['awaited']:
                c['awaited'] = False

    def host_taskWait(self, parent):
        self._host()
        finished, unfinished = self._wait_check(parent)
        for tid in finished:
            self.tasks[tid]['awaited'] = False
        return [finished, unfinished]

    def host_taskWaitResults(self, parent, tasks, canfail=None):
        self._host()
        canfail = canfail or []
        self._task(parent)['waiting'] = False
        for c in self._children(parent):
            c['awaited'] = False
        if tasks is None:
            tasks = [c['id'] for c in self._children(parent) if c['state'] in FINISHED]
        results = []
        for tid in tasks:
            t = self._task(tid)
            if tid in canfail and t['state'] == TS['CANCELED']:
                results.append([tid, {'faultCode': koji.GenericError.faultCode,
                                      'faultString': "Task %i is canceled" % tid}])
            else:
                results.append([tid, self._result(t, raise_fault=tid not in canfail)])
        return results

    def _check_response(self, t, response, fault):
        """hubsim: the stored response must decode, and file results must exist."""
        try:
            params = xmlrpc.client.loads(response)[0]
            is_fault = False
        except Fault:
            is_fault = True
        except Exception as e:
            raise koji.GenericError("hubsim: invalid response for task %i: %s" % (t['id'], e))
        if is_fault != fault:
            raise koji.GenericError("hubsim: %s response for task %i must %sbe an encoded Fault"
                                    % ('failTask' if fault else 'closeTask', t['id'],
                                       '' if fault else 'not '))
        if fault or t['method'] not in FILE_RESULT_METHODS:
            return
        result = params[0]
        missing = [k for k in FILE_RESULT_METHODS[t['method']]
                   if not isinstance(result, dict) or k not in result]
        if missing:
            raise koji.GenericError("hubsim: %s result lacks %s: %r"
                                    % (t['method'], ', '.join(missing), result))
        taskdir = koji.pathinfo.taskrelpath(t['id'])
        files = [(k, p) for k in ('rpms', 'srpms', 'logs') for p in result.get(k) or []]
        if 'srpm' in result:
            files.append(('srpm', result['srpm']))
        for key, rel in files:
            norm = os.path.normpath(str(rel))
            if not norm.startswith(taskdir + '/') or not (self.workdir / norm).is_file():
                raise koji.GenericError("No such file: %s/%s (hubsim: %s entry of task %i "
                                        "must be uploaded under %s)"
                                        % (self.workdir, rel, key, t['id'], taskdir))
            base = os.path.basename(norm)
            if key in ('rpms', 'srpms', 'srpm'):
                is_src = base.endswith('.src.rpm')
                if not base.endswith('.rpm') or is_src != (key != 'rpms'):
                    raise koji.GenericError("hubsim: bad %s file name: %s" % (key, base))
        br = self.brs.get(result['brootid'])
        if br is None or br['task_id'] != t['id']:
            raise koji.GenericError("hubsim: brootid %r is not a buildroot of task %i"
                                    % (result['brootid'], t['id']))

    # -------------------------------------------------------------- buildroots
    def _br(self, brootid):
        br = self.brs.get(_int(brootid))
        if br is None:
            raise koji.GenericError('no buildroot with ID: %i' % _int(brootid))
        return br

    def _br_access(self, brootid, task_id):
        """HostExports buildroot calls: host lock, task lock, buildroot owner"""
        host = self._host()
        if task_id is not None:
            self._assert_owns(self._task(task_id), host)
        br = self._br(brootid)
        if br['host_id'] != host['id']:
            raise koji.ActionNotAllowed("Host %s not owner of buildroot %s"
                                        % (host['id'], br['id']))
        if task_id is not None and br['task_id'] != task_id:
            raise koji.ActionNotAllowed('Task %s does not have lock on buildroot %s'
                                        % (task_id, br['id']))
        return br

    def host_newBuildRoot(self, repo, arch, task_id=None):
        host = self._host()
        if task_id is not None:
            self._assert_owns(self._task(task_id), host)
        arch = koji.parse_arches(arch, strict=True, allow_none=True)
        if _int(repo) not in self.repos:
            # kojihub: a foreign-key violation from the database (fault code 1)
            raise koji.GenericError('hubsim: no such repo: %s' % repo)
        br = {'id': self._next('buildroot'), 'host_id': host['id'], 'repo_id': _int(repo),
              'task_id': task_id, 'arch': arch, 'state': BRS['INIT'],
              'create_event': self._next_event(), 'create_ts': time.time(),
              'retire_event': None, 'retire_ts': None, 'listing': []}
        self.brs[br['id']] = br
        return br['id']

    def host_setBuildRootState(self, brootid, state, task_id=None):
        br = self._br_access(brootid, task_id)
        if isinstance(state, str):
            state = BRS[state]
        if state == BRS['INIT']:
            raise koji.GenericError("Cannot change buildroot state to INIT")
        if br['state'] == BRS['EXPIRED']:
            if state == BRS['EXPIRED']:
                return None
            raise koji.GenericError("buildroot %i is EXPIRED" % br['id'])
        br['state'] = state
        if state == BRS['EXPIRED']:
            br['retire_event'], br['retire_ts'] = self._next_event(), time.time()

    def host_setBuildRootList(self, brootid, rpmlist, task_id=None):
        br = self._br_access(brootid, task_id)
        if br['state'] != BRS['INIT']:
            raise koji.GenericError("buildroot %(id)s in wrong state %(state)s" % br)
        self._set_list(br, rpmlist, update=False)

    def host_updateBuildRootList(self, brootid, rpmlist, task_id=None):
        br = self._br_access(brootid, task_id)
        if br['state'] != BRS['BUILDING']:
            raise koji.GenericError("buildroot %(id)s in wrong state %(state)s" % br)
        self._set_list(br, rpmlist, update=True)

    def _set_list(self, br, rpmlist, update):
        """kojihub BuildRoot._setList: all entries are resolved before any is stored"""
        current = {e['rpm_id'] for e in br['listing']}
        new = []
        for entry in rpmlist:
            if entry.get('location'):
                rpm = self._add_external_rpm(entry, entry['location'])
            else:
                rpm = self._get_rpm(entry)
            if not (update and rpm['id'] in current):
                new.append(rpm['id'])
        br['listing'].extend({'rpm_id': i, 'is_update': update} for i in sorted(new))

    def _get_rpm(self, entry):
        """kojihub get_rpm(entry, strict=True): by id when given, else by NVRA preferring an
        internal non-draft RPM, then the newest draft, then the newest external one"""
        if 'id' in entry:
            if entry['id'] not in self.rpms:
                raise koji.GenericError("No such rpm: %r" % entry)
            return self.rpms[entry['id']]
        key = tuple(entry.get(k) for k in ('name', 'version', 'release', 'arch'))
        matches = [r for r in self.rpms.values() if (r['name'], r['version'], r['release'], r['arch']) == key]
        if not matches:
            raise koji.GenericError("No such rpm: %r" % entry)
        rpm = max(matches, key=lambda r: (r['external_repo_id'] == 0 and not r['draft'],
                                          r['external_repo_id'] == 0, r['id']))
        if self.strict_rpm_match and rpm['external_repo_id'] == 0:
            for k in ('epoch', 'payloadhash'):
                if k in entry and entry[k] != rpm[k]:
                    raise koji.GenericError(
                        "No such rpm: %r (hubsim: %s %r differs from Koji's %r; the real hub "
                        "matches by NVRA only)" % (entry, k, entry[k], rpm[k]))
        return rpm

    def _add_external_rpm(self, info, location):
        """kojihub add_external_rpm(info, location, strict=False); location is a name or an id
        (get_external_repo_id)"""
        types = {'name': str, 'version': str, 'release': str, 'epoch': (int, type(None)),
                 'arch': str, 'payloadhash': str, 'size': int, 'buildtime': int}
        for field, typ in types.items():
            if field not in info:
                raise koji.GenericError("%s field missing: %r" % (field, info))
            if not isinstance(info[field], typ):
                raise koji.GenericError("Invalid value for %s: %r" % (field, info[field]))
        erepo = next((e for e in self.ext_repos.values() if location in (e['id'], e['name'])), None)
        if erepo is None:
            raise koji.GenericError('No such entry in table external_repo: %s' % location)
        for r in self.rpms.values():
            if r['external_repo_id'] == erepo['id'] and all(
                    r[k] == info[k] for k in ('name', 'version', 'release', 'arch')):
                if r['payloadhash'] != info['payloadhash']:
                    raise koji.GenericError("hash changed for external rpm: %s (%s -> %s)"
                                            % (location, r['payloadhash'], info['payloadhash']))
                return r
        rpm_id = self.add_rpm(*(info[k] for k in types), external_repo=erepo['name'])
        return self.rpms[rpm_id]

    def _br_info(self, br):
        host, repo = self.hosts[br['host_id']], self.repos[br['repo_id']]
        return {'id': br['id'], 'br_type': koji.BR_TYPES['STANDARD'], 'cg_id': None,
                'cg_name': None, 'cg_version': None, 'container_arch': br['arch'],
                'arch': br['arch'], 'container_type': 'chroot', 'host_os': None,
                'host_arch': None, 'extra': None, 'state': br['state'],
                'task_id': br['task_id'], 'host_id': host['id'], 'host_name': host['name'],
                'repo_id': repo['id'], 'repo_state': repo['state'], 'tag_id': repo['tag_id'],
                'tag_name': repo['tag_name'], 'create_event_id': br['create_event'],
                'create_event_time': _iso(br['create_ts']), 'create_ts': br['create_ts'],
                'retire_event_id': br['retire_event'],
                'retire_event_time': _iso(br['retire_ts']), 'retire_ts': br['retire_ts'],
                'repo_create_event_id': repo['create_event'],
                'repo_create_event_time': repo['creation_time']}

    def rpc_listBuildroots(self, hostID=None, tagID=None, state=None, rpmID=None,
                           archiveID=None, taskID=None, buildrootID=None, repoID=None,
                           queryOpts=None):
        def match(br):
            info = self._br_info(br)
            for value, key in ((hostID, 'host_id'), (tagID, 'tag_id'), (taskID, 'task_id'),
                               (repoID, 'repo_id'), (state, 'state'), (buildrootID, 'id')):
                if value is not None and info[key] not in (
                        value if isinstance(value, (list, tuple)) else [value]):
                    return False
            return rpmID is None or rpmID in [e['rpm_id'] for e in br['listing']]
        return [self._br_info(br) for br in self.brs.values() if match(br)]

    def rpc_getBuildroot(self, buildrootID, strict=False):
        br = self.brs.get(_int(buildrootID))
        if br is None:
            if strict:
                raise koji.GenericError("No such buildroot: %r" % buildrootID)
            return None
        return self._br_info(br)

    def rpc_getRPM(self, rpminfo, strict=False, multi=False, build=None):
        rpm = self.rpms.get(rpminfo) if isinstance(rpminfo, int) else None
        if rpm is None and isinstance(rpminfo, dict):
            try:
                rpm = self._get_rpm(rpminfo)
            except koji.GenericError:
                rpm = None
        if rpm is None and strict:
            raise koji.GenericError("No such rpm: %r" % rpminfo)
        return dict(rpm) if rpm else None

    # ---------------------------------------------------- tags, repos, hosts
    def _tag(self, info, strict=True):
        if isinstance(info, dict):
            info = info.get('id', info.get('name'))
        tag = self.tags.get(info) if isinstance(info, int) else next(
            (t for t in self.tags.values() if t['name'] == info), None)
        if tag is None and strict:
            raise koji.GenericError("No such tagInfo: %r" % info)
        return tag

    def rpc_getTag(self, tagInfo, strict=False, event=None, blocked=False):
        tag = self._tag(tagInfo, strict)
        return None if tag is None else {k: v for k, v in tag.items()}

    def rpc_getBuildConfig(self, tag, event=None):
        info = self.rpc_getTag(tag, strict=True)
        info['extra'] = dict(info['extra'])
        info['config_inheritance'] = {'extra': {}, 'arches': None}
        return info

    def rpc_getBuildTarget(self, info, event=None, strict=False):
        target = self.targets.get(info) if isinstance(info, int) else next(
            (t for t in self.targets.values() if t['name'] == info), None)
        if target is None and strict:
            raise koji.GenericError("No such build target: %s" % info)
        return target and dict(target)

    def rpc_repoInfo(self, repo_id, strict=False):
        repo = self.repos.get(_int(repo_id))
        if repo is None and strict:
            raise koji.GenericError("No such repo: %s" % repo_id)
        return repo and dict(repo)

    def rpc_getRepo(self, tag, state=None, event=None, dist=False, min_event=None):
        tag_id = tag if isinstance(tag, int) else self._tag(tag)['id']
        state = koji.REPO_READY if state is None else state
        repos = [r for r in self.repos.values() if r['tag_id'] == tag_id and r['dist'] == dist
                 and (r['create_event'] <= event if event else r['state'] == state)
                 and (min_event is None or r['create_event'] >= min_event)]
        if not repos:
            return None
        r = max(repos, key=lambda r: r['create_event'])
        return {k: r[k] for k in ('id', 'state', 'task_id', 'create_event', 'creation_time',
                                  'create_ts', 'dist')}

    def rpc_getExternalRepo(self, info, strict=False, event=None):
        """kojihub get_external_repo: by name or id; None (or an error when strict) if unknown."""
        found = [dict(e) for e in self.ext_repos.values() if info in (e['id'], e['name'])]
        if not found and strict:
            raise koji.GenericError('No such repo: %s' % info)
        return found[0] if found else None

    def rpc_getExternalRepoList(self, tag_info, event=None):
        tag = self._tag(tag_info)
        return [{'tag_id': tag['id'], 'tag_name': tag['name'], 'external_repo_id': eid,
                 'external_repo_name': self.ext_repos[eid]['name'],
                 'url': self.ext_repos[eid]['url'], 'merge_mode': 'koji', 'priority': prio,
                 'arches': None}
                for prio, eid in sorted(self.tag_ext_repos.get(tag['id'], []))]

    def rpc_getHost(self, hostInfo, strict=False, event=None):
        h = self.hosts.get(hostInfo) if isinstance(hostInfo, int) else next(
            (h for h in self.hosts.values() if h['name'] == hostInfo), None)
        if h is None:
            if strict:
                raise koji.GenericError('Invalid hostInfo: %s' % hostInfo)
            return None
        return {k: h[k] for k in ('id', 'user_id', 'name', 'update_ts', 'ready', 'task_load',
                                  'arches', 'capacity', 'description', 'comment', 'enabled')}

    # --------------------------------------------------------------- policies
    def rpc_evalPolicy(self, name, data):
        """kojihub eval_policy: the action of the first matching rule, or None"""
        ruleset = self.policies.get(name)
        if ruleset is None:
            raise koji.GenericError("no such policy: %s" % name)
        return ruleset.apply(data)

    def host_evalPolicy(self, name, data):
        self._host()
        return self.rpc_evalPolicy(name, data)

    def host_checkPolicy(self, name, data, default='deny', strict=False):
        self._host()
        return self._check_policy(name, data, default, strict)

    def _check_policy(self, name, data, default='deny', strict=False):
        """kojihub check_policy: (allowed, reason); strict raises ActionNotAllowed unless allowed"""
        ruleset = self.policies.get(name)
        if ruleset is None:
            result, reason = 'allow', 'missing policy'      # MissingPolicyOk (default on)
        else:
            result = ruleset.apply(data)
            if result is None:
                result, reason = default, 'not covered by policy'
            else:
                result, reason = (result.split(None, 1) + ['', ''])[:2]
                result = result.lower()
        if result == 'allow':
            return True, reason
        if result != 'deny':
            self._warn("Invalid action in policy %s, rule: %s" % (name, ruleset.last_rule()))
            reason = 'error in policy'
        if not strict:
            return False, reason
        raise koji.ActionNotAllowed("policy violation (%s)%s" % (name, reason and ": " + reason))

    def host_assertPolicy(self, name, data, default='deny'):
        """kojihub HostExports.assertPolicy"""
        self._host()
        self._check_policy(name, data, default, strict=True)

    # ---------------------------------------------------------------- uploads
    def _volume(self, volume):
        if volume not in (None, 'DEFAULT'):
            raise koji.GenericError('No such entry in table volume: %s' % volume)

    def _upload_path(self, reldir, name, create=False, volume=None):
        """kojihub get_upload_path"""
        orig_reldir, orig_name = reldir, name
        head, name = os.path.split(name)
        if head or name.startswith('.'):
            raise koji.GenericError("Invalid upload filename: %s" % orig_name)
        reldir = os.path.normpath(reldir)
        if not reldir or reldir.startswith('..'):
            raise koji.GenericError("Invalid upload directory: %s" % orig_reldir)
        self._volume(volume)
        parts = reldir.split('/')
        check_user = True
        if create and parts[0] == 'tasks':
            if len(parts) < 3:
                raise koji.GenericError("Invalid task upload directory: %s" % orig_reldir)
            try:
                task_id = int(parts[2])
            except ValueError:
                raise koji.GenericError("Invalid task upload directory: %s" % orig_reldir)
            self._assert_owns(self._task(task_id), self._host())
            if self.strict_task_paths and parts[1] != str(task_id % 10000):
                raise koji.GenericError("Invalid task upload directory: %s (hubsim: expected "
                                        "%s)" % (orig_reldir, koji.pathinfo.taskrelpath(task_id)))
            check_user = False
        udir = koji.util.joinpath(str(self.workdir), reldir)   # ValueError if absolute
        if create:
            os.makedirs(udir, exist_ok=True)
            owner = os.path.join(udir, '.user')
            if check_user:
                if os.path.exists(owner):
                    with open(owner) as f:
                        if int(f.read()) != self._session.user_id:
                            raise koji.GenericError("Invalid upload directory, not owner: %s"
                                                    % orig_reldir)
                else:
                    with open(owner, 'w') as f:
                        f.write(str(self._session.user_id))
        return os.path.join(udir, name)

    def _raw_upload(self, args, body):
        """kojihub handle_upload"""
        if self._session is None:
            raise koji.ActionNotAllowed('you must be logged-in to upload a file')
        name = args['filename'][0]
        path = args.get('filepath', ('',))[0]
        verify = args.get('fileverify', ('',))[0]
        overwrite = args.get('overwrite', ('',))[0]
        offset = int(args.get('offset', ('0',))[0])
        volume = args.get('volume', ('DEFAULT',))[0]
        fn = self._upload_path(path, name, create=True, volume=volume)
        if os.path.exists(fn):
            if not os.path.isfile(fn):
                raise koji.GenericError("destination not a file: %s" % fn)
            if offset == 0 and not overwrite:
                raise koji.GenericError("upload path exists: %s" % fn)
        sum_cls = _verify_class(verify)
        fd = os.open(fn, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            if offset == -1:
                offset = os.lseek(fd, 0, 2)
            else:
                os.ftruncate(fd, offset)
                os.lseek(fd, offset, 0)
            os.write(fd, body)
        finally:
            os.close(fd)
        ret = {'size': len(body), 'fileverify': verify, 'offset': offset}
        if sum_cls:
            ret['hexdigest'] = sum_cls(body).hexdigest()
        return ret

    def rpc_uploadFile(self, path, name, size, md5sum, offset, data, volume=None,
                       checksum=None):
        if self._session is None:
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        contents = base64.b64decode(data)
        offset, size = koji.decode_int(offset), koji.decode_int(size)
        checksum = md5sum if checksum is None else checksum
        if isinstance(checksum, str):
            verify, digest = 'md5', checksum
        elif checksum is None:
            verify = digest = None
        else:
            verify, digest = checksum
        sum_cls = _verify_class(verify)
        if offset != -1:
            if size is not None and size != len(contents):
                return False
            if verify is not None and digest != sum_cls(contents).hexdigest():
                return False
        fn = self._upload_path(path, name, create=True, volume=volume)
        if os.path.lexists(fn):
            if not os.path.isfile(fn) or os.path.islink(fn):
                raise koji.GenericError("destination not a file: %s" % fn)
            if offset == 0 and not fn.endswith('.log'):
                raise koji.GenericError("file already exists: %s" % fn)
        with open(fn, 'r+b' if os.path.exists(fn) else 'w+b') as f:
            if offset == 0 or (offset == -1 and size == len(contents)):
                f.truncate(0)
            if offset == -1:
                f.seek(0, 2)
            else:
                f.seek(offset)
            f.write(contents)
            if offset == -1:
                if size is not None:
                    f.truncate(size)
                if verify is not None:
                    f.seek(0)
                    if sum_cls(f.read()).hexdigest() != digest:
                        return False
        return True

    def rpc_checkUpload(self, path, name, verify=None, tail=None, volume=None):
        fn = self._upload_path(path, name, volume=volume)
        if not os.path.exists(fn):
            return None
        if not os.path.isfile(fn):
            raise koji.GenericError("Not a regular file: %s" % fn)
        st = os.stat(fn)
        data = {'size': st.st_size, 'mtime': st.st_mtime}
        if verify:
            sum_cls = _verify_class(verify)
            with open(fn, 'rb') as f:
                if tail is not None:
                    if tail < 0:
                        raise koji.GenericError("Invalid tail value: %r" % tail)
                    f.seek(max(st.st_size - tail, 0))
                content = f.read()
            data['sumlength'] = len(content)
            data['hexdigest'] = sum_cls(content).hexdigest()
        return data

    # ================================================================ test API
    def add_user(self, name, password, perms=(), usertype='NORMAL'):
        with self.lock:
            uid = self._next('users')
            self.users[uid] = {'id': uid, 'name': name, 'password': password,
                               'status': koji.USER_STATUS['NORMAL'],
                               'usertype': koji.USERTYPES[usertype], 'perms': set(perms)}
            return uid

    def add_host(self, name, arches=('x86_64',), capacity=2.0, user=None, password=None,
                 channels=('default',), enabled=True):
        """A build host; its user (default: same name) is created if missing."""
        with self.lock:
            user = user or name
            u = next((u for u in self.users.values() if u['name'] == user), None)
            uid = u['id'] if u else self.add_user(user, password or name, usertype='HOST')
            for ch in channels:
                if ch not in self.channels.values():
                    self.channels[self._next('channels')] = ch
            hid = self._next('host')
            arches = arches.split() if isinstance(arches, str) else list(arches)
            self.hosts[hid] = {'id': hid, 'user_id': uid, 'name': name,
                               'arches': ' '.join(arches), 'capacity': float(capacity),
                               'enabled': enabled, 'ready': False, 'task_load': 0.0,
                               'update_ts': None, 'description': None, 'comment': None,
                               'channels': list(channels), 'data': None, 'heartbeats': []}
            return hid

    def add_tag(self, name, arches='x86_64', extra=None):
        with self.lock:
            tid = self._next('tag')
            if not isinstance(arches, str) and arches is not None:
                arches = ' '.join(arches)
            self.tags[tid] = {'id': tid, 'name': name, 'perm_id': None, 'perm': None,
                              'arches': arches, 'locked': False, 'maven_support': False,
                              'maven_include_all': False, 'extra': dict(extra or {})}
            return tid

    def add_target(self, name, build_tag, dest_tag):
        with self.lock:
            b, d = self._tag(build_tag), self._tag(dest_tag)
            tid = self._next('target')
            self.targets[tid] = {'id': tid, 'name': name, 'build_tag': b['id'],
                                 'build_tag_name': b['name'], 'dest_tag': d['id'],
                                 'dest_tag_name': d['name']}
            return tid

    def add_repo(self, tag_name, repo_dir=None, state='READY'):
        """A repo of tag; repo_dir (holding <arch>/ dirs) is linked at repos/<tag>/<id>."""
        with self.lock:
            tag = self._tag(tag_name)
            rid, now = self._next('repo'), time.time()
            self.repos[rid] = {'id': rid, 'tag_id': tag['id'], 'tag_name': tag['name'],
                               'state': koji.REPO_STATES[state],
                               'create_event': self._next_event(),
                               'creation_time': _iso(now), 'create_ts': now, 'state_ts': now,
                               'dist': False, 'task_id': None, 'opts': {}, 'custom_opts': {},
                               'begin_event': None, 'end_event': None}
            if repo_dir is not None:
                link = self.topdir / 'repos' / tag['name'] / str(rid)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(repo_dir).resolve())
            return rid

    def add_external_repo(self, name, url, tags=(), priority=5):
        with self.lock:
            eid = self._next('external_repo')
            self.ext_repos[eid] = {'id': eid, 'name': name, 'url': url}
            for tag in tags:
                self.tag_ext_repos.setdefault(self._tag(tag)['id'], []).append((priority, eid))
            return eid

    def add_rpm(self, name, version, release, epoch, arch, payloadhash, size, buildtime,
                external_repo=None):
        """A known RPM: built by Koji, or of external_repo (its name)."""
        with self.lock:
            erepo = next((e for e in self.ext_repos.values() if e['name'] == external_repo),
                         None) if external_repo else None
            if external_repo and erepo is None:
                raise koji.GenericError('No such external repo: %s' % external_repo)
            rid = self._next('rpm')
            self.rpms[rid] = {'id': rid, 'name': name, 'version': version, 'release': release,
                              'epoch': epoch, 'arch': arch, 'payloadhash': payloadhash,
                              'size': size, 'buildtime': buildtime, 'build_id': None,
                              'buildroot_id': None, 'draft': False, 'metadata_only': False,
                              'extra': None, 'external_repo_id': erepo['id'] if erepo else 0,
                              'external_repo_name': erepo['name'] if erepo else 'INTERNAL'}
            return rid

    def set_policy(self, name, text):
        """What hub.conf [policy] ``name = text`` does: the policy's rules, replacing its default.

        text is kojihub policy syntax, e.g. "has_perm admin :: allow\nall :: deny admins only";
        an empty text is a policy no rule of which matches.
        """
        with self.lock:
            self.policies[name] = compile_policy(self, text)

    def set_host_enabled(self, host_id, enabled=True):
        with self.lock:
            self.hosts[host_id]['enabled'] = enabled

    def create_task(self, method, args, arch='x86_64', channel='default',
                    priority=koji.PRIO_DEFAULT, owner=None, kwargs=None):
        """A FREE top-level task; kwargs are folded in with koji.encode_args."""
        with self.changed:
            if kwargs:
                args = koji.encode_args(*args, **kwargs)
            owner = self.admin_id if owner is None else (
                owner if isinstance(owner, int) else self.rpc_getUser(owner, strict=True)['id'])
            return self._make_task(method, list(args), owner, arch, channel, priority)

    def assign(self, task_id, host_id):
        """What the scheduler does: FREE -> ASSIGNED to host_id (one of the task's channel
        that can run its arch)."""
        with self.changed:
            t = self.tasks[task_id]
            host = self.hosts[host_id]
            if self.channels[t['channel_id']] not in host['channels'] or \
                    t['arch'] not in host['arches'].split() + ['noarch']:
                raise koji.GenericError(
                    "hubsim: the scheduler never assigns task %d (channel %s, arch %s) to host "
                    "%s (channels %s, arches %s)"
                    % (task_id, self.channels[t['channel_id']], t['arch'], host['name'],
                       ', '.join(host['channels']), host['arches']))
            if t['state'] != TS['FREE'] or not self._lock(t, host_id, 'ASSIGNED'):
                raise koji.GenericError("cannot assign task %d in state %s"
                                        % (task_id, TS[t['state']]))
            self.changed.notify_all()

    def cancel_task(self, task_id, recurse=True):
        with self.changed:
            self._cancel(self.tasks[task_id], recurse)
            self.changed.notify_all()

    def run_scheduler(self, now=None):
        """The hub scheduler's timeouts: no heartbeat for 180 s -> not ready, task
        ASSIGNED for 300 s -> freed, host silent 900 s -> its OPEN tasks freed."""
        now = time.time() if now is None else now
        with self.changed:
            for h in self.hosts.values():
                if h['ready'] and (h['update_ts'] is None or now - h['update_ts'] > READY_TIMEOUT):
                    h['ready'] = False
            for t in self.tasks.values():
                if t['state'] == TS['ASSIGNED'] and now - t['assign_ts'] > ASSIGN_TIMEOUT:
                    self._free(t)
                elif t['state'] == TS['OPEN']:
                    seen = self.hosts[t['host_id']]['update_ts'] or t['start_ts']
                    if now - seen > HOST_TIMEOUT:
                        self._free(t)
            self.changed.notify_all()

    def task(self, task_id):
        """Task state for assertions: state name, decoded request/result, fault."""
        with self.lock:
            t = self.tasks[task_id]
            info = self._info(t, request=True)
            info.update(state=TS[t['state']], channel=self.channels[t['channel_id']],
                        result=None, fault=None, refusals=list(t.get('refusal_log', [])))
            if t['result'] is not None:
                try:
                    info['result'] = xmlrpc.client.loads(t['result'])[0][0]
                except Fault as f:
                    info['fault'] = {'faultCode': f.faultCode, 'faultString': f.faultString}
                except Exception:
                    info['result'] = t['result']
            return info

    def wait_task(self, task_id, states=('CLOSED', 'FAILED', 'CANCELED'), timeout=30.0):
        wanted = {TS[s] for s in states}
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.tasks[task_id]['state'] not in wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("task %d still %s after %ss"
                                       % (task_id, TS[self.tasks[task_id]['state']], timeout))
                self.changed.wait(left)
            return self.task(task_id)

    def host(self, host_id):
        with self.lock:
            h = self.hosts[host_id]
            return dict(h, last_update=h['update_ts'], heartbeats=list(h['heartbeats']))

    @property
    def buildroots(self):
        with self.lock:
            out = []
            for br in self.brs.values():
                rpms = [dict(self.rpms[e['rpm_id']], is_update=e['is_update'])
                        for e in br['listing']]
                out.append({'id': br['id'], 'state': BRS[br['state']], 'repo_id': br['repo_id'],
                            'arch': br['arch'], 'task_id': br['task_id'],
                            'host_id': br['host_id'], 'rpmlist': rpms})
            return out

    def uploaded(self, path):
        """Content of an uploaded file, path relative to <topdir>/work."""
        return (self.workdir / path).read_bytes()
