"""Fixtures the integration tests share."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def sample_repo(tmp_path_factory) -> Path:
    """The sample repo of examples/, made once per module (make-repo.sh wants a fresh dir)."""
    repo = tmp_path_factory.mktemp("sample-repo") / "sample-repo"
    subprocess.run([str(EXAMPLES / "make-repo.sh"), str(repo)], check=True, capture_output=True, text=True)
    assert (repo / "repodata" / "repomd.xml").is_file()
    return repo

