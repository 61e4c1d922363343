"""Repos of the simulated hub: repoInit/repoDone, the repo.* request API, newRepo.

The Repos service (state.py: Service): its rpc_<name>/host_<name>/repo_<name>
methods are exported by front.py; its data are the shared HubState's.

What kojihub 1.35+ does (kojihub.py repo_init/repo_done/newRepo, repos.py request_repo,
get_repo, check_repo_request, check_repo_queue, repo_done_hook), minus the database:

- repoInit writes ``<topdir>/repos/<tag>/<id>/``: ``repo.json``, ``groups/comps.xml``
  (the tag's groups) and per arch ``<arch>/toplink`` (a relative link to topdir),
  ``<arch>/pkglist`` (``toplink/packages/N/V/R/<arch>/<file>`` of the latest tagged
  build of each package; noarch RPMs in every arch, debuginfo only with the debuginfo
  option), ``<arch>/rpmlist.jsonl`` (those RPMs, one JSON row each, which builders
  map their buildroot lists with) and ``<arch>/blocklist`` (blocked package names).
- repoDone moves each arch's uploaded files into ``<arch>/repodata/``, marks the repo
  READY (EXPIRED with expire=True), expires the tag's older READY repos and fulfils the
  repo requests the new repo satisfies.
- A repo request nothing satisfies gets a newRepo task in the createrepo channel at
  once (the hub's repo queue does so on its next pass), and another try when that
  task fails, up to ``request_retries``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import koji

from .state import Service
from .values import as_int, iso

TS = koji.TASK_STATES
DEFAULT_OPTS = {'src': False, 'debuginfo': False, 'separate_src': False, 'maven': False}
REPO_FIELDS = ('id', 'tag_id', 'tag_name', 'creation_time', 'creation_ts', 'state_time',
               'state_ts', 'create_event', 'create_ts', 'begin_event', 'begin_ts',
               'end_event', 'end_ts', 'state', 'dist', 'opts', 'custom_opts', 'task_id',
               'task_state')


def _convert_opts(opts, strict=False):
    """kojihub/repos.py: convert_repo_opts"""
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        if strict:
            raise koji.ParameterError('Repo opts must be a dictionary')
        return {}
    converted = {}
    for key, value in opts.items():
        if key not in DEFAULT_OPTS:
            if strict:
                raise koji.ParameterError(f'Invalid repo option: {key}')
            continue
        if value is not None:
            converted[key] = bool(value)
    return converted


class Repos(Service):
    """Repos, repo requests and events (kojihub/repos.py: RepoExports, request_repo,
    check_repo_queue; kojihub/kojihub.py: HostExports.repoInit, repoDone, newRepo).
    Public: complete_repo (HostExports.repoDone of a non-dist repo), set_repo_state, repo_view,
    and the test API add_repo, repo, write_repo_rpmlist."""

    uses = ('builds', 'sessions', 'tags', 'tasks')

    def add_repo(self, tag_name, repo_dir=None, state='READY'):
        """A repo of tag; repo_dir (holding <arch>/ dirs) is linked at repos/<tag>/<id>."""
        with self.state.lock:
            tag = self.tags.tag(tag_name)
            rid, now = self.state.next_id('repo'), time.time()
            self.state.repos[rid] = {'id': rid, 'tag_id': tag['id'], 'tag_name': tag['name'],
                                     'state': koji.REPO_STATES[state],
                                     'create_event': self.state.next_event(),
                                     'creation_time': iso(now), 'create_ts': now, 'state_ts': now,
                                     'dist': False, 'task_id': None, 'opts': {}, 'custom_opts': {},
                                     'begin_event': None, 'end_event': None}
            if repo_dir is not None:
                link = self.state.topdir / 'repos' / tag['name'] / str(rid)
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(repo_dir).resolve())
            return rid

    def _event_before(self, ts):
        before = [e for e, t in self.state.event_ts.items() if t < ts]
        return max(before) if before else None

    def rpc_getLastEvent(self, before=None, strict=True):
        """kojihub/kojihub.py: RootExports.getLastEvent"""
        event = self.state.event if before is None else self._event_before(float(before))
        if event is None:
            if strict:
                raise koji.GenericError("Unable to determine event")
            return None
        return {'id': event, 'ts': self.state.event_ts[event]}

    def rpc_getEvent(self, id, strict=True):
        """kojihub/kojihub.py: RootExports.getEvent"""
        event = as_int(id)
        if event not in self.state.event_ts:
            if strict:
                raise koji.GenericError("No such event: %s" % id)
            return None
        return {'id': event, 'ts': self.state.event_ts[event]}

    def _tag_events(self, tag_id):
        events = [min(self.state.event_ts)]   # the tag's creation is not recorded: the first event
        for row in self.state.tag_listing:
            if row['tag_id'] == tag_id:
                events.append(row['create_event'])
                if row['revoke_event'] is not None:
                    events.append(row['revoke_event'])
        return sorted(events)

    def rpc_tagLastChangeEvent(self, tag, inherit=True):
        """kojihub/kojihub.py: RootExports.tagLastChangeEvent (tag_last_change_event)"""
        return self._tag_events(self.tags.tag(tag)['id'])[-1]

    def rpc_tagFirstChangeEvent(self, tag, after=None, inherit=True):
        """kojihub/kojihub.py: RootExports.tagFirstChangeEvent (tag_first_change_event)"""
        later = [e for e in self._tag_events(self.tags.tag(tag)['id'])
                 if after is None or e > as_int(after)]
        return later[0] if later else None

    def _repo_opts(self, tag, override=None):
        """kojihub/repos.py: get_repo_opts: (opts, custom)"""
        opts = dict(DEFAULT_OPTS)
        opts.update(_convert_opts(tag['extra'].get('repo.opts', {})))
        if 'with_debuginfo' in tag['extra'] and 'repo.opts' not in tag['extra']:
            opts['debuginfo'] = bool(tag['extra']['with_debuginfo'])
        custom = {}
        if override is not None:
            override = _convert_opts(override)
            custom = {k: v for k, v in override.items() if v != opts[k]}
            opts.update(custom)
        return opts, custom

    def repo_view(self, r):
        """kojihub/repos.py: RepoQuery with fields '**'"""
        task = self.state.tasks.get(r.get('task_id')) if r.get('task_id') else None
        create_ts = self.state.event_ts.get(r['create_event'], r.get('create_ts'))
        view = {'id': r['id'], 'tag_id': r['tag_id'], 'tag_name': r['tag_name'],
                'creation_time': r['creation_time'], 'creation_ts': r['create_ts'],
                'state_time': iso(r['state_ts']), 'state_ts': r['state_ts'],
                'create_event': r['create_event'], 'create_ts': create_ts,
                'begin_event': r.get('begin_event'), 'begin_ts': None,
                'end_event': r.get('end_event'), 'end_ts': None, 'state': r['state'],
                'dist': r['dist'], 'opts': dict(r.get('opts') or DEFAULT_OPTS),
                'custom_opts': dict(r.get('custom_opts') or {}), 'task_id': r.get('task_id'),
                'task_state': task['state'] if task else None}
        return {k: view[k] for k in REPO_FIELDS}

    def set_repo_state(self, r, state):
        r['state'], r['state_ts'] = koji.REPO_STATES[state], time.time()

    def _latest_rpms(self, tag_id, event, debuginfo):
        """kojihub readTaggedRPMS(latest=True): RPMs of the newest tagged build of each package"""
        latest = {}
        for row in sorted(self.builds.tag_rows(tag_id=tag_id, event=event),
                          key=lambda row: row['create_event']):
            build = self.state.builds[row['build_id']]
            latest[build['name']] = build
        return [(build, rpm) for build in latest.values() for rpm in self.state.rpms.values()
                if rpm['build_id'] == build['id']
                and (debuginfo or not koji.is_debuginfo(rpm['name']))]

    def _comps_groups(self, tag_id):
        """self.state.groups in kojihub/kojihub.py: readTagGroups form"""
        return [{'name': name, 'display_name': name, 'description': name, 'langonly': None,
                 'is_default': True, 'uservisible': True, 'biarchonly': False, 'grouplist': [],
                 'blocked': False, 'exported': True,
                 'packagelist': [{'package': p, 'type': 'mandatory', 'basearchonly': None,
                                  'requires': None, 'blocked': False} for p in packages]}
                for name, packages in self.state.groups.get(tag_id, {}).items()]

    def _rpmlist_row(self, rpm):
        """One line of a repo's rpmlist.jsonl: the RPM as kojihub readTaggedRPMS gives it"""
        return {k: rpm[k] for k in ('id', 'name', 'version', 'release', 'epoch', 'arch', 'payloadhash',
                                    'size', 'buildtime', 'build_id', 'buildroot_id', 'draft',
                                    'external_repo_id', 'external_repo_name', 'metadata_only', 'extra')}

    def write_repo_rpmlist(self, repo_id):
        """rpmlist.jsonl in each arch of a repo made outside repoInit (add_repo), as repo_init
        writes it: every internal RPM the hub knows of that arch (noarch in every arch)."""
        with self.state.lock:
            repo = self.state.repos[repo_id]
            repodir = self.state.topdir / 'repos' / repo['tag_name'] / str(repo_id)
            for archdir in (d for d in repodir.iterdir() if d.is_dir() and d.name != 'groups'):
                rows = [json.dumps(self._rpmlist_row(r)) + '\n' for r in self.state.rpms.values()
                        if r['external_repo_id'] == 0
                        and (r['arch'] == 'noarch' or koji.canonArch(r['arch']) == archdir.name)]
                (archdir / 'rpmlist.jsonl').write_text(''.join(rows))

    def host_repoInit(self, tag, task_id=None, event=None, opts=None):
        """kojihub/kojihub.py: repo_init; returns [repo_id, event_id]"""
        self.sessions.current_host()
        task_id = None if task_id is None else as_int(task_id)
        event = None if event is None else as_int(event)
        tinfo = self.tags.tag(tag)
        opts, custom = self._repo_opts(tinfo, override=_convert_opts(opts, strict=True))
        if opts['maven']:
            raise koji.GenericError("Maven support not enabled")
        if event is not None and event not in self.state.event_ts:
            raise koji.GenericError('query returned no rows')
        arches = ['src'] if opts['src'] else []
        for arch in (tinfo['arches'] or '').split():
            arch = koji.canonArch(arch)
            if arch not in ('src', 'noarch') and arch not in arches:
                arches.append(arch)
        repo_id = self.state.next_id('repo')
        event_id = self.state.next_event() if event is None else event
        now = time.time()
        self.state.repos[repo_id] = {
            'id': repo_id, 'tag_id': tinfo['id'], 'tag_name': tinfo['name'],
            'state': koji.REPO_INIT, 'create_event': event_id, 'creation_time': iso(now),
            'create_ts': now, 'state_ts': now, 'dist': False, 'task_id': task_id,
            'opts': opts, 'custom_opts': custom, 'begin_event': None, 'end_event': None}
        repodir = self.state.topdir / 'repos' / tinfo['name'] / str(repo_id)
        (repodir / 'groups').mkdir(parents=True)
        (repodir / 'groups' / 'comps.xml').write_text(
            koji.generate_comps(self._comps_groups(tinfo['id']), expand_groups=True))
        (repodir / 'repo.json').write_text(json.dumps(
            {'id': repo_id, 'tag': tinfo['name'], 'tag_id': tinfo['id'], 'task_id': task_id,
             'event_id': event_id, 'opts': opts, 'custom_opts': custom}, indent=2))
        lists = {arch: [] for arch in arches}
        rows = {arch: [] for arch in arches}
        for build, rpm in self._latest_rpms(tinfo['id'], event_id, opts['debuginfo']):
            path = 'toplink/%s/%s' % (koji.PathInfo(topdir='').build(self.builds.build_info(build))
                                      .lstrip('/'), koji.pathinfo.rpm(rpm))
            if rpm['arch'] == 'src':
                targets = ['src'] if opts['src'] else []
            elif rpm['arch'] == 'noarch':
                targets = [a for a in arches if a != 'src']
            else:
                targets = [koji.canonArch(rpm['arch'])]
            for arch in targets:
                if arch in lists:
                    lists[arch].append(path + '\n')
                    rows[arch].append(json.dumps(self._rpmlist_row(rpm)) + '\n')
        blocked = sorted(name for name, pkg in self.state.packages.get(tinfo['id'], {}).items()
                         if pkg['blocked'])
        for arch, lines in lists.items():
            archdir = repodir / arch
            archdir.mkdir()
            os.symlink(os.path.relpath(self.state.topdir, archdir), archdir / 'toplink')
            (archdir / 'pkglist').write_text(''.join(sorted(lines)))
            (archdir / 'rpmlist.jsonl').write_text(''.join(rows[arch]))
            (archdir / 'blocklist').write_text(''.join(name + '\n' for name in blocked))
        self.state.local.committed = True
        return [repo_id, event_id]

    def complete_repo(self, repo_id, data, expire=False, repo_json_updates=None):
        """kojihub HostExports.repoDone"""
        self.sessions.current_host()
        r = self.state.repos.get(as_int(repo_id))
        if r is None:
            raise koji.GenericError("No such repo: %s" % repo_id)
        if r['state'] != koji.REPO_INIT:
            raise koji.GenericError("Repo %s not in INIT state (got %s)" % (r['id'], r['state']))
        repodir = self.state.topdir / 'repos' / r['tag_name'] / str(r['id'])
        expected = {p.name for p in repodir.iterdir() if (p / 'pkglist').is_file()}
        if self.state.strict_results and set(data) != expected:
            raise koji.GenericError("hubsim: repoDone data has arches %s, repoInit made %s"
                                    % (sorted(data), sorted(expected)))
        moves = []
        for arch, (uploadpath, files) in data.items():
            archdir = repodir / koji.canonArch(arch)
            if not archdir.is_dir():
                raise koji.GenericError("Repo arch directory missing: %s" % archdir)
            for fn in files:
                src = self.state.workdir / uploadpath / fn
                if not src.exists():
                    raise koji.GenericError("uploaded file missing: %s" % src)
                moves.append((src, archdir / 'repodata' / fn))
        for src, dst in moves:
            dst.parent.mkdir(exist_ok=True)
            shutil.move(src, dst)
        if repo_json_updates:
            info = json.loads((repodir / 'repo.json').read_text())
            info.update(repo_json_updates)
            (repodir / 'repo.json').write_text(json.dumps(info, indent=2))
        self.state.local.committed = True
        if expire:
            self.set_repo_state(r, 'EXPIRED')
            return None
        self.set_repo_state(r, 'READY')
        for other in self.state.repos.values():
            if other['tag_id'] == r['tag_id'] and other['id'] != r['id'] and \
                    other['state'] == koji.REPO_READY and not other['dist'] and \
                    other['create_event'] < r['create_event']:
                self.set_repo_state(other, 'EXPIRED')
        latest = self.state.topdir / 'repos' / r['tag_name'] / 'latest'
        if not r['custom_opts']:
            if latest.is_symlink():
                latest.unlink()
            latest.symlink_to(str(r['id']))
        self._fulfil_requests(r)
        return None

    def _fulfil_requests(self, r):
        """kojihub/repos.py: repo_done_hook"""
        view = self.repo_view(r)
        for req in self.state.regen_requests.values():
            if req['active'] and req['repo_id'] is None and self._satisfies(view, req):
                req.update(repo_id=r['id'], active=False, update_ts=time.time())

    @staticmethod
    def _satisfies(repo, req):
        """kojihub/repos.py: valid_repo"""
        if repo['tag_id'] != req['tag_id'] or repo['state'] != koji.REPO_READY:
            return False
        if req['at_event'] is not None:
            if repo['create_event'] != req['at_event']:
                return False
        elif repo['create_event'] < req['min_event']:
            return False
        if any(repo['opts'].get(k) != v for k, v in req['opts'].items()):
            return False
        return all(req['opts'].get(k) == v for k, v in repo['custom_opts'].items())

    def rpc_getFullInheritance(self, tag, event=None, reverse=False):
        """kojihub/kojihub.py: readFullInheritance: the simulator's tags inherit from none"""
        self.tags.tag(tag)
        return []

    def repo_get(self, tag, min_event=None, at_event=None, opts=None):
        """kojihub/repos.py: get_repo: the newest READY repo matching, or None"""
        tag_id = self.tags.tag(tag)['id']
        min_event = None if min_event is None else as_int(min_event)
        at_event = None if at_event is None else as_int(at_event)
        opts = _convert_opts(opts, strict=True)
        found = []
        for r in self.state.repos.values():
            view = self.repo_view(r)
            if view['tag_id'] != tag_id or view['dist'] or view['state'] != koji.REPO_READY:
                continue
            if any(view['opts'].get(k) != v for k, v in opts.items()):
                continue
            if any(opts.get(k) != v for k, v in view['custom_opts'].items()):
                continue
            if at_event is not None and view['create_event'] != at_event:
                continue
            if at_event is None and min_event is not None and view['create_event'] < min_event:
                continue
            found.append(view)
        return max(found, key=lambda v: v['create_event']) if found else None

    def _default_min_event(self, tinfo):
        """kojihub/repos.py: default_min_event"""
        last = self.rpc_tagLastChangeEvent(tinfo['id'])
        lag = tinfo['extra'].get('repo.lag')
        lag = lag if isinstance(lag, int) else self.state.request_lag
        base_ts = (time.time() - lag) // self.state.request_lag_window * self.state.request_lag_window
        base = self._event_before(base_ts)
        if base is None:
            base = self.rpc_tagFirstChangeEvent(tinfo['id'])
        return min(base, last)

    def _request_view(self, req):
        task = self.state.tasks.get(req['task_id']) if req['task_id'] else None
        view = dict(req, tag_name=self.state.tags[req['tag_id']]['name'],
                    owner_name=self.state.users[req['owner']]['name'],
                    task_state=task['state'] if task else None,
                    create_time=iso(req['create_ts']), update_time=iso(req['update_ts']))
        view['opts'] = dict(req['opts'])
        return view

    def repo_request(self, tag, min_event=None, at_event=None, opts=None, priority=None,
                     force=False):
        """kojihub/repos.py: request_repo: {'repo', 'request', 'duplicate'}"""
        s = self.state.session
        if s is None:
            raise koji.ActionNotAllowed("you must be logged in for this operation")
        tinfo = self.tags.tag(tag)
        opts = _convert_opts(opts, strict=True)
        if opts.get('maven'):
            raise koji.GenericError('Maven support not enabled')
        if at_event is not None:
            if min_event is not None:
                raise koji.ParameterError('The min_event and at_event options conflict')
            at_event = as_int(at_event)
            if at_event not in self.state.event_ts:
                raise koji.ParameterError(f'Invalid event: {at_event}')
        elif min_event == "last":
            min_event = self.rpc_tagLastChangeEvent(tinfo['id'])
        elif min_event is None:
            min_event = self._default_min_event(tinfo)
        else:
            min_event = as_int(min_event)
            if min_event not in self.state.event_ts:
                raise koji.ParameterError(f'Invalid event: {min_event}')
        if priority is None:
            priority = koji.PRIO_DEFAULT
        else:
            priority = as_int(priority)
            if priority < 0 and not self.sessions.has_perm('admin'):
                raise koji.ActionNotAllowed('only admins may create high-priority requests')
            priority += koji.PRIO_DEFAULT
        ret = {'repo': None, 'request': None, 'duplicate': False}
        if not force:
            repo = self.repo_get(tinfo['id'], min_event=min_event, at_event=at_event, opts=opts)
            if repo:
                ret['repo'] = repo
                return ret
        for req in sorted(self.state.regen_requests.values(), key=lambda q: (q['priority'], q['id'])):
            if req['tag_id'] == tinfo['id'] and req['active'] and req['opts'] == opts and (
                    req['at_event'] == at_event if at_event is not None
                    else (req['min_event'] or 0) >= min_event):
                req['priority'] = min(req['priority'], priority)
                ret.update(request=self._request_view(req), duplicate=True)
                return ret
        now = time.time()
        req = {'id': self.state.next_id('repo_queue'), 'owner': s.user_id, 'priority': priority,
               'tag_id': tinfo['id'], 'at_event': at_event,
               'min_event': None if at_event is not None else min_event, 'opts': opts,
               'create_ts': now, 'update_ts': now, 'active': True, 'task_id': None,
               'tries': 0, 'repo_id': None}
        self.state.regen_requests[req['id']] = req
        self._queue_task(req)
        self.state.local.committed = True
        ret['request'] = self._request_view(req)
        return ret

    def _queue_task(self, req):
        """kojihub/repos.py: repo_queue_task: a newRepo task for the request"""
        kwargs = {'opts': dict(req['opts'])}
        if req['at_event'] is not None:
            kwargs['event'] = req['at_event']
        tagspec = {'id': req['tag_id'], 'name': self.state.tags[req['tag_id']]['name']}
        owner = self.state.admin_id
        if self.state.request_queue_user:
            owner = self.sessions.rpc_getUser(self.state.request_queue_user, strict=True)['id']
        req['task_id'] = self.tasks.make_task('newRepo', koji.encode_args(tagspec, **kwargs), owner,
                                              channel='createrepo', priority=15)
        req['tries'] += 1
        req['update_ts'] = time.time()

    def _check_queue(self, req):
        """kojihub/repos.py: check_repo_queue for one request: retry a failed task"""
        if not req['active'] or req['repo_id'] is not None or not req['task_id']:
            return
        state = self.state.tasks[req['task_id']]['state']
        if state in (TS['CANCELED'], TS['FAILED']):
            if req['tries'] > self.state.request_retries:
                req.update(active=False, update_ts=time.time())
            else:
                self._queue_task(req)

    def repo_checkRequest(self, req_id):
        """kojihub/repos.py: check_repo_request: {'repo', 'request'[, 'task']}"""
        req = self.state.regen_requests.get(as_int(req_id))
        if req is None:
            raise koji.GenericError('No such request')
        self._check_queue(req)
        ret = {'repo': None, 'request': self._request_view(req)}
        if req['repo_id']:
            ret['repo'] = self.tags.rpc_repoInfo(req['repo_id'])
        elif req['task_id']:
            ret['task'] = self.tasks.info(self.state.tasks[req['task_id']])
        return ret

    def rpc_newRepo(self, tag, event=None, src=None, debuginfo=None, separate_src=None,
                    opts=None):
        """kojihub/kojihub.py: RootExports.newRepo (koji regen-repo): a newRepo task in the
        createrepo channel"""
        if not (self.sessions.has_perm('admin') or self.sessions.has_perm('repo') or
                self.sessions.has_perm('regen-repo')):
            raise koji.ActionNotAllowed('regen-repo permission required')
        self.tags.tag(tag)
        legacy = {k: bool(v) for k, v in (('src', src), ('debuginfo', debuginfo),
                                          ('separate_src', separate_src)) if v is not None}
        if legacy:
            if opts is not None:
                raise koji.ParameterError('opts parameter cannot be combined with legacy options')
            opts = legacy
        kwargs = {}
        if event is not None:
            kwargs['event'] = as_int(event)
        if opts is not None:
            kwargs['opts'] = _convert_opts(opts, strict=True)
        task_id = self.tasks.make_task('newRepo', koji.encode_args(tag, **kwargs),
                                       self.state.session.user_id, channel='createrepo', priority=15)
        self.state.local.committed = True
        return task_id

    def repo(self, repo_id):
        """A repo for assertions: its repo view with 'state' as a name, and its directory."""
        with self.state.lock:
            view = self.repo_view(self.state.repos[repo_id])
            view['state'] = koji.REPO_STATES[view['state']]
            view['path'] = self.state.topdir / 'repos' / view['tag_name'] / str(repo_id)
            return view
