#!/usr/bin/env bash
# The test command: prepares the host (idempotent), then runs the whole suite
# (unit, integration against real rootless podman, end to end, and the hub
# simulator's own tests in hubsim/tests: pyproject.toml testpaths) as the
# unprivileged build user. Extra arguments go to pytest. Run as root.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/scripts/lib.sh"
relocate_if_private "$repo" "$0" "$@"
"$repo/scripts/setup-host.sh"
exec "$repo/scripts/as-builder.sh" python -m pytest -p no:cacheprovider -ra "$@"
