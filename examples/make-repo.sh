#!/usr/bin/env bash
# Makes the sample dnf repository that the koji-adjutant examples build
# against: libgreet-devel, sample-buildsys-build and the comps groups "build"
# and "srpm-build" (from examples/repo/), with repodata made by createrepo_c.
#
# Usage: make-repo.sh OUTDIR
#   OUTDIR  directory of the repo; created when missing. Running again
#           replaces its content. A non-empty directory that this script
#           did not make is refused, so nothing else gets deleted.
#
# Needs rpmbuild and createrepo_c on the host; runs as any user.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

if [ $# -ne 1 ]; then
  usage >&2
  exit 2
fi
case "$1" in
  -h|--help) usage; exit 0 ;;
  -*) echo "make-repo.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  '') echo "make-repo.sh: OUTDIR must not be empty (see --help)" >&2; exit 2 ;;
esac
outdir=$1

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
specdir="$here/repo"
specs=("$specdir/libgreet.spec" "$specdir/sample-buildsys-build.spec")
marker=".koji-adjutant-sample-repo"

for tool in rpmbuild createrepo_c; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "make-repo.sh: '$tool' not found in PATH; install it first (Debian: apt-get install rpm createrepo-c)" >&2
    exit 1
  fi
done

if [ -e "$outdir" ] && [ ! -d "$outdir" ]; then
  echo "make-repo.sh: '$outdir' exists and is not a directory" >&2
  exit 1
fi
if [ -d "$outdir" ] && [ ! -e "$outdir/$marker" ] \
   && [ -n "$(find "$outdir" -mindepth 1 -maxdepth 1 -print -quit)" ]; then
  echo "make-repo.sh: '$outdir' is not empty and was not made by make-repo.sh; choose a new or empty directory" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/make-repo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Build everything before touching OUTDIR, so a failed build leaves the
# previous repo as it was. Payloads are gzip so that the rpm of any
# buildroot image (el8 included) can read them.
for spec in "${specs[@]}"; do
  if ! rpmbuild -bb --quiet \
      --define "_topdir $tmp" \
      --define "_sourcedir $specdir" \
      --define '_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' \
      --define '_binary_payload w9.gzdio' \
      "$spec" >"$tmp/rpmbuild.log" 2>&1; then
    cat "$tmp/rpmbuild.log" >&2
    echo "make-repo.sh: rpmbuild failed for '$spec'" >&2
    exit 1
  fi
done

mkdir -p "$outdir"
touch "$outdir/$marker"
# Replace the previous content (everything but the marker).
find "$outdir" -mindepth 1 -maxdepth 1 ! -name "$marker" -exec rm -rf {} +
cp "$tmp/RPMS/"*.rpm "$outdir/"
cp "$specdir/comps.xml" "$outdir/comps.xml"
createrepo_c -q -g comps.xml "$outdir"
echo "sample repo made in '$outdir'"
