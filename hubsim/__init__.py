"""hubsim: a Koji hub simulator for testing koji-adjutant against the real
koji client library (koji.ClientSession, koji.daemon, koji.tasks).

    with HubSimulator(tmp_path / 'koji') as hub:       # hub.url, hub.topurl
        hid = hub.add_host('builder1', password='pw')  # user builder1 is created
        hub.add_tag('f40-build', extra={'rpm.macro.dist': '.fc40'})
        repo_id = hub.add_repo('f40-build', repo_dir)  # linked at repos/f40-build/<id>
        tid = hub.create_task('buildArch', [srpm, 'f40-build', 'x86_64', True,
                                            {'repo_id': repo_id}])
        hub.assign(tid, hid)                           # or hub.auto_assign = True
        ...run the worker against hub.url...
        assert hub.wait_task(tid)['state'] == 'CLOSED'
        assert hub.violations == []

Builds, packages, tagging (builds.py, Builds):

    hub.add_package('f40', 'foo', owner='alice', blocked=False)   # getPackageConfig
    bid = hub.import_build([srpm, rpm], tag='f40')  # COMPLETE, files under packages/
    hub.add_group('f40-build', 'build', ['bash', 'rpm-build'])    # comps.xml of repoInit
    hub.add_notification('alice', package='foo')    # else no build/tagNotification task
    hub.build(bid)      # get_build() fields + 'state' name, 'rpms', 'tags'
    hub.tagged('f40')   # ['foo-1.0-1', ...], latest tagging first

Policies (policies.py, Policy) are kojihub's: its default policies as rule text
(build_from_srpm, build_from_repo_id and build_from_scm allow admins only),
evaluated by koji.policy; a policy the hub lacks is allowed by checkPolicy
and unknown to evalPolicy.  A test sets one as hub.conf [policy] would:

    hub.set_policy('build_from_srpm', 'all :: allow')
    hub.set_policy('buildroot_image', 'match tag f40-build :: image quay.io/x:1')

Clients create top-level tasks with build(), chainBuild(), tagBuild() and
restartHosts() (owner: the caller); host.initBuild/completeBuild/failBuild/
moveBuildToScratch/tagBuild/tagNotification keep kojihub's rules.  The files
of completeBuild and moveBuildToScratch are moved out of work/ (a symlink
stays) and must be outputs of the build task's own tree.  A subtask with
assign=host_id is ASSIGNED to that host only; assign() refuses a host that is
not in the task's channel or lacks its arch.

Layout (ADR 0010): state.py holds the shared data (HubState) and the Service
base; each service owns one part of kojihub's rules and calls the others through
their public methods only: sessions.py, tasks.py, hosts.py, buildroots.py,
tags.py, builds.py, repos.py, distrepos.py, policies.py (Policy), uploads.py.
front.py dispatches XML-RPC method names to them (session checks, callnums,
multicall); server.py's HubSimulator composes it all and serves it (HTTP
transport, suspend/drop_response); files.py is the topurl file server,
values.py and noarch.py shared helpers.  hub.svc.<service> reaches a service;
hub.<table> (hub.tasks, hub.users, ...) the shared state.

This package is the tests' and is not installed with koji_adjutant.
"""

from .server import HubSimulator

__all__ = ['HubSimulator']
