#!/bin/bash
# Installs what hawf needs to build, test, package and demo on Debian 12 (run as root):
# debhelper, lintian and rpm (rpmbuild) build and check the packages (scripts/package-test.sh);
# strace counts the spool's syscalls and GNU time measures peak memory in bench/run.sh.
# clang and its runtime (libFuzzer, the sanitizers) build the fuzz targets (tests/fuzz).
# Building Slurm from source (scripts/build-slurm.sh) needs only build-essential,
# libmunge-dev and libjson-c-dev of these. runc runs the container tests' tasks
# (srun --container) in a rootfs made of busybox-static at test time; bubblewrap
# stands in for Apptainer's binds and environment rules (not packaged in Debian 12).
# Everything comes from Debian's own archive; RHEL/EPEL has the same libraries
# (slurm-devel, libyaml-devel, json-devel, libcurl-devel, gtest-devel, munge-devel).
set -euo pipefail
if [[ $(id -u) != 0 ]]; then
  echo "install-deps.sh: run as root (it installs Debian packages)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q \
  build-essential cmake pkg-config binutils python3 passwd util-linux procps \
  slurm-wlm slurmctld slurmd slurm-client libslurm-dev munge libmunge-dev \
  libyaml-dev nlohmann-json3-dev libcurl4-openssl-dev libgtest-dev libgmock-dev \
  debhelper lintian rpm rpm2cpio cpio bash-completion man-db groff-base \
  strace time \
  runc busybox-static bubblewrap libjson-c-dev \
  clang libclang-rt-14-dev
