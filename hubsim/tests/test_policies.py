"""The simulator's policies: kojihub's default texts, evaluated by koji.policy with the
simulator's own kojihub tests (has_perm, is_build_owner, is_child_task)."""

from __future__ import annotations

import koji
import pytest

from hubsim import HubSimulator
from hubsim.policies import DEFAULT_POLICIES

from .test_hubsim import PW


@pytest.fixture
def hub(tmp_path):
    with HubSimulator(tmp_path / 'koji') as hub:
        yield hub


def test_every_default_policy_is_there_and_nothing_else(hub):
    assert set(hub.policies) == set(DEFAULT_POLICIES) == {
        'build_rpm', 'build_from_srpm', 'build_from_repo_id', 'build_from_scm', 'package_list',
        'channel', 'vm', 'cg_import', 'volume', 'priority', 'draft_promotion'}


@pytest.mark.parametrize('name, perms, action', [
    ('build_rpm', (), 'allow'),
    ('build_from_srpm', (), 'deny Only admin can do this via default policy'),
    ('build_from_srpm', ('admin',), 'allow'),
    ('build_from_repo_id', ('repo',), 'deny Only admin can do this via default policy'),
    ('build_from_repo_id', ('admin',), 'allow'),
    ('build_from_scm', ('admin',), 'allow'),
    ('build_from_scm', (), 'deny Only admin can do this via default policy'),
    ('package_list', ('tag',), 'allow'),
    ('package_list', (), 'deny Only admin/tag can do this via default policy'),
    ('vm', ('win-admin',), 'allow'),
    ('vm', (), 'deny Only admin/win-admin can do this via default policy'),
    ('cg_import', (), 'allow'),
    ('volume', (), 'DEFAULT'),
    ('priority', (), 'stay'),
])
def test_default_policy_answers_by_the_users_permissions(hub, name, perms, action):
    user = hub.add_user('u', PW, perms=perms)
    assert hub.rpc_evalPolicy(name, {'user_id': user}) == action


def test_channel_policy_keeps_the_requested_then_the_parents_channel(hub):
    assert hub.rpc_evalPolicy('channel', {'req_channel': 'createrepo', 'parent': 7}) == 'req'
    assert hub.rpc_evalPolicy('channel', {'parent': 7}) == 'parent'
    assert hub.rpc_evalPolicy('channel', {'parent': None}) == 'use default'


def test_draft_promotion_by_a_promoter_or_the_build_owner(hub, rpms):
    owner, promoter, other = (hub.add_user(name, PW, perms=perms) for name, perms in
                              (('owner', ()), ('promoter', ('draft-promoter',)), ('other', ())))
    build = hub.import_build([rpms('foo')[0], *rpms('foo')[1]], owner='owner')
    answers = {user: hub.rpc_evalPolicy('draft_promotion', {'user_id': user, 'build': build})
               for user in (owner, promoter, other)}
    assert answers == {owner: 'allow', promoter: 'allow',
                       other: 'deny Only draft-promoter and build owner can do this via default policy'}


def test_has_perm_takes_glob_patterns_and_needs_a_user(hub):
    hub.set_policy('build_rpm', 'has_perm nothing win-* :: allow\nall :: deny')
    assert hub.rpc_evalPolicy('build_rpm', {'user_id': hub.add_user('w', PW, perms=('win-admin',))}) == 'allow'
    assert hub.rpc_evalPolicy('build_rpm', {'user_id': hub.add_user('x', PW, perms=('admin',))}) == 'deny'
    assert hub.rpc_evalPolicy('build_rpm', {'user_id': 999}) == 'deny'       # no such user
    assert hub.rpc_evalPolicy('build_rpm', {}) == 'deny'                     # nobody logged in


def test_generic_tests_come_from_koji_policy(hub):
    hub.set_policy('build_rpm', '''
        none :: deny never
        false :: deny never
        has draft && bool draft :: deny no drafts
        bool scratch :: deny scratch or not from git
        match source git+https://* :: allow
        true :: deny scratch or not from git
        ''')
    assert hub.rpc_evalPolicy('build_rpm', {'draft': True}) == 'deny no drafts'
    assert hub.rpc_evalPolicy('build_rpm', {'source': 'git+https://h/p#1'}) == 'allow'
    assert hub.rpc_evalPolicy('build_rpm', {'source': 'git+https://h/p#1', 'scratch': True}) == \
        'deny scratch or not from git'


def test_unknown_test_or_bad_syntax_is_refused_when_set(hub):
    with pytest.raises(koji.GenericError, match='missing test handler: operation'):
        hub.set_policy('build_rpm', 'operation tag :: allow')
    with pytest.raises(Exception, match='bad policy line'):
        hub.set_policy('build_rpm', 'all allow')
    assert hub.rpc_evalPolicy('build_rpm', {}) == 'allow'     # the default stays
