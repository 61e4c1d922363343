"""Repos of the hub simulator (repoInit/repoDone, repo.* requests, newRepo), driven by an
unmodified koji.ClientSession; the tagged RPMs are real ones made with rpmbuild."""

from __future__ import annotations

import json
import os
import time

import koji
import pytest

from hubsim import HubSimulator

from .test_builds import files
from .test_hubsim import PW, host_session, open_task, put, session

TAG = 'f40-build'
TASKDIR = koji.pathinfo.taskrelpath


@pytest.fixture
def hub(tmp_path):
    with HubSimulator(tmp_path / 'koji') as hub:
        hub.add_tag(TAG, arches='x86_64 aarch64')
        yield hub


@pytest.fixture
def host(hub):
    hid, s = host_session(hub)
    yield hid, s
    s.logout()


def decoded_request(hub, task_id):
    args, kwargs = koji.decode_args(*hub.task(task_id)['request'])
    return list(args), kwargs


def test_repo_init_lays_out_the_repo_as_kojihub(hub, host, rpms):
    _, s = host
    hub.import_build(files(rpms('foo')), tag=TAG)
    hub.import_build(files(rpms('bar', '1')), tag=TAG)
    hub.import_build(files(rpms('bar', '2')), tag=TAG)          # newer: the only bar listed
    hub.add_package(TAG, 'gone', blocked=True)
    hub.add_group(TAG, 'build', ['foo', 'bar'])

    repo_id, event = s.host.repoInit(TAG, task_id=None)

    repo = hub.repo(repo_id)
    assert (repo['state'], repo['create_event'], repo['tag_name']) == ('INIT', event, TAG)
    assert repo['opts'] == {'src': False, 'debuginfo': False, 'separate_src': False, 'maven': False}
    path = repo['path']
    assert json.loads((path / 'repo.json').read_text())['event_id'] == event
    comps = (path / 'groups' / 'comps.xml').read_text()
    assert '<id>build</id>' in comps and '>bar</packagereq>' in comps
    assert sorted(p.name for p in path.iterdir()) == ['aarch64', 'groups', 'repo.json', 'x86_64']
    for arch in ('x86_64', 'aarch64'):
        archdir = path / arch
        lines = (archdir / 'pkglist').read_text().splitlines()
        assert [line.rsplit('/', 1)[1] for line in lines] == \
            ['bar-1.0-2.noarch.rpm', 'foo-1.0-1.noarch.rpm']
        assert all(line.startswith('toplink/packages/') for line in lines)
        assert all((archdir / line).is_file() for line in lines)       # toplink reaches topdir
        assert (archdir / 'blocklist').read_text() == 'gone\n'
    assert hub.violations == []


def test_repo_init_with_src_lists_sources_and_refuses_bad_calls(hub, host, rpms):
    _, s = host
    hub.import_build(files(rpms('foo')), tag=TAG)
    repo_id, _ = s.host.repoInit(TAG, opts={'src': True})
    path = hub.repo(repo_id)['path']
    assert (path / 'src' / 'pkglist').read_text().strip().endswith('/foo-1.0-1.src.rpm')
    assert hub.repo(repo_id)['custom_opts'] == {'src': True}

    with pytest.raises(koji.ParameterError, match='Invalid repo option: nosuch'):
        s.host.repoInit(TAG, opts={'nosuch': True})
    with pytest.raises(koji.GenericError, match='No such tagInfo'):
        s.host.repoInit('no-such-tag')
    user = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    user.login()
    with pytest.raises(koji.AuthError, match='is not a host'):
        user.host.repoInit(TAG)
    assert [v['method'] for v in hub.violations] == ['host.repoInit'] * 3


def test_repo_done_moves_repodata_and_makes_the_repo_current(hub, host, tmp_path):
    hid, s = host
    old = hub.add_repo(TAG)
    repo_id, _ = s.host.repoInit(TAG)
    tid = open_task(hub, s, hid, method='createrepo', args=(repo_id, 'x86_64', None))
    data = {}
    for arch in ('x86_64', 'aarch64'):
        put(s, tmp_path, tid, f'repomd-{arch}.xml', b'<repomd/>')
        data[arch] = [TASKDIR(tid), [f'repomd-{arch}.xml']]

    with pytest.raises(koji.GenericError, match='hubsim: repoDone data has arches'):
        s.host.repoDone(repo_id, {'x86_64': data['x86_64']})
    with pytest.raises(koji.GenericError, match='uploaded file missing'):
        s.host.repoDone(repo_id, dict(data, aarch64=[TASKDIR(tid), ['nothere.xml']]))
    assert hub.repo(repo_id)['state'] == 'INIT'

    s.host.repoDone(repo_id, data)

    repo = hub.repo(repo_id)
    assert repo['state'] == 'READY' and hub.repo(old)['state'] == 'EXPIRED'
    moved = repo['path'] / 'aarch64' / 'repodata' / 'repomd-aarch64.xml'
    assert moved.read_bytes() == b'<repomd/>'
    assert os.readlink(repo['path'].parent / 'latest') == str(repo_id)
    assert s.getRepo(TAG)['id'] == repo_id
    with pytest.raises(koji.GenericError, match=f'Repo {repo_id} not in INIT state'):
        s.host.repoDone(repo_id, data)


def test_repo_done_with_expire_keeps_the_current_repo(hub, host):
    _, s = host
    current = hub.add_repo(TAG)
    repo_id, _ = s.host.repoInit(TAG, event=hub.repo(current)['create_event'])
    for arch in ('x86_64', 'aarch64'):
        (hub.repo(repo_id)['path'] / arch / 'pkglist').unlink()
    s.host.repoDone(repo_id, {}, expire=True)
    assert hub.repo(repo_id)['state'] == 'EXPIRED' and hub.repo(current)['state'] == 'READY'


def test_repo_request_is_answered_by_a_ready_repo(hub):
    ready = hub.add_repo(TAG)
    s = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    s.login()
    check = s.repo.request(TAG)
    assert check['repo']['id'] == ready and check['request'] is None
    assert s.repo.get(TAG)['id'] == ready
    assert s.repo.get(TAG, opts={'debuginfo': True}) is None     # a repo without the option


def test_repo_request_queues_a_new_repo_task_until_a_repo_satisfies_it(hub, host, rpms):
    hid, s = host
    hub.add_repo(TAG)
    hub.import_build(files(rpms('foo')), tag=TAG)                   # the tag changed since
    user = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    user.login()

    check = user.repo.request(TAG, min_event='last')
    req = check['request']
    assert check['repo'] is None and req['active'] and req['tries'] == 1
    task = hub.task(req['task_id'])
    assert (task['method'], task['channel'], task['priority'], task['state']) == \
        ('newRepo', 'createrepo', 15, 'FREE')
    args, kwargs = decoded_request(hub, req['task_id'])
    assert args == [{'id': hub.tag(TAG)['id'], 'name': TAG}] and kwargs == {'opts': {}}
    again = user.repo.request(TAG, min_event='last')
    assert again['duplicate'] and again['request']['id'] == req['id']
    assert user.repo.checkRequest(req['id'])['task']['id'] == req['task_id']

    # the task fails: the queue tries again
    hub.cancel_task(req['task_id'])
    retried = user.repo.checkRequest(req['id'])['request']
    assert retried['tries'] == 2 and retried['task_id'] != req['task_id']

    repo_id, event = s.host.repoInit(TAG)
    for arch in ('x86_64', 'aarch64'):
        (hub.repo(repo_id)['path'] / arch / 'pkglist').unlink()
    s.host.repoDone(repo_id, {})
    done = user.repo.checkRequest(req['id'])
    assert done['repo']['id'] == repo_id and done['request']['active'] is False
    assert done['request']['repo_id'] == repo_id
    with pytest.raises(koji.GenericError, match='No such request'):
        user.repo.checkRequest(999)


def test_repo_request_rules(hub):
    s = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    with pytest.raises(koji.ActionNotAllowed):
        s.repo.request(TAG)
    s.login()
    with pytest.raises(koji.ParameterError, match='conflict'):
        s.repo.request(TAG, min_event=hub.event, at_event=hub.event)
    with pytest.raises(koji.ParameterError, match='Invalid event'):
        s.repo.request(TAG, min_event=hub.event + 100)
    with pytest.raises(koji.ParameterError, match='Invalid repo option'):
        s.repo.request(TAG, opts={'bogus': 1})


def test_new_repo_client_call_makes_a_createrepo_channel_task(hub):
    hub.add_user('packager', PW)
    releng = hub.add_user('releng', PW, perms=('regen-repo',))
    s = session(hub, 'packager')
    s.login()
    with pytest.raises(koji.ActionNotAllowed, match='regen-repo'):
        s.newRepo(TAG)
    s = session(hub, 'releng')
    s.login()
    task_id = s.newRepo(TAG, debuginfo=True)
    task = hub.task(task_id)
    assert (task['method'], task['channel'], task['owner']) == ('newRepo', 'createrepo', releng)
    assert decoded_request(hub, task_id) == ([TAG], {'opts': {'debuginfo': True}})
    with pytest.raises(koji.ParameterError, match='cannot be combined'):
        s.newRepo(TAG, src=True, opts={'src': True})


def test_last_event_and_tag_change_events(hub, rpms):
    first = hub.rpc_getLastEvent()
    time.sleep(0.05)
    hub.import_build(files(rpms('foo')), tag=TAG)
    s = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    last = s.getLastEvent()
    assert last['id'] > first['id']
    assert s.getLastEvent(before=last['ts'] - 0.01)['id'] < last['id']
    assert s.tagLastChangeEvent(TAG) == last['id']
    assert s.tagFirstChangeEvent(TAG, after=first['id']) == last['id']
    assert s.tagFirstChangeEvent(TAG, after=last['id']) is None
