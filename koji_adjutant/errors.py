"""The one error hierarchy of koji-adjutant.

Every error a user or an operator can meet derives from AdjutantError and
carries two parts: what failed (the message) and what to do about it (the
hint). ``str(error)`` joins them, so a CLI line or a hub fault shows both.
"""

from __future__ import annotations


class AdjutantError(Exception):
    """Base of every error koji-adjutant raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, hint: str | None = None, log_path: str | None = None):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        self.log_path = log_path

    def __str__(self) -> str:
        parts = [self.message]
        if self.log_path:
            parts.append(f"see {self.log_path}")
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)


class ConfigError(AdjutantError):
    """A configuration value or a command-line argument is wrong."""


class ContainerError(AdjutantError):
    """Something podman was asked to do did not happen."""


class PodmanNotInstalledError(ContainerError):
    hint = "install podman (scripts/setup-host.sh does it on Debian) and make sure it is on PATH"


class PodmanUnreachableError(ContainerError):
    hint = ("check that the podman API socket exists and belongs to this user, "
            "or unset the socket setting so koji-adjutant starts its own podman service")


class ImageNotFoundError(ContainerError):
    hint = ("build or load the image for this user (podman images lists them; "
            "scripts/build-images.sh or images/dev/build-dev-image.sh make them), "
            "or allow pulling it")


class ContainerSpecError(ContainerError):
    """The container was described wrongly (bad mount, bad limit); nothing was created."""


class ContainerTimeoutError(ContainerError):
    hint = "the container was killed; raise the timeout if the work legitimately takes longer"


class ContainerOOMError(ContainerError):
    hint = ("the container was killed for using too much memory; "
            "raise the memory limit or reduce the build's parallelism")


class ResultRefusedError(ContainerError):
    """What a container sent back as results breaks the rules results follow (kind, name, form);
    it is refused whole, since the build's own code could have written it."""


class ResultTooLargeError(ResultRefusedError):
    """What a container sent back as results is over a limit (a file's size, the total, the count)."""


class BuildrootError(AdjutantError):
    """The buildroot could not be set up (dependencies, repos, image)."""


class BuildError(AdjutantError):
    """The package itself failed to build (rpmbuild failed)."""


class RepoError(AdjutantError):
    """Repository metadata for a tag could not be made (createrepo_c, mergerepo_c, repo files)."""


class NotificationError(AdjutantError):
    """A notification mail could not be delivered."""
