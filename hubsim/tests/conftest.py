"""Fixtures the simulator's tests share."""

from __future__ import annotations

import subprocess
import textwrap

import pytest

SPEC = textwrap.dedent("""\
    Name: %{pkg}
    Version: 1.0
    Release: %{rel}
    Summary: hubsim test package
    License: MIT
    BuildArch: noarch
    %description
    hubsim test package
    %files
    """)


@pytest.fixture(scope='module')
def rpms(tmp_path_factory):
    """make(name, release='1') -> (srpm path, [binary rpm paths]), built once each."""
    base = tmp_path_factory.mktemp('rpms')
    (base / 'pkg.spec').write_text(SPEC)
    made = {}

    def make(name, release='1'):
        if (name, release) not in made:
            top = base / ('%s-%s' % (name, release))
            subprocess.run(['rpmbuild', '-ba', '--quiet', '--define', '_topdir %s' % top,
                            '--define', 'pkg %s' % name, '--define', 'rel %s' % release,
                            str(base / 'pkg.spec')], check=True, capture_output=True)
            nvr = '%s-1.0-%s' % (name, release)
            made[name, release] = (top / 'SRPMS' / ('%s.src.rpm' % nvr),
                                   [top / 'RPMS' / 'noarch' / ('%s.noarch.rpm' % nvr)])
        return made[name, release]
    return make
