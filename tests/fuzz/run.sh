#!/bin/bash
# Runs the libFuzzer targets (docs/fuzzing.md), one after the other, each for a fixed
# time on a fresh copy of its seeds (tests/fuzz/corpus/<target>) with its dictionary.
# Exits 1 if any target finds something: its input is kept as
# BUILD/fuzz-runs/<target>/crash-*, leak-*, timeout-* or oom-*, and the run's log
# (BUILD/fuzz-runs/<target>/log) is printed.
#
#   tests/fuzz/run.sh [-b BUILD_DIR] [-t SECONDS] [TARGET...] [-- LIBFUZZER_ARGS...]
#
# BUILD_DIR: a build directory configured with CXX=clang++ -DHAWF_FUZZ=ON and built
# (--target hawf_fuzz); default build-fuzz. SECONDS: per target, default 15. TARGETs:
# default all (config record fold decision options duration checkpoint_id host_port).
# LIBFUZZER_ARGS go to every target (e.g. -jobs=4 -workers=4, -max_len=65536).
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
build=build-fuzz
seconds=15
targets=()
extra=()
while (($#)); do
  case $1 in
    -b) build=$2; shift 2 ;;
    -t) seconds=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
((${#targets[@]})) || targets=(config record fold decision options duration checkpoint_id host_port)
build=$(cd "$build" && pwd)
runs=$build/fuzz-runs

failed=()
for target in "${targets[@]}"; do
  bin=$build/tests/fuzz/fuzz_$target
  if [[ ! -x $bin ]]; then
    echo "run.sh: no $bin: build it first (cmake --build $build --target hawf_fuzz)" >&2
    exit 2
  fi
  dict=$src/dict/$target.dict
  [[ $target == fold ]] && dict=$src/dict/record.dict
  out=$runs/$target
  rm -rf "$out"
  mkdir -p "$out/corpus"
  cp -r "$src/corpus/$target/." "$out/corpus/"
  # -timeout: one input that long is a hang; -rss_limit_mb: more memory is a finding
  # (so is one allocation of more, -malloc_limit_mb defaults to it). The corpus copy
  # grows as the fuzzer finds new paths; the seeds in the tree stay as they are.
  set +e
  (cd "$out" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
     -artifact_prefix="$out/" ${dict:+-dict="$dict"} "${extra[@]}" corpus >log 2>&1)
  rc=$?
  set -e
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/log" | awk '{ n += $1 } END { print n + 0 }')
  units=$(find "$out/corpus" -type f | wc -l)
  if ((rc != 0)); then
    failed+=("$target")
    echo "fuzz_$target: FINDING after $execs runs (exit $rc); inputs: $(ls "$out" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | tr '\n' ' ')"
    tail -n 60 "$out/log"
  else
    echo "fuzz_$target: ok, $execs runs in ${seconds}s, corpus $units inputs"
  fi
done
if ((${#failed[@]})); then
  echo "run.sh: findings in: ${failed[*]} (reproduce: $build/tests/fuzz/fuzz_TARGET INPUT; docs/fuzzing.md)" >&2
  exit 1
fi
