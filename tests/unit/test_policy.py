"""Image selection: hub policy, then tag extra (arch-specific, generic), then the configured default."""

from __future__ import annotations

import logging

import koji
import pytest

from koji_adjutant.errors import AdjutantError, ConfigError
from koji_adjutant.policy import ImageChoice, ImagePolicyError, choose_image

POLICY = "buildroot_image"
DEFAULT = "localhost/koji-adjutant-buildroot:dev"
ARCH_IMAGE = "registry.example.com/el10-aarch64:3"
GENERIC_IMAGE = "registry.example.com/el10:3"


def build_config(extra=None):
    return {"id": 42, "name": "el10-build", "arches": "x86_64 aarch64", "extra": extra or {}}


BOTH_EXTRAS = {"adjutant.image.aarch64": ARCH_IMAGE, "adjutant.image": GENERIC_IMAGE}


@pytest.fixture
def session(mocker):
    session = mocker.Mock(name="session")
    session.host.evalPolicy.return_value = None
    return session


def choose(session, extra=None, arch="aarch64", policy=POLICY, **kwargs):
    return choose_image(session, policy, build_config(extra), arch, DEFAULT, **kwargs)


# -- the hub policy ------------------------------------------------------------------

def test_policy_hit_wins_over_everything(session):
    session.host.evalPolicy.return_value = "image quay.example.com/el10:7"
    choice = choose(session, BOTH_EXTRAS)
    assert choice == ImageChoice("quay.example.com/el10:7", f"hub policy {POLICY}")
    session.host.evalPolicy.assert_called_once_with(POLICY, {"tag": "el10-build", "arch": "aarch64"})


def test_policy_data_gets_extra_data_but_keeps_tag_and_arch(session):
    session.host.evalPolicy.return_value = "image x:1"
    choose(session, extra_data={"user_id": 3, "scratch": True, "arch": "bogus"})
    session.host.evalPolicy.assert_called_once_with(
        POLICY, {"user_id": 3, "scratch": True, "tag": "el10-build", "arch": "aarch64"})


def test_policy_name_is_configurable(session):
    session.host.evalPolicy.return_value = "image x:1"
    assert choose(session, policy="site_images").reason == "hub policy site_images"
    assert session.host.evalPolicy.call_args.args[0] == "site_images"


@pytest.mark.parametrize("action", ["default", "use_default", "  default  ", "DEFAULT"])
def test_policy_saying_default_falls_through(session, action):
    session.host.evalPolicy.return_value = action
    assert choose(session, BOTH_EXTRAS) == ImageChoice(ARCH_IMAGE, "tag extra adjutant.image.aarch64")


def test_policy_with_no_matching_rule_falls_through(session):
    session.host.evalPolicy.return_value = None
    assert choose(session, BOTH_EXTRAS).reason == "tag extra adjutant.image.aarch64"


@pytest.mark.parametrize("fault_text", [
    f"no such policy: {POLICY}",
    # with KojiTraceback set, the hub sends the traceback in the fault string
    f"Traceback (most recent call last):\n  File \"kojihub.py\", line 1\nGenericError: no such policy: {POLICY}\n",
])
def test_undefined_policy_falls_through(session, fault_text):
    session.host.evalPolicy.side_effect = koji.GenericError(fault_text)
    assert choose(session, BOTH_EXTRAS) == ImageChoice(ARCH_IMAGE, "tag extra adjutant.image.aarch64")


def test_undefined_policy_all_the_way_to_the_config_default(session):
    session.host.evalPolicy.side_effect = koji.GenericError(f"no such policy: {POLICY}")
    assert choose(session) == ImageChoice(DEFAULT, "config default_image")


def test_no_policy_name_does_not_ask_the_hub(session):
    assert choose(session, BOTH_EXTRAS, policy=None).reason == "tag extra adjutant.image.aarch64"
    assert choose(session, BOTH_EXTRAS, policy="").reason == "tag extra adjutant.image.aarch64"
    session.host.evalPolicy.assert_not_called()


# -- errors that must not be mistaken for "no policy" ---------------------------------

@pytest.mark.parametrize("exc", [
    # a rule of our policy refers to another policy that does not exist
    koji.GenericError(f"no such policy: {POLICY}_el10"),
    koji.GenericError("no such policy: other_policy"),
    # same text, other fault class
    koji.ActionNotAllowed(f"no such policy: {POLICY}"),
    koji.AuthError("This method requires an exclusive session"),
    koji.GenericError("Invalid method: host.evalPolicy"),
    koji.GenericError("encountered policy loop at policy buildroot_image"),
    ConnectionError("hub unreachable"),
])
def test_other_hub_errors_propagate(session, exc):
    session.host.evalPolicy.side_effect = exc
    with pytest.raises(type(exc)):
        choose(session, BOTH_EXTRAS)


@pytest.mark.parametrize("action", ["allow", "deny", "image", "image a:1 b:2", "", "use image x:1", "defaults"])
def test_unparseable_policy_action_is_an_error(session, action):
    session.host.evalPolicy.return_value = action
    with pytest.raises(ImagePolicyError) as info:
        choose(session, BOTH_EXTRAS)
    assert repr(action) in str(info.value)
    assert POLICY in str(info.value)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, AdjutantError)


def test_non_string_policy_result_is_an_error(session):
    session.host.evalPolicy.return_value = ["image", "x"]
    with pytest.raises(ImagePolicyError):
        choose(session)


# -- tag extra and the configured default ---------------------------------------------

def test_arch_specific_tag_extra_beats_generic(session):
    assert choose(session, BOTH_EXTRAS) == ImageChoice(ARCH_IMAGE, "tag extra adjutant.image.aarch64")


def test_generic_tag_extra_when_no_arch_specific_one(session):
    assert choose(session, BOTH_EXTRAS, arch="x86_64") == ImageChoice(GENERIC_IMAGE, "tag extra adjutant.image")


def test_config_default_when_the_tag_says_nothing(session):
    extra = {"adjutant.image.ppc64le": "other:1", "rpm.macro.dist": ".el10"}
    assert choose(session, extra, arch="x86_64") == ImageChoice(DEFAULT, "config default_image")


def test_build_config_without_extra(session):
    config = {"id": 7, "name": "f40-build", "extra": None}
    assert choose_image(session, POLICY, config, "x86_64", DEFAULT).reason == "config default_image"


@pytest.mark.parametrize("value", ["", "   ", 5, None, "two refs"])
def test_bad_tag_extra_is_an_error(session, value):
    with pytest.raises(ImagePolicyError, match="adjutant.image.aarch64"):
        choose(session, {"adjutant.image.aarch64": value})


def test_choice_is_logged_with_its_reason(session, caplog):
    caplog.set_level(logging.INFO, logger="koji_adjutant.policy")
    session.host.evalPolicy.return_value = "image quay.example.com/el10:7"
    choose(session)
    record = next(r for r in caplog.records if r.name == "koji_adjutant.policy" and r.levelno == logging.INFO)
    assert "quay.example.com/el10:7" in record.getMessage()
    assert f"hub policy {POLICY}" in record.getMessage()
    assert "el10-build" in record.getMessage() and "aarch64" in record.getMessage()


def test_choice_is_frozen():
    choice = ImageChoice("a:1", "config default_image")
    with pytest.raises(AttributeError):
        choice.ref = "b:2"
