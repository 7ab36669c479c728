#!/bin/bash
# Builds the RPMs hawf and hawf-slurm-plugin (and the source RPM) into OUTDIR
# (default build-pkg/rpm): `rpmbuild -ba` of packaging/rpm/hawf.spec as it is in the
# source tarball (packaging/dist.sh), in a scratch _topdir.
# On a machine whose packages are not RPMs (Debian) the build dependencies cannot be
# checked, so rpmbuild runs with --nodeps there; the Slurm headers must still be
# installed (libslurm-dev): the Release and Requires are read from them.
#   packaging/build-rpm.sh [OUTDIR] [extra rpmbuild arguments, e.g. --define "dist .el9"]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$src/build-pkg/rpm}")
shift || true
top=$(mktemp -d /tmp/hawf-rpm.XXXXXX)
trap 'rm -rf "$top"' EXIT

mkdir -p "$top"/{SOURCES,SPECS,BUILD,RPMS,SRPMS}
tarball=$("$src/packaging/dist.sh" "$top/SOURCES")
tar -xzOf "$tarball" "$(basename "$tarball" .tar.gz)/packaging/rpm/hawf.spec" > "$top/SPECS/hawf.spec"
nodeps=()
[[ -e /etc/debian_version ]] && nodeps=(--nodeps)
rpmbuild -ba "${nodeps[@]}" --define "_topdir $top" --define "_smp_mflags -j$(nproc)" "$@" "$top/SPECS/hawf.spec"

mkdir -p "$out"
rm -f "$out"/hawf*.rpm
cp "$top"/RPMS/*/hawf*.rpm "$top"/SRPMS/hawf*.rpm "$out/"
ls -1 "$out"/*.rpm
