"""The builder's housekeeping tasks end to end: restart, restartVerify, restartHosts,
shutdown, dependantTask, and refusing a method it has no handler for.

The worker is the real daemon; the hub is the simulator, which also plays "another
builder" where a test needs one (a ClientSession logged in as a second host).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import koji
import koji.xmlrpcplus
import pytest
from smtpsim import SmtpServer

from .harness import TAG

pytestmark = pytest.mark.podman

OTHER = "e2e-other-builder"
OTHER_PASSWORD = "other-secret"
#: how the daemon can be started: the console script, or the module with the interpreter
LAUNCHERS = {
    "console-script": None,
    "python-m": [sys.executable, "-m", "koji_adjutant.cli"],
}


def podman_services(worker) -> list[Path]:
    """The private podman service directories the worker has under its TMPDIR."""
    return sorted(worker.tmpdir.glob("adjutant-podman-*"))


def service_processes(worker) -> list[int]:
    return [pid for pid in worker.processes()
            if b"system\0service" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def open_sessions(hub, host_id: int) -> list:
    user_id = hub.hosts[host_id]["user_id"]
    with hub.lock:
        return [s for s in hub.sessions.values() if s.user_id == user_id and not s.closed and s.master is None]


@pytest.fixture
def other_builder(hub):
    """A second builder on the hub, in channels default and createrepo, played by the test."""
    host_id = hub.add_host(OTHER, arches=["noarch"], password=OTHER_PASSWORD, channels=("default", "createrepo"))
    session = koji.ClientSession(hub.url, {"user": OTHER, "password": OTHER_PASSWORD})
    session.login()
    session.exclusiveSession()
    session.host.updateHost(0.0, True)
    session.host_id = host_id
    yield session
    session.logout()


@pytest.fixture
def ready(hub, wait_until):
    """ready(after): wait until the worker's host is ready on the hub, by a heartbeat after time `after`."""
    def wait(after: float = 0.0) -> None:
        def is_ready():
            host = hub.host(hub.builder_id)
            return host["ready"] and any(ts > after for ts in host["heartbeats"])
        wait_until(is_ready, "the worker to report ready", timeout=60)
    return wait


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_restart_task_reexecs_the_worker_and_restart_verify_passes(hub, start_worker, wait_task, ready,
                                                                    launcher):
    # without --force-lock: the restarted process takes the host's session only because
    # the old one logged out before re-executing
    worker = start_worker(launcher=LAUNCHERS[launcher], force_lock=False)
    ready()
    (service_before,) = podman_services(worker)
    (old_session,) = open_sessions(hub, hub.builder_id)
    host = hub.rpc_getHost(hub.builder_id)

    restart = hub.create_task("restart", [host], arch="noarch")
    task = wait_task(restart)
    assert task["state"] == "CLOSED", task["fault"]
    assert task["result"] == "graceful restart initiated"
    verify = hub.create_task("restartVerify", [restart, host], arch="noarch")
    task = wait_task(verify)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")

    assert worker.alive, "the worker should have re-executed itself, not exited"
    log = worker.log_text()
    assert log.count("re-executing ") == 1
    assert log.count("logged in to ") == 2
    assert old_session.closed, "the old session was not logged out before the re-exec"
    (new_session,) = open_sessions(hub, hub.builder_id)
    assert new_session.exclusive and new_session.start_ts > hub.tasks[restart]["completion_ts"]
    # one private podman service, the new process's own: the old one and its directory are gone
    (service_after,) = podman_services(worker)
    assert service_after != service_before
    assert len(service_processes(worker)) == 1
    assert not [v for v in hub.violations if "exclusive" in v["message"].lower()], hub.violations


def test_restart_verify_fails_when_the_worker_did_not_restart(hub, start_worker, wait_task, ready,
                                                              other_builder):
    start_worker()
    ready()
    host = hub.rpc_getHost(hub.builder_id)
    # a restart task that another builder closed: this worker has not restarted since
    restart = hub.create_task("restart", [host], arch="noarch", channel="createrepo")
    assert [t["id"] for t in other_builder.host.getTasks()] == [restart]
    other_builder.host.openTask(restart)
    other_builder.host.closeTask(restart, koji.xmlrpcplus.dumps((None,), methodresponse=1, allow_none=1))
    verify = hub.create_task("restartVerify", [restart, host], arch="noarch")
    task = wait_task(verify)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultString"].startswith("Restart failed - start time is ")


def test_restart_hosts_restarts_every_host_and_verifies(hub, start_worker, wait_task, ready):
    worker = start_worker()
    ready()
    admin = koji.ClientSession(hub.url, {"user": "hubsim-admin", "password": hub.users[hub.admin_id]["password"]})
    admin.login()
    try:
        parent = admin.restartHosts()
    finally:
        admin.logout()
    task = wait_task(parent, timeout=120)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    children = {c["method"]: hub.task(c["id"]) for c in hub.rpc_getTaskChildren(parent)}
    assert set(children) == {"restart", "restartVerify"}
    for child in children.values():
        assert child["state"] == "CLOSED", child["fault"]
        assert child["host_id"] == hub.builder_id
    assert children["restart"]["result"] == "graceful restart initiated"
    assert worker.alive and worker.log_text().count("re-executing ") == 1


def test_sigusr1_restarts_when_idle(hub, start_worker, ready, wait_until):
    worker = start_worker()
    ready()
    signaled = time.time()
    worker.proc.send_signal(signal.SIGUSR1)
    wait_until(lambda: worker.log_text().count("logged in to ") == 2, "the worker to log in again", timeout=60)
    ready(after=signaled)
    assert worker.alive and "re-executing " in worker.log_text()


def test_shutdown_task_stops_the_worker_cleanly(hub, start_worker, wait_task, ready):
    worker = start_worker()
    ready()
    worker.stopped = True  # the test stops it, through the hub
    shutdown = hub.create_task("shutdown", [], arch="noarch")
    task = wait_task(shutdown)
    assert task["state"] == "CLOSED", task["fault"]
    assert worker.wait(60) == 0
    assert worker.lingering() == []
    assert podman_services(worker) == []
    assert hub.host(hub.builder_id)["ready"] is False
    assert open_sessions(hub, hub.builder_id) == []
    # closed, not freed: no other builder is handed the shutdown
    assert hub.task(shutdown)["state"] == "CLOSED"
    assert "shutting down" in worker.log_text()


def test_unknown_method_is_refused_and_goes_to_another_builder(hub, start_worker, wait_until, ready,
                                                               other_builder):
    worker = start_worker()
    ready()
    task_id = hub.create_task("frobnicate", [1, 2], arch="noarch")
    refusals = wait_until(lambda: hub.task(task_id)["refusals"], "the worker to refuse the task", timeout=60)
    assert refusals == [{"host_id": hub.builder_id, "soft": False, "msg": "no handler for method"}]
    assert f"[WARNING] koji.TaskManager: Refusing task {task_id}, no handler for frobnicate" in worker.log_text()
    task = hub.task(task_id)
    assert task["state"] == "FREE" and task["host_id"] is None
    time.sleep(3)  # several loops of the worker: it is not handed the task again
    assert hub.task(task_id)["refusals"] == refusals and hub.task(task_id)["state"] == "FREE"
    # another builder gets it
    assigned = other_builder.host.getTasks()
    assert [t["id"] for t in assigned] == [task_id]
    assert other_builder.host.openTask(task_id)["id"] == task_id
    assert hub.task(task_id)["host_id"] == other_builder.host_id
    assert worker.alive


def _notify_nobody(tag_id=None):
    """A tagNotification with no recipients: a quick task this worker closes without mail."""
    return ["tagNotification", [[], True, tag_id, None, None, None]]


def test_dependant_task_waits_for_its_tasks_then_runs_its_subtasks(hub, start_worker, wait_task, wait_until,
                                                                    ready, other_builder):
    start_worker()
    ready()
    # a task only the other builder can take (channel createrepo): the test decides when it ends
    awaited = hub.create_task("createrepo", [1, "noarch", None], arch="noarch", channel="createrepo")
    assert [t["id"] for t in other_builder.host.getTasks()] == [awaited]
    other_builder.host.openTask(awaited)
    method, args = _notify_nobody()
    dependant = hub.create_task("dependantTask", [[awaited], [[method, args], [method, args, {"priority": 15}]]],
                                arch="noarch")
    wait_until(lambda: hub.task(dependant)["state"] == "OPEN", "the worker to take the dependantTask", timeout=60)
    time.sleep(3)
    assert hub.rpc_getTaskChildren(dependant) == [], "subtasks were created before the awaited task ended"

    other_builder.host.closeTask(awaited, koji.xmlrpcplus.dumps((None,), methodresponse=1, allow_none=1))
    task = wait_task(dependant)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    children = hub.rpc_getTaskChildren(dependant, request=True)
    assert [(c["method"], c["request"]) for c in children] == [(method, args), (method, args)]
    assert [c["priority"] for c in children] == [koji.PRIO_DEFAULT - 1, 15]
    assert all(c["state"] == koji.TASK_STATES["CLOSED"] and c["host_id"] == hub.builder_id for c in children)


def test_dependant_task_fails_when_a_dependency_fails(hub, start_worker, wait_task, ready, other_builder):
    start_worker()
    ready()
    awaited = hub.create_task("createrepo", [1, "noarch", None], arch="noarch", channel="createrepo")
    other_builder.host.getTasks()
    other_builder.host.openTask(awaited)
    dependant = hub.create_task("dependantTask", [[awaited], [_notify_nobody()]], arch="noarch")
    hub.cancel_task(awaited)
    task = wait_task(dependant)
    assert task["state"] == "FAILED"
    assert task["fault"]["faultString"] == f"Dependency {awaited} failed to complete."
    assert hub.rpc_getTaskChildren(dependant) == []


# -- notifications ---------------------------------------------------------------------

WATCHER = "watcher@example.org"
FROM_ADDR = "Koji Build System <koji@hubsim.test>"
WEB_URL = "http://localhost/koji"


@pytest.fixture
def smtp():
    """A real SMTP server on 127.0.0.1 that wants a login."""
    with SmtpServer(users={"kojibuilder": "mail-secret"}) as server:
        yield server


@pytest.fixture
def sample_build(hub, e2e_inputs):
    """hello-noarch-1.0-1 as a COMPLETE build on the hub (its SRPM, with a %changelog)."""
    return hub.import_build([e2e_inputs.srpms["hello-noarch"]])


def test_tag_notification_is_mailed_to_the_subscribers(hub, start_worker, wait_task, other_builder, smtp,
                                                        sample_build):
    worker = start_worker(smtphost=smtp.host, smtp_user="kojibuilder", smtp_pass="mail-secret",
                          from_addr=FROM_ADDR)
    hub.add_notification("hubsim-admin", tag=TAG, email=WATCHER)
    tag_id = hub.rpc_getTag(TAG)["id"]
    # what a tagBuild task does after tagging: the hub makes the notification task
    task_id = other_builder.host.tagNotification(True, tag_id, None, sample_build, hub.admin_id)
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    assert task["host_id"] == hub.builder_id
    assert task["result"] == f"sent notification to: {WATCHER}"
    (mail,) = smtp.wait(1)
    assert mail.login == "kojibuilder"
    assert mail.mail_from == "koji@hubsim.test" and mail.rcpt_to == (WATCHER,)
    msg = mail.message
    assert msg["Subject"] == f"hello-noarch-1.0-1 successfully tagged into {TAG} by hubsim-admin"
    assert msg["From"] == FROM_ADDR and msg["To"] == WATCHER
    assert (msg["X-Koji-Package"], msg["X-Koji-NVR"], msg["X-Koji-Tag"]) == ("hello-noarch", "hello-noarch-1.0-1", TAG)
    assert f"Into Tag: {TAG}\n" in msg.get_content()
    assert "mail-secret" not in worker.log_text()


def test_failed_untag_notification_carries_the_error(hub, start_worker, wait_task, other_builder, smtp,
                                                     sample_build):
    start_worker(smtphost=smtp.host, smtp_user="kojibuilder", smtp_pass="mail-secret")
    hub.add_notification("hubsim-admin", email=WATCHER)
    tag_id = hub.rpc_getTag(TAG)["id"]
    task_id = other_builder.host.tagNotification(False, None, tag_id, sample_build, hub.admin_id, False,
                                                 "build hello-noarch-1.0-1 not in tag")
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    (mail,) = smtp.wait(1)
    assert mail.message["Subject"] == f"hello-noarch-1.0-1 unsuccessfully untagged from {TAG} by hubsim-admin"
    assert "Operation failed with the error:\n    build hello-noarch-1.0-1 not in tag\n" in mail.message.get_content()


def test_without_smtphost_the_notification_is_logged_and_the_task_closes(hub, start_worker, wait_task,
                                                                         other_builder, sample_build):
    worker = start_worker()  # kojid's default smtphost, the placeholder example.com
    hub.add_notification("hubsim-admin", tag=TAG, email=WATCHER)
    task_id = other_builder.host.tagNotification(True, hub.rpc_getTag(TAG)["id"], None, sample_build,
                                                 hub.admin_id)
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    assert task["result"] == f"no smtphost configured; notification for {WATCHER} logged by the builder, not sent"
    log = worker.log_text()
    assert f"Subject: hello-noarch-1.0-1 successfully tagged into {TAG} by hubsim-admin" in log
    assert f"To: {WATCHER}" in log


def test_unreachable_mail_server_fails_the_task_with_what_to_check(hub, start_worker, wait_task,
                                                                   other_builder, sample_build):
    with SmtpServer() as gone:
        host = gone.host
    worker = start_worker(smtphost=host)
    hub.add_notification("hubsim-admin", email=WATCHER)
    task_id = other_builder.host.tagNotification(True, hub.rpc_getTag(TAG)["id"], None, sample_build,
                                                 hub.admin_id)
    task = wait_task(task_id)
    assert task["state"] == "FAILED"
    fault = task["fault"]["faultString"]
    assert fault.startswith(f"could not send the notification for {WATCHER} through {host}: ")
    assert "check [kojid] smtphost, smtp_user and smtp_pass" in fault
    assert worker.alive


def test_build_notification_of_a_failed_build(hub, start_worker, wait_task, other_builder, smtp):
    """The other builder runs a build task that fails; the hub makes the buildNotification
    task; this worker writes the mail from the build, its task tree and its changelog."""
    hub.add_target("dev-target", TAG, TAG)
    hub.add_notification("hubsim-admin", email=WATCHER)
    build_task = hub.create_task("build", ["e2e/hello-noarch-1.0-1.src.rpm", "dev-target", {}], arch="noarch")
    assert [t["id"] for t in other_builder.host.getTasks()] == [build_task]
    other_builder.host.openTask(build_task)
    build_id = other_builder.host.initBuild({"name": "hello-noarch", "version": "1.0", "release": "1",
                                              "epoch": None, "task_id": build_task})
    other_builder.host.failBuild(build_task, build_id)
    other_builder.host.failTask(build_task, koji.xmlrpcplus.dumps(koji.xmlrpcplus.Fault(
        koji.BuildError.faultCode, "error building package (arch noarch), mock exited with status 1")))
    (notification,) = [t for t in hub.tasks.values() if t["method"] == "buildNotification"]

    start_worker(smtphost=smtp.host, smtp_user="kojibuilder", smtp_pass="mail-secret")
    task = wait_task(notification["id"])
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    (mail,) = smtp.wait(1)
    msg = mail.message
    assert msg["Subject"] == f"Package: hello-noarch-1.0-1 Tag: {TAG} Status: failed Built by: hubsim-admin"
    assert (msg["X-Koji-Tag"], msg["X-Koji-Builder"], msg["X-Koji-Status"]) == (TAG, "hubsim-admin", "failed")
    body = msg.get_content()
    assert f"hello-noarch-1.0-1 ({build_id}) failed on {OTHER} (noarch):\n" \
           "  error building package (arch noarch), mock exited with status 1\n" in body
    assert f"Failed tasks:\n-------------\n\nTask {build_task} on {OTHER}\n" in body
    assert f"Task Info: {WEB_URL}/taskinfo?taskID={build_task}\n" in body
    assert f"Build Info: {WEB_URL}/buildinfo?buildID={build_id}\n" in body


def test_build_notification_of_a_complete_build_has_its_changelog(hub, start_worker, wait_task, smtp,
                                                                   sample_build):
    start_worker(smtphost=smtp.host, smtp_user="kojibuilder", smtp_pass="mail-secret")
    build = hub.rpc_getBuild(sample_build)
    task_id = hub.create_task("buildNotification", [[WATCHER], build, None, WEB_URL], arch="noarch")
    task = wait_task(task_id)
    assert task["state"] == "CLOSED", (task["fault"] or {}).get("faultString")
    (mail,) = smtp.wait(1)
    assert mail.message["Subject"] == "Package: hello-noarch-1.0-1 Tag: None Status: complete Built by: hubsim-admin"
    body = mail.message.get_content()
    assert "\nChangelog:\n* " in body
    assert "Task Info" not in body  # an imported build has no task
