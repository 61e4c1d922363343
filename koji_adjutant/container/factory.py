"""The one place a container manager is made.

Every caller (daemon, task handlers, the CLI's commands) asks here, so that
only container/ knows the engine is podman (ADR 0001) and every manager is
made with the same settings from [adjutant].
"""

from __future__ import annotations

from collections.abc import Iterable

from .interface import ContainerManager, ContainerRoot


def open_manager(socket: str | None = None, container_root: ContainerRoot = ContainerRoot.SUBORDINATE,
                 insecure_registries: Iterable[str] = ()) -> ContainerManager:
    """A manager on ``socket`` (default: the user's podman socket, else a service of our own);
    close it, or use it as a context manager, to stop a service it started."""
    from .podman import PodmanManager  # podman-py is imported only by those who run containers
    return PodmanManager(socket=socket, container_root=container_root, insecure_registries=insecure_registries)


def manager_for(adjutant, socket: str | None = None) -> ContainerManager:
    """A manager as the [adjutant] section sets it up; ``socket`` overrides podman_socket
    (the daemon passes the service it started itself)."""
    return open_manager(socket or adjutant.podman_socket, adjutant.container_root, adjutant.insecure_registries)
