"""Kept failed buildroots: what marks one, when it expires, the names it holds its image by,
failed_buildroot_lifetime as kojid.conf gives it, and how `enter` reads its command line.

Pure logic only; keeping, sweeping and entering real containers is in
tests/integration/test_kept_buildroots.py.
"""

from __future__ import annotations

import pytest

from koji_adjutant import cli
from koji_adjutant.buildroot import kept
from koji_adjutant.buildroot.runner import BuildrootRunner
from koji_adjutant.config import load_config
from koji_adjutant.container.interface import (
    KEPT_NAME_PREFIX,
    LABEL_KEEP_FAILED,
    LABEL_PACKAGE,
    LABEL_TASK,
    LABEL_WORKER,
    ContainerInfo,
)
from koji_adjutant.envstore import environment_name, image_ref
from koji_adjutant.errors import ConfigError

EXITED = 1_800_000_000.0
KEPT_LABELS = {LABEL_WORKER: "builder-1", LABEL_TASK: "1234", LABEL_PACKAGE: "hello-1.0-1",
               LABEL_KEEP_FAILED: "14400"}


def info(name: str, labels: dict[str, str], exited_at: float = EXITED) -> ContainerInfo:
    return ContainerInfo(id="f" * 64, name=name, status="exited", labels=labels, image_id="a" * 64,
                         exited_at=exited_at)


def test_a_kept_buildroot_is_read_from_its_name_and_labels():
    buildroot = kept.kept_from(info(kept.kept_name("1234", "f" * 64), KEPT_LABELS))
    assert buildroot == kept.KeptBuildroot(id="f" * 64, name="adjutant-failed-1234-ffffffffffff", task="1234",
                                           package="hello-1.0-1", worker="builder-1", image_id="a" * 64,
                                           lifetime=14400, exited_at=EXITED)
    assert buildroot.image_ref == "localhost/adjutant-failed-1234-ffffffffffff:kept"


def test_only_a_renamed_container_is_kept_whatever_its_labels():
    """The labels are given when a build container is made; only a failed build's is renamed."""
    assert kept.kept_from(info("adjutant-0123456789ab", KEPT_LABELS)) is None


def test_it_expires_its_lifetime_after_it_exited():
    buildroot = kept.kept_from(info(kept.kept_name("1234", "f" * 64), KEPT_LABELS))
    assert buildroot.expires_at == EXITED + 14400
    assert not buildroot.expired(EXITED)
    assert not buildroot.expired(EXITED + 14399.9)
    assert buildroot.expired(EXITED + 14400)
    assert kept.when(buildroot.expires_at) == "2027-01-15 12:00:00 UTC"


@pytest.mark.parametrize("lifetime", ["", "soon", "4h"])
def test_a_lifetime_that_cannot_be_read_has_expired(lifetime):
    labels = {**KEPT_LABELS, LABEL_KEEP_FAILED: lifetime}
    assert kept.kept_from(info(kept.kept_name("1234", "f" * 64), labels)).expired(EXITED)


def test_keep_labels():
    assert kept.keep_labels(60, "fail-build-1.0-1") == {LABEL_KEEP_FAILED: "60", LABEL_PACKAGE: "fail-build-1.0-1"}


@pytest.mark.parametrize("tag", ["failed", "failed-1234", "adjutant-failed-1234"])
def test_no_kept_name_is_a_cached_environments(tag):
    """The cache finds an environment's image by its name alone: a kept one's never is one."""
    name = kept.kept_name("1234", "0123456789abcdef")
    assert name.startswith(KEPT_NAME_PREFIX)
    environment = image_ref(environment_name(tag, "1234", "0123456789ab" + "0" * 52))
    assert environment.endswith(":latest")
    assert kept.kept_image_ref(name) != environment
    assert not kept.kept_image_ref(name).endswith(":latest")


def test_keeping_needs_the_task_label():
    with pytest.raises(ValueError, match="task label"):
        BuildrootRunner(None, {LABEL_WORKER: "build-local"}, keep_failed=60)
    BuildrootRunner(None, {LABEL_WORKER: "build-local"}, keep_failed=0)


MINIMAL = """
[kojid]
server = https://hub.example.com/kojihub
topurl = https://hub.example.com/kojifiles
"""


@pytest.mark.parametrize("text, seconds", [("", 14400), ("failed_buildroot_lifetime = 0\n", 0),
                                           ("failed_buildroot_lifetime = 600\n", 600),
                                           ("failed_buildroot_lifetime = -1\n", -1)])
def test_failed_buildroot_lifetime_as_kojid_reads_it(tmp_path, text, seconds):
    path = tmp_path / "kojid.conf"
    path.write_text(MINIMAL + text)
    config = load_config(path)
    assert config.kojid.failed_buildroot_lifetime == seconds
    assert not any("failed_buildroot_lifetime" in note for note in config.ignored)


def test_failed_buildroot_lifetime_must_be_an_integer(tmp_path):
    path = tmp_path / "kojid.conf"
    path.write_text(MINIMAL + "failed_buildroot_lifetime = 4h\n")
    with pytest.raises(ConfigError, match="failed_buildroot_lifetime = '4h' must be an integer"):
        load_config(path)


@pytest.mark.parametrize("argv, task, config, command", [
    (["enter", "1234"], "1234", None, []),
    (["enter", "1234", "-c", "/etc/k.conf", "--", "cat", "-n", "/builddir/x"], "1234", "/etc/k.conf",
     ["cat", "-n", "/builddir/x"]),
    (["enter", "-c", "/etc/k.conf", "1234", "--", "ls", "--", "-x"], "1234", "/etc/k.conf", ["ls", "--", "-x"]),
    (["enter", "--list", "--config", "/etc/k.conf"], None, "/etc/k.conf", []),
])
def test_enter_command_line(argv, task, config, command):
    from koji_adjutant.entercli import _late_options

    args = cli.build_parser().parse_args(argv)
    assert _late_options(args) == command
    assert args.task == task
    assert (str(args.config) if args.config else None) == config


def test_a_command_comes_after_dashes():
    from koji_adjutant.entercli import _late_options

    args = cli.build_parser().parse_args(["enter", "1234", "cat", "/etc/os-release"])
    with pytest.raises(SystemExit):
        _late_options(args)
