"""BuildrootSpec: what it refuses, what its inputs (the start of every cache key) depend on, and RepoSource.check."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from koji_adjutant.buildroot.cachekey import key_of
from koji_adjutant.buildroot.spec import (
    BuildrootSpec,
    InstallGroup,
    PackageManagerOptions,
    RepoSource,
    Timeouts,
    kojid_macros,
)
from koji_adjutant.errors import AdjutantError, ConfigError

DIGEST = "sha256:" + "0" * 64


def make(**overrides) -> BuildrootSpec:
    values = dict(
        image="localhost/koji-adjutant-buildroot:dev",
        image_digest=DIGEST,
        arch="x86_64",
        repos=(RepoSource("local", "/srv/repos/f40"), RepoSource("updates", "https://example.org/updates/")),
        extra_packages=("ccache",),
        macros={"dist": ".fc40", "vendor": "Koji"},
        env_vars={"LANG": "C.UTF-8", "TZ": "UTC"},
        package_manager=PackageManagerOptions(releasever="40"),
    )
    values.update(overrides)
    return BuildrootSpec(**values)


# -- validation ----------------------------------------------------------------------

def test_the_group_is_a_name_whether_given_as_enum_or_text():
    assert make(group=InstallGroup.SRPM_BUILD).group == "srpm-build"
    assert make(group="buildsys-build").group == "buildsys-build"
    assert make(group=None).group is None


@pytest.mark.parametrize("group", ["", "build; rm -rf /", "-x", "a b"])
def test_a_group_that_is_no_comps_id_is_refused(group):
    with pytest.raises(ConfigError) as caught:
        make(group=group)
    assert caught.value.message == f"group {group!r} is not a comps group id"


@pytest.mark.parametrize("package", ["--setopt=x=1", "-y", "a\nb", "tab\there", "", " "])
def test_an_extra_package_that_could_be_an_option_or_several_lines_is_refused(package):
    with pytest.raises(ConfigError) as caught:
        make(extra_packages=(package,))
    assert caught.value.message == f"package {package!r} is not a package name or provide"


@pytest.mark.parametrize("group, extra, what", [
    ("build", (), "the @build group"),
    ("build", ("ccache", "gdb"), "the @build group and ccache, gdb"),
    (None, ("rpm-build", "gcc >= 12"), "rpm-build, gcc >= 12"),
    (None, (), None),
])
def test_first_install_says_what_the_first_layer_brings(group, extra, what):
    assert make(group=group, extra_packages=extra).first_install == what


def test_a_complete_spec_is_valid():
    spec = make()
    assert spec.repos[0].repo_id == "local"
    assert isinstance(spec.repos, tuple) and isinstance(spec.extra_packages, tuple)


def test_lists_are_frozen_to_tuples():
    spec = make(repos=[RepoSource("a", "/a")], extra_packages=["x", "y"])
    assert spec.repos == (RepoSource("a", "/a"),)
    assert spec.extra_packages == ("x", "y")
    hash(spec.repos)


def test_macros_and_environment_cannot_be_changed_afterwards():
    macros = {"dist": ".fc40"}
    spec = make(macros=macros)
    macros["dist"] = ".fc41"
    assert spec.macros["dist"] == ".fc40"
    with pytest.raises(TypeError):
        spec.macros["dist"] = ".fc41"  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.env_vars["X"] = "1"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.arch = "aarch64"  # type: ignore[misc]


def test_no_repos():
    with pytest.raises(ConfigError) as caught:
        make(repos=())
    assert caught.value.message == "a buildroot needs at least one repo"
    assert "--repo" in caught.value.hint
    assert isinstance(caught.value, AdjutantError)


@pytest.mark.parametrize("name", ["", "1dist", "dist-tag", "my macro", "%dist", "di\nst", "\ndist", "dïst", "a.b"])
def test_bad_macro_name(name):
    with pytest.raises(ConfigError, match="macro name .* is not a valid rpm macro name") as caught:
        make(macros={name: "x"})
    assert repr(name) in str(caught.value)


@pytest.mark.parametrize("name", ["dist", "_topdir", "A1", "_", "with_foo_2"])
def test_good_macro_names(name):
    assert make(macros={name: "x"}).macros == {name: "x"}


@pytest.mark.parametrize("value", ["a\nb", "\n", "trailing\n"])
def test_macro_value_with_newline(value):
    with pytest.raises(ConfigError, match=r"macro %dist value .* cannot be one rpm macro line") as caught:
        make(macros={"dist": value})
    assert "one rpm macro line" in caught.value.message


@pytest.mark.parametrize("value", ["C:\\", "foo \\", "", "   "])
def test_macro_value_that_rpm_cannot_hold_on_one_line(value):
    with pytest.raises(ConfigError):
        make(macros={"dist": value})


@pytest.mark.parametrize("name", ["", "1PATH", "MY-VAR", "A B", "X=Y", "ÄÖ", "\nLANG"])
def test_bad_environment_name(name):
    with pytest.raises(ConfigError, match="environment variable name .* is not valid") as caught:
        make(env_vars={name: "1"})
    assert repr(name) in str(caught.value)


def test_duplicate_repo_ids():
    with pytest.raises(ConfigError, match="two repos share one repo id"):
        make(repos=(RepoSource("same", "/a"), RepoSource("same", "https://h/")))


@pytest.mark.parametrize("repo_id", ["", "a b", "a/b", "a;b", "$(x)", "a\nb", "[x]", "ïd"])
def test_bad_repo_id(repo_id):
    with pytest.raises(ConfigError, match="may only hold letters, digits and _.:-") as caught:
        RepoSource(repo_id, "/srv/repo")
    assert repr(repo_id) in caught.value.message


@pytest.mark.parametrize("repo_id", ["local", "local-1", "f40:updates", "a.b_c-D9"])
def test_good_repo_ids(repo_id):
    assert RepoSource(repo_id, "/x").repo_id == repo_id


@pytest.mark.parametrize("what", ["macro name", "repo id", "environment name"])
def test_a_trailing_newline_is_not_a_valid_name(what):
    with pytest.raises(ConfigError):
        if what == "macro name":
            make(macros={"dist\n": ".fc40"})
        elif what == "repo id":
            RepoSource("local\n", "/srv/repo")
        else:
            make(env_vars={"LANG\n": "C"})


# -- content hash --------------------------------------------------------------------

def digest(spec: BuildrootSpec) -> str:
    """What every cache key over a spec starts from: its inputs, hashed."""
    return key_of(spec.inputs())


def test_inputs_digest_is_a_sha256_and_stable_across_equal_specs():
    value = digest(make())
    assert len(value) == 64 and int(value, 16) >= 0
    assert digest(make()) == value
    assert make() == make()


def test_inputs_digest_is_stable_across_processes():
    code = "from tests.unit.buildroot.test_spec import digest, make; print(digest(make()))"
    root = Path(__file__).resolve().parents[3]
    out = set()
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed, "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
        out.add(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                               env=env).stdout.strip())
    assert out == {digest(make())}


def test_inputs_digest_ignores_insertion_order():
    a = make(macros={"a": "1", "b": "2", "c": "3"}, env_vars={"X": "1", "Y": "2"})
    b = make(macros={"c": "3", "a": "1", "b": "2"}, env_vars={"Y": "2", "X": "1"})
    assert digest(a) == digest(b)
    assert list(a.macros) == list(b.macros) == ["a", "b", "c"]


CHANGES = {
    "image": dict(image="localhost/other:dev"),
    "image_digest": dict(image_digest="sha256:" + "1" * 64),
    "arch": dict(arch="aarch64"),
    "macro value": dict(macros={"dist": ".fc41", "vendor": "Koji"}),
    "macro added": dict(macros={"dist": ".fc40", "vendor": "Koji", "x": "1"}),
    "macro removed": dict(macros={"dist": ".fc40"}),
    "env_vars": dict(env_vars={"LANG": "C", "TZ": "UTC"}),
    "repo location": dict(repos=(RepoSource("local", "/srv/repos/f41"),
                                 RepoSource("updates", "https://example.org/updates/"))),
    "repo id": dict(repos=(RepoSource("local2", "/srv/repos/f40"),
                           RepoSource("updates", "https://example.org/updates/"))),
    "repo order": dict(repos=(RepoSource("updates", "https://example.org/updates/"),
                              RepoSource("local", "/srv/repos/f40"))),
    "group": dict(group=InstallGroup.SRPM_BUILD),
    "extra_packages": dict(extra_packages=("ccache", "gdb")),
    "no extra_packages": dict(extra_packages=()),
    "releasever": dict(package_manager=PackageManagerOptions(releasever="41")),
    "module_hotfixes": dict(package_manager=PackageManagerOptions(releasever="40", module_hotfixes=True)),
    "best": dict(package_manager=PackageManagerOptions(releasever="40", best=False)),
    "install_weak_deps": dict(package_manager=PackageManagerOptions(releasever="40", install_weak_deps=True)),
    "sync_image": dict(package_manager=PackageManagerOptions(releasever="40", sync_image=True)),
    "no group": dict(group=None),
    "another group": dict(group="buildsys-build"),
    "tag": dict(tag="f40-build"),
    "build_user": dict(build_user="builder"),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_inputs_digest_changes_with_content(what):
    assert digest(make(**CHANGES[what])) != digest(make())


def test_all_changes_give_different_hashes():
    hashes = {digest(make(**change)) for change in CHANGES.values()}
    assert len(hashes) == len(CHANGES)


def test_inputs_digest_changes_with_template_and_adjutant_version(monkeypatch):
    from koji_adjutant.buildroot import spec as spec_module

    before = digest(make())
    monkeypatch.setattr(spec_module, "TEMPLATE_VERSION", spec_module.TEMPLATE_VERSION + "x")
    assert digest(make()) != before
    monkeypatch.undo()
    monkeypatch.setattr(spec_module, "__version__", "99.0")
    assert digest(make()) != before


def test_template_version_follows_the_templates_content(tmp_path):
    """No version to bump by hand: any change to a template changes every cache key."""
    from koji_adjutant.buildroot import spec as spec_module

    shipped = Path(spec_module.__file__).parent / "templates"
    copy = tmp_path / "templates"
    shutil.copytree(shipped, copy)
    assert spec_module.templates_digest(copy) == spec_module.TEMPLATE_VERSION
    init = copy / "buildroot-init.sh.j2"
    init.write_text(init.read_text() + "# changed\n")
    assert spec_module.templates_digest(copy) != spec_module.TEMPLATE_VERSION


@pytest.mark.parametrize("timeouts", [Timeouts(dependencies=1), Timeouts(rpmbuild=1), Timeouts(5, 6)])
def test_inputs_digest_ignores_timeouts(timeouts):
    assert digest(make(timeouts=timeouts)) == digest(make())
    assert "timeouts" not in make(timeouts=timeouts).inputs()


def test_every_field_but_timeouts_is_an_input():
    """A new field must be added to inputs() (or be deliberately left out, like timeouts)."""
    fields = {f.name for f in dataclasses.fields(BuildrootSpec)}
    inputs = set(make().inputs())
    assert fields - inputs == {"timeouts"}
    assert inputs - fields == {"template_version", "adjutant_version"}


# -- offline ------------------------------------------------------------------------

@pytest.mark.parametrize("locations, offline", [
    (["/srv/a"], True),
    (["/srv/a", "file:///srv/b"], True),
    (["file:///srv/b"], True),
    (["/srv/a", "https://h/r"], False),
    (["http://h/r"], False),
    (["https://h/r", "https://h/s"], False),
])
def test_offline_only_when_every_repo_is_local(locations, offline):
    repos = tuple(RepoSource(f"r{i}", location) for i, location in enumerate(locations))
    assert make(repos=repos).offline is offline


@pytest.mark.parametrize("location, local, path", [
    ("/srv/a", True, "/srv/a"),
    ("file:///srv/b", True, "/srv/b"),
    ("relative/dir", True, "relative/dir"),
    ("https://h/r", False, None),
    ("ftp://h/r", False, None),
])
def test_is_local_and_local_path(location, local, path):
    repo = RepoSource("r", location)
    assert repo.is_local is local
    if path is not None:
        assert str(repo.local_path) == path


# -- kojid macros ---------------------------------------------------------------------

KOJID_X86_64 = {
    "_topdir": "/builddir/build",
    "vendor": "Koji",
    "packager": "Koji",
    "distribution": "Koji",
    "_host_cpu": "x86_64",
    "_host": "x86_64-koji-linux-gnu",
}


def test_kojid_macros_for_x86_64():
    macros = kojid_macros("x86_64")
    assert {k: v for k, v in macros.items() if k != "_rpmfilename"} == KOJID_X86_64
    assert set(macros) == set(KOJID_X86_64) | {"_rpmfilename"}


def test_kojid_macros_for_x86_64_exact():
    assert kojid_macros("x86_64") == {
        **KOJID_X86_64, "_rpmfilename": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"}


def test_kojid_macros_options():
    macros = kojid_macros("aarch64", packager="P <p@x>", vendor="V", distribution="D", mockhost="redhat-linux")
    assert macros["_host_cpu"] == "aarch64"
    assert macros["_host"] == "aarch64-redhat-linux"
    assert (macros["packager"], macros["vendor"], macros["distribution"]) == ("P <p@x>", "V", "D")


def test_kojid_macros_are_valid_spec_macros():
    assert make(macros=kojid_macros("x86_64")).macros["_host"] == "x86_64-koji-linux-gnu"


def test_kojid_macros_returns_a_fresh_dict():
    kojid_macros("x86_64")["vendor"] = "changed"
    assert kojid_macros("x86_64")["vendor"] == "Koji"


# -- RepoSource.check --------------------------------------------------------------------

def test_check_missing_dir(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        RepoSource("r", str(missing)).check()
    assert caught.value.message == f"repo directory {missing} does not exist"
    assert "createrepo_c" in caught.value.hint


def test_check_dir_without_repodata(tmp_path):
    (tmp_path / "repodata").mkdir()
    with pytest.raises(ConfigError) as caught:
        RepoSource("r", str(tmp_path)).check()
    assert caught.value.message == f"{tmp_path} is not a package repository (no repodata/repomd.xml)"
    assert caught.value.hint == f"run 'createrepo_c {tmp_path}' first"


def test_check_file_instead_of_dir(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="does not exist"):
        RepoSource("r", str(tmp_path / "f")).check()


def test_check_relative_path():
    with pytest.raises(ConfigError, match="repo directory some/dir must be an absolute path"):
        RepoSource("r", "some/dir").check()


@pytest.mark.parametrize("location", ["ftp://mirror.example.org/f40/", "rsync://h/r", "s3://bucket/r"])
def test_check_non_http_scheme(location):
    with pytest.raises(ConfigError) as caught:
        RepoSource("r", location).check()
    assert caught.value.message == f"repo {location!r} is neither a directory nor an http(s) URL"


@pytest.fixture
def repo_dir(tmp_path):
    (tmp_path / "repodata").mkdir()
    (tmp_path / "repodata" / "repomd.xml").write_text("<repomd/>")
    return tmp_path


def test_check_ok_for_a_repository(repo_dir):
    RepoSource("r", str(repo_dir)).check()
    RepoSource("r", f"file://{repo_dir}").check()


def test_check_repomd_must_be_a_file(tmp_path):
    (tmp_path / "repodata" / "repomd.xml").mkdir(parents=True)
    with pytest.raises(ConfigError, match="no repodata/repomd.xml"):
        RepoSource("r", str(tmp_path)).check()


@pytest.mark.parametrize("location", ["https://example.org/f40/", "http://example.org/f40/"])
def test_check_ok_for_http_urls(location):
    RepoSource("r", location).check()  # no network: a URL is only checked for its scheme
