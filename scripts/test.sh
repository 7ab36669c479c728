#!/bin/bash
# Installs what is needed, builds with warnings as errors and runs every test:
# unit tests, the plugin ABI checks, and the integration tests, which start their
# own private Slurm cluster (munged, slurmctld, two slurmd) as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DHAWF_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure
# The packages: build the .deb and the RPMs, install the .debs, and run the
# integration suite again against the installed files (purged afterwards).
bash scripts/package-test.sh
