"""scm.py: which SCM URLs a builder accepts, and the spec a checkout must hold (kojid's rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from koji_adjutant.errors import BuildError
from koji_adjutant.scm import allowed_scm, check_spec, checkout, find_spec, source_directory

REPO = "git+https://scm.example.com/rpms/hello.git"
URL = f"{REPO}#main"


def options(allowed: str = "", by_config: bool = True, by_policy: bool = False,
            password: bool = False) -> SimpleNamespace:
    return SimpleNamespace(allowed_scms=allowed, allowed_scms_use_config=by_config,
                           allowed_scms_use_policy=by_policy, allow_password_in_scm_url=password)


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
    assert scm.source_cmd == ["make", "sources"]
    assert scm.use_common is False, "the common repository is never checked out (ADR 0008)"


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
        find_spec(tmp_path, name="hello")
    assert caught.value.message == "multiple spec files found in the checkout, none named hello.spec: a.spec, b.spec"


def test_of_several_specs_the_one_named_after_the_directory_is_taken(tmp_path):
    """kojid: <checkout dir>.spec, at the top or in SPECS/."""
    for name in ("hello.spec", "hello-compat.spec"):
        (tmp_path / name).write_text("")
    assert find_spec(tmp_path, name="hello") == tmp_path / "hello.spec"


@pytest.mark.parametrize("rpm_layout, found", [(True, "SPECS/hello.spec"), (False, None)])
def test_rpms_own_layout_only_when_support_rpm_source_layout(tmp_path, rpm_layout, found):
    (tmp_path / "SPECS").mkdir()
    (tmp_path / "SPECS" / "hello.spec").write_text("Name: hello\n")
    if found:
        assert find_spec(tmp_path, rpm_layout) == tmp_path / found
    else:
        with pytest.raises(BuildError) as caught:
            find_spec(tmp_path, rpm_layout)
        assert caught.value.message.startswith("no spec file found in the checkout")


def test_a_spec_at_the_top_wins_over_specs_dir(tmp_path):
    (tmp_path / "SPECS").mkdir()
    (tmp_path / "SPECS" / "other.spec").write_text("")
    (tmp_path / "hello.spec").write_text("")
    assert find_spec(tmp_path) == tmp_path / "hello.spec"


def test_a_password_in_the_url_only_when_allowed():
    url = "git+https://user:s3cret@scm.example.com/rpms/hello.git#main"
    with pytest.raises(BuildError) as caught:
        allowed_scm(url, options("scm.example.com:/rpms/*"), None, no_policy_data)
    assert "username:password format not supported" in caught.value.message
    scm = allowed_scm(url, options("scm.example.com:/rpms/*", password=True), None, no_policy_data)
    assert (scm.user, scm.host) == ("user:s3cret", "scm.example.com")   # koji joins them so


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


# -- what an SCM URL may hold (it is untrusted: any Koji user submits one) ---------------------

ALL_ALLOWED = options("*:*:no:")


@pytest.mark.parametrize("url", [
    "git+https://src.fedoraproject.org/rpms/bash.git#3f4c1e0a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e",
    "git+https://src.fedoraproject.org/rpms/bash.git#origin/f39",
    "git+https://scm.example.com/rpms/hello.git#v1.2.3",
    "git+https://scm.example.com/rpms/hello.git#hello-2.12.1-3.fc40",
    "git+https://scm.example.com/rpms/hello.git#main~2",
    "git+https://scm.example.com/rpms/hello.git#release/2.x",
    "git+ssh://jdoe@pkgs.example.com:2222/rpms/hello.git?pkgs/foo#main",
    "git://[::1]:9418/hello.git#HEAD",
    "svn+https://svn.example.com/repos/dist?pkgs/foo#1234",
    "cvs://cvs.example.com/cvs/dist?rpms/bash/F-12#bash-4_0-1_fc12",
])
def test_real_world_urls_are_accepted(url):
    scm = allowed_scm(url, ALL_ALLOWED, None, no_policy_data)
    assert scm.revision == url.rsplit("#", 1)[1]


@pytest.mark.parametrize("url, why", [
    (f"{REPO}#--upload-pack=touch /tmp/x", "revision '--upload-pack=touch /tmp/x' (or a /-part of it) "
                                           "starts with '-': it would be read as a command option"),
    (f"{REPO}#-oProxyCommand=touch", "starts with '-'"),
    (f"{REPO}#origin/--upload-pack=touch", "starts with '-'"),  # koji hands git what follows origin/
    (f"{REPO}#main ; touch x", "revision 'main ; touch x' contains ' ' ';': only letters, digits"),
    (f"{REPO}#main\n--upload-pack=touch", "contains control characters"),  # the URL parser drops \n
    (f"{REPO}#main\ttouch", "contains control characters"),
    (f"{REPO}#$(id)", "contains '$' '(' ')'"),
    (f"{REPO}#`id`", "contains '`'"),
    (f"{REPO}#main:refs/heads/x", "contains ':'"),  # a refspec of its own
    (f"{REPO}#main..evil", "is not a git ref name or commit"),
    (f"{REPO}#.hidden", "is not a git ref name or commit"),
    (f"{REPO}#main/", "is not a git ref name or commit"),
    (f"{REPO}#^main", "is not a git ref name or commit"),
    (f"{REPO}?../../etc#main", "module path '../../etc' has a '.' or '..' part"),
    (f"{REPO}?a/../../b#main", "module path 'a/../../b' has a '.' or '..' part"),
    (f"{REPO}?/etc#main", "module path '/etc' is absolute: it must be relative to the repository"),
    (f"{REPO}?-rHEAD#main", "module path '-rHEAD' starts with '-'"),
    (f"{REPO}?pkgs/$(id)#main", "is not a plain relative path"),
    ("git+ssh://-oProxyCommand=touch/rpms/hello.git#main", "host '-oProxyCommand=touch' is not a host name"),
    ("cvs+ssh://-oProxyCommand=touch@cvs.example.com/cvs#main", "user '-oProxyCommand=touch' is not a plain user"),
])
def test_unsafe_urls_are_refused_before_any_allow_check(url, why):
    """Refused before the policy is asked (no_policy_data would fail) and before anything is fetched."""
    with pytest.raises(BuildError) as caught:
        allowed_scm(url, options("*:*", by_policy=True), None, no_policy_data)
    assert caught.value.message.startswith(f"SCM URL {url!r} refused: ")
    assert why in caught.value.message
    assert "[?module]#revision" in caught.value.hint


# -- what a checkout hands on stays inside it ----------------------------------------------------

def test_a_spec_linked_inside_the_directory_is_found(tmp_path):
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "hello.spec.in").write_text("Name: hello\n")
    (tmp_path / "hello.spec").symlink_to("specs/hello.spec.in")
    assert find_spec(tmp_path) == tmp_path / "hello.spec"


@pytest.mark.parametrize("target, why", [
    ("/etc/passwd", "the spec file leaky.spec is a symbolic link that leads out of the checked-out directory"),
    ("../outside.spec", "the spec file leaky.spec is a symbolic link that leads out of the checked-out directory"),
    ("missing.spec.in", "the spec file leaky.spec is not a regular file"),
])
def test_a_spec_linked_elsewhere_is_refused(tmp_path, target, why):
    sourcedir = tmp_path / "pkg"
    sourcedir.mkdir()
    (tmp_path / "outside.spec").write_text("Name: outside\n")
    (sourcedir / "leaky.spec").symlink_to(target)
    with pytest.raises(BuildError) as caught:
        find_spec(sourcedir)
    assert caught.value.message == why


def test_a_spec_that_is_a_directory_is_refused(tmp_path):
    (tmp_path / "odd.spec").mkdir()
    with pytest.raises(BuildError) as caught:
        find_spec(tmp_path)
    assert caught.value.message == "the spec file odd.spec is not a regular file"


def test_the_source_directory_is_resolved_inside_the_checkout(tmp_path):
    (tmp_path / "hello" / "pkgs" / "foo").mkdir(parents=True)
    (tmp_path / "hello" / "current").symlink_to("pkgs/foo")
    assert source_directory(tmp_path / "hello" / "current", tmp_path) == (tmp_path / "hello/pkgs/foo").resolve()


@pytest.mark.parametrize("link, why", [
    ("/etc", "the checked-out directory hello/pkg is a symbolic link that leads out of the checkout"),
    ("../..", "the checked-out directory hello/pkg is a symbolic link that leads out of the checkout"),
    (None, "the checked-out directory hello/pkg does not exist or is not a directory"),
])
def test_a_source_directory_out_of_the_checkout_is_refused(tmp_path, link, why):
    scmdir = tmp_path / "scm"
    (scmdir / "hello").mkdir(parents=True)
    if link:
        (scmdir / "hello" / "pkg").symlink_to(link)
    with pytest.raises(BuildError) as caught:
        source_directory(scmdir / "hello" / "pkg", scmdir)
    assert caught.value.message == why


# -- the same on a real checkout: koji's own commands, a local repository ------------------------

@pytest.fixture
def local_scm(tmp_path, monkeypatch):
    """https://scm.example.com/rpms/ is tmp_path/rpms/, by git's file transport (url.insteadOf in a git
    config of the test's own), so koji.daemon.SCM's real commands check out a local repository."""
    config = tmp_path / "gitconfig"
    config.write_text(f'[url "file://{tmp_path}/rpms/"]\n\tinsteadOf = https://scm.example.com/rpms/\n')
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "stolen.spec").write_text("Name: stolen\n")
    return tmp_path


def publish(root: Path, files: dict[str, str], links: dict[str, str]) -> None:
    """The repository root/rpms/hello.git holding ``files`` and symbolic links (name -> target), on main."""
    work = root / "rpms" / "hello.git"
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    for name, target in links.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).symlink_to(target)
    git = ["git", "-c", "user.name=unit", "-c", "user.email=unit@example.invalid", "-C", str(work)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "sample"], check=True)


def check_out(root: Path, module: str, mocker):
    scm = allowed_scm(f"git+https://scm.example.com/rpms/hello.git?{module}#main",
                      options("scm.example.com:/rpms/*:no:"), None, no_policy_data)
    session = mocker.Mock(opts={})
    return checkout(scm, root / "task" / "scm", session, "tasks/1/1")


def test_a_module_linked_inside_the_repository_is_checked_out(local_scm, mocker):
    publish(local_scm, {"pkgs/foo/foo.spec": "Name: foo\n"}, {"current": "pkgs/foo"})
    done = check_out(local_scm, "current", mocker)
    assert done.tree.directory == (local_scm / "task/scm/hello/pkgs/foo").resolve()
    assert done.tree.spec_name == "foo.spec"
    assert "git clone -n" in done.log.read_text()


@pytest.mark.parametrize("rpm_layout, sources_dir", [(True, "SOURCES"), (False, ".")])
def test_rpms_layout_is_checked_out_with_its_sources_dir(local_scm, mocker, rpm_layout, sources_dir):
    publish(local_scm, {"SPECS/hello.spec": "Name: hello\n", "SOURCES/hello.tar.gz": "x", "hello.spec": ""}, {})
    scm = allowed_scm("git+https://scm.example.com/rpms/hello.git#main", options("scm.example.com:/rpms/*:no:"),
                      None, no_policy_data)
    done = checkout(scm, local_scm / "task" / "scm", mocker.Mock(opts={}), "tasks/1/1", rpm_layout=rpm_layout)
    assert (done.tree.spec_name, done.tree.sources_dir) == ("hello.spec", sources_dir)


def test_a_module_linked_out_of_the_checkout_is_refused(local_scm, mocker):
    publish(local_scm, {"README": "x\n"}, {"escape": str(local_scm / "outside")})
    with pytest.raises(BuildError) as caught:
        check_out(local_scm, "escape", mocker)
    assert caught.value.message == ("the checked-out directory hello/escape is a symbolic link that leads "
                                    "out of the checkout")


def test_a_spec_linked_out_of_the_checkout_is_refused(local_scm, mocker):
    """A relative link, harmless in the repository, that lands on a host file once checked out
    (task/scm/hello/leaky/ is four levels below local_scm)."""
    publish(local_scm, {"leaky/README": "x\n"}, {"leaky/leaky.spec": "../../../../outside/stolen.spec"})
    with pytest.raises(BuildError) as caught:
        check_out(local_scm, "leaky", mocker)
    assert caught.value.message == ("the spec file leaky.spec is a symbolic link that leads out of the "
                                    "checked-out directory")
