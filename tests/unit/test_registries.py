"""Registry names, credentials files and the [adjutant] registry options."""

from __future__ import annotations

import base64
import json
import os

import pytest

from koji_adjutant import configvalues
from koji_adjutant.container.podmanimages import _auth_header
from koji_adjutant.container.registries import read_auth, registry_of
from koji_adjutant.errors import ConfigError


@pytest.mark.parametrize("ref, registry", [
    ("registry.example.com/br:f40", "registry.example.com"),
    ("127.0.0.1:5000/farm/environments:abc", "127.0.0.1:5000"),
    ("localhost/adjutant-x:latest", "localhost"),
    ("koji-adjutant-buildroot:f40", ""),
    ("library/fedora:40", ""),
])
def test_registry_of(ref, registry):
    assert registry_of(ref) == registry


def credentials(tmp_path, text: str, mode: int = 0o600):
    path = tmp_path / "cache-registry.auth"
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_credentials_are_read_and_never_shown(tmp_path):
    auth = read_auth(credentials(tmp_path, "farm:pa:ss word\n"))
    assert (auth.username, auth.password) == ("farm", "pa:ss word")
    assert "pa:ss" not in repr(auth)


@pytest.mark.parametrize("text, mode, expected", [
    ("farm:secret", 0o640, "can be read by other users (mode 0640)"),
    ("farm:secret", 0o604, "can be read by other users (mode 0604)"),
    ("farm", 0o600, "not of the form username:password"),
    (":secret", 0o600, "not of the form username:password"),
    ("", 0o600, "not of the form username:password"),
])
def test_bad_credentials_files_are_refused_with_the_fix(tmp_path, text, mode, expected):
    with pytest.raises(ConfigError) as caught:
        read_auth(credentials(tmp_path, text, mode))
    assert expected in str(caught.value) and "mode 0600" in str(caught.value)


def test_missing_credentials_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the registry credentials"):
        read_auth(tmp_path / "absent")
    with pytest.raises(ConfigError, match="not a regular file"):
        read_auth(tmp_path)


def test_auth_header_is_podmans_base64_json():
    from koji_adjutant.container.interface import RegistryAuth

    assert _auth_header(None) == {}
    header = _auth_header(RegistryAuth("farm", "s3cret"))["X-Registry-Auth"]
    assert json.loads(base64.urlsafe_b64decode(header)) == {"username": "farm", "password": "s3cret"}


@pytest.mark.parametrize("value, parsed", [
    ("", None),
    ("127.0.0.1:5000/koji-cache", "127.0.0.1:5000/koji-cache"),
    ("registry.example.com/farm/f40/", "registry.example.com/farm/f40"),
    ("localhost/cache", "localhost/cache"),
])
def test_cache_registry_values(value, parsed):
    assert configvalues.registry_namespace(value) == parsed


@pytest.mark.parametrize("value", ["registry.example.com", "cache/namespace", "registry.example.com/Farm",
                                   "http://registry.example.com/farm", "registry.example.com/farm:tag"])
def test_bad_cache_registry_values(value):
    with pytest.raises(ValueError, match="host\\[:port\\]/namespace"):
        configvalues.registry_namespace(value)


def test_insecure_registries():
    assert configvalues.registry_hosts("127.0.0.1:5000, registry.lan:443 localhost") == \
        ("127.0.0.1:5000", "registry.lan:443", "localhost")
    with pytest.raises(ValueError, match="not a registry host"):
        configvalues.registry_hosts("http://registry.lan")
