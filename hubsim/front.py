"""The XML-RPC front: method names to the services' calls, sessions and callnums, multicall, faults."""

from __future__ import annotations

import koji
import koji.util
from koji.xmlrpcplus import Fault

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


class Front:
    """Runs one XML-RPC call against the hub's services (kojihub/kojixmlrpc.py: ModXMLRPCRequestHandler)."""

    def __init__(self, state, sessions, uploads, registry):
        self.state, self.sessions, self.uploads = state, sessions, uploads
        self.registry = dict(registry, **{'system.listMethods': self._list_methods})

    def _list_methods(self):
        return sorted(self.registry)

    def dispatch(self, method, params, auth):
        """Run one XML-RPC call.  auth: {'id', 'key', 'callnum'} from the request."""
        with self.state.changed:
            func = self.registry.get(method)
            if method in ('multiCall', 'system.multicall'):
                func = self._multicall
            return self._run(method, auth, method, lambda: self._invoke(func, method, params))

    def upload(self, qargs, body, auth):
        """Raw POST upload (kojihub/kojihub.py: handle_upload).  kojihub runs it with method None."""
        with self.state.changed:
            return self._run('rawUpload', auth, None, lambda: self.uploads.raw_upload(qargs, body))

    def _run(self, label, auth, method, call):
        self.state.local.committed = False
        user = None
        s = self.state.sessions.get(auth.get('id'))
        if s is not None and s.key == auth.get('key'):
            user = self.state.users[s.user_id]['name']
        self.state.calls.append((label, user))
        try:
            if label != 'rawUpload' and label not in self.registry and \
                    label not in ('multiCall', 'system.multicall'):
                raise koji.GenericError("Invalid method: %s" % label)
            self.state.local.session = self.sessions.check_session(auth, method)
            result = call()
            s = self.state.session
            if s is not None and auth.get('callnum') is not None and \
                    (label in COMMITTING or self.state.local.committed):
                s.callnum = auth['callnum']
            return result
        except Fault:
            raise                      # a stored task fault passed through (getTaskResult)
        except Exception as e:
            self._record(label, user, e)
            raise
        finally:
            self.state.local.session = None
            self.state.changed.notify_all()

    def _record(self, method, user, e):
        self.state.violations.append({'method': method, 'user': user, 'error': type(e).__name__,
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
                self.state.local.committed |= name in COMMITTING
            except Fault as f:
                results.append({'faultCode': f.faultCode, 'faultString': f.faultString})
            except Exception as e:
                self._record(name, None, e)
                results.append({'faultCode': getattr(e, 'faultCode', 1),
                                'faultString': ', '.join(str(a) for a in e.args)})
        return results
