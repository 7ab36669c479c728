#!/bin/bash
# hawf's enroot hook, for jobs in pyxis/enroot containers (srun --container-image):
# binds the paths a hawf job's variables name (its checkpoint's directory, the
# decision a follow-up started with) at the same path in the container, as hawf
# gets them bound in Slurm's native containers and under Apptainer. pyxis passes
# the job's environment, hawf's variables with it, to enroot (pyxis 0.11+), and
# enroot runs this hook on the node before the container starts, as the job's user.
# Install (a link keeps it current): ln -s /usr/share/hawf/enroot/50-hawf.sh /etc/enroot/hooks.d/
# Does nothing for a job without those variables.
set -euo pipefail

for var in HAWF_CHECKPOINT_DIR HAWF_AFTER_DIR HAWF_DECISION_FILE; do
  path=${!var-}
  [[ $path == /* ]] || continue
  if [[ $path == *[[:space:]]* ]]; then  # enroot's mount list is fstab: fields split at blanks
    echo "hawf: $var=$path: a path with a blank cannot be bound by enroot" >&2
    exit 1
  fi
  case $var in
    HAWF_CHECKPOINT_DIR) options=x-create=dir,rbind,rw ;;  # the step leaves its report there
    HAWF_AFTER_DIR) options=x-create=dir,rbind,ro ;;
    HAWF_DECISION_FILE) options=x-create=file,bind,ro ;;
  esac
  printf '%s %s none %s,nosuid,nodev\n' "$path" "$path" "$options" >> "${ENROOT_MOUNTS:?set by enroot}"
done
