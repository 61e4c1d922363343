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

import koji
import koji.policy

from .state import Service


def _rules(*lines):
    return '\n'.join(lines)


_ADMIN_ONLY = 'all :: deny Only admin can do this via default policy'
# The policies of a hub whose hub.conf sets none of them: the rules of
# kojihub/kojixmlrpc.py _default_policies (load_config adds them), one rule a line.
DEFAULT_POLICIES = {
    'build_rpm': _rules('all :: allow'),
    'build_from_srpm': _rules('has_perm admin :: allow', _ADMIN_ONLY),
    'build_from_repo_id': _rules('has_perm admin :: allow', _ADMIN_ONLY),
    'build_from_scm': _rules('has_perm admin :: allow', _ADMIN_ONLY),
    'package_list': _rules('has_perm admin :: allow', 'has_perm tag :: allow',
                           'all :: deny Only admin/tag can do this via default policy'),
    'channel': _rules('has req_channel :: req', 'is_child_task :: parent', 'all :: use default'),
    'vm': _rules('has_perm admin win-admin :: allow',
                 'all :: deny Only admin/win-admin can do this via default policy'),
    'cg_import': _rules('all :: allow'),
    'volume': _rules('all :: DEFAULT'),
    'priority': _rules('all :: stay'),
    'draft_promotion': _rules('has_perm draft-promoter :: allow', 'is_build_owner :: allow',
                              'all :: deny Only draft-promoter and build owner can do this via '
                              'default policy'),
}


def policy_user(policy, data: dict) -> dict | None:
    """kojihub/kojihub.py: policy_get_user: the user named by data['user_id'], else the logged-in one."""
    if 'user_id' in data:
        return policy.sessions.rpc_getUser(data['user_id'])
    session = policy.state.session
    return policy.sessions.rpc_getUser(session.user_id) if session is not None else None


class HubTest(koji.policy.BaseSimpleTest):
    """A test that reads the hub's data, as kojihub's tests read its database.

    ``policy`` (the hub's Policy service) is set on the per-hub subclasses that
    policy_tests() makes.
    """

    policy = None


class HasPermTest(HubTest):
    """kojihub/kojihub.py: HasPermTest: the policy's user has a permission matching one of the patterns.

    Its permissions are kojihub/auth.py: get_user_perms' (hubsim has no groups, so only the user's own).
    """

    name = 'has_perm'

    def run(self, data):
        user = policy_user(self.policy, data)
        if not user:
            return False
        patterns = self.str.split()[1:]
        return any(fnmatch.fnmatch(perm, pattern)
                   for perm in self.policy.state.users[user['id']]['perms'] for pattern in patterns)


class IsBuildOwnerTest(HubTest):
    """kojihub/kojihub.py: IsBuildOwnerTest: the policy's user owns data['build']
    (hubsim has no group owners)."""

    name = 'is_build_owner'

    def run(self, data):
        build = self.policy.builds.find_build(data['build'], strict=True)
        user = policy_user(self.policy, data)
        return user is not None and build['owner'] == user['id']


class ChildTaskTest(koji.policy.BoolTest):
    """kojihub/kojihub.py: ChildTaskTest: the task has a parent (data['parent'] is set)."""

    name = 'is_child_task'
    field = 'parent'


def policy_tests(policy) -> dict[str, type]:
    """kojixmlrpc get_policy's tests by name: kojihub's (here: the simulator's) before koji.policy's."""
    tests = koji.policy.findSimpleTests(vars(koji.policy))
    tests[ChildTaskTest.name] = ChildTaskTest
    for test in (HasPermTest, IsBuildOwnerTest):
        tests[test.name] = type(test.__name__, (test,), {'policy': policy})
    return tests


def compile_policy(policy, text: str) -> koji.policy.SimpleRuleSet:
    """kojixmlrpc get_policy: one policy's text as a rule set (a syntax error raises at once)."""
    return koji.policy.SimpleRuleSet(text.splitlines(), policy_tests(policy))


class Policy(Service):
    """The hub's policies: kojihub's defaults, replaced by set_policy as hub.conf [policy] would."""

    uses = ('builds', 'sessions')

    def load_defaults(self):
        """kojihub/kojixmlrpc.py load_config: every default policy hub.conf does not set."""
        for name, text in DEFAULT_POLICIES.items():
            self.state.policies.setdefault(name, compile_policy(self, text))

    def rpc_evalPolicy(self, name, data):
        """kojihub/kojihub.py: eval_policy: the action of the first matching rule, or None"""
        ruleset = self.state.policies.get(name)
        if ruleset is None:
            raise koji.GenericError("no such policy: %s" % name)
        return ruleset.apply(data)

    def host_evalPolicy(self, name, data):
        """kojihub/kojihub.py: HostExports.evalPolicy"""
        self.sessions.current_host()
        return self.rpc_evalPolicy(name, data)

    def host_checkPolicy(self, name, data, default='deny', strict=False):
        """kojihub/kojihub.py: HostExports.checkPolicy"""
        self.sessions.current_host()
        return self.check_policy(name, data, default, strict)

    def check_policy(self, name, data, default='deny', strict=False):
        """kojihub/kojihub.py: check_policy: (allowed, reason); strict raises
        ActionNotAllowed unless allowed"""
        ruleset = self.state.policies.get(name)
        if ruleset is None:
            result, reason = 'allow', 'missing policy'      # MissingPolicyOk (default on)
        else:
            result = ruleset.apply(data)
            if result is None:
                result, reason = default, 'not covered by policy'
            else:
                result, reason = (result.split(None, 1) + ['', ''])[:2]
                result = result.lower()
        if result == 'allow':
            return True, reason
        if result != 'deny':
            self.state.warn("Invalid action in policy %s, rule: %s" % (name, ruleset.last_rule()))
            reason = 'error in policy'
        if not strict:
            return False, reason
        raise koji.ActionNotAllowed("policy violation (%s)%s" % (name, reason and ": " + reason))

    def host_assertPolicy(self, name, data, default='deny'):
        """kojihub/kojihub.py: HostExports.assertPolicy"""
        self.sessions.current_host()
        self.check_policy(name, data, default, strict=True)

    def set_policy(self, name, text):
        """What hub.conf [policy] ``name = text`` does: the policy's rules, replacing its default.

        text is kojihub policy syntax, e.g. "has_perm admin :: allow\nall :: deny admins only";
        an empty text is a policy no rule of which matches.
        """
        with self.state.lock:
            self.state.policies[name] = compile_policy(self, text)
