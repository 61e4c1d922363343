"""Golden-file tests of the files rendered for a buildroot, and of their quoting.

Each case in ``CASES`` is a fixed BuildrootSpec; every file ``render(spec)``
returns is compared byte for byte with ``golden/<case>/<name>`` next to this
module. The koji-adjutant version in the generated headers is pinned to
``GOLDEN_VERSION`` so a version bump does not touch the goldens.

To regenerate the goldens after a deliberate template change, run::

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest -p no:cacheprovider -q tests/unit/buildroot/test_render.py

then read the diff (``git diff tests/unit/buildroot/golden``) before committing it:
the goldens are only worth something if a person has checked them.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import jinja2
import pytest

from koji_adjutant import __version__
from koji_adjutant.buildroot import render as render_module
from koji_adjutant.buildroot.render import INIT_SCRIPT, REPOS_DIR, SETUP_DIR, RenderedFile, render, repo_baseurl
from koji_adjutant.buildroot.spec import BuildrootSpec, InstallGroup, PackageManagerOptions, RepoSource, kojid_macros
from koji_adjutant.errors import ConfigError

GOLDEN_DIR = Path(__file__).parent / "golden"
GOLDEN_VERSION = "0.0.0+golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"

WEIRD_MACRO = "$(touch /tmp/pwned); 'quote' and  \"spaces\" `id` \\n %{?dist}"
DIGEST = "sha256:" + "ab" * 32


def offline_spec() -> BuildrootSpec:
    return BuildrootSpec(
        image="localhost/koji-adjutant-buildroot:dev",
        image_digest=DIGEST,
        arch="x86_64",
        repos=(RepoSource("local", "/srv/repos/f40"),
               RepoSource("local-1", "file:///srv/repos/f40-updates")),
        group=InstallGroup.SRPM_BUILD,
        extra_packages=("ccache", "pkgconfig(glib-2.0)", "perl(Foo::Bar) >= 1.2"),
        macros={"dist": ".fc40", "packager": "Koji Builder <koji@example.com>", "weird": WEIRD_MACRO},
        env_vars={"LANG": "C.UTF-8"},
        package_manager=PackageManagerOptions(releasever="40", module_hotfixes=True, best=False,
                                              install_weak_deps=True),
        tag="f40-build",
    )


def online_spec() -> BuildrootSpec:
    return BuildrootSpec(
        image="quay.io/fedora/fedora:40",
        image_digest=DIGEST,
        arch="aarch64",
        repos=(RepoSource("fedora", "https://dl.example.org/pub/fedora/40/Everything/aarch64/os/"),),
    )


CASES = {"offline": offline_spec, "online-defaults": online_spec}


@pytest.fixture
def pinned_version(monkeypatch):
    monkeypatch.setattr(render_module, "__version__", GOLDEN_VERSION)


def by_name(spec: BuildrootSpec) -> dict[str, RenderedFile]:
    return {rendered.name: rendered for rendered in render(spec)}


def line_starting(content: str, prefix: str) -> str:
    matches = [line for line in content.splitlines() if line.lstrip().startswith(prefix)]
    assert len(matches) == 1, f"expected one line starting with {prefix!r}, got {matches!r}"
    return matches[0]


# -- golden files ---------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", ["buildroot-init.sh", "koji.repo", "macros.koji"])
def test_rendered_file_matches_golden(case, name, pinned_version):
    rendered = by_name(CASES[case]())[name]
    golden = GOLDEN_DIR / case / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(rendered.content)
        return
    assert golden.is_file(), f"{golden} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert rendered.content == golden.read_text(), (
        f"{name} for case {case!r} differs from {golden}; if the change is deliberate, "
        "regenerate with UPDATE_GOLDEN=1 and review the diff")


def test_goldens_are_not_being_rewritten():
    """A run with UPDATE_GOLDEN=1 must not pass silently as a normal run (e.g. in CI)."""
    if UPDATE:
        pytest.fail("UPDATE_GOLDEN=1: goldens were rewritten instead of checked; review them and rerun without it")


def test_no_stray_golden_files():
    expected = {f"{case}/{name}" for case in CASES for name in ("buildroot-init.sh", "koji.repo", "macros.koji")}
    present = {str(p.relative_to(GOLDEN_DIR)) for p in GOLDEN_DIR.rglob("*") if p.is_file()}
    assert present == expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_rendered_files_are_clean(case):
    for rendered in render(CASES[case]()):
        content = rendered.content
        assert content.endswith("\n") and not content.endswith("\n\n"), rendered.name
        for artefact in ("{{", "}}", "{%", "%}", "{##", "##}"):
            assert artefact not in content, f"Jinja artefact {artefact!r} in {rendered.name}"
        assert not re.search(r"[ \t]+$", content, re.MULTILINE), f"trailing blanks in {rendered.name}"
        assert "\n\n\n" not in content, f"double blank line in {rendered.name}"
        assert "None" not in content and "Undefined" not in content, rendered.name


def test_header_names_the_real_version_tag_and_arch():
    for rendered in render(offline_spec()):
        assert f"koji-adjutant {__version__} for f40-build (x86_64)" in rendered.content.splitlines()[
            0 if rendered.name != "buildroot-init.sh" else 1]


# -- what the rendering means -----------------------------------------------------

def test_modes():
    assert {r.name: r.mode for r in render(offline_spec())} == {
        "buildroot-init.sh": 0o755, "koji.repo": 0o644, "macros.koji": 0o644}


@pytest.mark.parametrize("case", sorted(CASES))
def test_render_is_deterministic(case):
    assert render(CASES[case]()) == render(CASES[case]())
    assert render(CASES[case]()) == render(CASES[case]())  # and stays so after templates are cached


def test_local_repos_are_mounted_urls_are_kept():
    assert repo_baseurl(RepoSource("local", "/srv/repo")) == f"file://{REPOS_DIR}/local"
    assert repo_baseurl(RepoSource("x", "file:///srv/repo")) == f"file://{REPOS_DIR}/x"
    assert repo_baseurl(RepoSource("f", "https://h/p/")) == "https://h/p/"
    repo = by_name(offline_spec())["koji.repo"].content
    assert "/srv/repos" not in repo
    assert re.findall(r"^baseurl=(.*)$", repo, re.MULTILINE) == [
        "file:///var/lib/adjutant/repos/local", "file:///var/lib/adjutant/repos/local-1"]
    assert re.findall(r"^\[(.*)\]$", repo, re.MULTILINE) == ["local", "local-1"]
    assert repo.count("module_hotfixes=1") == 2


def test_module_hotfixes_only_when_asked():
    assert "module_hotfixes" not in by_name(online_spec())["koji.repo"].content


def test_macros_file_is_one_line_per_macro_verbatim():
    lines = by_name(offline_spec())["macros.koji"].content.splitlines()
    assert lines[1:] == ["%dist .fc40", "%packager Koji Builder <koji@example.com>", f"%weird {WEIRD_MACRO}"]


def test_init_script_paths():
    assert INIT_SCRIPT == f"{SETUP_DIR}/buildroot-init.sh"
    script = by_name(online_spec())["buildroot-init.sh"].content
    assert f"SETUP={SETUP_DIR}\n" in script


# -- the init script as bash sees it ----------------------------------------------

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not on PATH")

NASTY = "x86_64; touch {pwned} #"


def nasty_spec(pwned: Path) -> BuildrootSpec:
    """Shell metacharacters in every value that reaches the script.

    BuildrootSpec refuses such an arch; it is forced in past validation here,
    because the template's quoting must hold on its own (defence in depth).
    """
    spec = BuildrootSpec(
        image="img", image_digest=DIGEST, arch="x86_64",
        repos=(RepoSource("a:b.c-d_1", "/srv/r"), RepoSource("second", "/srv/s")),
        extra_packages=("foo bar", f"$(touch {pwned})", "a'b", "`id`", "x;y", "*"),
        package_manager=PackageManagerOptions(releasever=f"40$(touch {pwned})"),
        build_user="mock build",
    )
    object.__setattr__(spec, "arch", NASTY.format(pwned=pwned))
    return spec


@needs_bash
@pytest.mark.parametrize("case", sorted(CASES))
def test_init_script_passes_bash_syntax_check(case, tmp_path):
    script = tmp_path / "buildroot-init.sh"
    script.write_text(by_name(CASES[case]())["buildroot-init.sh"].content)
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@needs_bash
def test_bash_syntax_check_does_catch_a_broken_script(tmp_path):
    """Proves the check above can fail."""
    script = tmp_path / "broken.sh"
    script.write_text(by_name(online_spec())["buildroot-init.sh"].content.replace("esac", ""))
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode != 0


def _preamble_values(script_text: str, tmp_path: Path) -> dict[str, list[str]]:
    """Run the script's variable definitions (everything before state()) in bash; return the arrays."""
    preamble = script_text.split("\nstate() {", 1)[0]
    probe = tmp_path / "probe.sh"
    probe.write_text(preamble + "\n" + "".join(
        f'printf "{name}\\0"; printf "%s\\0" "${{{name}[@]}}"; printf "\\1\\0"\n'
        for name in ("ARCH", "SETUP", "DNF", "RPMBUILD")))
    out = subprocess.run(["bash", str(probe)], capture_output=True, check=True).stdout.decode()
    values: dict[str, list[str]] = {}
    for block in out.split("\x01\x00"):
        if block:
            name, *items = block.rstrip("\x00").split("\x00")
            values[name] = items
    return values


@needs_bash
def test_init_script_variables_as_bash_sees_them(tmp_path):
    values = _preamble_values(by_name(offline_spec())["buildroot-init.sh"].content, tmp_path)
    assert values == {
        "ARCH": ["x86_64"],
        "SETUP": [SETUP_DIR],
        "DNF": ["dnf", "-y", "--releasever=40", "--repo=local", "--repo=local-1",
                "--setopt=install_weak_deps=1", "--setopt=best=0"],
        "RPMBUILD": ["rpmbuild", "--define", "_topdir /builddir/build", "--target", "x86_64"],
    }
    defaults = _preamble_values(by_name(online_spec())["buildroot-init.sh"].content, tmp_path)
    assert defaults["DNF"] == ["dnf", "-y", "--repo=fedora", "--setopt=install_weak_deps=0", "--setopt=best=1"]


@needs_bash
def test_the_proxy_reaches_dnf_from_the_environment_only(tmp_path, monkeypatch):
    """kojid.conf yum_proxy may hold credentials: never in a file package code can read."""
    script = by_name(online_spec())["buildroot-init.sh"].content
    assert "proxy.example" not in script
    monkeypatch.setenv("ADJUTANT_PROXY", "http://user:secret@proxy.example:3128/")
    assert _preamble_values(script, tmp_path)["DNF"][-1] == "--setopt=proxy=http://user:secret@proxy.example:3128/"


@needs_bash
def test_another_package_manager_and_module_setup(tmp_path):
    spec = dataclasses.replace(online_spec(), package_manager=PackageManagerOptions(
        command="dnf5", module_setup=(("enable", "nodejs:18"), ("disable", "python39"))))
    script = by_name(spec)["buildroot-init.sh"].content
    assert _preamble_values(script, tmp_path)["DNF"][0] == "dnf5"
    modules = [line.strip() for line in script.splitlines() if line.strip().startswith('"${DNF[@]}" module')]
    assert modules == ['"${DNF[@]}" module enable nodejs:18', '"${DNF[@]}" module disable python39']


def _step(script: str, name: str) -> list[str]:
    """The lines of one step of the init script's case."""
    lines = script.splitlines()
    start = lines.index(f"  {name})")
    return [line.strip() for line in lines[start + 1:lines.index("    ;;", start)]]


def test_the_sync_step_distro_syncs_from_the_repos():
    script = by_name(online_spec())["buildroot-init.sh"].content
    assert '"${DNF[@]}" distro-sync' in _step(script, "sync")


@pytest.mark.parametrize("group, extra, command, said", [
    (None, ("rpm-build", "gcc >= 12"), "\"${DNF[@]}\" install -- rpm-build 'gcc >= 12'",
     "installing rpm-build, gcc >= 12"),
    ("buildsys-build", (), "\"${DNF[@]}\" install -- @buildsys-build", "installing the @buildsys-build group"),
])
def test_the_first_install_takes_the_chosen_group_or_none(group, extra, command, said):
    spec = dataclasses.replace(online_spec(), group=group, extra_packages=extra)
    step = _step(by_name(spec)["buildroot-init.sh"].content, "install-group")
    assert step[1] == command
    assert step[0] == f"state Start {shlex.quote(said)}"


@needs_bash
def test_shell_metacharacters_stay_data(tmp_path):
    pwned = tmp_path / "pwned"
    spec = nasty_spec(pwned)
    script = by_name(spec)["buildroot-init.sh"].content
    (tmp_path / "s.sh").write_text(script)
    assert subprocess.run(["bash", "-n", str(tmp_path / "s.sh")], capture_output=True).returncode == 0
    values = _preamble_values(script, tmp_path)
    assert not pwned.exists(), "a value reached the shell unquoted"
    assert values["ARCH"] == [spec.arch]
    assert values["DNF"][2] == f"--releasever=40$(touch {pwned})"
    assert values["DNF"][3:5] == ["--repo=a:b.c-d_1", "--repo=second"]
    assert values["RPMBUILD"][-1] == spec.arch

    install = line_starting(script, '"${DNF[@]}" install -- @')
    assert shlex.split(install) == ["${DNF[@]}", "install", "--", "@build", *spec.extra_packages]
    assert install.strip() == ("\"${DNF[@]}\" install -- @build 'foo bar' "
                               f"'$(touch {pwned})' 'a'\"'\"'b' '`id`' 'x;y' '*'")
    assert shlex.split(line_starting(script, "install -d -o")) == [
        "install", "-d", "-o", "mock build", "$TOPDIR/$dir"]
    assert line_starting(script, "ARCH=") == f"ARCH='{spec.arch}'"


@needs_bash
def test_the_metacharacter_probe_can_detect_an_injection(tmp_path):
    """Proves the test above can fail: an unquoted value does run."""
    pwned = tmp_path / "pwned"
    script = by_name(nasty_spec(pwned))["buildroot-init.sh"].content
    unquoted = script.replace(f"ARCH={shlex.quote(nasty_spec(pwned).arch)}", f"ARCH=x; touch {pwned}")
    assert unquoted != script
    _preamble_values(unquoted, tmp_path)
    assert pwned.exists()


@needs_bash
@pytest.mark.parametrize("field", ["arch", "tag", "location"])
def test_a_newline_in_a_value_cannot_add_lines(field, tmp_path):
    pwned = tmp_path / "pwned"
    injected = f"touch {pwned}"
    values = {"arch": "x86_64", "tag": "f40-build", "location": "https://h/repo/"}
    values[field] += f"\n{injected} #"
    try:
        repo = RepoSource("r", values["location"])
        repo.check()
        spec = BuildrootSpec(image="img", image_digest=DIGEST, arch=values["arch"], tag=values["tag"],
                             repos=(repo,))
    except ConfigError:
        return  # refusing the value is a fine answer too
    files = by_name(spec)
    for rendered in files.values():
        assert not any(line.startswith(injected) for line in rendered.content.splitlines()), (
            f"{field} injected a line into {rendered.name}")
    script = tmp_path / "buildroot-init.sh"
    script.write_text(files["buildroot-init.sh"].content)
    run = subprocess.run(["bash", str(script), "no-such-step"], capture_output=True, text=True)
    assert run.returncode == 2 and "unknown step" in run.stderr
    assert not pwned.exists(), f"{field} ran a command in buildroot-init.sh"


# -- macros.koji as rpm reads it ---------------------------------------------------

needs_rpmbuild = pytest.mark.skipif(shutil.which("rpmbuild") is None, reason="rpmbuild is not on PATH")

TWO_PACKAGES_SPEC = """\
Name: mainpkg
Version: 1.0
Release: 1
Summary: main
License: MIT
BuildArch: noarch
AutoReqProv: no

%description
main

%package -n otherpkg
Summary: other

%description -n otherpkg
other

%files

%files -n otherpkg
"""


def _build_two_packages(tmp_path: Path, macros: dict[str, str]) -> list[str]:
    """rpmbuild -bb a spec with a subpackage, with the rendered macros.koji loaded; the RPM file names."""
    spec = BuildrootSpec(image="img", image_digest=DIGEST, arch=platform.machine(),
                         repos=(RepoSource("r", "/srv/r"),), macros=macros)
    macros_file = tmp_path / "macros.koji"
    macros_file.write_text(by_name(spec)["macros.koji"].content)
    (tmp_path / "two.spec").write_text(TWO_PACKAGES_SPEC)
    topdir = tmp_path / "top"
    result = subprocess.run(["rpmbuild", "--load", str(macros_file), "--define", f"_topdir {topdir}",
                             "-bb", str(tmp_path / "two.spec")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return sorted(p.name for p in (topdir / "RPMS").rglob("*.rpm"))


@needs_rpmbuild
def test_kojid_macros_keep_subpackages_apart(tmp_path):
    assert _build_two_packages(tmp_path, kojid_macros(platform.machine())) == [
        "mainpkg-1.0-1.noarch.rpm", "otherpkg-1.0-1.noarch.rpm"]


@needs_rpmbuild
def test_subpackages_stay_apart_with_kojids_effective_rpmfilename(tmp_path):
    """The same build, kojid macros with only _rpmfilename doubled as kojid's has it, makes both RPMs.

    This isolates the xfail above to that one value, and proves its probe can pass.
    """
    macros = {**kojid_macros(platform.machine()),
              "_rpmfilename": "%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm"}
    assert _build_two_packages(tmp_path, macros) == ["mainpkg-1.0-1.noarch.rpm", "otherpkg-1.0-1.noarch.rpm"]


# -- Jinja environment ---------------------------------------------------------------

def test_strict_undefined():
    with pytest.raises(jinja2.UndefinedError):
        render_module._ENV.from_string("{{ nope }}").render()
    with pytest.raises(jinja2.UndefinedError):
        render_module._ENV.from_string("{{ spec.nope }}").render(spec=online_spec())


def test_sh_filter_quotes():
    assert render_module._ENV.from_string("{{ v | sh }}").render(v="a b'c") == "'a b'\"'\"'c'"
    assert render_module._ENV.from_string("{{ v | sh }}").render(v="plain") == "plain"


def test_rpm_macro_filter_refuses_newlines():
    template = render_module._ENV.from_string("{{ v | rpm_macro }}")
    assert template.render(v="a b") == "a b"
    with pytest.raises(ConfigError, match="spans lines"):
        template.render(v="a\nb")


def test_shell_comments_do_not_swallow_bash_array_length():
    """``${#specs[@]}`` must survive: the Jinja comment syntax is moved to {## ##}."""
    script = by_name(online_spec())["buildroot-init.sh"].content
    assert '[ ${#specs[@]} -ne 1 ]' in script
    assert "found ${#specs[@]}" in script
