"""Rendering the files that set up a buildroot, from BuildrootSpec, with Jinja2.

Rendering is pure: the same spec always gives the same bytes, which the
golden-file tests pin down. Every value that reaches a shell passes through
the ``sh`` filter; StrictUndefined turns a missing value into an error
instead of an empty string in a script run as root.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import jinja2

from .. import __version__
from ..errors import ConfigError
from .spec import BuildrootSpec, RepoSource

#: Where the rendered files and the inputs appear inside the containers.
SETUP_DIR = "/var/lib/adjutant/setup"
INPUT_DIR = "/var/lib/adjutant/input"
REPOS_DIR = "/var/lib/adjutant/repos"
INIT_SCRIPT = f"{SETUP_DIR}/buildroot-init.sh"
#: Where a source tree is copied for its source command (writable, unlike the input).
SOURCE_TREE = "/builddir/source"


def _sh(value: object) -> str:
    return shlex.quote(str(value))


def _rpm_macro(value: object) -> str:
    text = str(value)
    if "\n" in text:
        raise ConfigError(f"rpm macro value {text!r} spans lines")
    return text


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("koji_adjutant.buildroot", "templates"),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,
    # Shell's ${#array[@]} would open a Jinja comment; templates comment with {## ##}.
    comment_start_string="{##",
    comment_end_string="##}",
)
_ENV.filters["sh"] = _sh
_ENV.filters["rpm_macro"] = _rpm_macro


@dataclass(frozen=True)
class RepoView:
    repo_id: str
    baseurl: str


def repo_baseurl(repo: RepoSource) -> str:
    """Local repos are mounted read-only under REPOS_DIR; URLs are used as they are."""
    if repo.is_local:
        return f"file://{REPOS_DIR}/{repo.repo_id}"
    return repo.location


@dataclass(frozen=True)
class RenderedFile:
    name: str
    content: str
    mode: int


def render(spec: BuildrootSpec) -> tuple[RenderedFile, ...]:
    context = {
        "spec": spec,
        "version": __version__,
        "repos": [RepoView(r.repo_id, repo_baseurl(r)) for r in spec.repos],
        "paths": {"setup": SETUP_DIR, "source_tree": SOURCE_TREE},
    }
    return (
        RenderedFile("buildroot-init.sh", _ENV.get_template("buildroot-init.sh.j2").render(context), 0o755),
        RenderedFile("koji.repo", _ENV.get_template("koji.repo.j2").render(context), 0o644),
        RenderedFile("macros.koji", _ENV.get_template("macros.koji.j2").render(context), 0o644),
    )
