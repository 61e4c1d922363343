"""Builds, packages, tagging and notifications of the simulated hub.

The Builds service (state.py: Service): its rpc_<name>/host_<name> methods are
exported by front.py; its data are the shared HubState's.  The rules and
messages are kojihub's (new_build/recycle_build, import_build/import_rpm,
_direct_tag_build, build_notification, tag_notification); RPM headers are
read with the rpm command line, as the hub would with librpm.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
import time
import xmlrpc.client

import koji
import koji.util

from .noarch import check_noarch_rpms
from .state import Service
from .values import iso as _iso

BS = koji.BUILD_STATES
_HEADER_TAGS = ('NAME', 'VERSION', 'RELEASE', 'EPOCH', 'ARCH', 'SIGMD5', 'BUILDTIME',
                'SOURCEPACKAGE', 'SOURCERPM')
WEB_URL = 'http://localhost/koji'      # kojihub KojiWebURL default


def read_header(path):
    """The header fields import_rpm uses, as kojihub's koji.get_header_fields returns them."""
    fmt = '\\t'.join('%%{%s}' % t for t in _HEADER_TAGS) + '\\n'
    out = subprocess.run(['rpm', '-qp', '--nosignature', '--nodigest', '--qf', fmt, str(path)],
                         capture_output=True, text=True, env=dict(os.environ, LC_ALL='C'))
    if out.returncode != 0 or not out.stdout:
        raise koji.GenericError("Error reading rpm header: %s: %s" % (path, out.stderr.strip()))
    values = dict(zip(_HEADER_TAGS, out.stdout.rstrip('\n').split('\t')))
    none = '(none)'
    return {'name': values['NAME'], 'version': values['VERSION'], 'release': values['RELEASE'],
            'epoch': None if values['EPOCH'] == none else int(values['EPOCH']),
            'arch': values['ARCH'],
            'payloadhash': '' if values['SIGMD5'] == none else values['SIGMD5'],
            'buildtime': int(values['BUILDTIME']),
            'sourcepackage': 1 if values['SOURCEPACKAGE'] == '1' else None,
            'sourcerpm': None if values['SOURCERPM'] == none else values['SOURCERPM']}


class Builds(Service):
    """Builds, packages, tagging and notifications (kojihub/kojihub.py: new_build, import_rpm,
    HostExports.completeBuild/failBuild/tagBuild, _tag_build, build_notification).
    Public: find_build, build_info, tag_rows, tagged_builds, cancel_builds, and the test API
    (add_package, import_build, add_notification, add_group, build, tagged, ...)."""

    uses = ('buildroots', 'distrepos', 'policy', 'sessions', 'tags', 'tasks')

    def _package_id(self, name):
        """kojihub/kojihub.py: lookup_package(name, create=True)"""
        if name not in self.state.package_ids:
            self.state.package_ids[name] = self.state.next_id('package')
        return self.state.package_ids[name]

    def _user_name(self, user_id):
        return self.state.users[user_id]['name'] if user_id in self.state.users else None

    def rpc_getAverageBuildDuration(self, package, age=None):
        """kojihub/kojihub.py: RootExports.getAverageBuildDuration: the mean seconds from
        creation to completion of the package's COMPLETE builds made by a task (within the
        last ``age`` months); None if none"""
        name = package if isinstance(package, str) else next(
            (n for n, i in self.state.package_ids.items() if i == package), None)
        if name not in self.state.package_ids:
            return None
        oldest = None if age is None else time.time() - int(age) * 30 * 86400
        durations = [b['completion_ts'] - b['create_ts'] for b in self.state.builds.values()
                     if b['pkg_id'] == self.state.package_ids[name] and b['state'] == BS['COMPLETE']
                     and b['task_id'] is not None and (oldest is None or b['completion_ts'] > oldest)]
        return sum(durations) / len(durations) if durations else None

    def find_build(self, info, strict=False):
        """kojihub/kojihub.py: find_build_id + get_build: the stored build row or None"""
        if isinstance(info, int):
            build = self.state.builds.get(info)
        else:
            if isinstance(info, str):
                try:
                    data = koji.parse_NVR(info)
                except koji.GenericError:
                    data = {}
            elif isinstance(info, dict):
                data = info
            else:
                raise koji.GenericError("Invalid type for argument: %r" % type(info))
            if isinstance(info, dict) and 'id' in info and 'name' not in info:
                build = self.state.builds.get(info['id'])
            else:
                if not ('name' in data and 'version' in data and 'release' in data):
                    raise koji.GenericError('did not provide name, version, and release')
                build = next((b for b in self.state.builds.values()
                              if (b['name'], b['version'], b['release'])
                              == (data['name'], data['version'], data['release'])), None)
        if build is None and strict:
            raise koji.GenericError('No such build: %r' % (info,))
        return build

    def build_info(self, b):
        """kojihub/kojihub.py: get_build() dict"""
        info = {k: b[k] for k in ('id', 'version', 'release', 'epoch', 'state', 'task_id',
                                  'name', 'source', 'extra', 'draft', 'volume_id')}
        info.update(build_id=b['id'], package_id=b['pkg_id'], package_name=b['name'],
                    nvr='%(name)s-%(version)s-%(release)s' % b, volume_name='DEFAULT',
                    owner_id=b['owner'], owner_name=self._user_name(b['owner']),
                    creation_event_id=b['create_event'], creation_time=_iso(b['create_ts']),
                    creation_ts=b['create_ts'], start_time=_iso(b['start_ts']),
                    start_ts=b['start_ts'], completion_time=_iso(b['completion_ts']),
                    completion_ts=b['completion_ts'], promotion_time=None, promotion_ts=None,
                    promoter_id=None, promoter_name=None, cg_id=None, cg_name=None)
        return info

    def tag_rows(self, tag_id=None, build_id=None, event=None):
        """tag_listing rows active now (event None) or at event (kojihub/kojihub.py: eventCondition)"""
        def live(r):
            if event is None:
                return r['active']
            return r['create_event'] <= event and (r['revoke_event'] is None
                                                   or event < r['revoke_event'])
        return [r for r in self.state.tag_listing if live(r)
                and (tag_id is None or r['tag_id'] == tag_id)
                and (build_id is None or r['build_id'] == build_id)]

    def _new_build(self, data):
        """kojihub/kojihub.py: new_build (strict=False): a new row, or a recycled FAILED/CANCELED one"""
        if not data.get('name'):
            raise koji.GenericError("No name or package id provided for build")
        for f in ('version', 'release', 'epoch'):
            if f not in data:
                raise koji.GenericError("No %s value for build" % f)
        old = self.find_build({k: data[k] for k in ('name', 'version', 'release')})
        now = time.time()
        row = {'name': data['name'], 'version': data['version'], 'release': data['release'],
               'epoch': data['epoch'], 'pkg_id': self._package_id(data['name']),
               'state': data.get('state', BS['COMPLETE']), 'task_id': data.get('task_id'),
               'owner': data.get('owner', self.state.session and self.state.session.user_id),
               'source': data.get('source'), 'extra': data.get('extra'),
               'draft': bool(data.get('draft', False)), 'volume_id': 0,
               'start_ts': now, 'completion_ts': None if data.get('state') == BS['BUILDING']
               else now, 'create_event': self.state.next_event(), 'create_ts': now}
        if old is not None:
            self._recycle_build(old, row)
            return old['id']
        row['id'] = self.state.next_id('build')
        self.state.builds[row['id']] = row
        return row['id']

    def _recycle_build(self, old, data):
        """kojihub/kojihub.py: recycle_build"""
        st_desc = BS[old['state']]
        if st_desc == 'BUILDING':
            if data['state'] == old['state'] and data['task_id'] == old['task_id']:
                return              # the controlling task restarted and called initBuild again
            raise koji.GenericError("Build already in progress (task %(task_id)d)" % old)
        if st_desc not in ('FAILED', 'CANCELED'):
            raise koji.GenericError("Build already exists (id=%d, state=%s): %r"
                                    % (old['id'], st_desc, data))
        if any(r['build_id'] == old['id'] for r in self.state.tag_listing):
            raise koji.GenericError("Build already exists. Unable to recycle, has tag history")
        if any(r['build_id'] == old['id'] for r in self.state.rpms.values()):
            raise koji.GenericError("Build already exists. Unable to recycle, has rpm data")
        old.update({k: data[k] for k in ('state', 'task_id', 'owner', 'source', 'extra',
                                         'epoch', 'start_ts', 'completion_ts', 'create_event',
                                         'create_ts')})
        shutil.rmtree(koji.PathInfo(topdir=str(self.state.topdir)).build(self.build_info(old)),
                      ignore_errors=True)

    def _import_files(self, build, paths, brmap=None, rel=None, move=False):
        """kojihub/kojihub.py: import_rpm + import_rpm_file for each of paths (local files, SRPM
        first): header checks, a rpminfo row each, the file copied (move: moved and
        symlinked, as kojihub does with uploads) to the build dir.  brmap maps rel(path)
        to a buildroot id.  All files are checked before anything is stored."""
        brmap = brmap or {}
        srpmname = '%(name)s-%(version)s-%(release)s.src.rpm' % build
        rows = []
        for path in paths:
            if not os.path.exists(path):
                raise koji.GenericError("No such file: %s" % path)
            info = read_header(path)
            if info['sourcepackage'] == 1:
                info['arch'] = 'src'
            basename = os.path.basename(path)
            expected = "%(name)s-%(version)s-%(release)s.%(arch)s.rpm" % info
            if basename != expected:
                raise koji.GenericError("bad filename: %s (expected %s)" % (basename, expected))
            if info['sourcepackage'] != 1 and info['sourcerpm'] != srpmname:
                raise koji.GenericError("srpm mismatch for %s: %s (expected %s)"
                                        % (path, info['sourcerpm'], srpmname))
            if info['sourcepackage'] == 1 and basename != srpmname:
                raise koji.GenericError("srpm mismatch for %s: %s (expected %s)"
                                        % (path, basename, srpmname))
            for r in list(self.state.rpms.values()) + rows:
                if r['external_repo_id'] == 0 and all(
                        r[k] == info[k] for k in ('name', 'version', 'release', 'arch')):
                    raise koji.GenericError("Rpm %s already exists (hubsim: kojihub fails on "
                                            "the database's unique constraint)" % basename)
            brootid = brmap.get(rel(path) if rel else path)
            if brootid is not None:
                self.buildroots.br(brootid)
            info.update(size=os.path.getsize(path), build_id=build['id'],
                        buildroot_id=brootid, draft=False, metadata_only=False, extra=None,
                        external_repo_id=0, external_repo_name='INTERNAL', path=path)
            rows.append(info)
        builddir = koji.PathInfo(topdir=str(self.state.topdir)).build(self.build_info(build))
        for info in rows:
            dest = os.path.join(builddir, koji.pathinfo.rpm(info))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if move:
                koji.util.move_and_symlink(info.pop('path'), dest)
            else:
                shutil.copyfile(info.pop('path'), dest)
            for k in ('sourcepackage', 'sourcerpm'):
                info.pop(k)
            info['id'] = self.state.next_id('rpm')
            self.state.rpms[info['id']] = info
        self.distrepos.add_file_sigs(rows)
        return rows

    def _add_listing(self, tag_id, build_id, user_id):
        self.state.tag_listing.append({'tag_id': tag_id, 'build_id': build_id,
                                       'create_event': self.state.next_event(), 'revoke_event': None,
                                       'active': True, 'creator_id': user_id, 'revoker_id': None})

    def _revoke_listing(self, row, user_id):
        row.update(active=False, revoke_event=self.state.next_event(), revoker_id=user_id)

    def cancel_builds(self, task_id):
        """kojihub/kojihub.py: Task.cancel -> cancel_build: a BUILDING build of the task is CANCELED"""
        for b in self.state.builds.values():
            if b['task_id'] == task_id and b['state'] == BS['BUILDING']:
                b['state'], b['completion_ts'] = BS['CANCELED'], time.time()
                self._build_notification(task_id, b['id'])

    def _task_tree(self, task_id):
        ids, queue = set(), [task_id]
        while queue:
            tid = queue.pop()
            ids.add(tid)
            queue.extend(c['id'] for c in self.tasks.children(tid))
        return ids

    def _work_files(self, task_id, relpaths):
        """Uploaded files (relative to <topdir>/work) a host passes to the hub: they
        must exist (kojihub) and lie in the task's own tree (hubsim)."""
        dirs = [koji.pathinfo.taskrelpath(t) + '/' for t in self._task_tree(task_id)]
        paths = []
        for rel in relpaths:
            fn = '%s/%s' % (self.state.workdir, rel)
            if not os.path.exists(fn):
                raise koji.GenericError("No such file: %s" % fn)
            if not any(os.path.normpath(rel).startswith(d) for d in dirs):
                raise koji.GenericError("hubsim: %s is not an output of task %i or its "
                                        "subtasks" % (rel, task_id))
            paths.append(fn)
        return paths

    def _noarch_once(self, rpms, logs):
        """kojihub/kojihub.py: check_noarch_rpms (noarch.py): a noarch RPM built on several arches is kept
        once, and fails the call if its copies differ"""
        return check_noarch_rpms(str(self.state.workdir), rpms, logs)

    def _store_logs(self, task_id, destdir, logs):
        """logs {subdir: [relpaths]} moved under destdir/<subdir> (import_build_log)"""
        for key, relpaths in (logs or {}).items():
            logdir = os.path.join(destdir, key) if key else destdir
            for fn in self._work_files(task_id, relpaths):
                koji.util.move_and_symlink(fn, os.path.join(logdir, os.path.basename(fn)),
                                           create_dir=True)

    def _recipients(self, build, tag_id, state):
        """kojihub/kojihub.py: get_notification_recipients, for a hub with NotifyOnSuccess off that
        mails no build or package owner: the subscriptions of active human users only"""
        human = (koji.USERTYPES['NORMAL'], koji.USERTYPES['GROUP'])
        return sorted({n['email'] for n in self.state.notifications
                       if self.state.users[n['user_id']]['status'] == koji.USER_STATUS['NORMAL']
                       and self.state.users[n['user_id']]['usertype'] in human
                       and n['package_id'] in (None, build['pkg_id'])
                       and (n['tag_id'] is None or n['tag_id'] == tag_id)
                       and not (n['success_only'] and state != BS['COMPLETE'])})

    def _task_target(self, task_id):
        """kojihub/kojihub.py: _get_build_target: the target of a 'build' task"""
        t = self.state.tasks.get(task_id)
        if t is None or t['method'] != 'build':
            return None
        params = xmlrpc.client.loads(t['request'])[0]
        return self.tags.rpc_getBuildTarget(params[1])

    def _build_notification(self, task_id, build_id):
        """kojihub/kojihub.py: build_notification"""
        b = self.state.builds[build_id]
        if b['state'] == BS['BUILDING']:
            raise koji.GenericError('never send notifications for incomplete builds')
        target = self._task_target(task_id)
        recipients = self._recipients(b, target and target['dest_tag'], b['state'])
        if recipients:
            self.tasks.make_task('buildNotification',
                                 [recipients, self.build_info(b), target, WEB_URL],
                                 self.state.session.user_id if self.state.session else self.state.admin_id)

    def host_initBuild(self, data):
        """kojihub/kojihub.py: HostExports.initBuild"""
        self.sessions.current_host()
        if 'task_id' not in data:
            raise koji.GenericError("hubsim: initBuild data has no task_id: %r" % (data,))
        t = self.tasks.get(data['task_id'])
        self.tasks.assert_owns(t, self.sessions.current_host())
        data = dict(data, owner=t['owner'], state=BS['BUILDING'])
        return self._new_build(data)

    def host_completeBuild(self, task_id, build_id, srpm, rpms, brmap=None, logs=None):
        """kojihub/kojihub.py: import_build with a build_id from initBuild"""
        host = self.sessions.current_host()
        self.tasks.assert_owns(self.tasks.get(task_id), host)
        for value, cast in ((brmap or {}, dict), (srpm, str), (rpms, list)):
            if not isinstance(value, cast):
                raise koji.ParameterError("Invalid type for value '%s': %s, expected type %s"
                                          % (value, type(value), cast))
        paths = self._work_files(task_id, [srpm] + self._noarch_once(rpms, logs))
        for br_id in set((brmap or {}).values()):
            if self.state.brs.get(br_id) is None:
                raise koji.GenericError("No such buildroot: %r" % br_id)
        head = read_header(paths[0])
        if head['sourcepackage'] != 1:
            raise koji.GenericError("not a source package: %s" % paths[0])
        b = self.find_build(build_id, strict=True)
        head['task_id'] = task_id
        for key in ('name', 'version', 'release', 'epoch', 'task_id'):
            if head[key] != b[key]:
                raise koji.GenericError("Unable to complete build: %s mismatch (build: %s, "
                                        "rpm: %s)" % (key, b[key], head[key]))
        if b['state'] != BS['BUILDING']:
            raise koji.GenericError("Unable to complete build: state is %s" % BS[b['state']])
        workdir = str(self.state.workdir) + '/'
        self._import_files(b, paths, brmap, rel=lambda p: p[len(workdir):], move=True)
        b['state'], b['completion_ts'] = BS['COMPLETE'], time.time()
        info = self.build_info(b)
        self._store_logs(task_id, koji.PathInfo(topdir=str(self.state.topdir)).build_logs(info), logs)
        self._build_notification(task_id, b['id'])
        self.state.local.committed = True
        return self.build_info(b)

    def host_failBuild(self, task_id, build_id):
        """kojihub/kojihub.py: HostExports.failBuild"""
        self.tasks.assert_owns(self.tasks.get(task_id), self.sessions.current_host())
        b = self.find_build(build_id, strict=True)
        if b['state'] != BS['BUILDING']:
            raise koji.GenericError('cannot update build %i, state: %s'
                                    % (b['id'], BS[b['state']]))
        if b['completion_ts'] is not None:
            raise koji.GenericError('cannot update build %i, completed at %s'
                                    % (b['id'], _iso(b['completion_ts'])))
        b['state'], b['completion_ts'] = BS['FAILED'], time.time()
        self._build_notification(task_id, b['id'])
        self.state.local.committed = True

    def host_moveBuildToScratch(self, task_id, srpm, rpms, logs=None):
        """kojihub/kojihub.py: HostExports.moveBuildToScratch"""
        t = self.tasks.get(task_id)
        self.tasks.assert_owns(t, self.sessions.current_host())
        rpms = self._noarch_once(list(rpms), logs)
        paths = self._work_files(task_id, [srpm] + rpms)
        dest = self.state.topdir / 'scratch' / self.state.users[t['owner']]['name'] / ('task_%s' % task_id)
        for fn in paths:
            koji.util.move_and_symlink(fn, str(dest / os.path.basename(fn)), create_dir=True)
        self._store_logs(task_id, str(dest / 'logs'), logs)
        self.state.local.committed = True

    def host_tagBuild(self, task_id, tag, build, force=False, fromtag=None):
        """kojihub/kojihub.py: HostExports.tagBuild: tags as the task owner"""
        host = self.sessions.current_host()
        t = self.tasks.get(task_id)
        self.tasks.assert_owns(t, host)
        b = self.find_build(build, strict=True)
        tag_id = self.tags.tag(tag)['id']
        if fromtag and not isinstance(fromtag, str):
            fromtag = self.tags.tag(fromtag)['name']
        owner_is_admin = 'admin' in self.state.users[t['owner']]['perms']
        if not (force and owner_is_admin):
            self.policy.check_policy('tag', {'tag': tag, 'build': self.build_info(b),
                                             'fromtag': fromtag, 'user_id': t['owner'],
                                             'operation': 'move' if fromtag else 'tag'}, strict=True)
        self._assert_listed(tag_id, tag, b, force)
        if fromtag:
            self._untag(fromtag, b, t['owner'], force)
        self._tag_build(tag_id, b, t['owner'], force)
        self.state.local.committed = True

    def _assert_listed(self, tag_id, label, b, force):
        """tagBuild's package list check; an admin's force lists the package"""
        pkg = self.state.packages.get(tag_id, {}).get(b['name'])
        pkg_error = None
        if pkg is None:
            pkg_error = "Package %s not in list for %s" % (b['name'], label)
        elif pkg['blocked']:
            pkg_error = "Package %s blocked in %s" % (b['name'], label)
        if pkg_error:
            if not (force and self.sessions.has_perm('admin')):
                raise koji.TagError(pkg_error)
            self.add_package(tag_id, b['name'], owner=self.state.session.user_id)

    def _tag_access(self, tag, user_id, force):
        """kojihub/kojihub.py: assert_tag_access"""
        perms = self.state.users[user_id]['perms']
        reason = None
        if tag['locked']:
            reason = "tag is locked"
        elif tag['perm'] and tag['perm'] not in perms:
            reason = "tag requires %s permission" % tag['perm']
        if reason and not ('admin' in perms and force):
            raise koji.ActionNotAllowed(reason)

    def _tag_build(self, tag, b, user_id, force=False):
        """kojihub/kojihub.py: _tag_build + _direct_tag_build"""
        tag = self.tags.tag(tag)
        self._tag_access(tag, user_id, force)
        nvr = "%(name)s-%(version)s-%(release)s" % b
        if b['state'] != BS['COMPLETE']:
            raise koji.TagError("build %s not complete: state %s" % (nvr, BS[b['state']]))
        current = self.tag_rows(tag_id=tag['id'], build_id=b['id'])
        if current:
            if not force:
                raise koji.TagError("build %s already tagged (%s)" % (nvr, tag['name']))
            self._revoke_listing(current[0], user_id)
        self._add_listing(tag['id'], b['id'], user_id)

    def _untag(self, tag, b, user_id, force=False, strict=True):
        """kojihub/kojihub.py: _untag_build + _direct_untag_build"""
        tag = self.tags.tag(tag)
        self._tag_access(tag, user_id, force)
        rows = self.tag_rows(tag_id=tag['id'], build_id=b['id'])
        if not rows and strict:
            raise koji.TagError("build %s not in tag %s"
                                % ("%(name)s-%(version)s-%(release)s" % b, tag['name']))
        for row in rows:
            self._revoke_listing(row, user_id)

    def host_tagNotification(self, is_successful, tag_id, from_id, build_id, user_id,
                             ignore_success=False, failure_msg=''):
        """kojihub/kojihub.py: tag_notification: a tagNotification task when someone subscribed"""
        self.sessions.current_host()
        state = BS['COMPLETE'] if is_successful else BS['FAILED']
        b = self.find_build(build_id)
        if b is None:
            return None
        recipients = set()
        for tid in (tag_id, from_id):
            tag = self.tags.tag(tid, strict=False) if tid else None
            if tag:
                recipients.update(self._recipients(b, tag['id'], state))
        if recipients and not (is_successful and ignore_success):
            self.state.local.committed = True
            return self.tasks.make_task('tagNotification',
                                        [sorted(recipients), is_successful, tag_id, from_id,
                                         build_id, user_id, ignore_success, failure_msg],
                                        self.state.session.user_id)
        return None

    def _login_user(self):
        """kojihub session.assertLogin"""
        if self.state.session is None:
            raise koji.AuthError("Not logged-in")
        return self.state.session.user_id

    def _task_opts(self, priority, channel):
        """RootExports.build/chainBuild: priority relative to the default, channel"""
        opts = {}
        if priority:
            if priority < 0 and not self.sessions.has_perm('admin'):
                raise koji.ActionNotAllowed('only admins may create high-priority tasks')
            opts['priority'] = koji.PRIO_DEFAULT + priority
        if channel:
            opts['channel'] = channel
        return opts

    def rpc_build(self, src, target, opts=None, priority=None, channel=None):
        """kojihub/kojihub.py: RootExports.build"""
        user_id = self._login_user()
        self.state.local.committed = True
        return self.tasks.make_task('build', [src, target, opts or {}], user_id,
                                    **self._task_opts(priority, channel))

    def rpc_chainBuild(self, srcs, target, opts=None, priority=None, channel=None):
        """kojihub/kojihub.py: RootExports.chainBuild"""
        user_id = self._login_user()
        self.state.local.committed = True
        return self.tasks.make_task('chainbuild', [srcs, target, opts or {}], user_id,
                                    **self._task_opts(priority, channel))

    def rpc_tagBuild(self, tag, build, force=False, fromtag=None):
        """kojihub/kojihub.py: RootExports.tagBuild: checks, then a tagBuild task (priority 10)"""
        user_id = self._login_user()
        b = self.find_build(build, strict=True)
        t = self.tags.tag(tag)
        fromtag_id = self.tags.tag(fromtag)['id'] if fromtag else None
        if b['state'] != BS['COMPLETE']:
            raise koji.TagError("build %s not complete: state %s"
                                % ("%(name)s-%(version)s-%(release)s" % b, BS[b['state']]))
        self._tag_access(t, user_id, force)
        if fromtag:
            self._tag_access(self.state.tags[fromtag_id], user_id, force)
        self._assert_listed(t['id'], t['name'], b, force)
        if not (force and self.sessions.has_perm('admin')):
            self.policy.check_policy('tag', {'tag': t['id'], 'build': b['id'], 'fromtag': fromtag_id,
                                             'operation': 'move' if fromtag else 'tag'}, strict=True)
        self.state.local.committed = True
        return self.tasks.make_task('tagBuild', [t['id'], b['id'], force, fromtag_id], user_id,
                                    priority=10)

    def rpc_restartHosts(self, priority=5, options=None):
        """kojihub/kojihub.py: RootExports.restartHosts"""
        user_id = self._login_user()
        if not (self.sessions.has_perm('host') or self.sessions.has_perm('admin')):
            raise koji.ActionNotAllowed("host permission required (logged in as %s)"
                                        % self._user_name(user_id))
        self.state.local.committed = True
        return self.tasks.make_task('restartHosts', [] if options is None else [options], user_id,
                                    priority=priority)

    def rpc_getBuild(self, buildInfo, strict=False):
        """kojihub/kojihub.py: RootExports.getBuild (get_build)"""
        b = self.find_build(buildInfo, strict=strict)
        return None if b is None else self.build_info(b)

    def rpc_listBuilds(self, packageID=None, userID=None, taskID=None, prefix=None, state=None,
                       volumeID=None, source=None, createdBefore=None, createdAfter=None,
                       completeBefore=None, completeAfter=None, type=None, typeInfo=None,
                       queryOpts=None, pattern=None, cgID=None, draft=None):
        """kojihub/kojihub.py: RootExports.listBuilds"""
        if isinstance(packageID, str):
            packageID = self.state.package_ids.get(packageID, -1)
        if isinstance(userID, str):
            user = self.sessions.rpc_getUser(userID)
            userID = user['id'] if user else -1
        out = []
        for b in self.state.builds.values():
            if (packageID is not None and b['pkg_id'] != packageID) or \
                    (userID is not None and b['owner'] != userID) or \
                    (taskID is not None and b['task_id'] != taskID) or \
                    (state is not None and b['state'] != state) or \
                    (prefix and not b['name'].lower().startswith(prefix.lower())) or \
                    (pattern and not fnmatch.fnmatch('%(name)s-%(version)s-%(release)s' % b,
                                                     pattern)):
                continue
            out.append(self.build_info(b))
        return out

    def _listed(self, tag_id, name):
        entry = self.state.packages.get(tag_id, {}).get(name)
        return entry is not None and not entry['blocked']

    def tagged_builds(self, tag_id, event=None, latest=False, package=None, owner=None):
        """kojihub/kojihub.py: readTaggedBuilds (no inheritance in hubsim)"""
        rows = sorted(self.tag_rows(tag_id=tag_id, event=event),
                      key=lambda r: -r['create_event'])
        out, seen = [], {}
        tag_name = self.state.tags[tag_id]['name']
        for r in rows:
            b = self.state.builds[r['build_id']]
            if b['state'] != BS['COMPLETE'] or not self._listed(tag_id, b['name']) or \
                    (package and b['name'] != package) or \
                    (owner and self._user_name(b['owner']) != owner):
                continue
            if latest:
                if (latest is True and b['pkg_id'] in seen) or \
                        seen.get(b['pkg_id'], 0) >= latest:
                    continue
                seen[b['pkg_id']] = seen.get(b['pkg_id'], 0) + 1
            info = self.build_info(b)
            info.update(tag_id=tag_id, tag_name=tag_name, create_event=r['create_event'])
            out.append(info)
        return out

    def rpc_listTagged(self, tag, event=None, inherit=False, prefix=None, latest=False,
                       package=None, owner=None, type=None, strict=True, extra=False,
                       draft=None):
        """kojihub/kojihub.py: RootExports.listTagged"""
        t = self.tags.tag(tag, strict=strict)
        if t is None:
            return []
        if package and package not in self.state.package_ids:
            if strict:
                raise koji.GenericError("No such package: %s" % package)
            return []
        builds = self.tagged_builds(t['id'], event, latest, package, owner)
        if prefix:
            builds = [b for b in builds if b['package_name'].lower().startswith(prefix.lower())]
        return builds

    def rpc_getLatestBuilds(self, tag, event=None, package=None, type=None, draft=None):
        """kojihub/kojihub.py: RootExports.getLatestBuilds"""
        return self.tagged_builds(self.tags.tag(tag)['id'], event, True, package)

    def rpc_getPackageConfig(self, tag, pkg, event=None):
        """kojihub/kojihub.py: RootExports.getPackageConfig → readPackageList(event=...): at ``event``, only
        listings made by then (eventCondition on tag_packages)."""
        t = self.tags.tag(tag, strict=False)
        name = pkg if isinstance(pkg, str) else next(
            (n for n, i in self.state.package_ids.items() if i == pkg), None)
        entry = self.state.packages.get(t['id'], {}).get(name) if t else None
        if entry is None or (event is not None and entry['create_event'] > event):
            return None
        return {'package_id': self.state.package_ids[name], 'package_name': name,
                'tag_id': t['id'], 'tag_name': t['name'], 'extra_arches': entry['extra_arches'],
                'blocked': entry['blocked'], 'owner_id': entry['owner_id'],
                'owner_name': self._user_name(entry['owner_id'])}

    def rpc_getNextRelease(self, build_info, incr=1):
        """kojihub/kojihub.py: get_next_release (integer releases, or N.suffix)"""
        states = (BS['COMPLETE'], BS['DELETED'], BS['BUILDING'])
        olds = [b for b in self.state.builds.values() if b['name'] == build_info['name']
                and b['version'] == build_info['version'] and b['state'] in states]
        release = max(olds, key=lambda b: b['id'])['release'] if olds else None
        if not release:
            return str(incr)
        head, _, tail = release.partition('.')
        if not head.isdigit():
            raise koji.BuildError('Unable to increment release value: %s' % release)
        return str(int(head) + incr) + ('.' + tail if tail else '')

    def rpc_listRPMs(self, buildID=None, buildrootID=None, imageID=None,
                     componentBuildrootID=None, hostID=None, arches=None, queryOpts=None,
                     draft=None):
        """kojihub/kojihub.py: RootExports.listRPMs (list_rpms)"""
        if isinstance(arches, str):
            arches = [arches]
        if componentBuildrootID is not None:
            listing = {e['rpm_id']: e['is_update']
                       for e in self.buildroots.br(componentBuildrootID)['listing']}
        out = []
        for r in self.state.rpms.values():
            if (buildID is not None and r['build_id'] != buildID) or \
                    (buildrootID is not None and r['buildroot_id'] != buildrootID) or \
                    (arches and r['arch'] not in arches) or \
                    (componentBuildrootID is not None and r['id'] not in listing):
                continue
            info = dict(r, nvr='%(name)s-%(version)s-%(release)s' % r)
            if componentBuildrootID is not None:
                info['is_update'] = listing[r['id']]
            out.append(info)
        return out

    def rpc_getChangelogEntries(self, buildID=None, taskID=None, filepath=None, author=None,
                                before=None, after=None, queryOpts=None, strict=False):
        """kojihub/kojihub.py: RootExports.getChangelogEntries of a build: its SRPM's %changelog, newest first
        (added by helper OPS for buildNotification; only buildID, limit and offset)"""
        if buildID is None:
            raise koji.GenericError("hubsim: getChangelogEntries is only simulated for a buildID")
        b = self.build_info(self.find_build(buildID, strict=True))
        srpm = os.path.join(koji.PathInfo(topdir=str(self.state.topdir)).build(b), 'src',
                            '%(name)s-%(version)s-%(release)s.src.rpm' % b)
        if not os.path.exists(srpm):
            if strict:
                raise koji.GenericError("error retrieving changelog entries: SRPM not found")
            return []
        fields, record = '@@hubsim-field@@', '@@hubsim-entry@@'
        fmt = '[%%{CHANGELOGTIME}%s%%{CHANGELOGNAME}%s%%{CHANGELOGTEXT}%s]' % (fields, fields, record)
        out = subprocess.run(['rpm', '-qp', '--nosignature', '--nodigest', '--qf', fmt, srpm],
                             capture_output=True, text=True, check=True).stdout
        entries = []
        for entry in filter(None, out.split(record)):
            ts, name, text = entry.split(fields)
            entries.append({'date': _iso(int(ts)), 'date_ts': int(ts), 'author': name, 'text': text})
        opts = queryOpts or {}
        start = opts.get('offset') or 0
        return entries[start:start + opts['limit'] if opts.get('limit') else None]

    def add_package(self, tag, name, owner=None, blocked=False):
        """List package `name` in tag (owner: user name or id, default the admin)."""
        with self.state.lock:
            tag_id = self.tags.tag(tag)['id']
            owner_id = self.state.admin_id if owner is None else (
                owner if isinstance(owner, int) else self.sessions.rpc_getUser(owner, strict=True)['id'])
            self._package_id(name)
            self.state.packages.setdefault(tag_id, {})[name] = {'blocked': bool(blocked),
                                                                'owner_id': owner_id,
                                                                'extra_arches': None,
                                                                'create_event': self.state.next_event()}

    def add_past_build(self, name, version, release, seconds, task_id=1):
        """A COMPLETE build record (no files) of a task that took ``seconds``, so the package has a
        history for getAverageBuildDuration."""
        with self.state.lock:
            build_id = self._new_build({'name': name, 'version': version, 'release': release, 'epoch': None,
                                        'task_id': task_id, 'state': BS['COMPLETE']})
            build = self.state.builds[build_id]
            build['create_ts'] = build['start_ts'] = build['completion_ts'] - seconds
            return build_id

    def import_build(self, rpm_paths, tag=None, owner=None):
        """A COMPLETE build of local RPM files (one SRPM + its binaries), stored under
        <topdir>/packages as Koji does; tagged into `tag` (listing the package) if given."""
        with self.state.changed:
            paths = [str(p) for p in rpm_paths]
            srpms = [p for p in paths if p.endswith('.src.rpm')]
            if len(srpms) != 1:
                raise koji.GenericError("hubsim: import_build needs exactly one SRPM, got %r"
                                        % srpms)
            head = read_header(srpms[0])
            owner_id = self.state.admin_id if owner is None else (
                owner if isinstance(owner, int) else self.sessions.rpc_getUser(owner, strict=True)['id'])
            build_id = self._new_build(dict(head, owner=owner_id, state=BS['COMPLETE']))
            build = self.state.builds[build_id]
            try:
                self._import_files(build, srpms + [p for p in paths if p not in srpms])
            except Exception:
                del self.state.builds[build_id]
                raise
            if tag is not None:
                tag_id = self.tags.tag(tag)['id']
                if build['name'] not in self.state.packages.get(tag_id, {}):
                    self.add_package(tag_id, build['name'], owner=owner_id)
                self._add_listing(tag_id, build_id, owner_id)
            self.state.changed.notify_all()
            return build_id

    def add_notification(self, user, package=None, tag=None, success_only=False, email=None):
        """A build notification subscription of user (name or id); None = any package/tag.
        The hub creates buildNotification/tagNotification tasks only for subscribers."""
        with self.state.lock:
            u = self.sessions.rpc_getUser(user, strict=True)
            self.state.notifications.append({
                'user_id': u['id'], 'email': email or '%s@hubsim.test' % u['name'],
                'package_id': None if package is None else self._package_id(package),
                'tag_id': None if tag is None else self.tags.tag(tag)['id'],
                'success_only': bool(success_only)})

    def add_group(self, tag, group, packages):
        """Comps group `group` of tag with these package names (repoInit writes comps.xml)."""
        with self.state.lock:
            self.state.groups.setdefault(self.tags.tag(tag)['id'], {})[group] = list(packages)

    def build(self, build_id):
        """A build for assertions: get_build() fields, 'state' as a name, its 'rpms'."""
        with self.state.lock:
            b = self.find_build(build_id, strict=True)
            info = self.build_info(b)
            info['state'] = BS[b['state']]
            info['rpms'] = [dict(r) for r in self.state.rpms.values() if r['build_id'] == b['id']]
            info['tags'] = [self.state.tags[r['tag_id']]['name']
                            for r in self.tag_rows(build_id=b['id'])]
            return info

    def tagged(self, tag):
        """NVRs in the active listing of tag, latest tagging first."""
        with self.state.lock:
            tag_id = self.tags.tag(tag)['id']
            rows = sorted(self.tag_rows(tag_id=tag_id), key=lambda r: -r['create_event'])
            return ['%(name)s-%(version)s-%(release)s' % self.state.builds[r['build_id']] for r in rows]
