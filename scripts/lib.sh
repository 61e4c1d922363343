# Shared by the README commands (sourced, not run).
#
# The build user must be able to read the checkout. A clone under a private
# directory (such as /root) is not readable by it, so the command re-runs
# itself from a copy under /var/tmp.
relocate_if_private() {  # script-path args...
  local repo=$1; shift
  local script=$1; shift
  if [ "$(id -u)" != 0 ]; then
    echo "$(basename "$script"): run as root (it prepares the host and the build user)" >&2
    exit 1
  fi
  if runuser -u nobody -- test -r "$repo/setup.cfg" 2>/dev/null; then
    return 0
  fi
  local copy=/var/tmp/koji-adjutant-checkout
  echo "$(basename "$script"): $repo is not readable by other users; running from a copy in $copy" >&2
  rm -rf "$copy" && mkdir -p "$copy"
  tar -C "$repo" --exclude=./.venv --exclude=./.git -cf - . | tar -C "$copy" -xf -
  chmod -R a+rX "$copy"
  exec "$copy/scripts/$(basename "$script")" "$@"
}
