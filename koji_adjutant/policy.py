"""Which container image a buildroot starts from.

Asked in this order, the first answer wins:

1. the hub policy (``image_policy`` in [adjutant], default ``buildroot_image``),
   through ``host.evalPolicy(name, data)``. Its action is either
   ``image REF`` (use REF) or ``default`` / ``use_default`` (no opinion).
   A policy no rule of which matches, and a hub that has no policy of that
   name, also mean "no opinion";
2. the build tag's extra ``adjutant.image.<arch>``;
3. the build tag's extra ``adjutant.image``;
4. ``default_image`` from the configuration.

On the hub, ``HostExports.evalPolicy(name, data)`` returns
``eval_policy(name, data)``: the matching rule's action string, or None when
no rule matches; it raises ``koji.GenericError("no such policy: NAME")`` when
hub.conf defines no such (or an empty) policy. Only that error means "no
policy"; every other error is passed on, because guessing an image when the
hub could not be asked would build in the wrong environment.

The session is passed in, so this module stays pure and unit tests hand it a mock.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import koji

from .errors import ConfigError

log = logging.getLogger(__name__)

TAG_EXTRA_KEY = "adjutant.image"
DEFAULT_ACTIONS = ("default", "use_default")


class ImagePolicyError(ConfigError):
    """The hub policy, or a tag extra, names an image in a form we cannot use."""

    hint = ("make the policy's actions 'image REF' or 'default' (hub.conf [policy]), "
            "and adjutant.image tag extras a non-empty image reference")


@dataclass(frozen=True)
class ImageChoice:
    """The image to use, and which rule chose it."""

    ref: str
    #: 'hub policy NAME', 'tag extra adjutant.image.ARCH', 'tag extra adjutant.image' or 'config default_image'
    reason: str


def _is_missing_policy(exc: Exception, policy_name: str) -> bool:
    """True for the hub's own answer to an undefined policy, and only that.

    A policy that refers to another, undefined policy (``policy other`` test)
    fails with the same message naming the other one: that is a broken hub
    configuration and must not pass for "no policy".
    """
    if type(exc) is not koji.GenericError:
        return False
    return re.search(r"no such policy: " + re.escape(policy_name) + r"(?!\S)", str(exc)) is not None


def _ask_hub(session: Any, policy_name: str, data: dict[str, Any]) -> str | None:
    """The image the policy names, or None when it has no opinion."""
    try:
        result = session.host.evalPolicy(policy_name, data)
    except Exception as exc:
        if _is_missing_policy(exc, policy_name):
            log.debug("hub has no policy %s; falling back", policy_name)
            return None
        raise
    if result is None:
        log.debug("hub policy %s: no rule matched %s", policy_name, data)
        return None
    words = result.split() if isinstance(result, str) else []
    if len(words) == 1 and words[0].lower() in DEFAULT_ACTIONS:
        log.debug("hub policy %s answered %r; falling back", policy_name, result)
        return None
    if len(words) == 2 and words[0].lower() == "image":
        return words[1]
    raise ImagePolicyError(f"hub policy {policy_name} answered {result!r} for {data}; "
                           f"expected 'image REF', 'default' or 'use_default'")


def _tag_extra_image(extra: Mapping[str, Any], key: str, tag: Any) -> str | None:
    if key not in extra:
        return None
    value = extra[key]
    if not isinstance(value, str) or not value.strip() or len(value.split()) != 1:
        raise ImagePolicyError(f"tag {tag} extra {key} = {value!r} is not an image reference")
    return value.strip()


def choose_image(session: Any, policy_name: str | None, build_config: Mapping[str, Any], arch: str,
                 default_image: str, extra_data: Mapping[str, Any] | None = None) -> ImageChoice:
    """Pick the buildroot image for a build tag (``getBuildConfig`` result) and arch.

    ``policy_name`` None or empty skips the hub. ``extra_data`` adds policy
    data; it cannot replace 'tag' and 'arch'.
    """
    tag = build_config.get("name", build_config.get("id"))
    choice = None
    if policy_name:
        data = {**(extra_data or {}), "tag": tag, "arch": arch}
        ref = _ask_hub(session, policy_name, data)
        if ref:
            choice = ImageChoice(ref, f"hub policy {policy_name}")
    if choice is None:
        extra = build_config.get("extra") or {}
        for key in (f"{TAG_EXTRA_KEY}.{arch}", TAG_EXTRA_KEY):
            ref = _tag_extra_image(extra, key, tag)
            if ref:
                choice = ImageChoice(ref, f"tag extra {key}")
                break
    if choice is None:
        choice = ImageChoice(default_image, "config default_image")
    log.info("image %s for tag %s arch %s, chosen by %s", choice.ref, tag, arch, choice.reason)
    return choice
