"""The hub simulator, driven by an unmodified koji.ClientSession and koji.daemon."""

from __future__ import annotations

import logging
import os
import time
import types

import koji
import koji.daemon
import koji.tasks
import pytest
import requests
from koji.xmlrpcplus import Fault, dumps

from hubsim import HubSimulator

PW = 'secret'
TASKDIR = koji.pathinfo.taskrelpath


@pytest.fixture
def hub(tmp_path):
    with HubSimulator(tmp_path / 'koji') as hub:
        yield hub


def session(hub, user, password=PW, **opts):
    opts = {'user': user, 'password': password, 'retry_interval': 0.05, 'max_retries': 3,
            'use_fast_upload': True, **opts}
    return koji.ClientSession(hub.url, opts=opts)


def host_session(hub, name='builder1', exclusive=True, **opts):
    hid = hub.add_host(name, arches=['x86_64'], capacity=2.0, password=PW)
    s = session(hub, name, **opts)
    s.login()
    if exclusive:
        s.exclusiveSession()
    return hid, s


def open_task(hub, s, hid, method='buildArch', args=('pkg.src.rpm', 'f40-build', 'x86_64',
                                                       True, {})):
    tid = hub.create_task(method, list(args))
    hub.assign(tid, hid)
    assert s.host.openTask(tid)['id'] == tid
    return tid


def response(result):
    return dumps((result,), methodresponse=1, allow_none=1)


def put(s, tmp_path, tid, name, data=b'data'):
    local = tmp_path / name
    local.write_bytes(data)
    s.uploadWrapper(str(local), TASKDIR(tid))
    return '%s/%s' % (TASKDIR(tid), name)


def last_violation(hub):
    return hub.violations[-1]


# ------------------------------------------------------------------ sessions
def test_login_exclusive_and_host_identity(hub):
    hid, s = host_session(hub, exclusive=False)
    with pytest.raises(koji.AuthError, match='requires an exclusive session'):
        s.host.getID()
    s.exclusiveSession()
    assert s.host.getID() == hid
    assert s.host.getHost()['name'] == 'builder1'
    assert s.getLoggedInUser()['name'] == 'builder1'
    assert s.getSessionInfo()['exclusive']
    assert ('host.getID', 'builder1') in hub.calls
    assert last_violation(hub)['method'] == 'host.getID'


def test_anonymous_and_non_host_users_are_rejected(hub):
    hub.add_user('alice', PW)
    anon = koji.ClientSession(hub.url)
    assert anon.getAPIVersion() == koji.API_VERSION and anon.hello() == 'Hello World'
    assert 'host.openTask' in anon.system.listMethods()
    with pytest.raises(koji.AuthError, match='Not logged-in'):
        anon.host.getID()
    with pytest.raises(koji.AuthError, match='invalid username or password'):
        session(hub, 'alice', 'wrong').login()
    alice = session(hub, 'alice')
    alice.login()
    alice.exclusiveSession()
    with pytest.raises(koji.AuthError, match='is not a host'):
        alice.host.getID()
    with pytest.raises(koji.GenericError, match='Invalid method'):
        alice.noSuchCall()
    with pytest.raises(koji.ParameterError):
        alice.getTaskInfo()


def test_exclusive_lock_and_forced_takeover(hub):
    hid, first = host_session(hub)
    second = session(hub, 'builder1')
    second.login()
    with pytest.raises(koji.AuthLockError):
        second.getLoggedInUser()           # user locked by another session
    with pytest.raises(koji.AuthLockError, match='Cannot get exclusive session'):
        second.exclusiveSession()
    second.exclusiveSession(force=True)
    assert second.host.getID() == hid
    with pytest.raises(koji.AuthError, match='Invalid session'):
        first.host.getID()


def test_subsession_inherits_host_and_logout_child(hub):
    hid, s = host_session(hub)
    sub = s.subsession()
    assert sub.host.getID() == hid
    with pytest.raises(koji.GenericError, match='subsessions cannot become exclusive'):
        sub.exclusiveSession()
    s.logoutChild(sub.sinfo['session-id'])
    with pytest.raises(koji.AuthError, match='Invalid session'):
        sub.host.getID()
    assert s.host.getID() == hid


def test_callnum_sequence_and_retry_rules(hub):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid)
    s.host.setTaskWeight(tid, 1.5)            # a committing call: its callnum is stored
    done = s.getSessionInfo()['callnum']
    s.getAPIVersion()                          # read-only calls do not store theirs
    assert s.getSessionInfo()['callnum'] == done
    s.callnum = done                           # replay the committed number
    with pytest.raises(koji.RetryError):
        s.host.setTaskWeight(tid, 2.0)
    s.callnum = done - 2                       # out of order
    with pytest.raises(koji.SequenceError):
        s.getAPIVersion()
    s.callnum = done + 10
    s.host.updateHost(0.0, True)
    s.callnum -= 1                             # updateHost is on the hub's RetryWhitelist
    s.host.updateHost(0.0, True)
    assert [v['error'] for v in hub.violations[-2:]] == ['RetryError', 'SequenceError']


def test_lost_reply_then_retry(hub):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid, method='sleep', args=[1])
    hub.drop_response('host.updateHost')
    s.host.updateHost(0.5, True)               # retried with the same callnum: allowed
    assert hub.host(hid)['task_load'] == 0.5
    hub.drop_response('host.closeTask')
    with pytest.raises(koji.RetryError):       # the hub did close it, but cannot say so
        s.host.closeTask(tid, response(None))
    assert hub.task(tid)['state'] == 'CLOSED'
    hub.enforce_callnum = False                # deployed hubs ignore the callnum header...
    tid = open_task(hub, s, hid, method='sleep', args=[1])
    hub.drop_response('host.closeTask')
    with pytest.raises(koji.ActionNotAllowed):  # ...so the retry runs again and is refused
        s.host.closeTask(tid, response(None))


def test_suspend_and_client_retry(hub):
    hid, s = host_session(hub, retry_interval=0.2, max_retries=30)
    port = hub.url
    hub.suspend(1.0)
    with pytest.raises(requests.exceptions.ConnectionError):
        koji.ClientSession(hub.url).getAPIVersion()    # anonymous calls do not retry
    start = time.monotonic()
    s.host.updateHost(0.0, True)
    assert time.monotonic() - start >= 0.8
    assert hub.url == port and hub.host(hid)['ready']
    hub.add_user('alice', PW)
    impatient = session(hub, 'alice', max_retries=1)
    impatient.login()
    hub.suspend()
    with pytest.raises(requests.exceptions.ConnectionError):
        impatient.getAPIVersion()                       # gives up after max_retries
    hub.resume()
    assert s.host.getID() == hid


# -------------------------------------------------------------- task states
def test_task_lifecycle(hub, tmp_path):
    hid, s = host_session(hub)
    tid = hub.create_task('newRepo', ['f40-build'], arch='noarch', kwargs={'event': 7})
    assert hub.task(tid)['state'] == 'FREE'
    assert s.host.getTasks() == []
    hub.assign(tid, hid)
    [assigned] = s.host.getTasks()
    assert (assigned['id'], assigned['state'], assigned['host_id']) == (
        tid, koji.TASK_STATES['ASSIGNED'], hid)
    info = s.getTaskInfo(tid, request=True)
    assert koji.decode_args(*info['request']) == (('f40-build',), {'event': 7})
    assert s.getTaskRequest(tid) == info['request'] and not s.taskFinished(tid)
    opened = s.host.openTask(tid)
    assert opened['state'] == koji.TASK_STATES['OPEN'] and '<methodCall>' in opened['request']
    s.host.setTaskWeight(tid, 1.5)
    assert s.host.getHostTasks() == [{'id': tid, 'waiting': None, 'weight': 1.5}]
    s.host.closeTask(tid, response({'ok': True}))
    assert hub.wait_task(tid, timeout=1)['result'] == {'ok': True}
    assert s.getTaskResult(tid) == {'ok': True}


def test_failed_task_keeps_fault_code(hub):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid, method='rebuildSRPM', args=['git://x#1', 'tag', {}])
    s.host.failTask(tid, dumps(Fault(koji.BuildError.faultCode, 'rpmbuild failed')))
    assert hub.task(tid)['fault'] == {'faultCode': 1005, 'faultString': 'rpmbuild failed'}
    with pytest.raises(koji.BuildError, match='rpmbuild failed'):
        s.getTaskResult(tid)
    assert s.getTaskResult(tid, raise_fault=False)['faultCode'] == 1005


def test_forbidden_task_transitions(hub):
    hid, s = host_session(hub)
    other_id, other = host_session(hub, 'builder2')
    tid = hub.create_task('sleep', [1])
    with pytest.raises(koji.ActionNotAllowed):
        s.host.closeTask(tid, response(None))          # FREE: nobody owns it
    hub.assign(tid, other_id)
    assert s.host.openTask(tid) is None                # assigned to someone else
    with pytest.raises(koji.ActionNotAllowed):
        s.host.setTaskWeight(tid, 1.0)
    assert other.host.openTask(tid)['id'] == tid
    assert other.host.openTask(tid) is None            # double open: hub only logs it
    with pytest.raises(koji.ActionNotAllowed, match='does not own task'):
        s.host.failTask(tid, dumps(Fault(1, 'x')))
    s.host.freeTasks([tid])                            # not ours: skipped, not freed
    assert hub.task(tid)['state'] == 'OPEN'
    with pytest.raises(koji.GenericError, match='must be an encoded Fault'):
        other.host.failTask(tid, response('not a fault'))
    other.host.closeTask(tid, response(None))
    for call in (lambda: other.host.closeTask(tid, response(None)),
                 lambda: other.host.failTask(tid, dumps(Fault(1, 'late')))):
        with pytest.raises(koji.ActionNotAllowed):
            call()
    with pytest.raises(koji.GenericError, match='Cannot free task'):
        other.host.refuseTask(tid)                     # CLOSED cannot go back to FREE
    assert s.host.openTask(tid) is None
    assert any('double open' in w for w in hub.warnings)


def test_free_refuse_cancel(hub):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid, method='sleep', args=[1])
    s.host.freeTasks([tid])                            # OPEN -> FREE
    assert hub.task(tid)['state'] == 'FREE' and hub.task(tid)['host_id'] is None
    hub.assign(tid, hid)
    s.host.refuseTask(tid, soft=False, msg='no handler for method')
    t = hub.task(tid)
    assert t['state'] == 'FREE' and t['refusals'] == [
        {'host_id': hid, 'soft': False, 'msg': 'no handler for method'}]
    s.host.refuseTask(tid)                             # unrelated: ignored, logged
    assert 'refused unrelated task' in hub.warnings[-1]
    hub.assign(tid, hid)
    hub.cancel_task(tid)                               # ASSIGNED -> CANCELED
    assert s.host.openTask(tid) is None
    assert s.getTaskInfo(tid)['state'] == koji.TASK_STATES['CANCELED']
    tid2 = open_task(hub, s, hid, method='sleep', args=[1])
    hub.add_user('alice', PW)
    alice = session(hub, 'alice')
    alice.login()
    with pytest.raises(koji.ActionNotAllowed, match='not owner'):
        alice.cancelTask(tid2)                         # owner, holding host or admin only
    s.cancelTask(tid2)                                 # the host holding it may cancel
    with pytest.raises(koji.ActionNotAllowed):
        s.host.closeTask(tid2, response(None))


def test_subtasks_and_waiting(hub):
    hid, s = host_session(hub)
    parent = open_task(hub, s, hid, method='build', args=['git://x#1', 'f40', {}])
    child = s.host.subtask('createrepo', [1, 'x86_64', None], parent, arch='x86_64',
                           label='x86_64')
    assert s.host.subtask('createrepo', [], parent, label='x86_64') == child
    s.host.taskSetWait(parent, [child])
    assert s.host.taskWait(parent) == [[], [child]]
    hub.assign(child, hid)
    s.host.openTask(child)
    s.host.closeTask(child, response([1, 'x86_64']))
    assert s.host.getHostTasks()[0]['alert']
    assert s.host.taskWait(parent) == [[child], []]
    assert s.host.taskWaitResults(parent, [child]) == [[child, [1, 'x86_64']]]
    assert [c['id'] for c in s.getTaskChildren(parent)] == [child]


# ----------------------------------------------------------------- uploads
def test_fast_upload_and_check_upload(hub, tmp_path):
    hid, s = host_session(hub, upload_blocksize=1000)
    tid = open_task(hub, s, hid)
    payload = bytes(range(256)) * 20
    path = put(s, tmp_path, tid, 'pkg-1.0-1.x86_64.rpm', payload)
    assert hub.uploaded(path) == payload
    assert len([c for c in hub.calls if c[0] == 'rawUpload']) == 6   # 5 chunks + 1 empty
    check = s.checkUpload(TASKDIR(tid), 'pkg-1.0-1.x86_64.rpm', verify='adler32')
    assert check['size'] == len(payload)
    assert check['hexdigest'] == koji.util.adler32_constructor(payload).hexdigest()
    assert s.listTaskOutput(tid) == ['pkg-1.0-1.x86_64.rpm']
    assert s.downloadTaskOutput(tid, 'pkg-1.0-1.x86_64.rpm', size=4) == payload[:4]
    with pytest.raises(koji.GenericError, match='upload path exists'):
        s.rawUpload(b'x', 0, TASKDIR(tid), 'pkg-1.0-1.x86_64.rpm')   # no overwrite


@pytest.mark.parametrize('fast', [True, False])
def test_incremental_log_upload(hub, tmp_path, fast):
    hid, s = host_session(hub, use_fast_upload=fast)
    tid = open_task(hub, s, hid)
    log = tmp_path / 'build.log'
    with open(log, 'w') as out, open(log, 'rb') as fd:
        for line in ('first line\n', 'second line\n'):
            out.write(line)
            out.flush()
            koji.daemon.incremental_upload(s, 'build.log', fd, TASKDIR(tid))
    assert hub.uploaded(TASKDIR(tid) + '/build.log') == b'first line\nsecond line\n'


def test_upload_rules(hub, tmp_path):
    hid, s = host_session(hub)
    other_id, other = host_session(hub, 'builder2')
    tid = open_task(hub, s, hid)
    with pytest.raises(koji.ActionNotAllowed, match='does not own task'):
        put(other, tmp_path, tid, 'evil.log')
    free = hub.create_task('sleep', [1])
    with pytest.raises(koji.ActionNotAllowed):
        put(s, tmp_path, free, 'early.log')            # task not OPEN on this host
    bad_paths = [('tasks/0/%d' % tid, 'a.log', 'Invalid task upload directory'),
                 ('tasks/%d' % tid, 'a.log', 'Invalid task upload directory'),
                 ('../outside', 'a.log', 'Invalid upload directory'),
                 (TASKDIR(tid), '../a.log', 'Invalid upload filename'),
                 (TASKDIR(tid), '.hidden', 'Invalid upload filename')]
    for path, name, msg in bad_paths:
        with pytest.raises(koji.GenericError, match=msg):
            s.rawUpload(b'x', 0, path, name)
    with pytest.raises(Fault, match='Invalid path segment'):
        s.rawUpload(b'x', 0, '/etc', 'passwd')          # kojihub: ValueError, fault code 1
    anon = koji.ClientSession(hub.url)
    anon.sinfo, anon.logged_in, anon.callnum = {'session-id': 999, 'session-key': 'x',
                                                'header-auth': True}, True, 0
    with pytest.raises(koji.AuthError):
        anon.rawUpload(b'x', 0, 'scratch', 'a.log')
    s.rawUpload(b'mine', 0, 'cli-upload/1', 'a.log')    # non-task dirs belong to a user
    hub.add_user('alice', PW)
    alice = session(hub, 'alice')
    alice.login()
    with pytest.raises(koji.GenericError, match='not owner'):
        alice.rawUpload(b'x', 0, 'cli-upload/1', 'b.log')


# -------------------------------------------------------------- buildroots
@pytest.fixture
def repo(hub):
    hub.add_tag('f40-build', arches='x86_64', extra={'rpm.macro.dist': '.fc40'})
    return hub.add_repo('f40-build')


def test_buildroot_state_machine(hub, repo):
    hid, s = host_session(hub)
    other_id, other = host_session(hub, 'builder2')
    tid = open_task(hub, s, hid)
    br = s.host.newBuildRoot(repo, 'x86_64', task_id=tid)
    assert hub.buildroots[0]['state'] == 'INIT'
    with pytest.raises(koji.ActionNotAllowed, match='not owner of buildroot'):
        other.host.setBuildRootState(br, 'BUILDING')
    tid2 = open_task(hub, s, hid, method='sleep', args=[1])
    with pytest.raises(koji.ActionNotAllowed, match='does not have lock on buildroot'):
        s.host.setBuildRootState(br, 'BUILDING', task_id=tid2)
    s.host.setBuildRootList(br, [], task_id=tid)
    with pytest.raises(koji.GenericError, match='wrong state'):
        s.host.updateBuildRootList(br, [], task_id=tid)   # only while BUILDING
    s.host.setBuildRootState(br, 'BUILDING', task_id=tid)
    with pytest.raises(koji.GenericError, match='wrong state'):
        s.host.setBuildRootList(br, [], task_id=tid)      # only while INIT
    with pytest.raises(koji.GenericError, match='Cannot change buildroot state to INIT'):
        s.host.setBuildRootState(br, 'INIT', task_id=tid)
    s.host.setBuildRootState(br, koji.BR_STATES['EXPIRED'], task_id=tid)
    s.host.setBuildRootState(br, 'EXPIRED', task_id=tid)  # expiring twice is quietly fine
    with pytest.raises(koji.GenericError, match='is EXPIRED'):
        s.host.setBuildRootState(br, 'BUILDING', task_id=tid)
    br2 = s.host.newBuildRoot(repo, 'x86_64', task_id=tid)
    s.host.setBuildRootState(br2, 'EXPIRED')               # INIT -> EXPIRED
    listed = s.listBuildroots(hostID=hid, state=(koji.BR_STATES['EXPIRED'],))
    assert [b['id'] for b in listed] == [br, br2]
    assert listed[0]['tag_name'] == 'f40-build' and listed[0]['retire_ts']
    assert s.getBuildroot(br)['task_id'] == tid
    with pytest.raises(koji.GenericError, match='no such repo'):
        s.host.newBuildRoot(999, 'x86_64', task_id=tid)


def test_rpmlist_known_unknown_external(hub, repo):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid)
    hub.add_external_repo('fedora-40', 'https://example.org/f40/$arch/', tags=['f40-build'])
    hub.add_rpm('bash', '5.2', '1.fc40', None, 'x86_64', 'aa' * 16, 100, 1700000000)
    known = {'name': 'bash', 'version': '5.2', 'release': '1.fc40', 'epoch': None,
             'arch': 'x86_64', 'payloadhash': 'aa' * 16, 'size': 100, 'buildtime': 1700000000}
    unknown = dict(known, name='from-the-image')
    external = dict(unknown, location='fedora-40',
                    external_repo=s.getExternalRepoList('f40-build')[0])
    br = s.host.newBuildRoot(repo, 'x86_64', task_id=tid)
    with pytest.raises(koji.GenericError, match='No such rpm'):
        s.host.setBuildRootList(br, [known, unknown], task_id=tid)
    with pytest.raises(koji.GenericError, match='payloadhash'):
        s.host.setBuildRootList(br, [dict(known, payloadhash='bb' * 16)], task_id=tid)
    with pytest.raises(koji.GenericError, match='external_repo: nowhere'):
        s.host.setBuildRootList(br, [dict(external, location='nowhere')], task_id=tid)
    assert hub.buildroots[0]['rpmlist'] == []          # a rejected list stores nothing
    s.host.setBuildRootList(br, [known, external], task_id=tid)
    names = [(r['name'], r['external_repo_name']) for r in hub.buildroots[0]['rpmlist']]
    assert names == [('bash', 'INTERNAL'), ('from-the-image', 'fedora-40')]
    s.host.setBuildRootState(br, 'BUILDING', task_id=tid)
    with pytest.raises(koji.GenericError, match='hash changed'):
        s.host.updateBuildRootList(br, [dict(external, payloadhash='cc' * 16)], task_id=tid)
    s.host.updateBuildRootList(br, [known, external], task_id=tid)   # duplicates ignored
    assert len(hub.buildroots[0]['rpmlist']) == 2
    hub.strict_rpm_match = False                         # what the real hub does: NVRA only
    br2 = s.host.newBuildRoot(repo, 'x86_64', task_id=tid)
    s.host.setBuildRootList(br2, [dict(known, payloadhash='bb' * 16)], task_id=tid)


def test_close_build_arch_result_checks(hub, repo, tmp_path):
    hid, s = host_session(hub)
    tid = open_task(hub, s, hid)
    br = s.host.newBuildRoot(repo, 'x86_64', task_id=tid)
    rpm = put(s, tmp_path, tid, 'pkg-1.0-1.fc40.x86_64.rpm')
    log = put(s, tmp_path, tid, 'build.log')
    good = {'rpms': [rpm], 'srpms': [], 'logs': [log], 'brootid': br}
    for bad, msg in [(dict(good, logs=[log, TASKDIR(tid) + '/root.log']), 'No such file'),
                     (dict(good, rpms=['tasks/9/9/pkg-1.0-1.fc40.x86_64.rpm']), 'No such file'),
                     (dict(good, srpms=[rpm]), 'bad srpms file name'),
                     (dict(good, brootid=br + 1), 'not a buildroot of task'),
                     ({'rpms': [rpm], 'logs': [log]}, 'lacks srpms, brootid')]:
        with pytest.raises(koji.GenericError, match=msg):
            s.host.closeTask(tid, response(bad))
    with pytest.raises(koji.GenericError, match='invalid response'):
        s.host.closeTask(tid, 'not xml')
    s.host.closeTask(tid, response(good))
    assert hub.task(tid)['result'] == good


# -------------------------------------------------- heartbeat and scheduler
def test_heartbeat_and_scheduler_timeouts(hub):
    hid, s = host_session(hub)
    assert not hub.host(hid)['ready'] and hub.host(hid)['last_update'] is None
    s.host.updateHost(0.0, True, data={'methods': ['buildArch'], 'maxjobs': 2})
    s.host.updateHost(1.5, True)
    h = hub.host(hid)
    assert h['ready'] and h['task_load'] == 1.5 and len(h['heartbeats']) == 2
    assert h['data'] == {'methods': ['buildArch'], 'maxjobs': 2}
    assert s.getHost(hid)['update_ts'] == h['last_update']
    tid = open_task(hub, s, hid, method='sleep', args=[1])
    hub.run_scheduler(now=h['last_update'] + 200)
    assert not hub.host(hid)['ready'] and hub.task(tid)['state'] == 'OPEN'
    hub.run_scheduler(now=h['last_update'] + 1000)
    assert hub.task(tid)['state'] == 'FREE'


def test_auto_assign(hub):
    hid, s = host_session(hub)
    hub.auto_assign = True
    ppc = hub.create_task('buildArch', [], arch='ppc64le')
    x86 = hub.create_task('buildArch', [], arch='x86_64')
    noarch = hub.create_task('tagBuild', [], arch='noarch')
    assert s.host.getTasks() == []                      # not ready: nothing assigned
    s.host.updateHost(0.0, True)
    assert sorted(t['id'] for t in s.host.getTasks()) == [x86, noarch]
    s.host.refuseTask(x86, soft=False)
    assert [t['id'] for t in s.host.getTasks()] == [noarch]
    assert hub.task(ppc)['state'] == 'FREE'


# ------------------------------------------------- policies, tags, files
def test_policies_are_kojihubs_defaults_until_set(hub):
    """host.evalPolicy/checkPolicy/assertPolicy as kojihub answers them with _default_policies."""
    hid, s = host_session(hub)
    alice = hub.add_user('alice', PW)
    admin_only = 'Only admin can do this via default policy'
    # no user_id in the data: the logged-in user is asked about (the host, no admin)
    assert s.host.evalPolicy('build_from_scm', {}) == 'deny ' + admin_only
    assert s.host.checkPolicy('build_rpm', {'user_id': alice}) == [True, '']
    assert s.host.checkPolicy('build_from_srpm', {'user_id': alice}) == [False, admin_only]
    assert s.host.checkPolicy('build_from_srpm', {'user_id': hub.admin_id}) == [True, '']
    with pytest.raises(koji.ActionNotAllowed,
                       match=r'^policy violation \(build_from_repo_id\): ' + admin_only + '$'):
        s.host.assertPolicy('build_from_repo_id', {'user_id': alice})
    s.host.assertPolicy('build_from_repo_id', {'user_id': hub.admin_id})
    # a policy hub.conf does not have: eval refuses, check allows (MissingPolicyOk)
    with pytest.raises(koji.GenericError, match='no such policy: buildroot_image'):
        s.host.evalPolicy('buildroot_image', {})
    assert s.host.checkPolicy('tag', {}) == [True, 'missing policy']

    hub.set_policy('build_from_scm', 'match scm_host src.example.org :: allow\nall :: deny Bad host')
    assert s.evalPolicy('build_from_scm', {'scm_host': 'src.example.org'}) == 'allow'
    assert s.host.checkPolicy('build_from_scm', {}) == [False, 'Bad host']
    with pytest.raises(koji.ActionNotAllowed, match=r'policy violation \(build_from_scm\): Bad host'):
        s.host.assertPolicy('build_from_scm', {'scm_host': 'x'})
    hub.set_policy('build_rpm', 'bool scratch :: ALLOW\nmatch source *.src.rpm :: maybe')
    assert s.host.checkPolicy('build_rpm', {'scratch': True}) == [True, '']
    assert s.host.checkPolicy('build_rpm', {'scratch': False}) == [False, 'not covered by policy']
    assert s.host.checkPolicy('build_rpm', {'source': 'a.src.rpm'}) == [False, 'error in policy']
    assert hub.warnings == ['Invalid action in policy build_rpm, rule: match source *.src.rpm :: maybe']


def test_tags_repos_and_file_server(hub, tmp_path):
    tag_id = hub.add_tag('f40-build', arches='x86_64 aarch64',
                         extra={'mock.package_manager': 'dnf'})
    hub.add_tag('f40')
    hub.add_target('f40-candidate', 'f40-build', 'f40')
    repodir = tmp_path / 'repo'
    (repodir / 'x86_64' / 'repodata').mkdir(parents=True)
    (repodir / 'x86_64' / 'repodata' / 'repomd.xml').write_text('<repomd/>')
    repo_id = hub.add_repo('f40-build', repodir)
    anon = koji.ClientSession(hub.url)
    config = anon.getBuildConfig('f40-build')
    assert (config['id'], config['arches'], config['extra']) == (
        tag_id, 'x86_64 aarch64', {'mock.package_manager': 'dnf'})
    info = anon.repoInfo(repo_id)
    assert (info['tag_name'], info['state']) == ('f40-build', koji.REPO_READY)
    assert anon.getRepo('f40-build')['id'] == repo_id and anon.getRepo('f40') is None
    assert anon.getBuildTarget('f40-candidate')['build_tag_name'] == 'f40-build'
    assert anon.getBuildTarget('nope') is None
    with pytest.raises(koji.GenericError, match='No such tagInfo'):
        anon.getBuildConfig('nope')
    url = '%s/repos/f40-build/%d/x86_64/repodata/repomd.xml' % (hub.topurl, repo_id)
    assert requests.get(url, timeout=5).text == '<repomd/>'


def test_multicall(hub):
    hid, s = host_session(hub)
    with s.multicall() as m:
        got_id, bad = m.host.getID(), m.getTaskResult(12345)
    assert got_id.result == hid
    with pytest.raises(koji.GenericError, match='No such task'):
        bad.result


# --------------------------------------------- the real koji.daemon loop
class FakeBuildArch(koji.tasks.BaseTaskHandler):
    """buildArch as kojid's calls look, minus the build."""
    Methods = ['buildArch']
    _taskWeight = 1.5

    def handler(self, pkg, root, arch, keep_srpm, opts=None):
        bash = {'name': 'bash', 'version': '5.2', 'release': '1.fc40', 'epoch': None,
                'arch': 'x86_64', 'payloadhash': 'aa' * 16, 'size': 100,
                'buildtime': 1700000000}
        host = self.session.host
        brootid = host.newBuildRoot(opts['repo_id'], arch, task_id=self.id)
        host.setBuildRootList(brootid, [bash], task_id=self.id)
        host.setBuildRootState(brootid, 'BUILDING', task_id=self.id)
        if opts.get('fail'):
            raise koji.BuildError('error building package (arch %s)' % arch)
        os_log = '%s/build.log' % self.workdir
        with open(os_log, 'w') as out, open(os_log, 'rb') as fd:
            out.write('building\n')
            out.flush()
            koji.daemon.incremental_upload(self.session, 'build.log', fd, self.getUploadDir())
        rpm = '%s/pkg-1.0-1.fc40.x86_64.rpm' % self.workdir
        with open(rpm, 'wb') as f:
            f.write(b'rpm')
        self.uploadFile(rpm)
        host.setBuildRootState(brootid, 'EXPIRED', task_id=self.id)
        up = self.getUploadDir()
        return {'rpms': [up + '/pkg-1.0-1.fc40.x86_64.rpm'], 'srpms': [],
                'logs': [up + '/build.log'], 'brootid': brootid}


def test_koji_daemon_task_manager(hub, repo, tmp_path, monkeypatch, request):
    koji_logger = logging.getLogger('koji')
    request.addfinalizer(lambda level=koji_logger.level: koji_logger.setLevel(level))
    koji_logger.setLevel(logging.CRITICAL)
    # TaskManager refuses work above 4x the CPUs' load; this test is about the protocol, not the load.
    monkeypatch.setattr(os, 'getloadavg', lambda: (0.0, 0.0, 0.0))
    hub.add_rpm('bash', '5.2', '1.fc40', None, 'x86_64', 'aa' * 16, 100, 1700000000)
    hub.auto_assign = True
    hid, s = host_session(hub)
    options = types.SimpleNamespace(
        workdir=str(tmp_path / 'work'), mockdir=str(tmp_path), minspace=1, maxjobs=4,
        single=True, failed_buildroot_lifetime=3600)
    manager = koji.daemon.TaskManager(options, s)
    manager.registerHandler(FakeBuildArch)
    ok = hub.create_task('buildArch', ['pkg.src.rpm', 'f40-build', 'x86_64', False,
                                       {'repo_id': repo}])
    manager.updateTasks()
    assert manager.getNextTask()
    assert hub.wait_task(ok, timeout=5)['result']['brootid'] == 1
    assert hub.uploaded(TASKDIR(ok) + '/build.log') == b'building\n'
    assert hub.task(ok)['weight'] == 1.5
    failing = hub.create_task('buildArch', ['pkg.src.rpm', 'f40-build', 'x86_64', False,
                                            {'repo_id': repo, 'fail': True}])
    assert manager.getNextTask()
    assert hub.wait_task(failing, timeout=5)['fault']['faultCode'] == koji.BuildError.faultCode
    unknown = hub.create_task('createrepo', [1, 'x86_64', None])
    assert not manager.getNextTask()                   # refused: no handler
    assert hub.task(unknown)['refusals'][0]['msg'] == 'no handler for method'
    manager.shutdown()
    assert not hub.host(hid)['ready']
    assert [b['state'] for b in hub.buildroots] == ['EXPIRED', 'BUILDING']
    assert hub.violations == []
