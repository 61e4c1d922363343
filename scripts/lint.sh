#!/usr/bin/env bash
# Static checks: ruff (pycodestyle, pyflakes, import order) on the code, its tests, the hub
# simulator and the benchmarks, and mypy on the product. Their settings, and every exception
# to them, are in pyproject.toml. Needs the virtualenv scripts/setup-host.sh makes.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
.venv/bin/ruff check koji_adjutant tests hubsim bench
.venv/bin/mypy
