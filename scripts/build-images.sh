#!/usr/bin/env bash
# Builds the koji-adjutant buildroot images (the "build tools layer"), one
# image per distro and architecture, tagged
# [PREFIX]koji-adjutant-buildroot:<distro>-<arch>, all from
# images/buildroot/Containerfile: the distros differ only in the build
# arguments below (base image, release, extra packages).
#
# Usage: build-images.sh [--distro LIST] [--arch LIST] [--registry PREFIX]
#                        [--push] [--dry-run]
#   --distro LIST      comma list of el8, el9, el10, fedora (default: all)
#   --arch LIST        comma list of x86_64, aarch64 (default: this host's,
#                      from uname -m); a foreign arch needs qemu-user-static
#   --registry PREFIX  prepended to every tag, e.g. registry.example.com/koji/
#                      (a missing trailing / is added)
#   --push             push each image after it is built (needs --registry)
#   --dry-run          print the podman commands, run nothing
#   -h, --help         show this help
# Environment: FEDORA_RELEASE, the Fedora release the fedora image is made
# from (default 41).
# Exit status: 0 ok, 1 a command failed, 2 bad usage.
set -euo pipefail

prog=$(basename "$0")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
name=koji-adjutant-buildroot
all_distros=(el8 el9 el10 fedora)
all_arches=(x86_64 aarch64)

usage_error() {
  echo "$prog: $*" >&2
  echo "$prog: see --help" >&2
  exit 2
}

# The build arguments of a distro, one NAME=VALUE a line (the distro's name
# becomes the image's io.koji-adjutant.distro label).
fedora_release=${FEDORA_RELEASE:-41}
build_args_of() {
  case "$1" in
    el*) printf '%s\n' BASE_IMAGE=quay.io/almalinux/almalinux "RELEASE=${1#el}" ;;
    fedora) printf '%s\n' BASE_IMAGE=registry.fedoraproject.org/fedora "RELEASE=$fedora_release" \
              EXTRA_PACKAGES=dnf5-plugins ;;
  esac
  echo "DISTRO=$1"
}

# podman names architectures the OCI way.
platform_of() {
  case "$1" in
    x86_64) echo linux/amd64 ;;
    aarch64) echo linux/arm64 ;;
  esac
}

contains() {
  local want=$1 item
  shift
  for item in "$@"; do
    [ "$item" = "$want" ] && return 0
  done
  return 1
}

# Splits a comma list into the array named by $3, checking each item against
# the allowed values that follow; duplicates are dropped, order is kept.
parse_list() {
  local what=$1 list=$2
  local -n result=$3
  shift 3
  local -a items=()
  local item
  [ -n "$list" ] || usage_error "empty $what list"
  IFS=, read -r -a items <<<"$list"
  # A trailing comma is dropped by read; catch it and empty items here.
  case "$list" in ,* | *, | *,,*) usage_error "empty item in $what list '$list'" ;; esac
  for item in "${items[@]}"; do
    contains "$item" "$@" || usage_error "unknown $what '$item' (allowed: $(IFS=,; echo "$*"))"
    contains "$item" "${result[@]+"${result[@]}"}" || result+=("$item")
  done
}

distro_list=$(IFS=,; echo "${all_distros[*]}")
arch_list=""
registry=""
push=0
dry_run=0

need_value() {
  [ $# -ge 2 ] && [ -n "$2" ] || usage_error "option $1 needs a value"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --distro) need_value "$@"; distro_list=$2; shift 2 ;;
    --distro=*) distro_list=${1#*=}; shift ;;
    --arch) need_value "$@"; arch_list=$2; shift 2 ;;
    --arch=*) arch_list=${1#*=}; shift ;;
    --registry) need_value "$@"; registry=$2; shift 2 ;;
    --registry=*) registry=${1#*=}; shift ;;
    --push) push=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

if [ -z "$arch_list" ]; then
  arch_list=$(uname -m)
  contains "$arch_list" "${all_arches[@]}" \
    || usage_error "host arch '$arch_list' is not supported (allowed: $(IFS=,; echo "${all_arches[*]}")); pass --arch"
fi

distros=()
arches=()
parse_list distro "$distro_list" distros "${all_distros[@]}"
parse_list arch "$arch_list" arches "${all_arches[@]}"

if [ -n "$registry" ] && [ "${registry: -1}" != / ]; then
  registry+=/
fi
if [ "$push" = 1 ] && [ -z "$registry" ]; then
  usage_error "--push needs --registry (there is nowhere to push a local name)"
fi

containerfile=$root/images/buildroot/Containerfile
[ -f "$containerfile" ] || { echo "$prog: missing $containerfile" >&2; exit 1; }

if [ "$dry_run" = 0 ] && ! command -v podman >/dev/null 2>&1; then
  echo "$prog: podman not found" >&2
  exit 1
fi

# Runs a command, or prints it shell-quoted (one per line) with --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then
    local word line=""
    for word in "$@"; do
      line+="$(printf '%q' "$word") "
    done
    echo "${line% }"
  else
    "$@"
  fi
}

for distro in "${distros[@]}"; do
  build_args=()
  while read -r arg; do
    build_args+=(--build-arg "$arg")
  done < <(build_args_of "$distro")
  for arch in "${arches[@]}"; do
    tag="${registry}${name}:${distro}-${arch}"
    run podman build \
      --platform "$(platform_of "$arch")" \
      --tag "$tag" \
      "${build_args[@]}" \
      --file "$containerfile" \
      "$(dirname "$containerfile")"
    if [ "$push" = 1 ]; then
      run podman push "$tag"
    fi
  done
done
