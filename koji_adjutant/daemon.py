"""The builder daemon: koji's own TaskManager, with containers instead of mock.

koji.daemon.TaskManager already does what the hub requires of a builder's
loop (heartbeat, taking and forking tasks with subsessions, freeing stale
tasks, noticing cancels, restarts); kojid is that loop plus mock. Here only
the mock-specific parts are replaced: buildroot maintenance (orphaned
containers, stale hub buildroots, failed buildroots kept past
failed_buildroot_lifetime), the space check (container storage), and task
cleanup (a killed task's containers go with it).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import koji
from koji.daemon import TaskManager
from koji.tasks import ServerExit, ServerRestart

from .buildroot import kept
from .buildroot.sharedcache import SharedCache
from .buildroot.workspace import sweep
from .config import Config
from .container.factory import manager_for
from .container.interface import LABEL_PURPOSE, LABEL_TASK, LABEL_WORKER, ContainerManager, ContainerRoot
from .container.service import PodmanService
from .envstore.settings import store_settings
from .errors import AdjutantError, PodmanUnreachableError
from .hub import login, make_session
from .tasks import HANDLERS
from .tasks.buildroots import work_root

log = logging.getLogger(__name__)

_ACTIVE_BUILDROOT_STATES = ("INIT", "WAITING", "BUILDING")


def worker_options(config: Config, podman_socket: str) -> SimpleNamespace:
    """The options object koji's TaskManager and handlers read attributes from."""
    options = config.kojid.as_namespace()
    options.adjutant = dataclasses.replace(config.adjutant, podman_socket=podman_socket)
    options.rlimits = config.kojid.rlimits
    return options


class AdjutantTaskManager(TaskManager):
    def __init__(self, options, session, manager: ContainerManager):
        super().__init__(options, session)
        self._containers = manager
        self._worker = {LABEL_WORKER: options.adjutant.worker_id}
        self._storage = Path(manager.storage_root())
        for handler in HANDLERS:
            self.registerHandler(handler)

    def remove_orphans(self) -> list[str]:
        """Remove this worker's containers that no running task owns; kept failed buildroots wait for
        their expiry (sweep_kept), and an operator's container of one ends with the operator's session."""
        removed = []
        for container in self._containers.list_containers(self._worker):
            if kept.kept_from(container) is not None or container.labels.get(LABEL_PURPOSE) == kept.ENTER_PURPOSE:
                continue
            task = container.labels.get(LABEL_TASK)
            if task is None or not task.isdigit() or int(task) not in self.pids:
                self._containers.remove(container.id)
                removed.append(container.name)
        if removed:
            log.info("removed orphaned containers: %s", ", ".join(removed))
        return removed

    def updateBuildroots(self, nolocal=False):
        """Expire hub buildroots of tasks no longer running here; remove orphaned containers."""
        states = [koji.BR_STATES[name] for name in _ACTIVE_BUILDROOT_STATES]
        for buildroot in self.session.listBuildroots(hostID=self.host_id, state=tuple(states)):
            if buildroot.get("task_id") not in self.pids:
                log.info("expiring stale buildroot %s of task %s", buildroot["id"], buildroot.get("task_id"))
                self.session.host.setBuildRootState(buildroot["id"], "EXPIRED")
        self.remove_orphans()
        self.sweep_kept()
        self.evict_environments()

    def sweep_kept(self) -> None:
        """Remove the failed buildroots kept past failed_buildroot_lifetime; all of them when
        space runs short, as kojid does (buildroot/kept.py)."""
        kept.sweep(self._containers, self.options.adjutant.worker_id, time.time(), everything=not self.checkSpace())

    def evict_environments(self) -> None:
        """Drop cached buildroots over the size and age limits, only while no task could be using one,
        and none that a kept failed buildroot was made from (it goes when that expires)."""
        if self.pids:
            return
        adjutant = self.options.adjutant
        settings = store_settings(adjutant)
        store = settings.open()
        stale = store.eviction_candidates(settings.max_total_bytes, settings.max_age_days)
        in_use = {buildroot.image_id.removeprefix("sha256:")
                  for buildroot in kept.list_kept(self._containers, adjutant.worker_id)}
        stale = [env for env in stale if env.image_id.removeprefix("sha256:") not in in_use]
        if stale:
            removed = store.clean(self._containers, [env.name for env in stale])
            log.info("evicted cached buildroots: %s", ", ".join(env.name for env in removed))

    def checkSpace(self):
        """minspace is measured where the buildroots live: podman's image storage."""
        stat = os.statvfs(self._storage)
        available_mb = stat.f_bavail * stat.f_bsize // (1024 * 1024)
        if available_mb < self.options.minspace:
            self.status = (f"Insufficient disk space at {self._storage}: {available_mb} MB, "
                           f"{self.options.minspace} MB required")
            log.warning(self.status)
            return False
        return True

    def runTask(self, handler):
        """As kojid, and a shutdown task is closed before the daemon exits.

        kojid leaves it OPEN; its shutdown then frees it and the hub hands it
        to the next builder, which stops as well.
        """
        try:
            super().runTask(handler)
        except ServerExit:
            log.warning("task %s (%s) stops the daemon", handler.id, handler.method)
            self.session.host.closeTask(handler.id, koji.xmlrpcplus.dumps((None,), methodresponse=1, allow_none=1))
            self.tasks.pop(handler.id, None)
            raise

    def cleanupTask(self, task_id, wait=True):
        """Kill the task's process as kojid does, and its containers with it."""
        done = super().cleanupTask(task_id, wait=wait)
        removed = self._containers.remove_by_label({**self._worker, LABEL_TASK: str(task_id)})
        if removed:
            log.info("removed containers of task %s: %s", task_id, ", ".join(removed))
        return done


def _release(session: koji.ClientSession) -> None:
    """Log out before a re-exec, so the new process gets the exclusive session without --force-lock."""
    try:
        session.logout()
    except Exception as exc:  # the hub may be away; the new process then needs --force-lock, as kojid's does
        log.warning("could not log out before restarting (%s); the new process needs --force-lock "
                    "to take the host's session", exc)


def _reexec() -> None:
    """Run this process's command line again, in place (same pid, same systemd unit).

    kojid re-executes ``sys.argv[0]``, which is not runnable when the worker was
    started as ``python -m koji_adjutant.cli`` (a .py file without exec bits);
    the interpreter with its original arguments restarts either way.
    """
    path, argv = sys.executable, list(sys.orig_argv)
    log.warning("re-executing %s", " ".join(argv))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(path, argv)
    except OSError as exc:
        raise AdjutantError(f"could not restart: cannot execute {path}: {exc.strerror or exc}",
                            hint="start the daemon again (its systemd unit does so by itself)") from exc


#: The loggers whose errors reach admin_emails: kojid's (koji.*, the task manager's) and ours.
MAILED_LOGGERS = ("koji", "koji_adjutant")


def mail_errors(admin_emails: str | None) -> None:
    """kojid.conf admin_emails: every ERROR logged is mailed there, through localhost's MTA, as
    kojid does (koji.add_mail_logger)."""
    for name in MAILED_LOGGERS if admin_emails else ():
        koji.add_mail_logger(name, admin_emails)


def run(config: Config, force_lock: bool = False) -> int:
    """The daemon's main loop, with kojid's signal handling."""
    for note in config.ignored:
        log.warning("%s: %s", config.path, note)
    mail_errors(config.kojid.admin_emails)
    shared = SharedCache.from_options(config.adjutant)  # a bad credentials file stops the daemon, not each task
    if shared is not None:
        log.info("sharing cached buildroots through the registry %s", shared.registry)
    service = PodmanService(config.adjutant.podman_socket)
    options = worker_options(config, service.uri)
    session = make_session(options)
    login(session, options)
    session.exclusiveSession(force=force_lock)
    log.info("logged in to %s as host %s", options.server, options.adjutant.worker_id)
    manager = manager_for(config.adjutant, socket=service.uri)
    tm = AdjutantTaskManager(options, session, manager)
    tm.remove_orphans()
    tm.sweep_kept()
    sweep(work_root(config.adjutant))
    if config.adjutant.container_root is ContainerRoot.SUBORDINATE and not manager.storage_maps_ids():
        log.warning("podman's storage copies every image in full the first time a container of it runs "
                    "with root at a subordinate id (container_root = subordinate): set "
                    "mount_program = \"/usr/bin/fuse-overlayfs\" in storage.conf (scripts/setup-host.sh "
                    "does), or accept container_root = worker (docs/security.md)")

    def shutdown(*_args):
        raise SystemExit

    def restart(*_args):
        log.warning("restart requested: restarting when idle")
        tm.restart_pending = True

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGUSR1, restart)
    signal.signal(signal.SIGUSR2, lambda *_args: None)
    status = 0
    try:
        while True:
            taken = False
            try:
                service.ensure_running()
            except PodmanUnreachableError as exc:
                log.error("%s; stopping, to be started again by the service manager", exc)
                status = 1
                break
            try:
                tm.updateBuildroots()
                tm.updateTasks()
                taken = tm.getNextTask()
            except (SystemExit, ServerExit, KeyboardInterrupt):
                log.warning("exiting")
                break
            except ServerRestart:
                log.warning("restarting: no task is running")
                _release(session)
                manager.close()
                service.close()
                _reexec()
            except koji.AuthExpired:
                log.error("session expired")
                break
            except koji.RetryError:
                raise
            except Exception:
                log.error("error in the main loop (the daemon goes on):\n%s", traceback.format_exc())
            try:
                if not taken:
                    time.sleep(options.sleeptime)
            except (SystemExit, KeyboardInterrupt):
                log.warning("exiting")
                break
        log.warning("shutting down")
        tm.shutdown()
        session.logout()
    finally:
        manager.close()
        service.close()
    return status
