"""Dist repos of the hub simulator (signatures, signed copies, listTaggedRPMS, distRepo,
distRepoMove, repoDone of a dist repo), driven by an unmodified koji.ClientSession; the RPMs
are real ones made with rpmbuild and signed with rpmsign."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from types import SimpleNamespace

import koji
import pytest
from koji.xmlrpcplus import Fault

from hubsim import HubSimulator
from tests.signedrpms import RpmSigner, build_package

from .test_hubsim import PW, session

TAG = 'dist-tag'
TASKDIR = koji.pathinfo.taskrelpath
X86 = 'foo-1.0-1.x86_64'
#: task_opts as `koji dist-repo` sends them (cli handle_dist_repo)
CLI_OPTS = {'arch': ['x86_64'], 'comps': None, 'delta': [], 'event': None, 'volume': None, 'inherit': True,
            'latest': True, 'multilib': None, 'split_debuginfo': False, 'skip_missing_signatures': False,
            'allow_missing_signatures': False, 'zck': False, 'zck_dict_dir': None, 'write_signed_rpms': False}


@pytest.fixture(scope='module')
def made(tmp_path_factory):
    """foo-1.0-1 (x86_64, aarch64, each with foo-debuginfo), and signed copies of its RPMs."""
    base = tmp_path_factory.mktemp('distrepo-rpms')
    srpm, rpms = build_package(base / 'rpmbuild', 'foo', ['x86_64', 'aarch64'])
    with RpmSigner(base / 'gnupg') as signer:
        signed = {rpm.name: signer.sign(rpm, base / 'signed') for rpm in rpms}
        yield SimpleNamespace(files=[srpm, *rpms], signed=signed, key=signer.sigkey)


@pytest.fixture
def hub(tmp_path, made):
    with HubSimulator(tmp_path / 'koji') as hub:
        hub.add_tag(TAG, arches='x86_64 aarch64')
        hub.import_build(made.files, tag=TAG)
        yield hub


@pytest.fixture
def admin(hub):
    s = session(hub, 'hubsim-admin', password=hub.users[hub.admin_id]['password'])
    s.login()
    yield s
    s.logout()


@pytest.fixture
def host(hub):
    hid = hub.add_host('builder1', arches=['x86_64'], password=PW, channels=('default', 'createrepo'))
    s = session(hub, 'builder1')
    s.login()
    s.exclusiveSession()
    yield hid, s
    s.logout()


def rpm_row(hub, nvra):
    return next(r for r in hub.rpms.values() if '%(name)s-%(version)s-%(release)s.%(arch)s' % r == nvra)


def build_dir(hub, nvra):
    row = rpm_row(hub, nvra)
    return koji.PathInfo(topdir=str(hub.topdir)).build(hub.build(row['build_id']))


def import_sig(hub, made, nvra):
    """`koji import-sig` of the signed copy: the hub keeps its signature header."""
    hub.add_rpm_sig(nvra, koji.rip_rpm_sighdr(str(made.signed[nvra + '.rpm'])))


def pgpsig(path):
    return subprocess.run(['rpm', '-qp', '--nosignature', '--nodigest', '--qf', '%{RSAHEADER:pgpsig}', str(path)],
                          capture_output=True, text=True, check=True).stdout


def test_imported_rpms_have_the_header_they_came_with_recorded_unsigned(hub, admin):
    sigs = admin.queryRPMSigs()
    assert len(sigs) == 5 and {s['sigkey'] for s in sigs} == {''}
    assert admin.queryRPMSigs(rpm_id=X86) == [s for s in sigs if s['rpm_id'] == rpm_row(hub, X86)['id']]
    assert admin.queryRPMSigs(rpm_id='nosuch-1-1.noarch') == []
    cached = os.path.join(build_dir(hub, X86), 'data/sigcache/x86_64', X86 + '.rpm.sig')
    assert os.path.isfile(cached)


def test_import_sig_then_write_signed_rpm_makes_the_signed_copy(hub, made, admin):
    header = koji.rip_rpm_sighdr(str(made.signed[X86 + '.rpm']))
    admin.addRPMSig(X86, base64.b64encode(header).decode())
    assert sorted(s['sigkey'] for s in admin.queryRPMSigs(rpm_id=X86)) == ['', made.key]
    assert [s['rpm_id'] for s in admin.queryRPMSigs(sigkey=made.key.upper())] == [rpm_row(hub, X86)['id']]
    with pytest.raises(koji.GenericError, match=f'Signature already exists for package {X86}, key {made.key}'):
        admin.addRPMSig(X86, base64.b64encode(header).decode())
    with pytest.raises(koji.GenericError, match='wrong md5 for foo-1.0-1.aarch64'):
        admin.addRPMSig('foo-1.0-1.aarch64', base64.b64encode(header).decode())
    with pytest.raises(koji.GenericError, match=f'No cached signature for package foo-1.0-1.aarch64, key {made.key}'):
        admin.writeSignedRPM('foo-1.0-1.aarch64', made.key)

    admin.writeSignedRPM(X86, made.key.upper())

    builddir = build_dir(hub, X86)
    signed = os.path.join(builddir, 'data/signed', made.key, 'x86_64', X86 + '.rpm')
    assert made.key in pgpsig(signed)
    assert pgpsig(os.path.join(builddir, 'x86_64', X86 + '.rpm')) == '(none)'
    admin.writeSignedRPM(X86, made.key)              # already there: left as it is
    hub.add_user('packager', PW)
    packager = session(hub, 'packager')
    packager.login()
    with pytest.raises(koji.ActionNotAllowed, match='sign permission required'):
        packager.writeSignedRPM(X86, made.key)
    with pytest.raises(koji.ActionNotAllowed, match='sign permission required'):
        packager.addRPMSig(X86, base64.b64encode(header).decode())


def test_list_tagged_rpms_gives_one_row_per_rpm_and_signature(hub, made, admin):
    import_sig(hub, made, X86)
    rpms, builds = admin.listTaggedRPMS(TAG, arch='x86_64', rpmsigs=True)
    assert sorted((r['name'], r['sigkey']) for r in rpms) == [('foo', ''), ('foo', made.key), ('foo-debuginfo', '')]
    assert [b['nvr'] for b in builds] == ['foo-1.0-1']
    rpms, _ = admin.listTaggedRPMS(TAG, arch=['src', 'aarch64'])
    assert sorted(r['arch'] for r in rpms) == ['aarch64', 'aarch64', 'src'] and 'sigkey' not in rpms[0]
    hub.rpmsigs.clear()                              # an RPM without any rpmsigs row: the outer join's None
    rpms, _ = admin.listTaggedRPMS(TAG, arch='src', rpmsigs=True)
    assert [r['sigkey'] for r in rpms] == [None]
    assert admin.listTaggedRPMS('no-such-tag', strict=False) == []


def test_dist_repo_lays_out_the_repo_and_queues_a_dist_repo_task(hub, admin, tmp_path):
    comps = tmp_path / 'comps.xml'
    comps.write_text('<comps/>\n')
    admin.uploadWrapper(str(comps), 'cli-dist-repo-1')
    opts = dict(CLI_OPTS, arch=['x86_64', 'aarch64', 'i686'], comps='cli-dist-repo-1/comps.xml')

    task_id = admin.distRepo(TAG, ['ABCD1234'], **opts)

    task = hub.task(task_id)
    assert (task['method'], task['channel'], task['priority'], task['state']) == ('distRepo', 'createrepo', 15, 'FREE')
    tag, repo_id, keys, task_opts = task['request']
    assert (tag, keys) == (TAG, ['ABCD1234']) and task_opts == dict(opts, event=task_opts['event'])
    repo = hub.dist_repo(repo_id)
    assert (repo['state'], repo['dist'], repo['create_event'], repo['task_id']) == \
        ('INIT', True, task_opts['event'], None)
    path = repo['path']
    assert path == hub.topdir / 'repos-dist' / TAG / str(repo_id)
    assert sorted(p.name for p in path.iterdir()) == ['aarch64', 'groups', 'i386', 'repo.json', 'x86_64']
    assert (path / 'groups' / 'comps.xml').read_text() == '<comps/>\n'
    info = json.loads((path / 'repo.json').read_text())
    assert (info['id'], info['tag'], info['keys'], info['volume']) == (repo_id, TAG, ['ABCD1234'], None)
    assert admin.repoInfo(repo_id)['dist'] is True
    with pytest.raises(koji.ParameterError, match='expected type'):
        admin.distRepo(TAG, 'ABCD1234', **opts)
    with pytest.raises(Fault, match="KeyError.*'arch'"):         # kojihub's own KeyError
        admin.distRepo(TAG, [])


def test_dist_repo_needs_the_permission_or_the_dist_repo_policy(hub):
    hub.add_user('packager', PW)
    hub.add_user('releng', PW, perms=('dist-repo',))
    packager, releng = session(hub, 'packager'), session(hub, 'releng')
    packager.login()
    releng.login()
    assert packager.distRepo(TAG, [], **CLI_OPTS)      # no dist_repo policy: allowed (MissingPolicyOk)
    hub.set_policy('dist_repo', 'match tag other-* :: allow\nall :: deny not for this tag')
    with pytest.raises(koji.ActionNotAllowed, match=r'policy violation \(dist_repo\): not for this tag'):
        packager.distRepo(TAG, [], **CLI_OPTS)
    assert releng.distRepo(TAG, [], **CLI_OPTS)


def test_cancel_others_cancels_the_tags_running_dist_repo_tasks(hub, admin):
    first = admin.distRepo(TAG, [], **CLI_OPTS)
    hub.tag(TAG)['extra']['distrepo.cancel_others'] = True
    second = admin.distRepo(TAG, [], **CLI_OPTS)
    assert (hub.task(first)['state'], hub.task(second)['state']) == ('CANCELED', 'FREE')


def upload(s, tmp_path, uploadpath, name, data):
    local = tmp_path / 'up' / uploadpath / name
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(data)
    s.uploadWrapper(str(local), uploadpath, name)


def test_dist_repo_move_links_the_chosen_copies_and_repo_done_makes_it_current(hub, made, admin, host, tmp_path):
    hid, s = host
    import_sig(hub, made, X86)
    admin.writeSignedRPM(X86, made.key)
    task_id = admin.distRepo(TAG, [made.key], **CLI_OPTS)
    repo_id = hub.task(task_id)['request'][1]
    hub.assign(task_id, hid)
    s.host.openTask(task_id)
    child = s.host.subtask('createdistrepo', [TAG, repo_id, 'x86_64', [made.key], CLI_OPTS], task_id,
                           label='x86_64', arch='noarch')
    hub.assign(child, hid)
    s.host.openTask(child)
    rows, _ = admin.listTaggedRPMS(TAG, arch=['x86_64', 'noarch'], rpmsigs=True)
    foo = next(r for r in rows if r['name'] == 'foo' and r['sigkey'] == made.key)
    debug = dict(next(r for r in rows if r['name'] == 'foo-debuginfo'), sigkey=None)
    kojipkgs = {X86 + '.rpm': foo, 'foo-debuginfo-1.0-1.x86_64.rpm': debug}
    up = TASKDIR(child)
    upload(s, tmp_path, up, 'kojipkgs', json.dumps(kojipkgs).encode())
    upload(s, tmp_path, up, 'pkglist', b'Packages/f/foo-1.0-1.x86_64.rpm\n')
    upload(s, tmp_path, up + '/repodata', 'repomd.xml', b'<repomd/>')
    with pytest.raises(koji.GenericError, match='Missing repo manifest'):
        s.host.distRepoMove(repo_id, up, 'x86_64')
    upload(s, tmp_path, up, 'repo_manifest', json.dumps(['kojipkgs', 'pkglist', 'repodata/repomd.xml']).encode())
    bad = up + '/bad'
    upload(s, tmp_path, bad, 'kojipkgs', json.dumps({X86 + '.rpm': dict(foo, size=1)}).encode())
    upload(s, tmp_path, bad, 'repo_manifest', b'["kojipkgs"]')
    with pytest.raises(koji.GenericError, match=f'kojipkgs entry does not match db: file {X86}.rpm, key size'):
        s.host.distRepoMove(repo_id, bad, 'x86_64')
    with pytest.raises(koji.GenericError, match='Repo arch directory missing'):
        s.host.distRepoMove(repo_id, up, 'ppc64le')

    s.host.distRepoMove(repo_id, up, 'x86_64')

    archdir = hub.dist_repo(repo_id)['path'] / 'x86_64'
    assert (archdir / 'repodata' / 'repomd.xml').read_bytes() == b'<repomd/>'
    assert json.loads((archdir / 'kojipkgs').read_text()) == kojipkgs
    assert not (hub.workdir / up / 'kojipkgs').exists()
    builddir = build_dir(hub, X86)
    linked = archdir / 'Packages' / 'f' / (X86 + '.rpm')
    assert os.path.samefile(linked, os.path.join(builddir, 'data/signed', made.key, 'x86_64', X86 + '.rpm'))
    assert os.path.samefile(archdir / 'Packages' / 'f' / 'foo-debuginfo-1.0-1.x86_64.rpm',
                            os.path.join(builddir, 'x86_64', 'foo-debuginfo-1.0-1.x86_64.rpm'))
    with pytest.raises(koji.GenericError, match='Missing kojipkgs file'):    # moved into the repo
        s.host.distRepoMove(repo_id, up, 'x86_64')
    assert s.getRepo(TAG, dist=True) is None

    s.host.repoDone(repo_id, {})

    assert hub.dist_repo(repo_id)['state'] == 'READY'
    assert os.readlink(hub.topdir / 'repos-dist' / TAG / 'latest') == str(repo_id)
    assert s.getRepo(TAG, dist=True)['id'] == repo_id and s.getRepo(TAG) is None
    with pytest.raises(koji.GenericError, match=f'Repo {repo_id} not in INIT state'):
        s.host.repoDone(repo_id, {})
    with pytest.raises(koji.GenericError, match='Repo is in state: READY'):
        s.host.distRepoMove(repo_id, up, 'x86_64')


def test_an_older_dist_repo_done_later_does_not_take_the_latest_link(hub, admin, host):
    _, s = host
    older = admin.distRepo(TAG, [], **CLI_OPTS)
    newer = admin.distRepo(TAG, [], **CLI_OPTS)
    older_id, newer_id = (hub.task(t)['request'][1] for t in (older, newer))
    s.host.repoDone(newer_id, {})
    s.host.repoDone(older_id, {})
    assert os.readlink(hub.topdir / 'repos-dist' / TAG / 'latest') == str(newer_id)
    assert [hub.dist_repo(r)['state'] for r in (older_id, newer_id)] == ['READY', 'READY']
