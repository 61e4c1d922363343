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

Modules: state.py (data and kojihub's rules), server.py (XML-RPC transport,
HubSimulator, suspend/drop_response), files.py (topurl file server).
"""

from .server import HubSimulator

__all__ = ['HubSimulator']
