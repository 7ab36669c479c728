#!/bin/bash
# hawf benchmarks on a private real Slurm cluster (run as root, after a build):
#   bench/run.sh [BUILD_DIR] [--quick]
#       [--only=overhead,latency,idle,scale,bounds,race,bulk,reviewers,review-race,hawfd-idle,notify]
# Prints a table of medians, p90 and ratios against the baselines measured in the
# same run, and writes it with the raw samples to BUILD_DIR/bench-results.{md,json}.
# See docs/benchmarks.md. Takes about 30 minutes on 2 cores (hawfd-idle alone about
# 11: it waits for hawfd's periodic rescan), and ~2.5 GB of RAM for a private tmpfs
# holding the big spools.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
shift || true
if [[ $(id -u) != 0 ]]; then
  echo "bench/run.sh: run as root (it starts a private Slurm cluster)" >&2
  exit 2
fi
for f in plugin/hawf.so tools/hawf tools/hawf-decide tools/hawf-await; do
  if [[ ! -x $build/$f && ! -f $build/$f ]]; then
    echo "bench/run.sh: $build/$f missing: build first (cmake -S . -B build && cmake --build build)" >&2
    exit 2
  fi
done
[[ -x $build/hawfd/hawfd ]] || echo "bench/run.sh: $build/hawfd/hawfd missing: the reviewers, review-race, hawfd-idle and notify benchmarks will fail" >&2
command -v strace >/dev/null || echo "bench/run.sh: strace missing (scripts/install-deps.sh): syscall counts skipped" >&2

# The spool generator is built with the project (bench/CMakeLists.txt); a build
# directory configured before bench/ existed learns the target on reconfiguring.
if ! cmake --build "$build" --target hawf-bench-gen -j"$(nproc)" >/dev/null 2>&1; then
  cmake -S . -B "$build" >/dev/null
  cmake --build "$build" --target hawf-bench-gen -j"$(nproc)" >/dev/null
fi
gen=$build/bench/hawf-bench-gen

HAWF_BENCH_GEN=$gen PYTHONDONTWRITEBYTECODE=1 exec python3 bench/bench.py --build "$build" "$@"
