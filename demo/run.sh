#!/bin/bash
# The hawf demo on a private real Slurm cluster (run as root, after a build):
# a small training job stops at checkpoint "eval" while its fine-tune follow-up
# waits held in the queue; its owner looks at it, decides with a new learning
# rate, and the follow-up starts at once and trains on with that rate. Then a
# checkpoint with a reviewer (four-eyes): the owner cannot approve it, the
# reviewer does through hawfd, and the audit trail verifies.
#   demo/run.sh [BUILD_DIR]     (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build}")
user=hawfalice

demo=$(mktemp -d /tmp/hawf-demo.XXXXXX)
chmod 755 "$demo"
cleanup() {
  [[ -n "${hawfd_pid:-}" ]] && kill "$hawfd_pid" 2>/dev/null
  python3 tests/integration/cluster.py stop --workdir "$demo/cluster" >/dev/null 2>&1 || true
  pkill -f "$demo/bin/hawf-local-job" 2>/dev/null || true  # a deadline's sleeper of the local flow
  rm -rf "$demo"
}
trap cleanup EXIT

# An install in miniature: the plugin and tools, a spool, a config.
install -d -m 755 "$demo/bin" "$demo/cluster"
install -m 755 "$build/plugin/hawf.so" "$build/plugin/hawf_engine.so" "$build/tools/hawf" "$build/tools/hawf-decide" "$build/tools/hawf-await" \
  "$build/hawfd/hawfd" "$build/plugin/hawf-step-helper" "$build/plugin/hawf-local-job" "$demo/bin/"
install -d -m 1777 "$demo/spool"
python3 tests/integration/cluster.py start --workdir "$demo/cluster" \
  --plugin "$demo/bin/hawf.so" --plugin-arg "conf=$demo/hawf.yaml" \
  --plugin-arg "step_helper=$demo/bin/hawf-step-helper" >/dev/null
source "$demo/cluster/env.sh"
# hawfd, through which reviewers decide: a free loopback port, the cluster's munged.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'spool: %s\npoll_interval: 1s\nhawfd:\n  listen: "127.0.0.1:%s"\n  address: "127.0.0.1:%s"\n  state: %s\n  munge_socket: %s\n' \
  "$demo/spool" "$port" "$port" "$demo/hawfd-state" "$demo/cluster/munge/munge.sock" > "$demo/hawf.yaml"
PATH="$demo/bin:$PATH" "$demo/bin/hawfd" --foreground --conf="$demo/hawf.yaml" 2>"$demo/hawfd.log" &
hawfd_pid=$!
until grep -q "listening on" "$demo/hawfd.log"; do kill -0 "$hawfd_pid"; sleep 0.1; done

work="$demo/work"
install -d -m 755 -o "$user" "$work"
install -d -m 755 -o "$user" "$work/local" "$demo/state"
install -m 644 -o "$user" demo/train.py demo/train.sbatch demo/finetune.sbatch demo/flow.yaml "$work/"
install -m 644 -o "$user" demo/train.py demo/train.sbatch demo/finetune.sbatch demo/flow.yaml "$work/local/"

# Runs a command line as the demo user, in the work directory, showing it first.
as_user() {
  runuser -u "${as:-$user}" -- env PATH="$demo/bin:$PATH" HAWF_CONF="$demo/hawf.yaml" SLURM_CONF="$SLURM_CONF" \
    HAWF_LOCAL_JOB="$demo/bin/hawf-local-job" XDG_STATE_HOME="$demo/state" bash -c "cd '${dir:-$work}' && $1"
}
bold=$([[ -t 1 ]] && tput bold 2>/dev/null || true)
plain=$([[ -t 1 ]] && tput sgr0 2>/dev/null || true)
show() {
  printf '\n%s%s$ %s%s\n' "$bold" "${as:-$user}" "$1" "$plain"
  as_user "$1"
}

echo "A private Slurm cluster is running (two nodes); you are $user on its login node."
show "sbatch --hawf-checkpoint=eval --hawf-options=continue,stop --hawf-params=lr:float --hawf-then=finetune.sbatch:continue train.sbatch" | tee "$demo/submit.out"
job=$(awk '/Submitted batch job/ {print $4}' "$demo/submit.out")
printf '\n(training; the job ends at its checkpoint and frees its node)\n'
until as_user "hawf ls" | grep -q "^$job:eval "; do sleep 0.5; done
show "squeue --me"
show "hawf ls"
show "hawf show $job:eval"
show "hawf-decide $job:eval continue --set lr=0.5 -m 'loss still falling slowly; raise the rate'"
show "hawf-await $job:eval"
show "hawf-await --env $job:eval"
follow=$(as_user "hawf show --json $job:eval" | python3 -c 'import json,sys; print(json.load(sys.stdin)["follow_ups"][0]["job"])')
printf '\n(the fine-tune job was released by the decision)\n'
until as_user "squeue -h -j $follow -t all -o %T" | grep -qE 'COMPLETED|FAILED|CANCELLED'; do sleep 0.5; done
show "cat finetune-$follow.out"
show "hawf log $job:eval"

printf '\n(a release needs a second person: hawfcarol reviews it)\n'
show "sbatch --hawf-checkpoint=release --hawf-reviewers=hawfcarol train.sbatch" | tee "$demo/submit.out"
job=$(awk '/Submitted batch job/ {print $4}' "$demo/submit.out")
until as_user "hawf ls" | grep -q "^$job:release "; do sleep 0.5; done
show "hawf-decide $job:release approve || true"
as=hawfcarol show "hawf ls"
as=hawfcarol show "hawf-decide $job:release approve -m 'metrics reviewed'"
show "hawf show $job:release"
show "hawf log --verify $job:release"
shopt -s extglob
# A flow's stage's state (hawf status --json), as the demo user: FLOW STAGE [--local].
stage_state() {
  as_user "hawf${3:-} status --json $1" | python3 -c '
import json, sys
stages = {s["name"]: s for s in json.load(sys.stdin)["stages"]}
s = stages[sys.argv[1]]
print(s["state"], s.get("checkpoint", {}).get("state", ""))' "$2"
}
# The demo's flow file, decided "continue" at its checkpoint: on the cluster, or with --local.
run_flow() {
  local local=${1:+ $1}
  show "hawf submit$local flow.yaml" | tee "$demo/flow.out"
  flow=$(tail -n 1 "$demo/flow.out")
  until [[ $(stage_state "$flow" train "$local") == *pending ]]; do sleep 0.5; done
  show "hawf$local status $flow"
  show "hawf-decide$local $flow:eval continue --set lr=0.5"
  until [[ $(stage_state "$flow" finetune "$local") == @(COMPLETED|FAILED|CANCELLED)* ]]; do sleep 0.5; done
  show "hawf$local status $flow"
  finetune=$(as_user "hawf$local status --json $flow" |
    python3 -c 'import json, sys; print([s["job"] for s in json.load(sys.stdin)["stages"] if s["name"] == "finetune"][0])')
  show "cat finetune-$finetune.out"
}
printf '\n(the same chain as one flow file: every stage queued at once, held where a decision starts it)\n'
run_flow
printf '\n(and the same file on a machine without Slurm: the stages run as your processes,\n'
printf ' nothing runs while the checkpoint waits, and the decision starts the fine-tune)\n'
dir="$work/local" run_flow --local
echo
echo "Done: no node waited for a decision; the fine-tune job ran with the rate chosen;"
echo "the release was decided by its reviewer, and the record proves it; one flow file"
echo "ran the chain on the cluster and, the same, without Slurm."
