"""The images side of PodmanManager: look up, pull, name and remove images, on podman-py.

Apart from podman.py so that each file reads on its own; PodmanManager's
image methods (the ContainerManager Protocol's) hand their work to this one.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.parse
from collections.abc import Iterable, Mapping

from podman import PodmanClient
from podman.errors import APIError, ImageNotFound, NotFound, PodmanError

from ..errors import ContainerError, ImageNotFoundError
from .interface import ImageInfo, PullPolicy, RegistryAuth
from .podmanapi import image_info_of, label_filters, split_ref
from .registries import registry_of

log = logging.getLogger(__name__)

_PULL_HINT = ("check that {registry} has the image and that this user may pull it: credentials come from "
              "podman's own login (run 'podman login {registry}' as the worker's user); a registry without "
              "TLS must be listed in insecure_registries")


class PodmanImages:
    """One user's images, through a podman-py client."""

    def __init__(self, client: PodmanClient, insecure_registries: Iterable[str] = ()):
        """``insecure_registries``: hosts (host:port) reached without TLS verification, as podman's
        registries.conf ``insecure`` would; every other registry must present a valid certificate."""
        self._client = client
        self._insecure = frozenset(insecure_registries)

    def info(self, ref: str) -> ImageInfo | None:
        try:
            return image_info_of(self._client.images.get(ref), ref)
        except (ImageNotFound, NotFound):
            return None

    def ensure(self, ref: str, policy: PullPolicy = PullPolicy.IF_NOT_PRESENT) -> ImageInfo:
        info = self.info(ref)
        if policy is PullPolicy.NEVER or (policy is PullPolicy.IF_NOT_PRESENT and info is not None):
            if info is None:
                raise ImageNotFoundError(f"image {ref} is not present and the pull policy is 'never'")
            return info
        log.info("pulling image %s", ref)
        failure = self._pull(ref)
        if failure is not None:
            if info is not None and policy is PullPolicy.ALWAYS:
                log.warning("could not refresh image %s (%s); using the local copy", ref, failure)
                return info
            raise ImageNotFoundError(f"image {ref} is not present and could not be pulled: {failure}",
                                     hint=_PULL_HINT.format(registry=registry_of(ref)) if registry_of(ref) else None)
        info = self.info(ref)
        if info is None:
            raise ImageNotFoundError(f"image {ref} was pulled but cannot be found")
        return info

    def layers_size(self, ref: str) -> int:
        try:
            return sum(int(entry.get("Size") or 0) for entry in self._client.images.get(ref).history())
        except (ImageNotFound, NotFound) as exc:
            raise ImageNotFoundError(f"image {ref} is gone") from exc
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not read the history of image {ref}: {exc}") from exc

    def pull(self, ref: str, auth: RegistryAuth | None = None) -> ImageInfo:
        log.info("pulling image %s", ref)
        failure = self._pull(ref, auth)
        info = self.info(ref) if failure is None else None
        if info is None:
            raise ImageNotFoundError(f"could not pull image {ref}: {failure or 'pulled, but it cannot be found'}")
        return info

    def push(self, ref: str, destination: str, auth: RegistryAuth | None = None) -> None:
        log.info("pushing image %s to %s", ref, destination)
        try:
            response = self._client.api.post(f"/images/{urllib.parse.quote(ref, safe='')}/push",
                                             params={"destination": destination, **self._tls(destination)},
                                             headers=_auth_header(auth))
            response.raise_for_status()
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not push image {ref} to {destination}: {exc}") from exc

    def _tls(self, ref: str) -> dict[str, bool]:
        return {"tlsVerify": False} if registry_of(ref) in self._insecure else {}

    def _pull(self, ref: str, auth: RegistryAuth | None = None) -> str | None:
        """Pull ``ref``; the reason it failed, or None.

        podman reports a failed pull inside a 200 response's stream, which
        podman-py's images.pull() does not turn into an error.
        """
        try:
            response = self._client.api.post("/images/pull", params={"reference": ref, "quiet": True,
                                                                     **self._tls(ref)},
                                             headers=_auth_header(auth), stream=True)
            response.raise_for_status()
            for line in response.iter_lines():
                if line:
                    message = json.loads(line)
                    if message.get("error"):
                        return str(message["error"]).strip()
        except (APIError, PodmanError, ValueError) as exc:
            return str(exc)
        return None

    def labelled(self, labels: Mapping[str, str]) -> list[ImageInfo]:
        """Every image with all of ``labels``, dangling ones (no name left) included; ``ref`` is the image id."""
        found = self._client.images.list(all=True, filters=label_filters(labels))
        return [image_info_of(image, image.id) for image in found]

    def tag(self, ref: str, new_ref: str) -> None:
        """Give the image ``ref`` the name ``new_ref`` too: removed by one of several names, an
        image is only untagged, so a kept buildroot's name keeps its image (buildroot/kept.py)."""
        repository, tag = split_ref(new_ref)
        try:
            tagged = self._client.images.get(ref).tag(repository, tag)
        except (ImageNotFound, NotFound) as exc:
            raise ImageNotFoundError(f"image {ref} is gone; cannot name it {new_ref}") from exc
        except (APIError, PodmanError) as exc:
            raise ContainerError(f"could not name image {ref} {new_ref}: {exc}") from exc
        if not tagged:
            raise ContainerError(f"podman did not name image {ref} {new_ref}")

    def names(self, prefix: str) -> list[str]:
        """Every image name (repository:tag) starting with ``prefix``: how kept buildroots' names
        are found, which no label can mark (a name is given after the image is made)."""
        return sorted(name for image in self._client.images.list() for name in image.tags if name.startswith(prefix))

    def remove(self, ref: str) -> None:
        try:
            self._client.images.remove(ref, force=True)
        except (ImageNotFound, NotFound):
            pass
        except APIError as exc:
            if exc.status_code != 404:
                raise ContainerError(f"could not remove image {ref}: {exc}") from exc


def _auth_header(auth: RegistryAuth | None) -> dict[str, str]:
    """podman's X-Registry-Auth: base64url of the JSON credentials; none without them."""
    if auth is None:
        return {}
    encoded = json.dumps({"username": auth.username, "password": auth.password}).encode()
    return {"X-Registry-Auth": base64.urlsafe_b64encode(encoded).decode()}
