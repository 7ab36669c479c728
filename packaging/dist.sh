#!/bin/bash
# Writes OUTDIR/hawf-VERSION.tar.gz, the source tarball the RPM and Debian builds
# start from (`cmake --build build --target dist` runs this with OUTDIR=build).
#
# It holds every file git knows in the working tree: the tracked ones plus new files
# that are not ignored (build trees, caches), as they are on disk. In CI that is
# exactly the checked-out commit; on a workstation it includes uncommitted work, so
# the packages test what you are about to commit. Entries are sorted, owned by root
# and dated with the last commit, so the same tree gives the same tarball.
#
# VERSION is project(VERSION) in CMakeLists.txt; the RPM spec's Version and the
# newest debian/changelog entry must agree with it (checked here, so a release
# cannot be packaged with a stale version in one of them).
#   packaging/dist.sh [OUTDIR]      (default: the current directory)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-.}" && cd "${1:-.}" && pwd)
cd "$src"

version=$(sed -n 's/^project(hawf VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
spec_version=$(sed -n 's/^Version:[[:space:]]*//p' packaging/rpm/hawf.spec)
deb_version=$(sed -n '1s/^hawf (\([^-)]*\)-[^)]*).*/\1/p' packaging/debian/changelog)
if [[ -z $version || $spec_version != "$version" || $deb_version != "$version" ]]; then
  echo "dist: versions disagree: CMakeLists.txt '$version'," \
       "packaging/rpm/hawf.spec '$spec_version', packaging/debian/changelog '$deb_version'" >&2
  exit 1
fi
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "dist: $src is not a git checkout (the file list comes from git)" >&2
  exit 1
fi

name=hawf-$version
list=$(mktemp)
trap 'rm -f "$list"' EXIT
# Tracked and new files; a tracked file deleted in the working tree is left out.
git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
  sort -zu > "$list"
mtime=$(git log -1 --format=%ct 2>/dev/null || date +%s)
tar --create --sort=name --transform="s,^,$name/,S" --mtime="@$mtime" \
    --owner=0 --group=0 --numeric-owner --mode=u+w,go-w \
    --no-recursion --null --files-from="$list" \
  | gzip -9n > "$out/$name.tar.gz.tmp"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
