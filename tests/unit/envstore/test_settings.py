"""The one place that says where the store is: every caller must agree on it, or
``koji-adjutant env`` shows a different store than the daemon uses."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from koji_adjutant import envcli
from koji_adjutant.buildroot.cache import BuildrootCache
from koji_adjutant.config import AdjutantOptions, load_config
from koji_adjutant.daemon import AdjutantTaskManager, worker_options
from koji_adjutant.envstore.settings import GIB, store_settings
from koji_adjutant.envstore.store import EnvironmentStore

from .factories import make_env

KOJID = """[kojid]
server = https://hub.example.com/kojihub
topurl = https://hub.example.com/kojifiles
[adjutant]
state_dir = {state_dir}
cache_max_size_gb = 2.5
cache_max_age_days = 3
"""


def write_config(tmp_path, state_dir):
    path = tmp_path / "kojid.conf"
    path.write_text(KOJID.format(state_dir=state_dir))
    return path


def test_settings_follow_the_adjutant_section(tmp_path):
    settings = store_settings(load_config(write_config(tmp_path, tmp_path / "state")).adjutant)
    assert settings.path == tmp_path / "state" / "environments.sqlite"
    assert (settings.max_total_bytes, settings.max_age_days) == (int(2.5 * GIB), 3)


def test_default_location_follows_xdg_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store_settings(AdjutantOptions()).path == tmp_path / "xdg" / "koji-adjutant" / "environments.sqlite"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (store_settings(AdjutantOptions()).path
            == tmp_path / "home" / ".local" / "share" / "koji-adjutant" / "environments.sqlite")


def test_daemon_tasks_and_env_commands_use_one_store(tmp_path, mocker, monkeypatch):
    """The daemon evicts from, the build tasks record in, and ``env -c`` reads the same file."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))  # a store none of them may use
    path = write_config(tmp_path, tmp_path / "custom-state")
    options = worker_options(load_config(path), "unix:///nowhere")
    args = argparse.Namespace(config=path, store=None)
    assert envcli.settings_for(args) == store_settings(options.adjutant)
    assert BuildrootCache.configured(options.adjutant, manager=None).store.path == envcli.settings_for(args).path

    now = datetime.now(timezone.utc)
    store = EnvironmentStore(envcli.settings_for(args).path)
    past = now - timedelta(days=5)   # past cache_max_age_days = 3
    store.record(make_env("adjutant-stale", created=past, last_used=past))
    store.record(make_env("adjutant-fresh", created=now, last_used=now))
    containers = mocker.Mock(name="ContainerManager")
    containers.list_containers.return_value = []
    daemon = SimpleNamespace(pids={}, options=options, _containers=containers)
    AdjutantTaskManager.evict_environments(daemon)
    assert [env.name for env in store.list()] == ["adjutant-fresh"]
    assert not (tmp_path / "elsewhere").exists()
