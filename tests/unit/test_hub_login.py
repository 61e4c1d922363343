"""hub.login chooses the way kojid does (builder/kojid main); the session is a mock, the choice is the test."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest

from koji_adjutant.config import load_config
from koji_adjutant.errors import ConfigError
from koji_adjutant.hub import login


def options(tmp_path, **values) -> SimpleNamespace:
    base = {"cert": None, "serverca": None, "user": None, "password": None, "krb_principal": None,
            "host_principal_format": "compile/%s@EXAMPLE.COM", "keytab": "/etc/kojid/kojid.keytab",
            "ccache": str(tmp_path / "ccache"), "server": "https://hub.example.com/kojihub"}
    base.update(values)
    return SimpleNamespace(**base)


@pytest.fixture
def session(mocker):
    session = mocker.Mock()
    session.logged_in = True
    return session


def test_keytab_login_fills_the_principal_with_the_fqdn(session, tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "getfqdn", lambda: "builder7.farm.example.com")
    login(session, options(tmp_path))
    session.gssapi_login.assert_called_once_with(principal="compile/builder7.farm.example.com@EXAMPLE.COM",
                                                 keytab="/etc/kojid/kojid.keytab", ccache=str(tmp_path / "ccache"))


def test_krb_principal_wins(session, tmp_path):
    login(session, options(tmp_path, krb_principal="koji/b1@REALM"))
    assert session.gssapi_login.call_args.kwargs["principal"] == "koji/b1@REALM"


def test_an_empty_ccache_is_removed_first(session, tmp_path):
    (tmp_path / "ccache").write_bytes(b"")
    login(session, options(tmp_path, krb_principal="koji/b1@REALM"))
    assert not (tmp_path / "ccache").exists()


def test_certificate_then_user(session, tmp_path):
    cert = tmp_path / "client.pem"
    cert.write_text("pem")
    login(session, options(tmp_path, cert=str(cert), user="b1", password="x"))
    session.ssl_login.assert_called_once_with(str(cert), None, None)
    session.reset_mock()
    login(session, options(tmp_path, user="b1", password="x"))
    session.login.assert_called_once_with()
    session.gssapi_login.assert_not_called()


def test_a_refused_login_is_a_config_error(session, tmp_path):
    session.logged_in = False
    with pytest.raises(ConfigError, match="did not accept our login"):
        login(session, options(tmp_path, krb_principal="koji/b1@REALM"))


@pytest.mark.parametrize("value", ["compile/host@EXAMPLE.COM", "compile/%s/%s@X", "compile/%d@X"])
def test_a_host_principal_format_without_one_host_slot_is_refused(tmp_path, value):
    conf = tmp_path / "kojid.conf"
    conf.write_text(f"[kojid]\nserver = https://h/kojihub\ntopurl = https://h/kojifiles\n"
                    f"host_principal_format = {value}\n")
    with pytest.raises(ConfigError, match="host_principal_format"):
        load_config(conf)
