"""scm.py: which SCM URLs a builder accepts, and the spec a checkout must hold (kojid's rules)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.scm import allowed_scm, check_spec, find_spec

URL = "git+https://scm.example.com/rpms/hello.git#main"


def options(allowed: str = "", by_config: bool = True, by_policy: bool = False) -> SimpleNamespace:
    return SimpleNamespace(allowed_scms=allowed, allowed_scms_use_config=by_config,
                           allowed_scms_use_policy=by_policy)


def no_policy_data() -> dict:
    raise AssertionError("policy data asked for although the policy is not used")


def test_allowed_by_config_applies_use_common_and_source_cmd():
    scm = allowed_scm(URL, options("other.example.com:/x/* scm.example.com:/rpms/*:no:fedpkg,sources"),
                      None, no_policy_data)
    assert (scm.host, scm.repository, scm.revision) == ("scm.example.com", "/rpms/hello.git", "main")
    assert scm.use_common is False
    assert scm.source_cmd == ["fedpkg", "sources"]


def test_trailing_colon_means_no_source_command():
    assert allowed_scm(URL, options("scm.example.com:/rpms/*:no:"), None, no_policy_data).source_cmd is None


@pytest.mark.parametrize("allowed", ["", "other.example.com:/rpms/*", "!scm.example.com:/rpms/* scm.example.com:*"])
def test_not_allowed_by_config(allowed):
    with pytest.raises(BuildError) as caught:
        allowed_scm(URL, options(allowed), None, no_policy_data)
    assert "scm.example.com:/rpms/hello.git is not in the list of allowed SCMs" in caught.value.message
    assert "allowed_scms" in caught.value.hint


@pytest.mark.parametrize("url, why", [
    ("git+https://scm.example.com/rpms/hello.git", "fragment"),
    ("https://scm.example.com/rpms/hello.git#main", "Invalid scheme"),
])
def test_invalid_url(url, why):
    with pytest.raises(BuildError) as caught:
        allowed_scm(url, options("*:*"), None, no_policy_data)
    assert caught.value.message.startswith(f"invalid SCM URL {url!r}") and why in caught.value.message
    assert "#revision" in caught.value.hint


def test_policy_is_asked_with_kojids_data_and_its_options_applied(mocker):
    session = mocker.Mock()
    session.evalPolicy.return_value = "allow use_common make sources"
    scm = allowed_scm(URL, options(by_config=False, by_policy=True), session,
                      lambda: {"user_id": 7, "channel": "default", "scratch": True})
    (name, data), _ = session.evalPolicy.call_args
    assert name == "build_from_scm"
    assert data["scm_host"] == "scm.example.com" and data["scm_repository"] == "/rpms/hello.git"
    assert (data["user_id"], data["channel"], data["scratch"]) == (7, "default", True)
    assert scm.use_common is True and scm.source_cmd == ["make", "sources"]


def test_policy_denial_is_a_build_error_with_the_reason(mocker):
    session = mocker.Mock()
    session.evalPolicy.return_value = "deny not from this host"
    with pytest.raises(BuildError) as caught:
        allowed_scm(URL, options(by_config=False, by_policy=True), session, lambda: {})
    assert "reason: not from this host" in caught.value.message


def test_one_spec_is_found(tmp_path):
    (tmp_path / "hello.spec").write_text("Name: hello\n")
    (tmp_path / "hello.spec.orig.txt").write_text("")
    assert find_spec(tmp_path) == tmp_path / "hello.spec"


def test_no_spec(tmp_path):
    (tmp_path / "README").write_text("")
    with pytest.raises(BuildError) as caught:
        find_spec(tmp_path)
    assert caught.value.message == f"no spec file found in the checkout ({tmp_path.name})"
    assert "?module" in caught.value.hint


def test_several_specs_are_named(tmp_path):
    for name in ("b.spec", "a.spec"):
        (tmp_path / name).write_text("")
    with pytest.raises(BuildError) as caught:
        find_spec(tmp_path)
    assert caught.value.message == "multiple spec files found in the checkout: a.spec, b.spec"


@pytest.mark.parametrize("line, what", [
    ("Packager: someone", "Packager is not allowed to be set"),
    ("vendor:   ACME", "Vendor is not allowed to be set"),
    ("%define distribution Mine", "%distribution is not allowed to be defined"),
    ("%global packager me", "%packager is not allowed to be defined"),
])
def test_spec_may_not_set_build_system_tags(tmp_path, line, what):
    spec = tmp_path / "x.spec"
    spec.write_text(f"Name: x\nVersion: 1\n{line}\n")
    with pytest.raises(BuildError) as caught:
        check_spec(spec)
    assert what in caught.value.message


def test_spec_that_only_mentions_them_passes(tmp_path):
    spec = tmp_path / "x.spec"
    spec.write_text("Name: x\n%description\nThe packager and vendor are set by Koji.\n"
                    "%{?vendor:echo %{vendor}}\n")
    check_spec(spec)
