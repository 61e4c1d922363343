"""Dist repos of the simulated hub: RPM signatures, signed copies, distRepo, distRepoMove.

The DistRepos service (state.py: Service): its rpc_<name>/host_<name> methods are
exported by front.py; its data are the shared HubState's.  Builds calls its
add_file_sigs after an RPM import; its host.repoDone hands a repo that is not a
dist repo to Repos.complete_repo.

What kojihub 1.35 does (kojihub/kojihub.py), minus the database:

- Every imported RPM gets an ``rpmsigs`` row for the signature header it came with
  (import_build, HostExports.completeBuild: add_rpm_sig(rip_rpm_sighdr(file))), its
  sigkey '' when the RPM is unsigned.
- addRPMSig (permission sign; ``koji import-sig``) stores a signature header: the key id
  of its GPG/PGP/DSA/RSA packet, the header itself at
  ``<build>/data/sigcache/<key>/<arch>/<nvra>.rpm.sig`` (add_rpm_sig).
- writeSignedRPM (permission sign; ``koji write-signed-rpm``; also a host call) splices
  a cached header into the primary copy: ``<build>/data/signed/<key>/<arch>/<nvra>.rpm``
  (write_signed_rpm).
- queryRPMSigs (query_rpm_sigs); listTaggedRPMS (readTaggedRPMS): with rpmsigs=True one
  row per RPM and signature, sigkey None for an RPM without any (a LEFT OUTER JOIN).
- distRepo (RootExports.distRepo, dist_repo_init): permission dist-repo or admin, else
  the dist_repo policy; a repo row with dist=True, ``<topdir>/repos-dist/<tag>/<id>/<arch>/``
  per canonical arch, ``groups/comps.xml`` copied from the uploaded --comps file,
  ``repo.json``; the tag extra ``distrepo.cancel_others`` cancels the tag's other
  distRepo tasks; a distRepo task ``[tag, repo_id, keys, task_opts]`` with the event
  in task_opts, in the createrepo channel at priority 15.
- host.distRepoMove (HostExports.distRepoMove): the arch's uploaded files (listed in its
  repo_manifest) moved into the arch directory, each RPM of its kojipkgs checked against
  the hub's row and hard-linked from the build's signed (or, with no sigkey, primary)
  copy to ``<arch>/Packages/<first letter>/<file>``.
- host.repoDone of a dist repo (HostExports.repoDone, repos.symlink_if_latest): no file
  moved, READY, ``repos-dist/<tag>/latest`` pointed at it unless a newer dist repo of the
  tag is READY; repo requests are not fulfilled by dist repos (repos.repo_done_hook).

Not modelled: the RPM checksums write_signed_rpm records (create_rpm_checksum),
volumes other than DEFAULT, plugin callbacks.
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import koji
import koji.util

from .state import Service
from .values import as_int, iso

TS = koji.TASK_STATES
# the signature tags add_rpm_sig looks for a key id in, in its order
_SIG_TAGS = (koji.RPM_SIGTAG_GPG, koji.RPM_SIGTAG_PGP, koji.RPM_SIGTAG_DSA, koji.RPM_SIGTAG_RSA)
# the rpm fields distRepoMove compares between kojipkgs and the hub's row
_RPM_CHECK_KEYS = ('name', 'version', 'release', 'arch', 'epoch', 'size', 'payloadhash', 'build_id')
_RPM_FIELDS = ('name', 'version', 'release', 'arch', 'id', 'epoch', 'draft', 'payloadhash', 'size',
               'buildtime', 'buildroot_id', 'build_id', 'metadata_only')


class DistRepos(Service):
    """RPM signatures and dist repos (kojihub/kojihub.py: add_rpm_sig, write_signed_rpm,
    RootExports.distRepo, HostExports.distRepoMove, HostExports.repoDone of a dist repo).
    Public: rpm_row, add_file_sigs (called by Builds on import), and the test API."""

    uses = ('buildroots', 'builds', 'policy', 'repos', 'sessions', 'tags', 'tasks', 'uploads')

    def _pathinfo(self):
        return koji.PathInfo(topdir=str(self.state.topdir))

    def _build_dir(self, rinfo):
        return Path(self._pathinfo().build(self.builds.build_info(self.state.builds[rinfo['build_id']])))

    def _distrepo_dir(self, repo_id, tag_name):
        return Path(self._pathinfo().distrepo(repo_id, tag_name))

    def rpm_row(self, an_rpm):
        """kojihub get_rpm(an_rpm, strict=True): an id (int or string), 'N-V-R.A' or a dict"""
        if isinstance(an_rpm, str):
            try:
                an_rpm = int(an_rpm)
            except ValueError:
                # kojihub/kojihub.py: _get_rpms matches its N, V, R and A only
                nvra = koji.parse_NVRA(an_rpm)
                an_rpm = {k: nvra[k] for k in ('name', 'version', 'release', 'arch')}
        if isinstance(an_rpm, int):
            if an_rpm not in self.state.rpms:
                raise koji.GenericError("No such rpm: %r" % {'id': an_rpm})
            return self.state.rpms[an_rpm]
        if isinstance(an_rpm, dict):
            return self.buildroots.get_rpm(an_rpm)
        raise koji.GenericError("Invalid type for rpminfo: %r" % type(an_rpm))

    def _internal_rpm(self, an_rpm):
        rinfo = self.rpm_row(an_rpm)
        if rinfo['external_repo_id']:
            raise koji.GenericError("Not an internal rpm: %s (from %s)"
                                    % (an_rpm, rinfo['external_repo_name']))
        return rinfo

    def _assert_perm(self, perm):
        """kojihub/auth.py: Session.assertPerm: the permission, or admin"""
        if not (self.sessions.has_perm(perm) or self.sessions.has_perm('admin')):
            s = self.state.session
            raise koji.ActionNotAllowed("%s permission required (%s)" % (
                perm, 'logged in as %s' % self.state.users[s.user_id]['name'] if s else 'user not logged in'))

    def _add_rpm_sig(self, an_rpm, sighdr):
        """kojihub/kojihub.py: add_rpm_sig"""
        rinfo = self._internal_rpm(an_rpm)
        builddir = self._build_dir(rinfo)
        if not builddir.is_dir():
            raise koji.GenericError("No such directory: %s" % builddir)
        rawhdr = koji.RawHeader(sighdr)
        sigmd5 = koji.hex_string(rawhdr.get(koji.RPM_SIGTAG_MD5))
        if sigmd5 != rinfo['payloadhash']:
            # kojihub reads the header again with librpm (_scan_sighdr) before it gives up;
            # the RPMs of hubsim's tests all carry the MD5 tag this reads
            raise koji.GenericError("wrong md5 for %s: %s" % (
                "%(name)s-%(version)s-%(release)s.%(arch)s" % rinfo, sigmd5))
        packet = next((rawhdr.get(tag) for tag in _SIG_TAGS if rawhdr.get(tag)), None)
        sigkey = koji.get_sigpacket_key_id(packet) if packet else ''
        if any(row['rpm_id'] == rinfo['id'] and row['sigkey'] == sigkey for row in self.state.rpmsigs):
            raise koji.GenericError("Signature already exists for package %s, key %s" % (
                "%(name)s-%(version)s-%(release)s.%(arch)s" % rinfo, sigkey))
        self.state.rpmsigs.append({'rpm_id': rinfo['id'], 'sigkey': sigkey,
                                   'sighash': hashlib.md5(sighdr).hexdigest()})
        sigpath = builddir / self._pathinfo().sighdr(rinfo, sigkey)
        sigpath.parent.mkdir(parents=True, exist_ok=True)
        sigpath.write_bytes(sighdr)
        self.state.local.committed = True

    def add_file_sigs(self, rows):
        """add_rpm_sig of each imported RPM's own signature header (kojihub/kojihub.py:
        import_build and HostExports.completeBuild do so after import_rpm_file)."""
        for row in rows:
            path = self._build_dir(row) / self._pathinfo().rpm(row)
            self._add_rpm_sig(row['id'], koji.rip_rpm_sighdr(str(path)))
        return rows

    def rpc_addRPMSig(self, an_rpm, data):
        """kojihub/kojihub.py: RootExports.addRPMSig: data is the signature header, base64 encoded"""
        self._assert_perm('sign')
        self._add_rpm_sig(an_rpm, base64.b64decode(data))

    def rpc_queryRPMSigs(self, rpm_id=None, sigkey=None, queryOpts=None):
        """kojihub/kojihub.py: query_rpm_sigs: [{'rpm_id', 'sigkey', 'sighash'}]"""
        if rpm_id is not None and not isinstance(rpm_id, int):
            try:
                rpm_id = self.rpm_row(rpm_id)['id']
            except koji.GenericError:
                return []
        sigkey = None if sigkey is None else sigkey.lower()
        return [dict(row) for row in self.state.rpmsigs
                if (rpm_id is None or row['rpm_id'] == rpm_id)
                and (sigkey is None or row['sigkey'] == sigkey)]

    def _write_signed_rpm(self, an_rpm, sigkey, force=False):
        """kojihub/kojihub.py: write_signed_rpm (without the checksums it records)"""
        sigkey = sigkey.lower()
        rinfo = self._internal_rpm(an_rpm)
        builddir = self._build_dir(rinfo)
        pathinfo = self._pathinfo()
        rpm_path = builddir / pathinfo.rpm(rinfo)
        if not rpm_path.exists():
            raise koji.GenericError("No such path: %s" % rpm_path)
        if not rpm_path.is_file():
            raise koji.GenericError("Not a regular file: %s" % rpm_path)
        if not any(row['rpm_id'] == rinfo['id'] and row['sigkey'] == sigkey for row in self.state.rpmsigs):
            raise koji.GenericError("No cached signature for package %s, key %s" % (
                "%(name)s-%(version)s-%(release)s.%(arch)s" % rinfo, sigkey))
        signedpath = builddir / pathinfo.signed(rinfo, sigkey)
        if signedpath.exists():
            if not force:
                return None
            signedpath.unlink()
        sighdr = (builddir / pathinfo.sighdr(rinfo, sigkey)).read_bytes()
        koji.splice_rpm_sighdr(sighdr, str(rpm_path), dst=str(signedpath))
        return None

    def rpc_writeSignedRPM(self, an_rpm, sigkey, force=False):
        """kojihub/kojihub.py: RootExports.writeSignedRPM"""
        self._assert_perm('sign')
        return self._write_signed_rpm(an_rpm, sigkey, force)

    def host_writeSignedRPM(self, an_rpm, sigkey, force=False):
        """kojihub/kojihub.py: HostExports.writeSignedRPM (what distRepo's write_signed_rpms option calls)"""
        self.sessions.current_host()
        return self._write_signed_rpm(an_rpm, sigkey, force)

    def rpc_listTaggedRPMS(self, tag, event=None, inherit=False, latest=False, package=None, arch=None,
                           rpmsigs=False, owner=None, type=None, strict=True, extra=True, draft=None):
        """kojihub/kojihub.py: readTaggedRPMS: [rpms, builds] (hubsim's tags inherit from none)"""
        t = self.tags.tag(tag, strict=strict)
        if t is None:
            return []
        if arch is not None and not isinstance(arch, (str, list, tuple)):
            raise koji.GenericError('Invalid type for arch option: %s' % builtins.type(arch))
        arches = None if arch is None else ([arch] if isinstance(arch, str) else list(arch))
        builds = self.builds.tagged_builds(t['id'], event, latest, package, owner)
        if draft is not None:
            builds = [b for b in builds if bool(b['draft']) == bool(draft)]
        rpms = []
        for build in builds:
            for r in sorted(self.state.rpms.values(), key=lambda r: r['id']):
                if r['build_id'] != build['id'] or (arches is not None and r['arch'] not in arches):
                    continue
                row = {k: r[k] for k in _RPM_FIELDS}
                if extra:
                    row['extra'] = r['extra']
                if not rpmsigs:
                    rpms.append(row)
                    continue
                sigs = [s['sigkey'] for s in self.state.rpmsigs if s['rpm_id'] == r['id']] or [None]
                rpms.extend(dict(row, sigkey=sigkey) for sigkey in sigs)
        return [rpms, builds]

    def rpc_distRepo(self, tag, keys, **task_opts):
        """kojihub/kojihub.py: RootExports.distRepo: a distRepo task id"""
        if self.state.session is None:
            # kojihub gets as far as make_task, whose task row needs an owner
            raise koji.ActionNotAllowed("hubsim: distRepo needs a logged-in user")
        if not (self.sessions.has_perm('dist-repo') or self.sessions.has_perm('admin')):
            self.policy.check_policy('dist_repo', {'tag': tag}, strict=True)
        repo_id, event_id = self._dist_repo_init(tag, keys, task_opts)
        task_opts['event'] = event_id
        if self.tags.rpc_getBuildConfig(tag)['extra'].get('distrepo.cancel_others', False):
            for t in list(self.state.tasks.values()):
                if t['method'] == 'distRepo' and t['state'] in (TS['FREE'], TS['OPEN'], TS['ASSIGNED']) \
                        and self.tasks.rpc_getTaskRequest(t['id'])[0] == tag:
                    self.tasks.cancel(t, recurse=True)
        self.state.local.committed = True
        return self.tasks.make_task('distRepo', [tag, repo_id, keys, task_opts], self.state.session.user_id,
                                    channel='createrepo', priority=15)

    def _dist_repo_init(self, tag, keys, task_opts):
        """kojihub/kojihub.py: dist_repo_init: (repo_id, event)"""
        if not isinstance(keys, list):
            raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                      % (keys, type(keys), list))
        tinfo = self.tags.tag(tag)
        if not isinstance(task_opts, dict):
            raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                      % (task_opts, type(task_opts), dict))
        event = task_opts.get('event')
        event = None if event is None else as_int(event)
        volume = task_opts.get('volume')
        if volume is not None:
            self.uploads.volume(volume)
        arches = sorted({koji.canonArch(a) for a in task_opts['arch']})
        if not event:
            event = self.state.next_event()
        repo_id = self.state.next_id('repo')
        now = time.time()
        self.state.repos[repo_id] = {
            'id': repo_id, 'tag_id': tinfo['id'], 'tag_name': tinfo['name'], 'state': koji.REPO_INIT,
            'create_event': event, 'creation_time': iso(now), 'create_ts': now,
            'state_ts': now, 'dist': True, 'task_id': None, 'opts': None, 'custom_opts': None,
            'begin_event': None, 'end_event': None}
        repodir = self._distrepo_dir(repo_id, tinfo['name'])
        for arch in arches:
            (repodir / arch).mkdir(parents=True, exist_ok=True)
        repodir.mkdir(parents=True, exist_ok=True)
        if task_opts.get('comps'):
            if not isinstance(task_opts['comps'], str):
                raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                          % (task_opts['comps'], type(task_opts['comps']), str))
            (repodir / 'groups').mkdir(exist_ok=True)
            shutil.copyfile(koji.util.joinpath(str(self.state.workdir), task_opts['comps']),
                            repodir / 'groups' / 'comps.xml')
        (repodir / 'repo.json').write_text(json.dumps(
            {'id': repo_id, 'tag': tinfo['name'], 'tag_id': tinfo['id'], 'keys': keys,
             'volume': volume, 'task_opts': task_opts}, indent=2))
        return repo_id, event

    def host_distRepoMove(self, repo_id, uploadpath, arch):
        """kojihub/kojihub.py: HostExports.distRepoMove"""
        self.sessions.current_host()
        r = self.state.repos.get(as_int(repo_id))
        if r is None:
            raise koji.GenericError("No such repo: %s" % repo_id)
        archdir = self._distrepo_dir(r['id'], r['tag_name']) / koji.canonArch(arch)
        if not archdir.is_dir():
            raise koji.GenericError("Repo arch directory missing: %s" % archdir)
        if r['state'] != koji.REPO_INIT:
            raise koji.GenericError('Repo is in state: %s' % koji.REPO_STATES[r['state']])
        updir = Path(koji.util.joinpath(str(self.state.workdir), uploadpath))
        if not (updir / 'repo_manifest').is_file():
            raise koji.GenericError('Missing repo manifest')
        files = json.loads((updir / 'repo_manifest').read_text())
        if not (updir / 'kojipkgs').is_file():
            raise koji.GenericError('Missing kojipkgs file')
        kojipkgs = json.loads((updir / 'kojipkgs').read_text())
        moves = []
        for relpath in files:
            src = updir / relpath
            if not src.exists():
                raise koji.GenericError("uploaded file missing: %s" % src)
            moves.append((src, archdir / relpath))
        links = []
        for bnp, rpminfo in kojipkgs.items():
            row = self.rpm_row(rpminfo['id'])
            for key in _RPM_CHECK_KEYS:
                if key not in rpminfo or rpminfo[key] != row[key]:
                    raise koji.GenericError('kojipkgs entry does not match db: file %s, key %s'
                                            % (bnp, key))
            sigkey = rpminfo['sigkey']
            relpath = self._pathinfo().rpm(rpminfo) if not sigkey else \
                self._pathinfo().signed(rpminfo, sigkey)
            links.append((self._build_dir(row) / relpath, archdir / 'Packages' / bnp[0].lower() / bnp))
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            koji.util.safer_move(str(src), str(dst))
        for src, dst in links:
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.exists():
                raise koji.GenericError("File already in repo: %s", str(dst))
            try:
                os.link(src, dst)
            except OSError as e:
                if e.errno != 18:      # EXDEV: another file system
                    raise
                shutil.copy2(src, dst)
        self.state.local.committed = True

    def host_repoDone(self, repo_id, data, expire=False, repo_json_updates=None):
        """kojihub/kojihub.py: HostExports.repoDone: a dist repo's files are in place already (distRepoMove);
        other repos are Repos.complete_repo's"""
        r = self.state.repos.get(as_int(repo_id))
        if r is None or not r['dist']:
            return self.repos.complete_repo(repo_id, data, expire=expire, repo_json_updates=repo_json_updates)
        self.sessions.current_host()
        if not isinstance(data, dict):
            raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                      % (data, type(data), dict))
        if r['state'] != koji.REPO_INIT:
            raise koji.GenericError("Repo %s not in INIT state (got %s)" % (r['id'], r['state']))
        if repo_json_updates:
            # kojihub reads repos/<tag>/<id>/repo.json, which a dist repo does not have
            raise koji.GenericError("hubsim: repo_json_updates for dist repo %s: kojihub fails on "
                                    "the missing %s" % (r['id'], koji.PathInfo(str(self.state.topdir))
                                                        .repo(r['id'], r['tag_name'])))
        self.state.local.committed = True
        if expire:
            self.repos.set_repo_state(r, 'EXPIRED')
            return None
        self.repos.set_repo_state(r, 'READY')
        newer = [o for o in self.state.repos.values() if o['tag_id'] == r['tag_id'] and o['dist']
                 and o['state'] == koji.REPO_READY and o['create_event'] > r['create_event']]
        if not newer:
            latest = self._distrepo_dir('latest', r['tag_name'])
            if os.path.lexists(latest):
                latest.unlink()
            latest.symlink_to(str(r['id']))
        return None

    def dist_repo(self, repo_id):
        """A dist repo for assertions: its repo view, 'state' as a name, and its directory."""
        with self.state.lock:
            view = self.repos.repo_view(self.state.repos[repo_id])
            view['state'] = koji.REPO_STATES[view['state']]
            view['path'] = self._distrepo_dir(repo_id, view['tag_name'])
            return view

    def add_rpm_sig(self, an_rpm, sighdr):
        """What ``koji import-sig`` stores: a signature header (bytes) of an RPM."""
        with self.state.lock:
            self._add_rpm_sig(an_rpm, sighdr)

    def write_signed_rpm(self, an_rpm, sigkey):
        """What ``koji write-signed-rpm`` does: the signed copy on the hub's storage."""
        with self.state.lock:
            self._write_signed_rpm(an_rpm, sigkey)
