"""The env commands against a real store, without podman."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone

import pytest

from koji_adjutant import __version__, cli, envcli
from koji_adjutant.container.interface import ContainerRoot, ImageInfo
from koji_adjutant.envstore.names import LABEL_STORE, image_ref
from koji_adjutant.envstore.store import EnvironmentStore
from koji_adjutant.errors import AdjutantError, ConfigError

from .factories import GIB, make_env


@pytest.fixture
def run_env(store_path, capsys):
    parser = argparse.ArgumentParser(prog="koji-adjutant")
    envcli.register(parser.add_subparsers(dest="command", required=True))

    def run(*argv, **kwargs):
        args = parser.parse_args(["env", "--store", str(store_path), *argv])
        code = args.func(args, **kwargs)
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def test_env_list_empty(run_env):
    assert run_env("list") == (0, "no cached environments\n", "")


def test_env_list_shows_own_layers_shared_bases_and_origin(store, run_env):
    """Each environment counts what it adds; a base image several share is counted once."""
    base = {"base_image": "registry.example.com/br:f40", "base_digest": "sha256:" + "b" * 64, "base_size": GIB}
    store.record(make_env("adjutant-f40-x86_64-aaaaaaaaaaaa", tag="f40", size=GIB + 3 * GIB // 2,
                          own_size=3 * GIB // 2, use_count=4, days_ago=1, **base))
    store.record(make_env("adjutant-f40-x86_64-cccccccccccc", tag="f40", size=GIB + 512, own_size=512,
                          origin="registry.example.com:5000/farm", **base))
    store.record(make_env("adjutant-el10-aarch64-bbbbbbbbbbbb", tag="el10", arch="aarch64", size=512,
                          base_image="quay.io/el10", base_digest="sha256:" + "e" * 64, base_size=0, own_size=512))
    code, out, _ = run_env("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "TAG", "ARCH", "OWN", "SIZE", "USES", "LAST", "USED", "ORIGIN", "VERSION"]
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert rows["adjutant-f40-x86_64-aaaaaaaaaaaa"][3:6] == ["1.5", "GiB", "4"]
    assert rows["adjutant-f40-x86_64-aaaaaaaaaaaa"][-2:] == ["built", __version__]
    assert rows["adjutant-f40-x86_64-cccccccccccc"][3:5] == ["512", "B"]
    assert rows["adjutant-f40-x86_64-cccccccccccc"][-2] == "registry.example.com:5000/farm"
    assert lines[0].index("TAG") == lines[1].index(lines[1].split()[1] + " ")
    assert lines[4] == ""
    assert lines[5].split() == ["BASE", "IMAGE", "DIGEST", "SIZE", "USED", "BY"]
    bases = {line.split()[0]: line.split() for line in lines[6:8]}
    assert bases["registry.example.com/br:f40"][1:] == ["sha256:bbbbbbbbbbbb", "1.0", "GiB", "2"]
    assert bases["quay.io/el10"][1:] == ["sha256:eeeeeeeeeeee", "0", "B", "1"]
    assert lines[-1] == "3 environments: 1.5 GiB in their own layers + 1.0 GiB in 2 shared base images = 2.5 GiB"


def test_env_show(store, run_env):
    env = make_env(inputs={"groups": ["build"], "repo": 7}, base_image="quay.io/x/el10:1", size=2048)
    store.record(env)
    code, out, _ = run_env("show", env.name)
    assert code == 0
    assert f"name:        {env.name}" in out
    assert "base_image:  quay.io/x/el10:1" in out
    assert "size:        2048 (2.0 KiB, whole image)" in out
    assert "own_size:    2048 (2.0 KiB, its own layers)" in out
    assert f"image:       {image_ref(env.name)}" in out
    assert "last_used:   2025-06-01T12:00:00.000000Z" in out
    inputs_text = out.split("inputs:", 1)[1]
    assert json.loads(inputs_text) == {"groups": ["build"], "repo": 7}
    assert '\n      "build"\n' in inputs_text  # pretty-printed


def test_env_show_unknown(run_env):
    with pytest.raises(AdjutantError) as caught:
        run_env("show", "adjutant-nope")
    assert "no cached environment named 'adjutant-nope'" in str(caught.value)
    assert "env list" in str(caught.value)


def test_env_clean_dry_run_default_limits(store, run_env, mocker):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    now = datetime.now(timezone.utc)
    store.record(make_env("adjutant-fresh", size=GIB, created=now, last_used=now))
    store.record(make_env("adjutant-stale", size=GIB, last_used=now - timedelta(days=30)))
    code, out, _ = run_env("clean", "--dry-run")
    assert (code, out) == (0, "would remove adjutant-stale (1.0 GiB)\n")
    code, out, _ = run_env("clean", "--dry-run", "--max-size-gb", "0.5", "--max-age-days", "100")
    assert out.splitlines() == ["would remove adjutant-stale (1.0 GiB)", "would remove adjutant-fresh (1.0 GiB)"]
    code, out, _ = run_env("clean", "--dry-run", "--older-than", "7")
    assert out == "would remove adjutant-stale (1.0 GiB)\n"
    code, out, _ = run_env("clean", "--dry-run", "adjutant-fresh")
    assert out == "would remove adjutant-fresh (1.0 GiB)\n"
    podman.assert_not_called()
    assert len(store.list()) == 2


def test_env_clean_dry_run_all_asks_podman_for_unrecorded_images(store, run_env, mocker, manager):
    """--all also goes for images of this store that no record names, which only podman knows of."""
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    podman.return_value.__enter__.return_value = manager
    store.record(make_env("adjutant-a", size=GIB))
    orphan = ImageInfo(ref="sha256:" + "ab" * 32, id="sha256:" + "ab" * 32, digest="", size=2 * GIB,
                       labels=store.image_labels("adjutant-b"))
    manager.list_images.return_value = [orphan]
    code, out, _ = run_env("clean", "--dry-run", "--all")
    assert (code, out.splitlines()) == (0, ["would remove adjutant-a (1.0 GiB)",
                                            "would remove image abababababab of adjutant-b (2.0 GiB, no record)"])
    manager.list_images.assert_called_once_with({LABEL_STORE: store.identity})
    manager.remove_image.assert_not_called()
    assert [env.name for env in store.list()] == ["adjutant-a"]


def test_env_clean_nothing_needs_no_podman(store, run_env, mocker):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    store.record(make_env("adjutant-fresh", last_used=datetime.now(timezone.utc)))
    assert run_env("clean")[:2] == (0, "nothing to clean\n")
    podman.assert_not_called()


def test_env_clean_removes(store, run_env, manager):
    store.record(make_env("adjutant-a"))
    store.record(make_env("adjutant-b"))
    code, out, _ = run_env("clean", "adjutant-a", manager=manager)
    assert (code, out) == (0, "removed adjutant-a\n")
    assert [env.name for env in store.list()] == ["adjutant-b"]
    code, out, err = run_env("clean", "adjutant-a", manager=manager)
    assert (code, out) == (0, "nothing to clean\n")
    assert "adjutant-a: no record in the store" in err
    code, out, _ = run_env("clean", "--all", manager=manager)
    assert (code, out) == (0, "removed adjutant-b\n")
    assert store.list() == []


def test_env_clean_starts_podman_only_to_remove(store, run_env, mocker, manager):
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    podman.return_value.__enter__.return_value = manager
    store.record(make_env("adjutant-a"))
    assert run_env("clean", "--all")[:2] == (0, "removed adjutant-a\n")
    podman.assert_called_once_with(socket=None, container_root=ContainerRoot.SUBORDINATE, insecure_registries=())
    manager.remove_image.assert_called_once_with(image_ref("adjutant-a"))


@pytest.mark.parametrize("argv", [("--all", "adjutant-a"), ("--all", "--older-than", "3"),
                                  ("--older-than", "3", "adjutant-a")])
def test_env_clean_refuses_mixed_selections(run_env, argv):
    with pytest.raises(ConfigError):
        run_env("clean", "--dry-run", *argv)


def test_human_size():
    assert envcli.human_size(0) == "0 B"
    assert envcli.human_size(1023) == "1023 B"
    assert envcli.human_size(1536) == "1.5 KiB"
    assert envcli.human_size(20 * GIB) == "20.0 GiB"
    assert envcli.human_size(3 * (1 << 40)) == "3.0 TiB"


# -- which store: the daemon's kojid.conf ------------------------------------------------------

KOJID = """[kojid]
server = https://hub.example.com/kojihub
topurl = https://hub.example.com/kojifiles
[adjutant]
state_dir = {state_dir}
"""


def test_env_list_shows_the_store_of_the_config(tmp_path, monkeypatch, capsys):
    """``env list -c kojid.conf`` runs as the command line does and reads the state_dir store."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    EnvironmentStore(tmp_path / "xdg" / "koji-adjutant" / "environments.sqlite").record(make_env("adjutant-wrong"))
    state_dir = tmp_path / "custom"
    EnvironmentStore(state_dir / "environments.sqlite").record(make_env("adjutant-right", size=GIB))
    config = tmp_path / "kojid.conf"
    config.write_text(KOJID.format(state_dir=state_dir))
    assert cli.main(["env", "list", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "adjutant-right" in out and "adjutant-wrong" not in out
    assert out.splitlines()[-1] == "1 environment: 1.0 GiB in its own layers + 0 B in 1 shared base image = 1.0 GiB"
    assert cli.main(["env", "-c", str(config), "show", "adjutant-right"]) == 0
    assert "name:" in capsys.readouterr().out


def test_env_commands_read_the_daemons_default_config(tmp_path, monkeypatch, capsys):
    config = tmp_path / "etc-kojid.conf"
    config.write_text(KOJID.format(state_dir=tmp_path / "state"))
    monkeypatch.setattr("koji_adjutant.config.DEFAULT_CONFIG_PATH", config)
    assert cli.main(["env", "list"]) == 0
    assert capsys.readouterr().out == "no cached environments\n"
    assert (tmp_path / "state" / "environments.sqlite").exists()


def test_a_missing_config_says_what_to_do(tmp_path, capsys):
    assert cli.main(["env", "list", "-c", str(tmp_path / "nope.conf")]) == 1
    err = capsys.readouterr().err
    assert f"configuration file {tmp_path / 'nope.conf'} does not exist" in err
    assert "-c/--config" in err and "--store" in err


def test_an_unreadable_config_says_what_to_do(tmp_path, capsys):
    config = tmp_path / "kojid.conf"
    config.write_text("[kojid\n")
    assert cli.main(["env", "list", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert "cannot be parsed" in err and "-c/--config" in err


def test_env_clean_takes_the_limits_of_the_config(tmp_path, capsys):
    state_dir = tmp_path / "state"
    store = EnvironmentStore(state_dir / "environments.sqlite")
    now = datetime.now(timezone.utc)
    store.record(make_env("adjutant-week-old", created=now - timedelta(days=7), last_used=now - timedelta(days=7)))
    config = tmp_path / "kojid.conf"
    config.write_text(KOJID.format(state_dir=state_dir) + "cache_max_age_days = 30\n")
    assert cli.main(["env", "clean", "--dry-run", "-c", str(config)]) == 0
    assert capsys.readouterr().out == "nothing to clean\n"
    assert cli.main(["env", "clean", "--dry-run", "-c", str(config), "--max-age-days", "5"]) == 0
    assert capsys.readouterr().out == "would remove adjutant-week-old (0 B)\n"


def test_env_clean_reaches_the_podman_of_the_workers_config(tmp_path, mocker, manager):
    """The worker's environments are in the storage of its podman_socket: env clean -c must
    remove them there, not in the user's default storage."""
    podman = mocker.patch("koji_adjutant.container.podman.PodmanManager")
    podman.return_value.__enter__.return_value = manager
    config = tmp_path / "kojid.conf"
    config.write_text(KOJID.format(state_dir=tmp_path / "state")
                      + "podman_socket = /run/worker/podman.sock\ninsecure_registries = 127.0.0.1:5000\n")
    EnvironmentStore(tmp_path / "state" / "environments.sqlite").record(make_env("adjutant-a"))
    assert cli.main(["env", "clean", "--all", "-c", str(config)]) == 0
    podman.assert_called_once_with(socket="/run/worker/podman.sock", container_root=ContainerRoot.SUBORDINATE,
                                   insecure_registries=("127.0.0.1:5000",))
    manager.remove_image.assert_any_call(image_ref("adjutant-a"))
