"""The simulator's structure (ADR 0010): services that call each other only through
public methods they declare in ``uses``, exported calls that name the kojihub
function they follow, and a package that koji-adjutant does not ship."""

from __future__ import annotations

import configparser
import inspect
import re
from pathlib import Path

import pytest
from setuptools import find_packages

from hubsim.server import SERVICES, exported

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize('name', sorted(SERVICES))
def test_a_service_calls_only_the_public_methods_of_the_services_it_declares(name):
    cls = SERVICES[name]
    calls = set(re.findall(r'self\.(\w+)\.(\w+)', inspect.getsource(cls)))
    others = {(svc, attr) for svc, attr in calls if svc in SERVICES}
    assert {svc for svc, _ in others} <= set(cls.uses)
    assert [(svc, attr) for svc, attr in others if attr.startswith('_')] == []
    assert set(cls.uses) <= set(SERVICES)


@pytest.mark.parametrize('name', sorted(SERVICES))
def test_every_exported_call_cites_the_kojihub_function_it_follows(name):
    uncited = [attr for _, attr in exported(SERVICES[name])
               if 'kojihub/' not in (getattr(SERVICES[name], attr).__doc__ or '')]
    assert uncited == []


def test_the_simulator_is_not_a_package_of_the_product():
    """setup.cfg's packages = find: with its include patterns leaves hubsim out of the wheel."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO_ROOT / 'setup.cfg')
    assert cfg['options']['packages'].strip() == 'find:'
    include = cfg['options.packages.find']['include'].split()
    packages = find_packages(str(REPO_ROOT), include=include)
    assert 'koji_adjutant' in packages
    assert not [p for p in packages if p.split('.')[0] == 'hubsim']
