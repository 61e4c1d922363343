"""Buildroots and their RPM lists (kojihub/kojihub.py: BuildRoot, HostExports.*BuildRoot*)."""

from __future__ import annotations

import time

import koji
import koji.util

from .state import Service
from .values import as_int as _int
from .values import iso as _iso

BRS = koji.BR_STATES


class Buildroots(Service):
    """Buildroots and their RPM lists (kojihub/kojihub.py: BuildRoot, HostExports.newBuildRoot),
    and RPM lookups (get_rpm, add_external_rpm).  Public: br, get_rpm, add_rpm, buildroots."""

    uses = ('sessions', 'tasks')

    def br(self, brootid):
        br = self.state.brs.get(_int(brootid))
        if br is None:
            raise koji.GenericError('no buildroot with ID: %i' % _int(brootid))
        return br

    def _br_access(self, brootid, task_id):
        """HostExports buildroot calls: host lock, task lock, buildroot owner"""
        host = self.sessions.current_host()
        if task_id is not None:
            self.tasks.assert_owns(self.tasks.get(task_id), host)
        br = self.br(brootid)
        if br['host_id'] != host['id']:
            raise koji.ActionNotAllowed("Host %s not owner of buildroot %s"
                                        % (host['id'], br['id']))
        if task_id is not None and br['task_id'] != task_id:
            raise koji.ActionNotAllowed('Task %s does not have lock on buildroot %s'
                                        % (task_id, br['id']))
        return br

    def host_newBuildRoot(self, repo, arch, task_id=None):
        """kojihub/kojihub.py: HostExports.newBuildRoot"""
        host = self.sessions.current_host()
        if task_id is not None:
            self.tasks.assert_owns(self.tasks.get(task_id), host)
        arch = koji.parse_arches(arch, strict=True, allow_none=True)
        if _int(repo) not in self.state.repos:
            # kojihub: a foreign-key violation from the database (fault code 1)
            raise koji.GenericError('hubsim: no such repo: %s' % repo)
        br = {'id': self.state.next_id('buildroot'), 'host_id': host['id'], 'repo_id': _int(repo),
              'task_id': task_id, 'arch': arch, 'state': BRS['INIT'],
              'create_event': self.state.next_event(), 'create_ts': time.time(),
              'retire_event': None, 'retire_ts': None, 'listing': []}
        self.state.brs[br['id']] = br
        return br['id']

    def host_setBuildRootState(self, brootid, state, task_id=None):
        """kojihub/kojihub.py: HostExports.setBuildRootState"""
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
            br['retire_event'], br['retire_ts'] = self.state.next_event(), time.time()

    def host_setBuildRootList(self, brootid, rpmlist, task_id=None):
        """kojihub/kojihub.py: HostExports.setBuildRootList"""
        br = self._br_access(brootid, task_id)
        if br['state'] != BRS['INIT']:
            raise koji.GenericError("buildroot %(id)s in wrong state %(state)s" % br)
        self._set_list(br, rpmlist, update=False)

    def host_updateBuildRootList(self, brootid, rpmlist, task_id=None):
        """kojihub/kojihub.py: HostExports.updateBuildRootList"""
        br = self._br_access(brootid, task_id)
        if br['state'] != BRS['BUILDING']:
            raise koji.GenericError("buildroot %(id)s in wrong state %(state)s" % br)
        self._set_list(br, rpmlist, update=True)

    def _set_list(self, br, rpmlist, update):
        """kojihub/kojihub.py: BuildRoot._setList: all entries are resolved before any is stored"""
        current = {e['rpm_id'] for e in br['listing']}
        new = []
        for entry in rpmlist:
            if entry.get('location'):
                rpm = self._add_external_rpm(entry, entry['location'])
            else:
                rpm = self.get_rpm(entry)
            if not (update and rpm['id'] in current):
                new.append(rpm['id'])
        br['listing'].extend({'rpm_id': i, 'is_update': update} for i in sorted(new))

    def get_rpm(self, entry):
        """kojihub/kojihub.py: get_rpm(entry, strict=True): by id when given, else by NVRA preferring an
        internal non-draft RPM, then the newest draft, then the newest external one"""
        if 'id' in entry:
            if entry['id'] not in self.state.rpms:
                raise koji.GenericError("No such rpm: %r" % entry)
            return self.state.rpms[entry['id']]
        key = tuple(entry.get(k) for k in ('name', 'version', 'release', 'arch'))
        matches = [r for r in self.state.rpms.values()
                   if (r['name'], r['version'], r['release'], r['arch']) == key]
        if not matches:
            raise koji.GenericError("No such rpm: %r" % entry)
        rpm = max(matches, key=lambda r: (r['external_repo_id'] == 0 and not r['draft'],
                                          r['external_repo_id'] == 0, r['id']))
        if self.state.strict_rpm_match and rpm['external_repo_id'] == 0:
            for k in ('epoch', 'payloadhash'):
                if k in entry and entry[k] != rpm[k]:
                    raise koji.GenericError(
                        "No such rpm: %r (hubsim: %s %r differs from Koji's %r; the real hub "
                        "matches by NVRA only)" % (entry, k, entry[k], rpm[k]))
        return rpm

    def _add_external_rpm(self, info, location):
        """kojihub/kojihub.py: add_external_rpm(info, location, strict=False); location is a name or an id
        (get_external_repo_id)"""
        types = {'name': str, 'version': str, 'release': str, 'epoch': (int, type(None)),
                 'arch': str, 'payloadhash': str, 'size': int, 'buildtime': int}
        for field, typ in types.items():
            if field not in info:
                raise koji.GenericError("%s field missing: %r" % (field, info))
            if not isinstance(info[field], typ):
                raise koji.GenericError("Invalid value for %s: %r" % (field, info[field]))
        erepo = next((e for e in self.state.ext_repos.values() if location in (e['id'], e['name'])), None)
        if erepo is None:
            raise koji.GenericError('No such entry in table external_repo: %s' % location)
        for r in self.state.rpms.values():
            if r['external_repo_id'] == erepo['id'] and all(
                    r[k] == info[k] for k in ('name', 'version', 'release', 'arch')):
                if r['payloadhash'] != info['payloadhash']:
                    raise koji.GenericError("hash changed for external rpm: %s (%s -> %s)"
                                            % (location, r['payloadhash'], info['payloadhash']))
                return r
        rpm_id = self.add_rpm(*(info[k] for k in types), external_repo=erepo['name'])
        return self.state.rpms[rpm_id]

    def _br_info(self, br):
        host, repo = self.state.hosts[br['host_id']], self.state.repos[br['repo_id']]
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
        """kojihub/kojihub.py: RootExports.listBuildroots (query_buildroots)"""
        def match(br):
            info = self._br_info(br)
            for value, key in ((hostID, 'host_id'), (tagID, 'tag_id'), (taskID, 'task_id'),
                               (repoID, 'repo_id'), (state, 'state'), (buildrootID, 'id')):
                if value is not None and info[key] not in (
                        value if isinstance(value, (list, tuple)) else [value]):
                    return False
            return rpmID is None or rpmID in [e['rpm_id'] for e in br['listing']]
        return [self._br_info(br) for br in self.state.brs.values() if match(br)]

    def rpc_getBuildroot(self, buildrootID, strict=False):
        """kojihub/kojihub.py: RootExports.getBuildroot (get_buildroot)"""
        br = self.state.brs.get(_int(buildrootID))
        if br is None:
            if strict:
                raise koji.GenericError("No such buildroot: %r" % buildrootID)
            return None
        return self._br_info(br)

    def rpc_getRPM(self, rpminfo, strict=False, multi=False, build=None):
        """kojihub/kojihub.py: RootExports.getRPM (get_rpm)"""
        rpm = self.state.rpms.get(rpminfo) if isinstance(rpminfo, int) else None
        if rpm is None and isinstance(rpminfo, dict):
            try:
                rpm = self.get_rpm(rpminfo)
            except koji.GenericError:
                rpm = None
        if rpm is None and strict:
            raise koji.GenericError("No such rpm: %r" % rpminfo)
        return dict(rpm) if rpm else None

    def add_rpm(self, name, version, release, epoch, arch, payloadhash, size, buildtime,
                external_repo=None):
        """A known RPM: built by Koji, or of external_repo (its name)."""
        with self.state.lock:
            erepo = next((e for e in self.state.ext_repos.values() if e['name'] == external_repo),
                         None) if external_repo else None
            if external_repo and erepo is None:
                raise koji.GenericError('No such external repo: %s' % external_repo)
            rid = self.state.next_id('rpm')
            self.state.rpms[rid] = {'id': rid, 'name': name, 'version': version, 'release': release,
                                    'epoch': epoch, 'arch': arch, 'payloadhash': payloadhash,
                                    'size': size, 'buildtime': buildtime, 'build_id': None,
                                    'buildroot_id': None, 'draft': False, 'metadata_only': False,
                                    'extra': None, 'external_repo_id': erepo['id'] if erepo else 0,
                                    'external_repo_name': erepo['name'] if erepo else 'INTERNAL'}
            return rid

    @property
    def buildroots(self):
        with self.state.lock:
            out = []
            for br in self.state.brs.values():
                rpms = [dict(self.state.rpms[e['rpm_id']], is_update=e['is_update'])
                        for e in br['listing']]
                out.append({'id': br['id'], 'state': BRS[br['state']], 'repo_id': br['repo_id'],
                            'arch': br['arch'], 'task_id': br['task_id'],
                            'host_id': br['host_id'], 'rpmlist': rpms})
            return out
