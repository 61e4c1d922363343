"""Builds, packages, tagging, notifications and host listings of the hub simulator,
driven by an unmodified koji.ClientSession; RPMs are real ones made with rpmbuild."""

from __future__ import annotations

import koji
import pytest

from hubsim import HubSimulator

from .test_hubsim import PW, host_session, session

TASKDIR = koji.pathinfo.taskrelpath


@pytest.fixture
def hub(tmp_path):
    with HubSimulator(tmp_path / 'koji') as hub:
        hub.add_tag('f40-build')
        hub.add_tag('f40')
        hub.add_target('f40-candidate', 'f40-build', 'f40')
        yield hub


def files(rpm_pair):
    srpm, binaries = rpm_pair
    return [srpm] + binaries


# ------------------------------------------------------------------ test API
def test_import_build_stores_files_rows_and_tagging(hub, rpms):
    bid = hub.import_build(files(rpms('foo')), tag='f40', owner='hubsim-admin')
    b = hub.build(bid)
    assert (b['state'], b['nvr'], b['epoch'], b['owner_name']) == \
        ('COMPLETE', 'foo-1.0-1', None, 'hubsim-admin')
    assert sorted(r['arch'] for r in b['rpms']) == ['noarch', 'src']
    pinfo = koji.PathInfo(topdir=str(hub.topdir))
    for r in b['rpms']:
        path = '%s/%s' % (pinfo.build(b), pinfo.rpm(r))
        with open(path, 'rb') as f:
            assert len(f.read()) == r['size']
        assert len(r['payloadhash']) == 32 and r['buildtime'] > 0 and r['build_id'] == bid
    assert hub.tagged('f40') == ['foo-1.0-1'] and hub.tagged('f40-build') == []
    assert hub.packages[hub.tag('f40')['id']]['foo']['blocked'] is False
    # imported RPMs are known to buildroot listings (kojihub get_rpm by NVRA)
    assert hub.rpc_getRPM({'name': 'foo', 'version': '1.0', 'release': '1',
                           'arch': 'noarch'})['build_id'] == bid


def test_import_build_refuses_duplicates_and_bad_sets(hub, rpms):
    hub.import_build(files(rpms('foo')))
    with pytest.raises(koji.GenericError, match='Build already exists'):
        hub.import_build(files(rpms('foo')))
    with pytest.raises(koji.GenericError, match='exactly one SRPM'):
        hub.import_build(rpms('bar')[1])
    srpm, _ = rpms('bar')
    with pytest.raises(koji.GenericError, match='srpm mismatch'):
        hub.import_build([srpm] + rpms('baz')[1])
    assert [b['name'] for b in hub.builds.values()] == ['foo']


def test_add_package_and_group(hub):
    hub.add_user('alice', PW)
    hub.add_package('f40', 'foo', owner='alice', blocked=True)
    hub.add_group('f40-build', 'build', ['bash', 'rpm-build'])
    assert hub.packages[hub.tag('f40')['id']]['foo'] == \
        {'blocked': True, 'owner_id': hub.rpc_getUser('alice')['id'], 'extra_arches': None,
         'create_event': hub.rpc_getLastEvent()['id']}
    assert hub.groups[hub.tag('f40-build')['id']] == {'build': ['bash', 'rpm-build']}
    with pytest.raises(koji.GenericError, match='No such tagInfo'):
        hub.add_package('nope', 'foo')


# ------------------------------------------------------- the build parent task
def user_session(hub, name='alice', perms=()):
    if hub.rpc_getUser(name) is None:
        hub.add_user(name, PW, perms=perms)
    s = session(hub, name)
    s.login()
    return s


def upload(s, tid, path):
    s.uploadWrapper(str(path), TASKDIR(tid))
    return '%s/%s' % (TASKDIR(tid), path.name)


class Flow:
    """A build task of alice opened by builder1, with one buildArch child that has
    uploaded the RPMs of `pair` and a log, and a buildroot."""

    def __init__(self, hub, pair, scratch=False, target='f40-candidate'):
        self.hub = hub
        self.user = user_session(hub)
        self.hid, self.s = host_session(hub)
        self.tid = self.user.build('cli-upload/%s' % pair[0].name, target,
                                   {'scratch': True} if scratch else None)
        hub.assign(self.tid, self.hid)
        self.s.host.openTask(self.tid)
        self.child = self.s.host.subtask('buildArch', ['x', 'f40-build', 'noarch', True, {}],
                                         self.tid, arch='noarch')
        hub.assign(self.child, self.hid)
        self.s.host.openTask(self.child)
        self.srpm = upload(self.s, self.child, pair[0])
        self.rpms = [upload(self.s, self.child, p) for p in pair[1]]
        log = pair[0].parent / 'build.log'
        log.write_text('built\n')
        self.logs = {'noarch': [upload(self.s, self.child, log)]}
        repo = hub.add_repo('f40-build')
        self.br = self.s.host.newBuildRoot(repo, 'noarch', task_id=self.child)

    def init(self, **extra):
        name, version, release = self.srpm.rsplit('/', 1)[1][:-8].rsplit('-', 2)
        data = dict(name=name, version=version, release=release, epoch=None,
                    task_id=self.tid, **extra)
        return self.s.host.initBuild(data)

    def brmap(self):
        return {p: self.br for p in [self.srpm] + self.rpms}


def test_client_build_call_creates_owned_task(hub, rpms):
    alice = user_session(hub)
    tid = alice.build('git://scm/foo#abc', 'f40-candidate', {'scratch': True}, priority=2)
    task = hub.task(tid)
    assert (task['method'], task['owner'], task['arch'], task['channel'], task['priority']) == \
        ('build', hub.rpc_getUser('alice')['id'], 'noarch', 'default', koji.PRIO_DEFAULT + 2)
    assert task['request'] == ['git://scm/foo#abc', 'f40-candidate', {'scratch': True}]
    chain = alice.chainBuild([['git://scm/a#1'], ['git://scm/b#2']], 'f40-candidate')
    assert hub.task(chain)['method'] == 'chainbuild'
    with pytest.raises(koji.ActionNotAllowed, match='only admins may create high-priority'):
        alice.build('x.src.rpm', 'f40-candidate', priority=-1)
    with pytest.raises(koji.GenericError, match='No such channel'):
        alice.build('x.src.rpm', 'f40-candidate', channel='nope')
    with pytest.raises(koji.AuthError, match='Not logged-in'):
        koji.ClientSession(hub.url).build('x.src.rpm', 'f40-candidate')


def test_init_complete_tag_build(hub, rpms):
    pair = rpms('foo')
    flow = Flow(hub, pair)
    bid = flow.init(source='git://scm/foo#abc')
    b = hub.build(bid)
    assert (b['state'], b['owner_name'], b['task_id'], b['source'], b['completion_ts']) == \
        ('BUILDING', 'alice', flow.tid, 'git://scm/foo#abc', None)
    assert flow.init() == bid                  # the same task again (a restarted parent)
    info = flow.s.host.completeBuild(flow.tid, bid, flow.srpm, flow.rpms, flow.brmap(),
                                     flow.logs)
    b = hub.build(bid)
    assert info['state'] == koji.BUILD_STATES['COMPLETE'] and b['state'] == 'COMPLETE'
    assert {r['arch']: r['buildroot_id'] for r in b['rpms']} == {'src': flow.br,
                                                                  'noarch': flow.br}
    pinfo = koji.PathInfo(topdir=str(hub.topdir))
    builddir = pinfo.build(b)
    for r in b['rpms']:
        assert (hub.topdir / builddir / pinfo.rpm(r)).is_file()
    assert (hub.topdir / pinfo.build_logs(b) / 'noarch' / 'build.log').read_text() == 'built\n'
    assert (hub.workdir / flow.srpm).is_symlink()         # moved, as kojihub does
    assert flow.user.getBuild('foo-1.0-1')['id'] == bid
    assert flow.user.getBuild({'name': 'foo', 'version': '1.0', 'release': '1'})['id'] == bid
    assert flow.user.getBuild(9999) is None
    with pytest.raises(koji.GenericError, match='No such build'):
        flow.user.getBuild('nope-1-1', strict=True)
    assert [r['nvr'] for r in flow.user.listRPMs(buildID=bid)] == ['foo-1.0-1'] * 2
    assert [r['arch'] for r in flow.user.listRPMs(buildrootID=flow.br, arches='src')] == ['src']
    assert [b['nvr'] for b in flow.user.listBuilds(userID='alice', state=1)] == ['foo-1.0-1']
    assert flow.user.getNextRelease({'name': 'foo', 'version': '1.0'}) == '2'
    # no subscriber: completeBuild makes no buildNotification task
    assert [t['method'] for t in hub.tasks.values()] == ['build', 'buildArch']
    # the tagBuild subtask kojid's BuildTask starts, and its notification
    tag_task = flow.s.host.subtask('tagBuild', [hub.tag('f40')['id'], bid, False, None, True],
                                   flow.tid)
    hub.assign(tag_task, flow.hid)
    flow.s.host.openTask(tag_task)
    with pytest.raises(koji.TagError, match='Package foo not in list for f40'):
        flow.s.host.tagBuild(tag_task, 'f40', bid)
    hub.add_package('f40', 'foo')
    flow.s.host.tagBuild(tag_task, 'f40', bid)
    assert hub.tagged('f40') == ['foo-1.0-1']
    assert hub.tag_listing[-1]['creator_id'] == hub.rpc_getUser('alice')['id']
    with pytest.raises(koji.TagError, match=r'build foo-1.0-1 already tagged \(f40\)'):
        flow.s.host.tagBuild(tag_task, 'f40', bid)
    assert flow.s.host.tagNotification(True, hub.tag('f40')['id'], None, bid,
                                       hub.rpc_getUser('alice')['id'], True) is None
    [cfg] = [flow.user.getPackageConfig('f40', 'foo')]
    assert (cfg['package_name'], cfg['blocked'], cfg['owner_name']) == \
        ('foo', False, 'hubsim-admin')
    assert flow.user.getPackageConfig('f40-build', 'foo') is None
    assert [b['nvr'] for b in flow.user.listTagged('f40', package='foo')] == ['foo-1.0-1']
    assert [b['nvr'] for b in flow.user.getLatestBuilds('f40')] == ['foo-1.0-1']


def test_complete_build_rules(hub, rpms, tmp_path):
    flow = Flow(hub, rpms('foo'))
    bid = flow.init()
    s = flow.s
    with pytest.raises(koji.GenericError, match='No such file: .*/missing.rpm'):
        s.host.completeBuild(flow.tid, bid, flow.srpm, [TASKDIR(flow.child) + '/missing.rpm'])
    other = user_session(hub).build('y.src.rpm', 'f40-candidate')
    hub.assign(other, flow.hid)
    s.host.openTask(other)
    stray = upload(s, other, rpms('foo')[1][0])
    with pytest.raises(koji.GenericError, match='hubsim: .* is not an output of task'):
        s.host.completeBuild(flow.tid, bid, flow.srpm, [stray])
    with pytest.raises(koji.GenericError, match='No such buildroot'):
        s.host.completeBuild(flow.tid, bid, flow.srpm, flow.rpms, {flow.srpm: 999})
    bar = upload(s, flow.child, rpms('bar')[0])
    with pytest.raises(koji.GenericError, match='Unable to complete build: name mismatch'):
        s.host.completeBuild(flow.tid, bid, bar, [])
    with pytest.raises(koji.GenericError, match='srpm mismatch'):
        s.host.completeBuild(flow.tid, bid, flow.srpm, [upload(s, flow.child,
                                                                rpms('bar')[1][0])])
    assert hub.build(bid)['state'] == 'BUILDING' and hub.build(bid)['rpms'] == []
    s.host.completeBuild(flow.tid, bid, flow.srpm, flow.rpms)
    with pytest.raises(koji.GenericError, match='Unable to complete build: state is COMPLETE'):
        s.host.completeBuild(flow.tid, bid, flow.srpm, flow.rpms)
    with pytest.raises(koji.GenericError, match=r'cannot update build \d+, state: COMPLETE'):
        s.host.failBuild(flow.tid, bid)
    with pytest.raises(koji.GenericError, match=r'Build already exists \(id=\d+, state=COMPLETE'):
        flow.init()
    assert {v['method'] for v in hub.violations} == {'host.completeBuild', 'host.failBuild',
                                                     'host.initBuild'}


def test_failed_build_is_recycled_and_in_progress_refused(hub, rpms):
    flow = Flow(hub, rpms('foo'))
    bid = flow.init()
    other = flow.user.build('z.src.rpm', 'f40-candidate')
    hub.assign(other, flow.hid)
    flow.s.host.openTask(other)
    with pytest.raises(koji.GenericError, match=r'Build already in progress \(task %d\)'
                       % flow.tid):
        flow.s.host.initBuild({'name': 'foo', 'version': '1.0', 'release': '1', 'epoch': None,
                               'task_id': other})
    with pytest.raises(koji.GenericError, match='No epoch value for build'):
        flow.s.host.initBuild({'name': 'foo', 'version': '1.0', 'release': '2',
                               'task_id': other})
    flow.s.host.failBuild(flow.tid, bid)
    assert hub.build(bid)['state'] == 'FAILED'
    assert flow.s.host.initBuild({'name': 'foo', 'version': '1.0', 'release': '1',
                                  'epoch': None, 'task_id': other}) == bid
    assert (hub.build(bid)['state'], hub.build(bid)['task_id']) == ('BUILDING', other)
    hub.cancel_task(other)                    # kojihub cancels the task's BUILDING build
    assert hub.build(bid)['state'] == 'CANCELED'


def test_scratch_build_moves_files_without_a_build(hub, rpms):
    flow = Flow(hub, rpms('foo'), scratch=True)
    flow.s.host.moveBuildToScratch(flow.tid, flow.srpm, flow.rpms + flow.rpms, flow.logs)
    dest = hub.topdir / 'scratch' / 'alice' / ('task_%d' % flow.tid)
    assert sorted(p.name for p in dest.iterdir()) == ['foo-1.0-1.noarch.rpm',
                                                      'foo-1.0-1.src.rpm', 'logs']
    assert (dest / 'logs' / 'noarch' / 'build.log').is_file()
    assert hub.builds == {} and hub.rpms == {}
    with pytest.raises(koji.GenericError, match='Destination exists'):
        flow.s.host.moveBuildToScratch(flow.tid, flow.srpm, flow.rpms)   # already moved


def test_notifications_create_tasks_only_for_subscribers(hub, rpms):
    flow = Flow(hub, rpms('foo'))
    hub.add_notification('alice', package='foo', email='alice@example.com')
    hub.add_notification('hubsim-admin', tag='f40', success_only=True)
    hub.add_notification('hubsim-admin', package='other')
    bid = flow.init()
    flow.s.host.completeBuild(flow.tid, bid, flow.srpm, flow.rpms)
    [note] = [t for t in hub.tasks.values() if t['method'] == 'buildNotification']
    info = hub.task(note['id'])
    recipients, build, target, url = info['request']
    assert recipients == ['alice@example.com', 'hubsim-admin@hubsim.test']
    assert (build['nvr'], target['name'], info['owner'], info['arch']) == \
        ('foo-1.0-1', 'f40-candidate', hub.rpc_getUser('builder1')['id'], 'noarch')
    f40, uid = hub.tag('f40')['id'], hub.rpc_getUser('alice')['id']
    failed = flow.s.host.tagNotification(False, f40, None, bid, uid, False, 'TagError: no')
    assert hub.task(failed)['request'] == [['alice@example.com'], False, f40, None, bid, uid,
                                           False, 'TagError: no']
    assert flow.s.host.tagNotification(True, f40, None, bid, uid, True) is None  # ignored
    assert flow.s.host.tagNotification(True, f40, None, 9999, uid) is None       # no build


def test_tag_build_rules_move_and_force(hub, rpms):
    foo = hub.import_build(files(rpms('foo')), tag='f40-build')
    hid, s = host_session(hub)
    tid = hub.create_task('tagBuild', [0, foo], arch='noarch', owner='hubsim-admin')
    hub.assign(tid, hid)
    s.host.openTask(tid)
    hub.add_package('f40', 'foo', blocked=True)
    with pytest.raises(koji.TagError, match='Package foo blocked in f40'):
        s.host.tagBuild(tid, 'f40', foo)
    hub.add_package('f40', 'foo')
    hub.tags[hub.tag('f40')['id']]['locked'] = True
    with pytest.raises(koji.ActionNotAllowed, match='tag is locked'):
        s.host.tagBuild(tid, 'f40', foo)
    hub.tags[hub.tag('f40')['id']]['locked'] = False
    with pytest.raises(koji.TagError, match='build foo-1.0-1 not in tag f40'):
        s.host.tagBuild(tid, 'f40-build', foo, fromtag='f40')
    s.host.tagBuild(tid, 'f40', foo, fromtag='f40-build')
    assert (hub.tagged('f40'), hub.tagged('f40-build')) == (['foo-1.0-1'], [])
    s.host.tagBuild(tid, 'f40', foo, force=True)           # a forced retag
    assert hub.tagged('f40') == ['foo-1.0-1'] and len(hub.tag_rows(tag_id=2)) == 1
    assert hub.rpc_listTagged('f40-build', event=hub.tag_listing[0]['create_event']) != []
    hub.set_policy('tag', 'match operation tag :: deny no tagging of foo')
    with pytest.raises(koji.ActionNotAllowed, match=r'policy violation \(tag\): no tagging of foo'):
        s.host.tagBuild(tid, 'f40-build', foo)
    bar = hub.import_build(files(rpms('bar')))
    hub.builds[bar]['state'] = koji.BUILD_STATES['FAILED']
    hub.add_package('f40', 'bar')
    hub.set_policy('tag', 'all :: allow')
    with pytest.raises(koji.TagError, match='build bar-1.0-1 not complete: state FAILED'):
        s.host.tagBuild(tid, 'f40', bar)


def test_latest_and_listing_filters(hub, rpms):
    hub.import_build(files(rpms('foo', '1')), tag='f40')
    hub.import_build(files(rpms('foo', '2')), tag='f40')
    hub.import_build(files(rpms('bar')), tag='f40')
    s = koji.ClientSession(hub.url)
    assert [b['nvr'] for b in s.listTagged('f40')] == ['bar-1.0-1', 'foo-1.0-2', 'foo-1.0-1']
    assert [b['nvr'] for b in s.listTagged('f40', latest=True, prefix='F')] == ['foo-1.0-2']
    assert [b['nvr'] for b in s.getLatestBuilds('f40', package='foo')] == ['foo-1.0-2']
    assert s.getNextRelease({'name': 'foo', 'version': '1.0'}) == '3'
    assert len(s.listBuilds(prefix='foo')) == 2 and len(s.listBuilds(pattern='bar-*')) == 1
    hub.add_package('f40', 'foo', blocked=True)
    assert [b['nvr'] for b in s.listTagged('f40')] == ['bar-1.0-1']
    with pytest.raises(koji.GenericError, match='No such tagInfo'):
        s.listTagged('nope')
    assert s.listTagged('nope', strict=False) == []


# ------------------------------------------------------------ hosts, restart
def test_list_hosts_and_channels(hub):
    a = hub.add_host('a', arches=['x86_64'], channels=('default', 'createrepo'))
    b = hub.add_host('b', arches=['aarch64'], enabled=False)
    s = koji.ClientSession(hub.url)
    assert [h['id'] for h in s.listHosts()] == [a, b]
    assert [h['name'] for h in s.listHosts(enabled=True)] == ['a']
    assert [h['name'] for h in s.listHosts(arches=['aarch64'])] == ['b']
    chan = s.getChannel('createrepo', strict=True)
    assert [h['name'] for h in s.listHosts(channelID=chan['id'])] == ['a']
    assert [c['name'] for c in s.listChannels(hostID=b)] == ['default']
    assert s.getChannel('nope') is None
    with pytest.raises(koji.GenericError, match='No such channel: nope'):
        s.listHosts(channelID='nope')
    tid = hub.create_task('createrepo', [1, 'x86_64', None], channel='createrepo')
    with pytest.raises(koji.GenericError, match='hubsim: the scheduler never assigns'):
        hub.assign(tid, b)
    hub.assign(tid, a)


def test_restart_hosts_subtasks_are_assigned_to_their_host(hub):
    admin = user_session(hub, 'boss', perms=('admin',))
    with pytest.raises(koji.ActionNotAllowed, match='host permission required'):
        user_session(hub).restartHosts()
    tid = admin.restartHosts(options={'channel': 'default'})
    assert hub.task(tid)['request'] == [{'channel': 'default'}]
    assert hub.task(tid)['priority'] == 5
    h1, s1 = host_session(hub, 'builder1')
    h2, s2 = host_session(hub, 'builder2')
    hub.assign(tid, h1)
    s1.host.openTask(tid)
    for host in s1.listHosts(enabled=True, channelID=1):
        s1.host.subtask('restart', [host], tid, assign=host['id'],
                        label='restart %i' % host['id'])
    kids = {t['host_id']: t for t in hub.tasks.values() if t['method'] == 'restart'}
    assert set(kids) == {h1, h2}
    assert [t['id'] for t in s2.host.getTasks()] == [kids[h2]['id']]
    assert [t['id'] for t in s1.host.getTasks()] == [kids[h1]['id']]
    assert s1.getTaskDescendents(tid) == {
        str(tid): s1.getTaskChildren(tid), str(kids[h1]['id']): [],
        str(kids[h2]['id']): []}


def test_client_tag_build_checks_then_creates_task(hub, rpms):
    foo = hub.import_build(files(rpms('foo')), tag='f40-build')
    alice = user_session(hub)
    with pytest.raises(koji.TagError, match='Package foo not in list for f40'):
        alice.tagBuild('f40', 'foo-1.0-1')
    hub.add_package('f40', 'foo')
    hub.set_policy('tag', 'match operation move :: deny not move\nall :: allow')
    with pytest.raises(koji.ActionNotAllowed, match=r'policy violation \(tag\): not move'):
        alice.tagBuild('f40', foo, fromtag='f40-build')
    hub.set_policy('tag', 'all :: allow')
    tid = alice.tagBuild('f40', foo, fromtag='f40-build')
    task = hub.task(tid)
    assert (task['method'], task['priority'], task['owner'], task['request']) == \
        ('tagBuild', 10, hub.rpc_getUser('alice')['id'],
         [hub.tag('f40')['id'], foo, False, hub.tag('f40-build')['id']])


def test_package_config_at_an_event_only_knows_listings_made_by_then(hub):
    before = hub.rpc_getLastEvent()['id']
    hub.add_package('f40', 'late')
    s = koji.ClientSession(hub.url)
    assert s.getPackageConfig('f40', 'late', event=before) is None
    assert s.getPackageConfig('f40', 'late')['package_name'] == 'late'
    assert s.getPackageConfig('f40', 'late', event=hub.rpc_getLastEvent()['id'])['package_name'] == 'late'


def test_average_build_duration_of_past_builds(hub):
    s = koji.ClientSession(hub.url)
    assert s.getAverageBuildDuration('slow') is None
    hub.add_past_build('slow', '1', '1', seconds=3600)
    hub.add_past_build('slow', '2', '1', seconds=7200)
    assert s.getAverageBuildDuration('slow') == pytest.approx(5400, abs=1)
    assert s.getAverageBuildDuration('slow', age=6) == pytest.approx(5400, abs=1)
