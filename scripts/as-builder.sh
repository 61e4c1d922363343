#!/usr/bin/env bash
# Runs a command as the unprivileged build user with the environment a login
# session would give it (HOME, XDG_RUNTIME_DIR), from the checkout, with the
# project's virtualenv first on PATH. Used by the README commands and CI.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
user=${ADJUTANT_USER:-kojibuilder}
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
exec runuser -u "$user" -- env -C "$repo" \
  HOME="$home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="/run/user/$uid" \
  PATH="$repo/.venv/bin:/usr/local/bin:/usr/bin:/bin" PYTHONDONTWRITEBYTECODE=1 \
  ${CI:+CI="$CI"} "$@"
