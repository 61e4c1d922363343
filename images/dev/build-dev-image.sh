#!/usr/bin/env bash
# Makes the offline buildroot image localhost/koji-adjutant-buildroot:dev from
# Debian packages (mmdebstrap + podman import), for machines that reach no
# container registry. The image is skipped when it exists and carries the
# hash of this recipe; any change to the files of this folder rebuilds it.
#
# Usage: build-dev-image.sh [--user USER] [--image REF] [--force]
#   --user   import into USER's (rootless) image storage; needs root
#   --image  image reference (default localhost/koji-adjutant-buildroot:dev)
#   --force  rebuild even when the image is current
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
image=localhost/koji-adjutant-buildroot:dev
user=""
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --user) user=$2; shift 2 ;;
    --image) image=$2; shift 2 ;;
    --force) force=1; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build-dev-image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# Packages of the image: the build tools layer of the production images,
# taken from Debian.
packages=(
  rpm dnf dnf-plugins-core createrepo-c python3
  gcc libc6-dev make binutils patch diffutils file
  bash coreutils findutils grep sed gawk tar gzip bzip2 xz-utils cpio
  util-linux passwd procps
)

as_user() {
  if [ -n "$user" ]; then
    runuser -u "$user" -- env -C / "$@"
  else
    "$@"
  fi
}

recipe_hash=$( (cat "$here/build-dev-image.sh" "$here/image-provides.spec"; printf '%s\n' "${packages[@]}") \
  | sha256sum | cut -c1-16)

if [ "$force" = 0 ]; then
  current=$(as_user podman image inspect --format '{{ index .Labels "io.koji-adjutant.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$current" = "$recipe_hash" ]; then
    echo "dev image $image is current (recipe $recipe_hash)"
    exit 0
  fi
fi

if [ "$(id -u)" != 0 ]; then
  echo "build-dev-image.sh: mmdebstrap needs root to make the image; run it as root (with --user USER)" >&2
  exit 1
fi

# The host's own apt sources, so the image comes from the same registry the
# machine is set up to use.
sources=""
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list; do
  [ -s "$f" ] && sources+="$(cat "$f")"$'\n'
done
if [ -z "$sources" ]; then
  echo "build-dev-image.sh: no apt sources found on this host; configure apt first" >&2
  exit 1
fi

work=$(mktemp -d /var/tmp/adjutant-devimage.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cp "$here/image-provides.spec" "$work/"

include=$(IFS=,; echo "${packages[*]}")
echo "making dev image rootfs with mmdebstrap (recipe $recipe_hash)"
printf '%s' "$sources" | mmdebstrap --variant=minbase --include="$include" \
  --customize-hook='mkdir -p "$1/etc/rpm" "$1/var/lib/rpm" "$1/etc/dnf/plugins"' \
  --customize-hook='printf "%%_dbpath /var/lib/rpm\n" > "$1/etc/rpm/macros.dbpath"' \
  --customize-hook='printf "[main]\nenabled = 0\n" > "$1/etc/dnf/plugins/local.conf"' \
  --customize-hook='chroot "$1" rpm --initdb' \
  --customize-hook="cp '$work/image-provides.spec' \"\$1/tmp/\"" \
  --customize-hook='chroot "$1" rpmbuild -bb --quiet --define "_topdir /tmp/provides" /tmp/image-provides.spec' \
  --customize-hook='chroot "$1" sh -c "rpm -i --nodeps /tmp/provides/RPMS/noarch/*.rpm 2>&1 | grep -v Alien || true"' \
  --customize-hook='chroot "$1" rpm -q koji-adjutant-dev-image-provides' \
  --customize-hook='rm -rf "$1/tmp/provides" "$1/tmp/image-provides.spec"' \
  --customize-hook='chroot "$1" groupadd -g 1000 mock' \
  --customize-hook='chroot "$1" useradd -u 1000 -g mock -m -d /builddir -s /bin/bash mockbuild' \
  --customize-hook='chmod 755 "$1/builddir"' \
  --customize-hook='rm -rf "$1/var/cache/apt/archives/"*.deb "$1/var/lib/apt/lists/"*' \
  bookworm "$work/rootfs.tar" -

chmod 644 "$work/rootfs.tar"
as_user podman import \
  --change 'CMD ["/bin/bash"]' \
  --change 'WORKDIR /builddir' \
  --change "LABEL io.koji-adjutant.recipe=$recipe_hash" \
  --change 'LABEL io.koji-adjutant.distro=dev' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "dev image $image made (recipe $recipe_hash)"
