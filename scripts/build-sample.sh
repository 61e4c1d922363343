#!/usr/bin/env bash
# The main job on its built-in default: prepares the host (idempotent), makes
# the sample repo, then builds the hello-c sample with build-local in the
# offline dev image as the unprivileged build user. Run as root. Results go
# to /var/tmp/koji-adjutant-sample/results (or the directory given).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$repo/scripts/lib.sh"
relocate_if_private "$repo" "$0" "$@"
"$repo/scripts/setup-host.sh"
user=${ADJUTANT_USER:-kojibuilder}
out=${1:-/var/tmp/koji-adjutant-sample}
install -d -o "$user" "$out"
"$repo/scripts/as-builder.sh" "$repo/examples/make-repo.sh" "$out/repo" >/dev/null
exec "$repo/scripts/as-builder.sh" koji-adjutant build-local "$repo/examples/hello-c/hello-c.spec" \
  --repo "$out/repo" --resultdir "$out/results"
