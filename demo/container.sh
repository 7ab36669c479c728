#!/bin/bash
# The hawf demo with the training in containers (Slurm's native OCI support, runc):
# as demo/run.sh, but the training job and its fine-tune follow-up run in a rootless
# runc container, and the cluster's oci.conf runs runc behind hawf-oci-run. The
# bundle is made here: the host's /usr bound read-only (Python), the work directory
# bound, hostname "hawfbox"; nothing is downloaded. Run as root, after a build:
#   demo/container.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
user=hawfalice
for tool in runc python3; do
  command -v "$tool" >/dev/null || { echo "container.sh: needs $tool (scripts/install-deps.sh)" >&2; exit 1; }
done

demo=$(mktemp -d /tmp/hawf-demo-oci.XXXXXX)
chmod 755 "$demo"
cleanup() {
  python3 tests/integration/cluster.py stop --workdir "$demo/cluster" >/dev/null 2>&1 || true
  rm -rf "$demo"
}
trap cleanup EXIT

install -d -m 755 "$demo/bin" "$demo/cluster"
install -m 755 "$build/plugin/hawf.so" "$build/plugin/hawf_engine.so" "$build/plugin/hawf-step-helper" \
  "$build/tools/hawf" "$build/tools/hawf-decide" "$build/tools/hawf-await" "$build/tools/hawf-oci-run" "$demo/bin/"
install -d -m 1777 "$demo/spool"
printf 'spool: %s\n' "$demo/spool" > "$demo/hawf.yaml"
python3 tests/integration/cluster.py start --workdir "$demo/cluster" \
  --plugin "$demo/bin/hawf.so" --plugin-arg "conf=$demo/hawf.yaml" \
  --plugin-arg "step_helper=$demo/bin/hawf-step-helper" >/dev/null
source "$demo/cluster/env.sh"

work="$demo/work"
install -d -m 755 -o "$user" "$work"
install -m 644 -o "$user" demo/train.py "$work/"
bundle="$demo/bundle"
python3 tests/integration/oci.py bundle --dir "$bundle" --user "$user" --host-usr --bind "$work"
python3 tests/integration/oci.py conf --etc "$(dirname "$SLURM_CONF")" --wrapper "$demo/bin/hawf-oci-run" \
  --state "$demo/runc" --user "$user"
# The demo's job scripts, each running in the bundle and saying where it runs.
for job in train finetune; do
  sed -e "0,/^#SBATCH/s|^#SBATCH|#SBATCH --container=$bundle\n#SBATCH|" \
      -e '/^python3/i echo "running in container $(hostname)"\ncd "$SLURM_SUBMIT_DIR"' \
      "demo/$job.sbatch" > "$work/$job.sbatch"
  chown "$user" "$work/$job.sbatch"
done

as_user() {
  runuser -u "$user" -- env PATH="$demo/bin:$PATH" HAWF_CONF="$demo/hawf.yaml" SLURM_CONF="$SLURM_CONF" \
    bash -c "cd '$work' && $1"
}
show() {
  printf '\n$ %s\n' "$1"
  as_user "$1"
}
# Waits up to two minutes for the command line CHECK to succeed.
wait_for() {
  local deadline=$((SECONDS + 120))
  until as_user "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { echo "container.sh: timed out waiting for: $1" >&2; exit 1; }
    sleep 0.5
  done
}

echo "A private Slurm cluster runs the training in runc containers ($bundle, hostname hawfbox)."
show "head -4 train.sbatch"
show "sbatch --hawf-checkpoint=eval --hawf-options=continue,stop --hawf-params=lr:float --hawf-then=finetune.sbatch:continue train.sbatch" | tee "$demo/submit.out"
job=$(awk '/Submitted batch job/ {print $4}' "$demo/submit.out")
wait_for "hawf ls | grep -q '^$job:eval '"
show "cat train-$job.out"
show "hawf show $job:eval"
show "hawf-decide $job:eval continue --set lr=0.5 -m 'go on in the container'"
follow=$(as_user "hawf show --json $job:eval" | python3 -c 'import json,sys; print(json.load(sys.stdin)["follow_ups"][0]["job"])')
wait_for "squeue -h -j $follow -t all -o %T | grep -qE 'COMPLETED|FAILED|CANCELLED'"
show "cat finetune-$follow.out"
echo
echo "Done: the training wrote its report from inside its container; the fine-tune job"
echo "started in its container with the decision (HAWF_PARAM_LR, HAWF_AFTER_DIR's model)."
