#!/bin/sh
# Waits for the decision at the checkpoint whose directory is $HAWF_CHECKPOINT_DIR
# and prints its choice: for a task in a container without hawf's tools (POSIX sh,
# busybox works). hawf writes decision.json there atomically once the checkpoint is
# decided (and removes it on --revoke), so a reader never sees half a file.
# Usage: wait-decision.sh [SECONDS-BETWEEN-LOOKS]
decision="${HAWF_CHECKPOINT_DIR:?not set: run in a step of a checkpoint (--hawf-checkpoint or hawf-await --open --env)}/decision.json"
while [ ! -e "$decision" ]; do
  sleep "${1:-10}"
done
# One "key": value per line (the file is indented JSON): the choice without a JSON parser.
sed -n 's/^  "choice": "\(.*\)",\{0,1\}$/\1/p' "$decision"
