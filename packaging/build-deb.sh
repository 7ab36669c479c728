#!/bin/bash
# Builds the Debian packages hawf and hawf-slurm-plugin into OUTDIR (default
# build-pkg/deb), as a Debian build would: from the source tarball (packaging/dist.sh)
# unpacked in a scratch directory, with packaging/debian copied to its debian/,
# then `dpkg-buildpackage -us -uc -b`. The tarball also serves as the
# hawf_VERSION.orig.tar.gz, so `dpkg-buildpackage -S` works in the same tree.
# The source checkout is never written to (no debian/ appears in it).
#   packaging/build-deb.sh [OUTDIR]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$src/build-pkg/deb}")
work=$(mktemp -d /tmp/hawf-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT

tarball=$("$src/packaging/dist.sh" "$work")
name=$(basename "$tarball" .tar.gz)       # hawf-0.1.0
version=${name#hawf-}
ln -s "$name.tar.gz" "$work/hawf_$version.orig.tar.gz"
tar -xzf "$tarball" -C "$work"
cp -a "$work/$name/packaging/debian" "$work/$name/debian"
(cd "$work/$name" && dpkg-buildpackage -us -uc -b -j"$(nproc)")

mkdir -p "$out"
rm -f "$out"/hawf*.deb "$out"/hawf*.changes "$out"/hawf*.buildinfo
cp "$work"/hawf*.deb "$work"/hawf*.changes "$work"/hawf*.buildinfo "$out/"
ls -1 "$out"/*.deb
