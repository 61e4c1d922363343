"""The shared state of the simulated Koji hub, and the base of its services.

The hub is composed (server.py HubSimulator) of one HubState, which holds the
data every part reads (the tables of kojihub's database, in dicts), and of
services, each owning the rules of one part of kojihub and calling the others
only through their public methods:

    sessions.py    Sessions     logins, sessions, users, permissions, the calling host
    tasks.py       Tasks        tasks, host task calls, the scheduler's timeouts
    hosts.py       Hosts        hosts and channels
    buildroots.py  Buildroots   buildroots, their RPM lists, RPM lookups
    tags.py        Tags         tags, targets, repo and external repo lookups
    builds.py      Builds       builds, packages, tagging, notifications
    repos.py       Repos        repos, repo requests, events
    distrepos.py   DistRepos    RPM signatures, dist repos
    policies.py    Policy       policy rules, evalPolicy/checkPolicy/assertPolicy
    uploads.py     Uploads      uploads into <topdir>/work

Exported calls are the service methods named ``rpc_<name>`` (XML-RPC
``<name>``), ``host_<name>`` (``host.<name>``) and ``repo_<name>``
(``repo.<name>``); front.py dispatches to them.  Each keeps kojihub's argument
names and defaults, return shapes, exception classes and messages, so that an
unmodified ``koji.ClientSession`` sees what it would see against a real hub.
Where the simulator is deliberately *stricter* than kojihub (to catch worker
bugs the real hub would only notice later, or never), the check is marked
``hubsim:`` in its message and can be switched off with the ``strict_*``
attributes.

Every exception raised to a client is appended to ``violations``; oddities
that kojihub only logs (and accepts) go to ``warnings``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path


class Service:
    """One part of the hub: rules over the shared HubState.  The services it calls
    are named in ``uses`` and set by connect(); it reaches none of their privates."""

    uses = ()

    def __init__(self, state):
        self.state = state

    def connect(self, services):
        for name in self.uses:
            setattr(self, name, services[name])


class HubState:
    """The hub's data (kojihub's tables), its lock and event counter, and the call's context."""

    strict_rpm_match = True    # hubsim: also compare epoch/payloadhash of Koji RPMs
    strict_task_paths = True   # hubsim: tasks/<id % 10000>/<id>, not tasks/<any>/<id>
    strict_results = True      # hubsim: check task responses and result files
    enforce_callnum = True     # False: as deployed hubs behave (see Sessions.check_session)
    request_lag = 3600          # hub.conf RepoLag (s): default min_event of a repo request
    request_lag_window = 600    # hub.conf RepoLagWindow
    request_retries = 3         # hub.conf RepoRetries
    request_queue_user = None   # hub.conf RepoQueueUser (user name): owner of queue tasks

    def __init__(self, topdir):
        self.topdir = Path(topdir)
        self.workdir = self.topdir / 'work'
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.topdir / 'repos').mkdir(exist_ok=True)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.local = threading.local()   # per call: .session, .committed
        self._seq = {}
        self.event = 1000
        self.auto_assign = False
        self.calls, self.violations, self.warnings = [], [], []
        self.users, self.sessions, self.hosts, self.tags, self.targets = {}, {}, {}, {}, {}
        self.repos, self.ext_repos, self.tag_ext_repos, self.rpms = {}, {}, {}, {}
        self.tasks, self.brs = {}, {}
        # policy name -> koji.policy.SimpleRuleSet (the Policy service compiles them)
        self.policies = {}
        # builds and tags (calls in builds.py): build id -> kojihub get_build() dict;
        # tag id -> {package name -> {'blocked': bool, 'owner_id': user id}};
        # tag_listing rows {'tag_id', 'build_id', 'create_event', 'revoke_event', 'active'};
        # tag id -> {group name -> [package names]} (written as comps.xml by repoInit).
        # RPMs of a build live in self.rpms with 'build_id' set, their files under
        # <topdir>/packages as koji.pathinfo places them.
        self.builds, self.packages, self.tag_listing, self.groups = {}, {}, [], {}
        # package name -> id; notification subscriptions (builds.py add_notification)
        self.package_ids, self.notifications = {}, []
        # repo generation requests (calls in repos.py): request id -> kojihub repo.request dict
        self.regen_requests = {}
        # RPM signature headers (distrepos.py): kojihub rpmsigs rows {'rpm_id', 'sigkey', 'sighash'}
        self.rpmsigs = []
        # event id -> time it happened (getLastEvent(before=...), repo request lag)
        self.event_ts = {self.event: time.time()}
        self.channels = {1: 'default', 2: 'createrepo'}
        self._seq['channels'] = 2
        self.admin_id = None     # the Sessions service creates hubsim-admin

    def next_id(self, table):
        """The next id of a table (kojihub's sequences)."""
        self._seq[table] = self._seq.get(table, 0) + 1
        return self._seq[table]

    def next_event(self):
        """A new event (kojihub/db.py: _singleValue("SELECT get_event()"))."""
        self.event += 1
        self.event_ts[self.event] = time.time()
        return self.event

    def warn(self, msg):
        """What kojihub only logs (and accepts)."""
        self.warnings.append(msg)

    @property
    def session(self):
        """The session of the call being run (kojihub context.session), or None."""
        return getattr(self.local, 'session', None)
