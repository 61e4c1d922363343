"""koji-adjutant as users install it: a wheel and an sdist in fresh virtualenvs, and the RPM.

The editable install the other tests use hides a package that a wheel would
leave out (a directory without __init__.py, templates not declared as
package data); these tests install what users install and run it, a real
build included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from koji_adjutant import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
#: The interpreter users install with (the Debian one; not the virtualenv the tests run in).
SYSTEM_PYTHON = "/usr/bin/python3"


def run(*argv, cwd: Path | None = None, env: dict | None = None, timeout: int = 900) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def fresh_venv(path: Path) -> Path:
    run(SYSTEM_PYTHON, "-m", "venv", path)
    return path / "bin"


@pytest.fixture(scope="module")
def pip_cache(tmp_path_factory) -> dict:
    """One download cache for the module's installs: the second one needs no network."""
    return {**os.environ, "PIP_CACHE_DIR": str(tmp_path_factory.mktemp("pip-cache")),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def source_tree(target: Path) -> Path:
    """The checkout's files, without the virtualenv and git's own: what an sdist or a release is made from."""
    shutil.copytree(REPO_ROOT, target, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info",
                                                                     "build"))
    return target


@pytest.mark.podman
def test_the_wheel_installs_in_a_fresh_virtualenv_and_builds_a_package(tmp_path, pip_cache, sample_repo):
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, source_tree(tmp_path / "src"),
        env=pip_cache)
    (wheel,) = wheels.glob("koji_adjutant-*.whl")
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", wheel, env=pip_cache)
    where = run(bin_dir / "python", "-c", "import koji_adjutant; print(koji_adjutant.__file__)", cwd=tmp_path)
    assert where.startswith(str(tmp_path / "venv")), "the test must run the installed package, not the checkout"
    assert "build-local" in run(bin_dir / "koji-adjutant", "--help", cwd=tmp_path)
    # rpm's bindings through the PyPI shim: rpmheader needs them, and koji checks uploads only with them
    run(bin_dir / "python", "-c", "import rpm, koji_adjutant.rpmheader", cwd=tmp_path)
    results = tmp_path / "results"
    out = run(bin_dir / "koji-adjutant", "build-local", EXAMPLES / "hello-noarch" / "hello-noarch.spec",
              "--repo", sample_repo, "--resultdir", results, cwd=tmp_path)
    assert sorted(p.name for p in results.glob("*.rpm")) == ["hello-noarch-1.0-1.noarch.rpm",
                                                             "hello-noarch-1.0-1.src.rpm"]
    assert str(results / "hello-noarch-1.0-1.noarch.rpm") in out


def test_the_sdist_installs_in_a_fresh_virtualenv(tmp_path, pip_cache):
    sdists = tmp_path / "sdist"
    run(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", sdists,
        source_tree(tmp_path / "src"), env=pip_cache)
    (sdist,) = sdists.glob("koji[-_]adjutant-*.tar.gz")   # setuptools < 69.3 keeps the hyphen
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(name.endswith("koji_adjutant/buildroot/templates/buildroot-init.sh.j2") for name in names)
    bin_dir = fresh_venv(tmp_path / "venv")
    run(bin_dir / "pip", "install", sdist, env=pip_cache)
    assert "check-config" in run(bin_dir / "koji-adjutant", "--help", cwd=tmp_path)


def test_the_rpm_builds_with_the_unit_the_config_and_the_build_user(tmp_path):
    """dist/koji-adjutant.spec, built by rpmbuild as an EL or Fedora operator builds it (--nodeps:
    on this Debian host its build requirements are dpkg's, which rpm does not see)."""
    name = f"koji-adjutant-{__version__}"
    with tarfile.open(tmp_path / f"{name}.tar.gz", "w:gz") as archive:
        archive.add(source_tree(tmp_path / name), arcname=name)
    run("rpmbuild", "-bb", "--nodeps", "--define", f"_topdir {tmp_path / 'top'}", "--define",
        f"_sourcedir {tmp_path}", REPO_ROOT / "dist" / "koji-adjutant.spec",
        env={**os.environ, "PATH": "/usr/bin:/bin"})
    (rpm,) = (tmp_path / "top" / "RPMS" / "noarch").glob(f"{name}-*.noarch.rpm")
    files = run("rpm", "-qlp", rpm).split()
    for expected in ("/usr/bin/koji-adjutant", "/usr/lib/systemd/system/koji-adjutant.service",
                     "/etc/kojid/kojid.conf", "/usr/lib/sysusers.d/koji-adjutant.conf"):
        assert expected in files, expected
    assert any(f.endswith("koji_adjutant/buildroot/templates/buildroot-init.sh.j2") for f in files)
    unit = subprocess.run(f"rpm2cpio {rpm} | cpio -i --to-stdout ./usr/lib/systemd/system/koji-adjutant.service",
                          shell=True, capture_output=True, text=True, check=True).stdout
    assert "ExecStart=/usr/bin/koji-adjutant run --fg --force-lock -c /etc/kojid/kojid.conf" in unit
    assert "User=kojibuilder" in unit
    assert "useradd --system" in run("rpm", "-qp", "--scripts", rpm)
    assert run("rpm", "-qp", "--qf", "%{VERSION}", rpm) == __version__


def test_the_spec_and_the_package_agree_on_the_version():
    spec = (REPO_ROOT / "dist" / "koji-adjutant.spec").read_text()
    assert f"\nVersion:        {__version__}\n" in spec
