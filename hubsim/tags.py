"""Tags, targets, repos and external repos as lookups (kojihub/kojihub.py: get_tag,
get_build_target, repo_info)."""

from __future__ import annotations

import koji
import koji.util

from .state import Service
from .values import as_int as _int
from .values import by_id_or_name


class Tags(Service):
    """Lookups of tags, targets, repos and external repos (kojihub/kojihub.py: get_tag,
    get_build_target, repo_info, get_external_repo).  Public: tag; test API add_tag,
    add_target, add_external_repo."""

    uses = ()

    def tag(self, info, strict=True):
        if isinstance(info, dict):
            info = info.get('id', info.get('name'))
        tag = by_id_or_name(self.state.tags, info)
        if tag is None and strict:
            raise koji.GenericError("No such tagInfo: %r" % info)
        return tag

    def rpc_getTag(self, tagInfo, strict=False, event=None, blocked=False):
        """kojihub/kojihub.py: RootExports.getTag (get_tag)"""
        tag = self.tag(tagInfo, strict)
        return None if tag is None else {k: v for k, v in tag.items()}

    def rpc_getBuildConfig(self, tag, event=None):
        """kojihub/kojihub.py: RootExports.getBuildConfig"""
        info = self.rpc_getTag(tag, strict=True)
        info['extra'] = dict(info['extra'])
        info['config_inheritance'] = {'extra': {}, 'arches': None}
        return info

    def rpc_getBuildTarget(self, info, event=None, strict=False):
        """kojihub/kojihub.py: RootExports.getBuildTarget (get_build_target)"""
        target = by_id_or_name(self.state.targets, info)
        if target is None and strict:
            raise koji.GenericError("No such build target: %s" % info)
        return target and dict(target)

    def rpc_repoInfo(self, repo_id, strict=False):
        """kojihub/kojihub.py: RootExports.repoInfo (repo_info)"""
        repo = self.state.repos.get(_int(repo_id))
        if repo is None and strict:
            raise koji.GenericError("No such repo: %s" % repo_id)
        return repo and dict(repo)

    def rpc_getRepo(self, tag, state=None, event=None, dist=False, min_event=None):
        """kojihub/kojihub.py: RootExports.getRepo (repos.py: old_get_repo)"""
        tag_id = tag if isinstance(tag, int) else self.tag(tag)['id']
        state = koji.REPO_READY if state is None else state
        repos = [r for r in self.state.repos.values() if r['tag_id'] == tag_id and r['dist'] == dist
                 and (r['create_event'] <= event if event else r['state'] == state)
                 and (min_event is None or r['create_event'] >= min_event)]
        if not repos:
            return None
        r = max(repos, key=lambda r: r['create_event'])
        return {k: r[k] for k in ('id', 'state', 'task_id', 'create_event', 'creation_time',
                                  'create_ts', 'dist')}

    def rpc_getExternalRepo(self, info, strict=False, event=None):
        """kojihub/kojihub.py: get_external_repo: by name or id; None (or an error when strict) if unknown."""
        found = [dict(e) for e in self.state.ext_repos.values() if info in (e['id'], e['name'])]
        if not found and strict:
            raise koji.GenericError('No such repo: %s' % info)
        return found[0] if found else None

    def rpc_getExternalRepoList(self, tag_info, event=None):
        """kojihub/kojihub.py: RootExports.getExternalRepoList (get_external_repo_list)"""
        tag = self.tag(tag_info)
        return [{'tag_id': tag['id'], 'tag_name': tag['name'], 'external_repo_id': eid,
                 'external_repo_name': self.state.ext_repos[eid]['name'],
                 'url': self.state.ext_repos[eid]['url'], 'merge_mode': 'koji', 'priority': prio,
                 'arches': None}
                for prio, eid in sorted(self.state.tag_ext_repos.get(tag['id'], []))]

    def add_tag(self, name, arches='x86_64', extra=None):
        with self.state.lock:
            tid = self.state.next_id('tag')
            if not isinstance(arches, str) and arches is not None:
                arches = ' '.join(arches)
            self.state.tags[tid] = {'id': tid, 'name': name, 'perm_id': None, 'perm': None,
                                    'arches': arches, 'locked': False, 'maven_support': False,
                                    'maven_include_all': False, 'extra': dict(extra or {})}
            return tid

    def add_target(self, name, build_tag, dest_tag):
        with self.state.lock:
            b, d = self.tag(build_tag), self.tag(dest_tag)
            tid = self.state.next_id('target')
            self.state.targets[tid] = {'id': tid, 'name': name, 'build_tag': b['id'],
                                       'build_tag_name': b['name'], 'dest_tag': d['id'],
                                       'dest_tag_name': d['name']}
            return tid

    def add_external_repo(self, name, url, tags=(), priority=5):
        with self.state.lock:
            eid = self.state.next_id('external_repo')
            self.state.ext_repos[eid] = {'id': eid, 'name': name, 'url': url}
            for tag in tags:
                self.state.tag_ext_repos.setdefault(self.tag(tag)['id'], []).append((priority, eid))
            return eid
