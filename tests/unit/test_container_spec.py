"""Validation of ContainerSpec, Mount and ResourceLimits: what is refused, and how it is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from koji_adjutant.container.interface import LABEL_PURPOSE, LABEL_WORKER, ContainerSpec, Mount, ResourceLimits
from koji_adjutant.errors import AdjutantError, ContainerError, ContainerSpecError

LABELS = {LABEL_WORKER: "w1", LABEL_PURPOSE: "unit"}


def spec(**overrides) -> ContainerSpec:
    values = {"image": "localhost/some:image", "command": ["true"], "labels": dict(LABELS)}
    values.update(overrides)
    return ContainerSpec(**values)


def test_error_type_is_part_of_the_container_hierarchy():
    assert issubclass(ContainerSpecError, ContainerError)
    assert issubclass(ContainerSpecError, AdjutantError)


def test_a_complete_spec_is_valid(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    spec(mounts=[Mount(tmp_path / "a", "/a"), Mount(tmp_path / "b", "/b/c", read_only=False)],
         limits=ResourceLimits(memory_bytes=1 << 30, pids=100, cpus=0.5),
         user="1000:1000", workdir="/builddir", env={"A": "1"}).validate()


def test_mounts_are_read_only_unless_asked(tmp_path):
    assert Mount(tmp_path, "/x").read_only is True
    assert Mount(tmp_path, "/x", read_only=False).read_only is False


# -- Mount ---------------------------------------------------------------------

def test_relative_mount_source():
    with pytest.raises(ContainerSpecError) as info:
        Mount(Path("relative/dir"), "/x").validate()
    assert info.value.message == "mount source relative/dir is not an absolute path"
    assert info.value.hint == "use absolute host paths in mounts"
    assert str(info.value) == "mount source relative/dir is not an absolute path; use absolute host paths in mounts"


def test_relative_mount_source_given_as_string():
    with pytest.raises(ContainerSpecError, match="not an absolute path"):
        Mount("relative", "/x").validate()  # type: ignore[arg-type]


def test_missing_mount_source(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ContainerSpecError) as info:
        Mount(missing, "/x").validate()
    assert info.value.message == f"mount source {missing} does not exist"
    assert info.value.hint == "create it before the container is made"


@pytest.mark.parametrize("target", ["relative", "", "/a/../b", "/a/./b", "/a//b", "/a/", "/a/b/.."])
def test_non_normalized_mount_target(tmp_path, target):
    with pytest.raises(ContainerSpecError) as info:
        Mount(tmp_path, target).validate()
    assert info.value.message == f"mount target {target!r} is not a normalized absolute path"
    assert info.value.hint == "use a plain absolute path inside the container"


@pytest.mark.parametrize("target", ["/", "/builddir", "/a/b.c/d-e"])
def test_normalized_mount_targets_pass(tmp_path, target):
    Mount(tmp_path, target).validate()


def test_mount_source_checked_before_target(tmp_path):
    with pytest.raises(ContainerSpecError, match="does not exist"):
        Mount(tmp_path / "nope", "bad/target").validate()


# -- ContainerSpec -------------------------------------------------------------

def test_duplicate_mount_targets(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bad = spec(mounts=[Mount(tmp_path / "a", "/data"), Mount(tmp_path / "b", "/data", read_only=False)])
    with pytest.raises(ContainerSpecError) as info:
        bad.validate()
    assert info.value.message == "mount target /data is used twice"
    assert info.value.hint == "give every mount its own target path"


def test_spec_validates_each_mount(tmp_path):
    with pytest.raises(ContainerSpecError, match="does not exist"):
        spec(mounts=[Mount(tmp_path, "/ok"), Mount(tmp_path / "gone", "/gone")]).validate()


@pytest.mark.parametrize("missing", [LABEL_WORKER, LABEL_PURPOSE])
def test_missing_label(missing):
    labels = {k: v for k, v in LABELS.items() if k != missing}
    with pytest.raises(ContainerSpecError) as info:
        spec(labels=labels).validate()
    assert info.value.message == f"container spec lacks the label {missing}"
    assert "traceable" in info.value.hint


def test_no_labels_at_all():
    with pytest.raises(ContainerSpecError, match="lacks the label"):
        ContainerSpec(image="img", command=["true"]).validate()


def test_extra_labels_are_fine():
    spec(labels={**LABELS, "io.koji-adjutant.task": "42"}).validate()


@pytest.mark.parametrize("command", [[], (), ""])
def test_empty_command(command):
    with pytest.raises(ContainerSpecError) as info:
        spec(command=command).validate()
    assert info.value.message == "container spec has no command"


# -- ResourceLimits ------------------------------------------------------------

@pytest.mark.parametrize("field, name, value", [
    ("memory_bytes", "memory", 0),
    ("memory_bytes", "memory", -1),
    ("pids", "pids", 0),
    ("pids", "pids", -5),
    ("cpus", "cpus", 0),
    ("cpus", "cpus", -0.5),
])
def test_non_positive_limits(field, name, value):
    limits = ResourceLimits(**{field: value})
    with pytest.raises(ContainerSpecError) as info:
        limits.validate()
    assert info.value.message == f"{name} limit must be positive, got {value}"
    # The spec checks its limits too.
    with pytest.raises(ContainerSpecError, match=f"{name} limit must be positive"):
        spec(limits=limits).validate()


def test_unlimited_and_positive_limits_pass():
    ResourceLimits().validate()
    ResourceLimits(memory_bytes=1, pids=1, cpus=0.1).validate()
