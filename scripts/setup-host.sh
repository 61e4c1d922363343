#!/usr/bin/env bash
# Prepares a Debian 12 host for koji-adjutant. Run as root; idempotent, and
# fast when everything is already in place.
#
#   - installs podman (with runc), rootless helpers, rpm, dnf, createrepo_c,
#     mmdebstrap, and what the Python dependencies need to build; docker-registry and
#     htpasswd for the tests' registry on 127.0.0.1;
#   - writes the containers configuration these hosts need (runc, ulimits);
#   - creates the unprivileged build user (default: kojibuilder) with subuid
#     and subgid ranges and its rootless podman configuration;
#   - creates the virtualenv .venv in the checkout, with the project and its
#     test extras installed;
#   - makes the offline dev buildroot image in the build user's storage.
#
# Environment: ADJUTANT_USER (build user, default kojibuilder),
#              ADJUTANT_SKIP_IMAGE=1 (do not make the dev image).
#
# Fedora/EL hosts: install the same tools with
#   dnf install podman runc shadow-utils slirp4netns rpm-build python3-rpm createrepo_c \
#       dnf-plugins-core krb5-devel python3-devel gcc git
# then run this script with ADJUTANT_SKIP_APT=1 (the rest is distribution-neutral);
# the dev image needs mmdebstrap, but production images need no dev image.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
user=${ADJUTANT_USER:-kojibuilder}

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: run as root (it installs packages and creates the build user '$user')" >&2
  exit 1
fi

say() { printf 'setup-host: %s\n' "$*"; }

# -- packages ---------------------------------------------------------------
# python3-rpm: rpm's Python bindings, which the virtualenv reaches through the PyPI shim "rpm".
packages=(podman runc uidmap slirp4netns fuse-overlayfs rpm python3-rpm createrepo-c dnf dnf-plugins-core
          mmdebstrap libkrb5-dev python3-venv python3-dev gcc git util-linux cpio
          python3-pip python3-setuptools python3-wheel
          docker-registry apache2-utils)  # the tests' registry (distribution 2.8) and its htpasswd
if [ "${ADJUTANT_SKIP_APT:-0}" != 1 ]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

# -- containers configuration ------------------------------------------------
# crun cannot run on these hosts (cgroups in hybrid mode) and the process may
# only lower rlimits, so runc and ulimits at or below the current ones.
containers_conf='[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
log_driver = "k8s-file"
[engine]
runtime = "runc"
# An exec session'"'"'s conmon otherwise lingers 5 minutes after the command ends; 60 s leaves a loaded host time to read its exit status.
exit_command_delay = 60
'
write_if_changed() {  # path content [owner]
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$(printf '%s' "$2")" ]; then
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" > "$1"
    [ -n "${3:-}" ] && chown "$3" "$1" "$(dirname "$1")"
    say "wrote $1"
  fi
  return 0
}
write_if_changed /etc/containers/containers.conf "$containers_conf"

# Rootless networking (slirp4netns) opens /dev/net/tun, and fuse-overlayfs /dev/fuse;
# some hosts ship them 0600 (most distributions make both 0666).
for dev in /dev/net/tun /dev/fuse; do
  if [ -c "$dev" ] && [ "$(stat -c %a "$dev")" != 666 ]; then
    chmod 666 "$dev"
    say "made $dev usable by unprivileged users"
  fi
done

# -- build user ---------------------------------------------------------------
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$user"
  say "created user $user"
fi
uid=$(id -u "$user")
home=$(getent passwd "$user" | cut -d: -f6)
for f in /etc/subuid /etc/subgid; do
  if ! grep -q "^$user:" "$f" 2>/dev/null; then
    start=$((100000 + 65536 * (uid % 1000)))
    echo "$user:$start:65536" >> "$f"
    say "added a $f range for $user"
  fi
done
# Made by the user's own id: podman later creates siblings (cni, ...) in ~/.config.
install -d -o "$user" -g "$(id -gn "$user")" "$home/.config" "$home/.config/containers"
write_if_changed "$home/.config/containers/containers.conf" "$containers_conf" "$user:"
# fuse-overlayfs shows an image under each container's own id mapping without copying it:
# every container runs with root at a subordinate id (container_root = subordinate).
write_if_changed "$home/.config/containers/storage.conf" '[storage]
driver = "overlay"
[storage.options.overlay]
mount_program = "/usr/bin/fuse-overlayfs"' "$user:"
# The runtime dir a login session would create; podman keeps its sockets there.
install -d -m 700 -o "$user" -g "$(id -gn "$user")" "/run/user/$uid"

# -- virtualenv ---------------------------------------------------------------
# Made with the system interpreter so the build user can run it (an
# interpreter under /root would not be readable by that user).
venv="$repo/.venv"
stamp="$venv/.adjutant-installed"
want=$(cat "$repo/setup.cfg" "$repo/pyproject.toml" | sha256sum | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip >/dev/null
  "$venv/bin/pip" install -q -e "$repo[test]"
  echo "$want" > "$stamp"
fi
chmod -R a+rX "$venv"

# -- dev image ------------------------------------------------------------------
if [ "${ADJUTANT_SKIP_IMAGE:-0}" != 1 ]; then
  "$repo/images/dev/build-dev-image.sh" --user "$user"
fi
say "ready (build user $user, venv $venv)"
