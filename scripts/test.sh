#!/bin/bash
# Installs what is needed, builds with warnings as errors and runs every test:
# unit tests, the plugin ABI checks, and the integration tests, which start their
# own private Slurm cluster (munged, slurmctld, two slurmd) as root: with Debian's
# Slurm and again with the newest Slurm built from source (below).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# The integration suite also runs against the newest Slurm source release beside the
# project (../shared/slurm/slurm-*.tar.gz), built once into a cached install
# (scripts/build-slurm.sh: /var/cache/hawf/slurm-<version>-<sha>), as
# integration.slurm-<release>.<module>.
tarball=$(find ../shared/slurm -maxdepth 1 -name 'slurm-*.tar.gz' 2>/dev/null | sort -V | tail -n 1 || true)
slurm_prefix=
if [[ -n $tarball ]]; then
  slurm_prefix=$(scripts/build-slurm.sh "$tarball")
else
  echo "test.sh: no Slurm source tarball in ../shared/slurm: testing Debian's Slurm only" >&2
fi
cmake -S . -B build -DHAWF_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHAWF_SLURM_PREFIX="$slurm_prefix"
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure
# The fuzz targets (tests/fuzz, docs/fuzzing.md): built with clang, libFuzzer and the
# sanitizers in a build directory of their own, each run for a short fixed time on a
# copy of its seeds; any finding fails.
CXX=clang++ cmake -S . -B build-fuzz -DHAWF_FUZZ=ON -DHAWF_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build-fuzz --target hawf_fuzz -j"$(nproc)"
tests/fuzz/run.sh -b build-fuzz -t 15
# The packages: build the .deb and the RPMs, install the .debs, and run the
# integration suite again against the installed files (purged afterwards).
bash scripts/package-test.sh
