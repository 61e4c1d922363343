"""Tasks: their states, the host calls that open, close and wait on them, and the scheduler's part."""

from __future__ import annotations

import os
import time
import xmlrpc.client

import koji
import koji.util
from koji.xmlrpcplus import Fault, dumps

from .state import Service
from .values import as_int as _int
from .values import iso as _iso

TS = koji.TASK_STATES
FINISHED = (TS['CLOSED'], TS['CANCELED'], TS['FAILED'])

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


class Tasks(Service):
    """Tasks and the host calls that take, finish and wait on them (kojihub/kojihub.py: Task,
    HostExports), and what the scheduler does (kojihub/scheduler.py: TaskScheduler).

    Public: get, info, make_task, assert_owns, children, cancel, and the
    test API create_task, assign, cancel_task, run_scheduler, task, wait_task."""

    uses = ('builds', 'hosts', 'sessions', 'uploads')

    def get(self, task_id):
        task_id = _int(task_id)
        if task_id not in self.state.tasks:
            raise koji.GenericError("No such task: %i" % task_id)
        return self.state.tasks[task_id]

    @staticmethod
    def _owns(t, host):
        """kojihub/kojihub.py: Task.verifyHost: OPEN and locked by this host"""
        return t['state'] == TS['OPEN'] and t['host_id'] == host['id']

    def assert_owns(self, t, host):
        if not self._owns(t, host):
            raise koji.ActionNotAllowed("host %d does not own task %d" % (host['id'], t['id']))

    def info(self, t, request=False):
        info = {k: t[k] for k in TASK_FIELDS}
        if request:
            info['request'] = list(xmlrpc.client.loads(t['request'])[0])
        return info

    def make_task(self, method, arglist, owner, arch='noarch', channel='default',
                  priority=koji.PRIO_DEFAULT, parent=None, label=None, assign=None):
        """kojihub/kojihub.py: make_task; assign: a host id or name the task is ASSIGNED to at once"""
        arch = koji.parse_arches(arch, strict=True, allow_none=True)
        if assign is not None and not isinstance(assign, int):
            assign = self.hosts.rpc_getHost(assign, strict=True)['id']
        channel_id = next((i for i, n in self.state.channels.items() if n == channel), None)
        if channel_id is None:
            raise koji.GenericError('No such channel: %s' % channel)
        now = time.time()
        t = {'id': self.state.next_id('task'), 'state': TS['FREE'], 'create_ts': now,
             'create_time': _iso(now), 'start_ts': None, 'start_time': None,
             'completion_ts': None, 'completion_time': None, 'channel_id': channel_id,
             'host_id': None, 'parent': parent, 'label': label, 'waiting': None,
             'awaited': None, 'owner': owner, 'method': method, 'arch': arch,
             'priority': priority, 'weight': 1.0, 'result': None, 'assign_ts': None,
             'request': dumps(tuple(arglist), methodname=method), 'refusals': []}
        if assign:
            t.update(state=TS['ASSIGNED'], host_id=assign, assign_ts=now)
        self.state.tasks[t['id']] = t
        return t['id']

    def _lock(self, t, host_id, newstate):
        """kojihub/kojihub.py: Task.lock: True if the task is now ASSIGNED/OPEN for host_id."""
        state, other = t['state'], t['host_id']
        if state == TS['ASSIGNED']:
            if other != host_id:
                return False
            if newstate == 'ASSIGNED':
                return True
        elif state == TS['OPEN']:
            if other == host_id:
                self.state.warn("task %d is already open and handled by %d (double open)"
                                % (t['id'], host_id))
            return False
        elif state != TS['FREE']:
            return False            # CANCELED, CLOSED or FAILED
        elif newstate == 'OPEN':
            self.state.warn("host %d opened task %d that was FREE (not assigned to it)"
                            % (host_id, t['id']))
        t['state'], t['host_id'] = TS[newstate], host_id
        if newstate == 'OPEN':
            t['start_ts'] = time.time()
            t['start_time'] = _iso(t['start_ts'])
        else:
            t['assign_ts'] = time.time()
        return True

    def _free(self, t):
        """kojihub/kojihub.py: Task.free"""
        if t['state'] in FINISHED:
            raise koji.GenericError("Cannot free task %i, state is %s"
                                    % (t['id'], TS[t['state']]))
        t['state'], t['host_id'] = TS['FREE'], None

    def cancel(self, t, recurse=True):
        """kojihub Task.cancel"""
        if t['state'] in (TS['CLOSED'], TS['FAILED']):
            return False
        if t['state'] != TS['CANCELED']:
            t['state'] = TS['CANCELED']
            t['completion_ts'] = time.time()
            t['completion_time'] = _iso(t['completion_ts'])
            self.builds.cancel_builds(t['id'])
            if recurse:
                for child in self.children(t['id']):
                    self.cancel(child)
        return True

    def children(self, task_id):
        return [c for c in self.state.tasks.values() if c['parent'] == task_id]

    def _result(self, t, raise_fault=True):
        """kojihub/kojihub.py: Task.getResult"""
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
        """kojihub/kojihub.py: RootExports.getTaskInfo"""
        ids = task_id if isinstance(task_id, (list, tuple)) else [task_id]
        ret = []
        for tid in ids:
            t = self.state.tasks.get(_int(tid))
            if t is None and strict:
                raise koji.GenericError('query returned no rows')
            ret.append(t and self.info(t, request))
        return ret if isinstance(task_id, (list, tuple)) else ret[0]

    def rpc_getTaskRequest(self, taskId):
        """kojihub/kojihub.py: RootExports.getTaskRequest"""
        return list(xmlrpc.client.loads(self.get(taskId)['request'])[0])

    def rpc_getTaskResult(self, taskId, raise_fault=True):
        """kojihub/kojihub.py: RootExports.getTaskResult"""
        return self._result(self.get(taskId), raise_fault)

    def rpc_getTaskChildren(self, task_id, request=False, strict=False):
        """kojihub/kojihub.py: RootExports.getTaskChildren"""
        if strict:
            self.get(task_id)
        return [self.info(c, request) for c in self.children(_int(task_id))]

    def rpc_taskFinished(self, taskId):
        """kojihub/kojihub.py: RootExports.taskFinished"""
        return self.get(taskId)['state'] in FINISHED

    def rpc_cancelTask(self, task_id, recurse=True):
        """kojihub/kojihub.py: RootExports.cancelTask"""
        t = self.get(task_id)
        s = self.state.session
        host = next((h for h in self.state.hosts.values() if s and h['user_id'] == s.user_id), None)
        owner = s is not None and t['owner'] == s.user_id
        if not owner and not (host and self._owns(t, host)) and not self.sessions.has_perm('admin'):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        self.cancel(t, recurse)

    def rpc_cancelTaskChildren(self, task_id):
        """kojihub/kojihub.py: RootExports.cancelTaskChildren"""
        if self.state.session is None:
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        t = self.get(task_id)
        host = next((h for h in self.state.hosts.values()
                     if h['user_id'] == self.state.session.user_id), None)
        if t['owner'] != self.state.session.user_id and not (host and self._owns(t, host)) \
                and not self.sessions.has_perm('admin'):
            raise koji.ActionNotAllowed('Cannot cancel task, not owner')
        for child in self.children(t['id']):
            self.cancel(child)

    def rpc_listTaskOutput(self, taskID, stat=False, all_volumes=False, strict=False):
        """kojihub/kojihub.py: RootExports.listTaskOutput (list_task_output)"""
        if strict:
            self.get(taskID)
        base = self.state.workdir / koji.pathinfo.taskrelpath(_int(taskID))
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
        """kojihub/kojihub.py: RootExports.downloadTaskOutput"""
        size = _int(size)
        self.uploads.volume(volume)
        if '..' in fileName:
            raise koji.GenericError('Invalid file name: %s' % fileName)
        path = os.path.normpath('%s/%s/%s' % (self.state.workdir, koji.pathinfo.taskrelpath(taskID),
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

    def host_getHostTasks(self):
        """kojihub/kojihub.py: HostExports.getHostTasks"""
        host = self.sessions.current_host()
        tasks = []
        for t in self.state.tasks.values():
            if self._owns(t, host):
                entry = {'id': t['id'], 'waiting': t['waiting'], 'weight': t['weight']}
                if t['waiting'] and self._wait_check(t['id'])[0]:
                    entry['alert'] = True
                tasks.append(entry)
        return tasks

    def host_getTasks(self):
        """kojihub/scheduler.py: get_tasks_for_host: ASSIGNED tasks (auto_assign plays scheduler)"""
        host = self.sessions.current_host()
        if self.state.auto_assign and host['ready'] and host['enabled']:
            arches = host['arches'].split() + ['noarch']
            free = sorted((t for t in self.state.tasks.values() if t['state'] == TS['FREE']),
                          key=lambda t: (t['priority'], t['create_ts']))
            for t in free:
                if t['arch'] in arches and self.state.channels[t['channel_id']] in host['channels'] \
                        and host['id'] not in t['refusals']:
                    self._lock(t, host['id'], 'ASSIGNED')
        return [{'id': t['id'], 'state': t['state'], 'channel_id': t['channel_id'],
                 'host_id': t['host_id'], 'arch': t['arch'], 'method': t['method'],
                 'priority': t['priority'], 'create_ts': t['create_ts']}
                for t in self.state.tasks.values()
                if t['state'] == TS['ASSIGNED'] and t['host_id'] == host['id']]

    def host_openTask(self, task_id):
        """kojihub/kojihub.py: HostExports.openTask"""
        host = self.sessions.current_host()
        t = self.get(task_id)
        if not self._lock(t, host['id'], 'OPEN'):
            return None
        info = self.info(t)
        info['request'] = t['request']     # kojihub returns the raw XML request here
        return info

    def host_closeTask(self, task_id, response):
        """kojihub/kojihub.py: HostExports.closeTask"""
        self._finish(task_id, response, TS['CLOSED'])

    def host_failTask(self, task_id, response):
        """kojihub/kojihub.py: HostExports.failTask"""
        self._finish(task_id, response, TS['FAILED'])

    def _finish(self, task_id, response, state):
        """kojihub/kojihub.py: Task.close / Task.fail of the calling host's own task"""
        host = self.sessions.current_host()
        t = self.get(task_id)
        self.assert_owns(t, host)
        if self.state.strict_results:
            self._check_response(t, response, fault=state == TS['FAILED'])
        t['result'], t['state'] = response, state
        t['completion_ts'] = time.time()
        t['completion_time'] = _iso(t['completion_ts'])

    def host_freeTasks(self, tasks):
        """kojihub/kojihub.py: HostExports.freeTasks"""
        host = self.sessions.current_host()
        for task_id in tasks:
            t = self.get(task_id)
            if not self._owns(t, host):
                self.state.warn("host %d freeTasks: task %d is not open on it (skipped)"
                                % (host['id'], t['id']))
                continue
            self._free(t)

    def host_setTaskWeight(self, task_id, weight):
        """kojihub/kojihub.py: HostExports.setTaskWeight"""
        host = self.sessions.current_host()
        t = self.get(task_id)
        self.assert_owns(t, host)
        try:
            t['weight'] = float(weight)
        except (TypeError, ValueError):
            raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                      % (weight, type(weight), float))

    def host_refuseTask(self, task_id, soft=True, msg=''):
        """kojihub/kojihub.py: HostExports.refuseTask"""
        soft, msg = bool(soft), str(msg)
        host = self.sessions.current_host()
        t = self.get(task_id)
        if t['host_id'] != host['id']:
            self.state.warn('Host %s refused unrelated task: %s' % (host['id'], t['id']))
            return None
        t['refusals'].append(host['id'])
        t.setdefault('refusal_log', []).append({'host_id': host['id'], 'soft': soft, 'msg': msg})
        self._free(t)

    def host_subtask(self, method, arglist, parent, **opts):
        """kojihub/kojihub.py: HostExports.subtask"""
        host = self.sessions.current_host()
        ptask = self.get(parent)
        self.assert_owns(ptask, host)
        if 'label' in opts:
            for c in self.children(ptask['id']):
                if c['label'] == opts['label']:
                    return c['id']
        if 'kwargs' in opts:
            arglist = koji.encode_args(*arglist, **opts.pop('kwargs'))
        return self.make_task(method, arglist, ptask['owner'],
                              arch=opts.get('arch', ptask['arch']),
                              channel=opts.get('channel', self.state.channels[ptask['channel_id']]),
                              priority=opts.get('priority', ptask['priority'] - 1),
                              parent=ptask['id'], label=opts.get('label'),
                              assign=opts.get('assign'))

    def host_subtask2(self, parent_, taskopts_, method_, *args, **opts):
        """kojihub/kojihub.py: HostExports.subtask2"""
        return self.host_subtask(method_, koji.encode_args(*args, **opts), parent_, **taskopts_)

    def _wait_check(self, parent):
        finished, unfinished = [], []
        for c in self.children(parent):
            if c['awaited']:
                (finished if c['state'] in FINISHED else unfinished).append(c['id'])
        return finished, unfinished

    def host_taskSetWait(self, parent, tasks):
        """kojihub/kojihub.py: HostExports.taskSetWait"""
        self.sessions.current_host()
        self.get(parent)['waiting'] = True
        for c in self.children(parent):
            if tasks is None or c['id'] in tasks:
                c['awaited'] = True
            elif c['awaited']:
                c['awaited'] = False

    def host_taskWait(self, parent):
        """kojihub/kojihub.py: HostExports.taskWait"""
        self.sessions.current_host()
        finished, unfinished = self._wait_check(parent)
        for tid in finished:
            self.state.tasks[tid]['awaited'] = False
        return [finished, unfinished]

    def host_taskWaitResults(self, parent, tasks, canfail=None):
        """kojihub/kojihub.py: HostExports.taskWaitResults"""
        self.sessions.current_host()
        canfail = canfail or []
        self.get(parent)['waiting'] = False
        for c in self.children(parent):
            c['awaited'] = False
        if tasks is None:
            tasks = [c['id'] for c in self.children(parent) if c['state'] in FINISHED]
        results = []
        for tid in tasks:
            t = self.get(tid)
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
            if not norm.startswith(taskdir + '/') or not (self.state.workdir / norm).is_file():
                raise koji.GenericError("No such file: %s/%s (hubsim: %s entry of task %i "
                                        "must be uploaded under %s)"
                                        % (self.state.workdir, rel, key, t['id'], taskdir))
            base = os.path.basename(norm)
            if key in ('rpms', 'srpms', 'srpm'):
                is_src = base.endswith('.src.rpm')
                if not base.endswith('.rpm') or is_src != (key != 'rpms'):
                    raise koji.GenericError("hubsim: bad %s file name: %s" % (key, base))
        br = self.state.brs.get(result['brootid'])
        if br is None or br['task_id'] != t['id']:
            raise koji.GenericError("hubsim: brootid %r is not a buildroot of task %i"
                                    % (result['brootid'], t['id']))

    def create_task(self, method, args, arch='x86_64', channel='default',
                    priority=koji.PRIO_DEFAULT, owner=None, kwargs=None):
        """A FREE top-level task; kwargs are folded in with koji.encode_args."""
        with self.state.changed:
            if kwargs:
                args = koji.encode_args(*args, **kwargs)
            owner = self.state.admin_id if owner is None else (
                owner if isinstance(owner, int) else self.sessions.rpc_getUser(owner, strict=True)['id'])
            return self.make_task(method, list(args), owner, arch, channel, priority)

    def assign(self, task_id, host_id):
        """What the scheduler does: FREE -> ASSIGNED to host_id (one of the task's channel
        that can run its arch)."""
        with self.state.changed:
            t = self.state.tasks[task_id]
            host = self.state.hosts[host_id]
            if self.state.channels[t['channel_id']] not in host['channels'] or \
                    t['arch'] not in host['arches'].split() + ['noarch']:
                raise koji.GenericError(
                    "hubsim: the scheduler never assigns task %d (channel %s, arch %s) to host "
                    "%s (channels %s, arches %s)"
                    % (task_id, self.state.channels[t['channel_id']], t['arch'], host['name'],
                       ', '.join(host['channels']), host['arches']))
            if t['state'] != TS['FREE'] or not self._lock(t, host_id, 'ASSIGNED'):
                raise koji.GenericError("cannot assign task %d in state %s"
                                        % (task_id, TS[t['state']]))
            self.state.changed.notify_all()

    def cancel_task(self, task_id, recurse=True):
        with self.state.changed:
            self.cancel(self.state.tasks[task_id], recurse)
            self.state.changed.notify_all()

    def run_scheduler(self, now=None):
        """The hub scheduler's timeouts: no heartbeat for 180 s -> not ready, task
        ASSIGNED for 300 s -> freed, host silent 900 s -> its OPEN tasks freed."""
        now = time.time() if now is None else now
        with self.state.changed:
            for h in self.state.hosts.values():
                if h['ready'] and (h['update_ts'] is None or now - h['update_ts'] > READY_TIMEOUT):
                    h['ready'] = False
            for t in self.state.tasks.values():
                if t['state'] == TS['ASSIGNED'] and now - t['assign_ts'] > ASSIGN_TIMEOUT:
                    self._free(t)
                elif t['state'] == TS['OPEN']:
                    seen = self.state.hosts[t['host_id']]['update_ts'] or t['start_ts']
                    if now - seen > HOST_TIMEOUT:
                        self._free(t)
            self.state.changed.notify_all()

    def task(self, task_id):
        """Task state for assertions: state name, decoded request/result, fault."""
        with self.state.lock:
            t = self.state.tasks[task_id]
            info = self.info(t, request=True)
            info.update(state=TS[t['state']], channel=self.state.channels[t['channel_id']],
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
        with self.state.changed:
            while self.state.tasks[task_id]['state'] not in wanted:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("task %d still %s after %ss"
                                       % (task_id, TS[self.state.tasks[task_id]['state']], timeout))
                self.state.changed.wait(left)
            return self.task(task_id)

    def rpc_getTaskDescendents(self, task_id, request=False):
        """kojihub/kojihub.py: get_task_descendents: {str(task id): [child infos]} over the tree"""
        result, queue = {}, [self.get(task_id)['id']]
        while queue:
            tid = queue.pop(0)
            children = self.children(tid)
            result[str(tid)] = [self.info(c, request) for c in children]
            queue.extend(c['id'] for c in children)
        return result
