"""The hub's policies: rule text, evaluated as kojihub evaluates it.

kojihub takes the policy texts of hub.conf [policy], adds its default policies
for the names hub.conf leaves out (kojihub/kojixmlrpc.py load_config,
_default_policies) and compiles each text into a koji.policy.SimpleRuleSet
whose tests are the ones findSimpleTests finds in kojihub and in koji.policy
(kojixmlrpc.get_policy). The simulator does the same with the installed
koji.policy: its generic tests (all, none, true, false, has, bool, match,
match_any, match_all, target, compare) are used as they are; the kojihub tests
that read the hub's own data are written here, against the simulator's state.
"""

from __future__ import annotations

import fnmatch

import koji.policy

# kojihub/kojixmlrpc.py _default_policies, verbatim: the policies of a hub whose
# hub.conf sets none of them.
DEFAULT_POLICIES = {
    'build_rpm': '''
            all :: allow
            ''',
    'build_from_srpm': '''
            has_perm admin :: allow
            all :: deny Only admin can do this via default policy
            ''',
    'build_from_repo_id': '''
            has_perm admin :: allow
            all :: deny Only admin can do this via default policy
            ''',
    'build_from_scm': '''
            has_perm admin :: allow
            # match scm_type CVS CVS+SSH && match scm_host scm.example.com && match scm_repository /cvs/example :: allow
            # match scm_type GIT GIT+SSH && match scm_host git.example.org && match scm_repository /example :: allow
            # match scm_type SVN SVN+SSH && match scm_host svn.example.org && match scm_repository /users/* :: allow
            all :: deny Only admin can do this via default policy
            ''',  # noqa: E501
    'package_list': '''
            has_perm admin :: allow
            has_perm tag :: allow
            all :: deny Only admin/tag can do this via default policy
            ''',
    'channel': '''
            has req_channel :: req
            is_child_task :: parent
            all :: use default
            ''',
    'vm': '''
            has_perm admin win-admin :: allow
            all :: deny Only admin/win-admin can do this via default policy
           ''',
    'cg_import': '''
            all :: allow
            ''',
    'volume': '''
            all :: DEFAULT
            ''',
    'priority': '''
            all :: stay
            ''',
    'draft_promotion': '''
            has_perm draft-promoter :: allow
            is_build_owner :: allow
            all :: deny Only draft-promoter and build owner can do this via default policy
            '''
}


def policy_user(hub, data: dict) -> dict | None:
    """kojihub policy_get_user: the user named by data['user_id'], else the logged-in one."""
    if 'user_id' in data:
        return hub.rpc_getUser(data['user_id'])
    session = hub._session
    return hub.rpc_getUser(session.user_id) if session is not None else None


class HubTest(koji.policy.BaseSimpleTest):
    """A test that reads the hub's data, as kojihub's tests read its database.

    ``hub`` is set on the per-hub subclasses that policy_tests() makes.
    """

    hub = None


class HasPermTest(HubTest):
    """kojihub HasPermTest: the policy's user has a permission matching one of the patterns.

    Its permissions are kojihub get_user_perms' (hubsim has no groups, so only the user's own).
    """

    name = 'has_perm'

    def run(self, data):
        user = policy_user(self.hub, data)
        if not user:
            return False
        patterns = self.str.split()[1:]
        return any(fnmatch.fnmatch(perm, pattern)
                   for perm in self.hub.users[user['id']]['perms'] for pattern in patterns)


class IsBuildOwnerTest(HubTest):
    """kojihub IsBuildOwnerTest: the policy's user owns data['build'] (hubsim has no group owners)."""

    name = 'is_build_owner'

    def run(self, data):
        build = self.hub._find_build(data['build'], strict=True)
        user = policy_user(self.hub, data)
        return user is not None and build['owner'] == user['id']


class ChildTaskTest(koji.policy.BoolTest):
    """kojihub ChildTaskTest: the task has a parent (data['parent'] is set)."""

    name = 'is_child_task'
    field = 'parent'


def policy_tests(hub) -> dict[str, type]:
    """kojixmlrpc get_policy's tests by name: kojihub's (here: the simulator's) before koji.policy's."""
    tests = koji.policy.findSimpleTests(vars(koji.policy))
    tests[ChildTaskTest.name] = ChildTaskTest
    for test in (HasPermTest, IsBuildOwnerTest):
        tests[test.name] = type(test.__name__, (test,), {'hub': hub})
    return tests


def compile_policy(hub, text: str) -> koji.policy.SimpleRuleSet:
    """kojixmlrpc get_policy: one policy's text as a rule set (a syntax error raises at once)."""
    return koji.policy.SimpleRuleSet(text.splitlines(), policy_tests(hub))
