#!/bin/bash
# Builds Slurm from a source tarball into a cached install and prints its prefix:
#   scripts/build-slurm.sh TARBALL [CACHE_DIR]      (CACHE_DIR default: /var/cache/hawf)
# The prefix is CACHE_DIR/slurm-<version>-<first 12 hex digits of the tarball's sha256>,
# so another tarball of the same release gets its own install. It is built only when it
# is missing or incomplete: the stamp file is written last, so an interrupted build is
# removed and redone. Flags as in ../shared/slurm/README.md: --disable-static (objects
# compiled once) and --enable-multiple-slurmd (several slurmd on one host, as the test
# cluster runs them); the configuration directory is inside the prefix, so nothing in
# /etc/slurm is read. Needs root to install the build dependencies (apt) when missing.
# The build log is kept next to the prefix (PREFIX.log); progress goes to stderr.
set -euo pipefail

# What configure needs from Debian to build the daemons hawf's tests start: a C
# toolchain and munge (auth/munge, cred/munge; configure fails without it). Also in
# scripts/install-deps.sh. No libhttp-parser: the harness sets
# CommunicationParameters=disable_http on 25.11+ instead (../shared/slurm/README.md).
# libjson-c: slurmstepd needs the JSON serializer for `srun --container` (native OCI),
# which the container tests run; without it the step fails at launch.
DEPS=(build-essential libmunge-dev libjson-c-dev)

usage() { echo "usage: $0 TARBALL [CACHE_DIR]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
tarball=$(realpath -e "$1")
cache=${2:-/var/cache/hawf}
log() { echo "build-slurm: $*" >&2; }

mkdir -p "$cache"
cache=$(realpath "$cache")
sha=$(sha256sum "$tarball" | cut -c1-12)
# What the stamp records: a cached install built with other DEPS is rebuilt.
recipe="$sha deps=${DEPS[*]}"
version=$(tar -xzOf "$tarball" --wildcards --no-wildcards-match-slash '*/META' |
          awk '$1 == "Version:" && !v { v = $2 } END { print v }')
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { log "no Version in $tarball's META"; exit 1; }
prefix=$cache/slurm-$version-$sha
stamp=$prefix/.hawf-build-complete

complete() {
  [[ -f $stamp && $(cat "$stamp") == "$recipe" && -x $prefix/sbin/slurmctld && -x $prefix/bin/srun &&
     -f $prefix/lib/slurm/serializer_json.so ]]
}

# One build per prefix at a time: a second caller waits and then finds it complete.
exec 9> "$prefix.lock"
flock 9
if complete; then
  log "cached: $prefix"
  echo "$prefix"
  exit 0
fi

missing=()
for pkg in "${DEPS[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
fi

# What an interrupted build of this prefix left (the lock is held: no one builds it now).
rm -rf "$prefix" "$cache/.src-${prefix##*/}".*
src=$(mktemp -d "$cache/.src-${prefix##*/}.XXXXXX")
trap 'rm -rf "$src"' EXIT
buildlog=$prefix.log
: > "$buildlog"
start=$SECONDS
log "building Slurm $version into $prefix (log: $buildlog)"
tar -xzf "$tarball" -C "$src" --strip-components=1
# Chained with && (set -e does not apply left of ||): the first failure stops it.
(
  set -x
  cd "$src" &&
    ./configure --prefix="$prefix" --sysconfdir="$prefix/etc" --disable-static --enable-multiple-slurmd &&
    make -j"$(nproc)" &&
    make install
) >> "$buildlog" 2>&1 || { tail -n 40 "$buildlog" >&2; log "FAILED, see $buildlog"; exit 1; }
mkdir -p "$prefix/etc"
[[ -f $prefix/lib/slurm/serializer_json.so ]] || { log "FAILED: no serializer_json.so (libjson-c)"; exit 1; }
echo "$recipe" > "$stamp"
log "built Slurm $version in $((SECONDS - start)) s"
echo "$prefix"
