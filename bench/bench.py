#!/usr/bin/env python3
"""hawf benchmarks on a private real Slurm cluster (tests/integration/cluster.py).

Run through bench/run.sh [BUILD_DIR] (as root). Starts one private cluster (munged,
slurmctld, two one-CPU slurmd) with hawf in its plugstack, runs every benchmark,
compares each with its baseline measured in the same run, prints a table of
medians, p90 and ratios, and writes it (and all raw samples, as JSON) to
BUILD_DIR/bench-results.{md,json}. Timings are printed, never asserted: the exit
status is 0 unless something broke (a job failed, or a checkpoint in the race did
not end with exactly one decision: exit 3).

Benchmarks (see docs/benchmarks.md for the method and the reasons behind it):
  overhead   srun true and sbatch --wait with hawf in plugstack.conf vs not
             (interleaved, plugstack.conf rewritten between samples: srun, sbatch
             and slurmstepd read it at every launch, checked first); and the cost
             of --hawf-checkpoint on a step
  latency    hawf-decide returning -> the follow-up's first instruction, vs
             scontrol release of an equivalent held job -> its first instruction
  idle       allocated core-seconds while a human takes D seconds to decide,
             from Slurm's own records (slurmctld's allocation times in ms, and
             jobcomp/filetxt in whole seconds): hawf's held follow-up vs a job
             that keeps its allocation and blocks in hawf-await
  scale      hawf ls / show / hawf-decide with 1 000 vs 100 000 history
             checkpoints and 10 000 pending: time and strace -c -f syscall counts
  bounds     root's hawf ls --all and hawf log over one user's 20 000 pending
             checkpoints vs 10 000 (the default per-user limit): peak memory
  race       1 000 checkpoints past their deadline, decided by 8 concurrent
             hawf-decide loops plus hawf-await taking the default: decisions/s vs
             one decider alone, and exactly one decision per checkpoint
  bulk       1 000 array tasks' checkpoints decided and their follow-up array's tasks
             released by one hawf-decide JOB_*:eval: time and Slurm RPCs (sdiag) vs
             scontrol release of the follow-up tasks alone, and vs one hawf-decide per task
  reviewers  a reviewer's hawf-decide through hawfd returning -> the follow-up's
             first instruction, vs the owner's hawf-decide (owner mode), as latency
  review-race  1 000 pending checkpoints with reviewers decided by 100 concurrent
             reviewer clients (hawfcarol, hawfdave) through one hawfd: decisions/s
             vs one client alone, and exactly one decision per checkpoint
  hawfd-idle hawfd's start (its notifier looks at every pending checkpoint once), then
             its RSS and CPU over 60 s idle, with 10 000 pending delegated checkpoints
             of 1 000 users vs an empty spool; hawf ls --review; the first periodic
             rescan (notify.rescan, 10 min after the start)
  notify     a new checkpoint's pending event -> its webhook received, while hawfd
             watches 1 000 other pending checkpoints vs none (and nudged while a
             restarted hawfd looks again at those 1 000); srun --hawf-checkpoint
             with a dead or hanging webhook configured vs no notify: (wall, and the
             step's end in slurmd's log)
"""

import argparse
import calendar
import json
import math
import os
import platform
import pwd
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from cluster import (REVIEWER_GROUP, REVIEWERS, SYSTEM_PATH, TERMINAL_STATES, USERS, Cluster,  # noqa: E402
                     parse_scontrol)

USER = USERS[0]
TOOLS = ("hawf", "hawf-decide", "hawf-await")

# Syscalls that read or change file system metadata (strace -c names).
METADATA_CALLS = {
    "open", "openat", "openat2", "creat", "stat", "fstat", "lstat", "newfstatat", "statx", "access",
    "faccessat", "faccessat2", "mkdir", "mkdirat", "link", "linkat", "unlink", "unlinkat", "rename",
    "renameat", "renameat2", "rmdir", "getdents", "getdents64", "readlink", "readlinkat", "chmod",
    "fchmod", "fchmodat", "chown", "fchown", "fchownat", "lchown", "symlink", "symlinkat", "utimensat",
}
SYNC_CALLS = {"fsync", "fdatasync", "sync", "syncfs"}


def log(text):
    print("[%7.1fs] %s" % (time.monotonic() - T0, text), file=sys.stderr, flush=True)


T0 = time.monotonic()


# ---------------------------------------------------------------------------
# Statistics

def median(xs):
    return statistics.median(xs)


def p90(xs):
    xs = sorted(xs)
    if len(xs) == 1:
        return xs[0]
    pos = 0.9 * (len(xs) - 1)             # linear interpolation between ranks
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def ratio_ci(a, b, rounds=2000, seed=1):
    """95% bootstrap interval of median(a)/median(b), resampling each independently."""
    if len(a) < 5 or len(b) < 5:
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        ma = median([rng.choice(a) for _ in a])
        mb = median([rng.choice(b) for _ in b])
        if mb > 0:
            ratios.append(ma / mb)
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def paired_ratio_ci(a, b, rounds=2000, seed=1):
    """95% bootstrap interval of mean(a)/mean(b), resampling the pairs (a[k], b[k])."""
    if len(a) < 5 or len(a) != len(b):
        return None
    rng = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        idx = [rng.randrange(len(a)) for _ in a]
        ratios.append(sum(a[i] for i in idx) / sum(b[i] for i in idx))
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def abba(n):
    """Order of n samples each of 'a' and 'b': a b b a a b b a ... (cancels linear drift)."""
    order = []
    for i in range(n):
        order += ["a", "b"] if i % 2 == 0 else ["b", "a"]
    return order


# ---------------------------------------------------------------------------
# The bench: a private cluster with hawf installed in miniature

class Bench:

    def __init__(self, build, workdir):
        self.build = build
        self.root = workdir
        self.bindir = os.path.join(self.root, "bin")
        os.makedirs(self.bindir, 0o755)
        self.plugin = os.path.join(self.bindir, "hawf.so")
        shutil.copy(os.path.join(build, "plugin", "hawf.so"), self.plugin)
        shutil.copy(os.path.join(build, "plugin", "hawf_engine.so"), self.bindir)  # hawf.so loads it from beside it
        self.helper = shutil.copy(os.path.join(build, "plugin", "hawf-step-helper"), self.bindir)
        for tool in TOOLS:
            shutil.copy(os.path.join(build, "tools", tool), self.bindir)
        shutil.copy(os.environ["HAWF_BENCH_GEN"], os.path.join(self.bindir, "hawf-bench-gen"))
        # hawfd runs its hawfd --as-owner children as the owners (via /proc/self/exe):
        # they must be able to exec it, like the tools.
        self.hawfd = None
        if os.path.exists(os.path.join(build, "hawfd", "hawfd")):
            self.hawfd = shutil.copy(os.path.join(build, "hawfd", "hawfd"), self.bindir)
        for name in os.listdir(self.bindir):
            os.chmod(os.path.join(self.bindir, name), 0o755)
        self.pw = pwd.getpwnam(USER)
        self.uid, self.gid = self.pw.pw_uid, self.pw.pw_gid
        self.spool, self.conf = self.make_spool("spool")
        self.cluster = Cluster(workdir=os.path.join(self.root, "cluster"), plugin=self.plugin,
                               plugin_args=["conf=" + self.conf, "step_helper=" + self.helper], keep=True)
        self.plugstack = os.path.join(self.cluster.workdir, "etc", "plugstack.conf")
        self.plugstack_line = "required %s conf=%s step_helper=%s\n" % (self.plugin, self.conf, self.helper)
        self.null_plugin = os.path.join(self.bindir, "null_spank.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", self.null_plugin, os.path.join(HERE, "null_spank.c")],
                       check=True)

    def make_spool(self, name, parent=None):
        """A spool (root-owned, 1777) and a hawf.yaml naming it."""
        spool = os.path.join(parent or self.root, name)
        os.mkdir(spool)
        os.chmod(spool, 0o1777)
        conf = os.path.join(self.root, name + ".yaml")
        with open(conf, "w") as f:
            f.write("spool: %s\npoll_interval: 1s\n" % spool)
        os.chmod(conf, 0o644)
        return spool, conf

    def start(self):
        self.cluster.start()
        self.home = self.cluster.user_dir(USER)     # the user's working directory

    def stop(self):
        self.cluster.stop()

    # -- plugstack.conf ---------------------------------------------------

    def set_plugin(self, loaded, conf=None):
        """Rewrites the cluster's plugstack.conf (atomically) with or without hawf (given
        CONF: hawf reading that hawf.yaml instead of the bench's); LOADED "null": a
        plugin that does nothing instead (bench/null_spank.c)."""
        tmp = self.plugstack + ".tmp"
        line = self.plugstack_line if conf is None else "required %s conf=%s step_helper=%s\n" % (
            self.plugin, conf, self.helper)
        if loaded == "null":
            line = "required %s\n" % self.null_plugin
        with open(tmp, "w") as f:
            f.write(line if loaded else "# hawf not loaded\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, self.plugstack)

    # -- running things as the user ---------------------------------------

    def env(self, conf=None, user=None):
        pw = pwd.getpwnam(user) if user else self.pw
        return {"PATH": self.bindir + ":" + SYSTEM_PATH, "SLURM_CONF": self.cluster.conf, "LANG": "C.UTF-8",
                "HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name, "HAWF_CONF": conf or self.conf}

    def popen(self, argv, conf=None, cwd=None, user=None, **kw):
        """ARGV as the test user, or as USER (another test user: with their groups, as a login would)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        if user:
            pw = pwd.getpwnam(user)
            ids = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=os.getgrouplist(user, pw.pw_gid))
            cwd = cwd or self.cluster.user_dir(user)
        else:
            ids = dict(user=self.uid, group=self.gid, extra_groups=[])
        return subprocess.Popen([str(a) for a in argv], env=self.env(conf, user), cwd=cwd or self.home,
                                stdin=subprocess.DEVNULL, text=True, **ids, **kw)

    def run(self, argv, conf=None, cwd=None, check=True, timeout=300, user=None):
        """Runs argv (no shell) directly as the test user (setuid in the child, no PAM)."""
        p = self.popen(argv, conf, cwd, user=user)
        out, err = p.communicate(timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError("%s failed (exit %d): %s %s" % (" ".join(map(str, argv)), p.returncode, out, err))
        return subprocess.CompletedProcess(argv, p.returncode, out, err)

    def timed(self, argv, conf=None, check=True, user=None):
        """(seconds, end time) of one run; the clock is read right around the child."""
        t0 = time.perf_counter()
        p = self.run(argv, conf=conf, check=check, user=user)
        t1 = time.perf_counter()
        return t1 - t0, time.time(), p

    def script(self, name, text):
        path = os.path.join(self.home, name)
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, 0o755)
        return path

    def sbatch(self, *args):
        out = self.run(["sbatch", "--parsable"] + list(args)).stdout.strip()
        return int(out.split(";")[0])

    # -- Slurm and spool state ---------------------------------------------

    def job_state(self, job):
        p = subprocess.run(["scontrol", "show", "job", "-o", str(job)], env=self.cluster.env,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return parse_scontrol(p.stdout.strip().splitlines()[0]).get("JobState") if "JobId=" in p.stdout else None

    def wait_job(self, job, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.job_state(job) in TERMINAL_STATES:
                return
            time.sleep(0.05)
        raise RuntimeError("job %s did not finish in %ds" % (job, timeout))

    def events(self, ckpt, spool=None):
        """The checkpoint's events, read straight from the spool (as root)."""
        job, name = ckpt.split(":")
        d = os.path.join(spool or self.spool, str(self.uid), "ckpt", job, name, "log")
        try:
            names = sorted(n for n in os.listdir(d) if n.isdigit())
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(d, n)) as f:
                out.append(json.load(f))
        return out

    def wait_event(self, ckpt, kind, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.events(ckpt):
                if ev["event"] == kind:
                    return ev
            time.sleep(0.05)
        raise RuntimeError("%s: no %s event after %ds\n%s" % (ckpt, kind, timeout, self.cluster.daemon_logs()))

    def event_path(self, ckpt, seq, spool=None):
        job, name = ckpt.split(":")
        return os.path.join(spool or self.spool, str(self.uid), "ckpt", job, name, "log", "%08d" % seq)

    def allocations(self, jobs):
        """{job: (start, end)} in epoch seconds with milliseconds, from slurmctld's own
        log: when it allocated the job's CPUs (main scheduler or backfill) and when the
        job completed (the times jobcomp records in whole seconds)."""
        pattern = re.compile(r"^\[(\S+?)\.(\d{3})\] (?:sched: Allocate JobId=(\d+) |"
                             r"sched/backfill: _start_job: Started JobId=(\d+) |_job_complete: JobId=(\d+) done)")
        found = {}
        with open(os.path.join(self.cluster.workdir, "log", "slurmctld.log")) as f:
            for line in f:
                m = pattern.match(line)
                if not m:
                    continue
                t = slurm_time(m.group(1)) + int(m.group(2)) / 1000.0
                if m.group(3) or m.group(4):
                    found.setdefault(int(m.group(3) or m.group(4)), [None, None])[0] = t
                else:
                    found.setdefault(int(m.group(5)), [None, None])[1] = t
        missing = [j for j in jobs if j not in found or None in found[j]]
        if missing:
            raise RuntimeError("no allocation record in slurmctld.log for jobs %s" % missing)
        return {j: tuple(found[j]) for j in jobs}

    def backfill_ticks(self):
        """Times (ms) at which slurmctld's backfill loop started a job, oldest first."""
        pattern = re.compile(r"^\[(\S+?)\.(\d{3})\] sched/backfill: _start_job: Started JobId=")
        ticks = []
        with open(os.path.join(self.cluster.workdir, "log", "slurmctld.log")) as f:
            for line in f:
                m = pattern.match(line)
                if m:
                    ticks.append(slurm_time(m.group(1)) + int(m.group(2)) / 1000.0)
        if not ticks:
            raise RuntimeError("slurmctld's backfill loop has started no job yet")
        return ticks

    def step_log(self, jobs):
        """{job: {launch, start, exited, done}} of step JOB.0, from the slurmd logs (ms)."""
        keys = (("launch", re.compile(r"^\[(\S+?)\.(\d{3})\] launch task StepId=(\d+)\.0 request")),
                ("start", re.compile(r"^\[(\S+?)\.(\d{3})\] \[(\d+)\.0\] starting \d+ tasks")),
                ("exited", re.compile(r"^\[(\S+?)\.(\d{3})\] \[(\d+)\.0\] task 0 \(\d+\) exited")),
                ("done", re.compile(r"^\[(\S+?)\.(\d{3})\] \[(\d+)\.0\] done with job")))
        wanted = set(jobs)
        found = {}
        logdir = os.path.join(self.cluster.workdir, "log")
        for name in os.listdir(logdir):
            if not (name.startswith("slurmd.") and name.endswith(".log")):
                continue
            with open(os.path.join(logdir, name)) as f:
                for line in f:
                    for key, pattern in keys:
                        m = pattern.match(line)
                        if m and int(m.group(3)) in wanted:
                            found.setdefault(int(m.group(3)), {})[key] = \
                                slurm_time(m.group(1)) + int(m.group(2)) / 1000.0
        missing = [j for j in jobs if len(found.get(j, {})) != 4]
        if missing:
            raise RuntimeError("incomplete slurmd log records for steps %s" % missing)
        return found

    def jobcomp(self):
        """Slurm's own completion records: {job id: fields} from jobcomp/filetxt."""
        records = {}
        with open(os.path.join(self.cluster.workdir, "log", "jobcomp.log")) as f:
            for line in f:
                fields = parse_scontrol(line)
                if "JobId" in fields:
                    records[int(fields["JobId"])] = fields
        return records

    def wait_jobcomp(self, jobs, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            recs = self.jobcomp()
            if all(j in recs for j in jobs):
                return recs
            if time.monotonic() > deadline:
                raise RuntimeError("no jobcomp record for %s" % [j for j in jobs if j not in recs])
            time.sleep(0.2)


def read_stamp(path, timeout=120):
    """The float a job wrote as its first instruction (echo $EPOCHREALTIME > path)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return float(text)
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    raise RuntimeError("%s never written" % path)


def slurm_time(text):
    """Epoch seconds of a Slurm time stamp (local time, whole seconds)."""
    return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))


def hawf_time(text):
    """Epoch seconds of a hawf record time stamp (UTC, whole seconds)."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


# ---------------------------------------------------------------------------
# Results

class Results:

    def __init__(self):
        self.rows = []      # table rows
        self.notes = []     # lines printed under the table
        self.raw = {}       # raw samples, for the JSON file

    def timing(self, section, metric, hawf, base, goal=None, label=("hawf", "baseline"), unit="ms", scale=1000.0,
               paired=False):
        """A row from two sample lists (seconds); ratio = median(hawf) / median(base), or for
        paired samples (hawf[k] and base[k] taken under the same conditions) the ratio of
        the means with a bootstrap over the pairs."""
        self.raw[section + ": " + metric] = {label[0]: hawf, label[1]: base}
        if paired:
            r = statistics.fmean(hawf) / statistics.fmean(base)
            ci = paired_ratio_ci(hawf, base)
        else:
            r = median(hawf) / median(base) if median(base) > 0 else float("inf")
            ci = ratio_ci(hawf, base)
        met = None if goal is None else r <= goal
        self.rows.append({
            "section": section, "metric": metric, "n": "%d / %d" % (len(hawf), len(base)),
            "hawf": "%s / %s" % (fmt(median(hawf) * scale), fmt(p90(hawf) * scale)),
            "base": "%s / %s" % (fmt(median(base) * scale), fmt(p90(base) * scale)),
            "unit": unit, "ratio": ("%.3f" % r + (" (%.3f-%.3f)" % ci if ci else "") + (" means, paired" if paired else "")),
            "goal": "" if goal is None else "<= %gx" % goal,
            "met": "" if met is None else ("yes" if met else "NO"), "labels": label})
        return r

    def value(self, section, metric, hawf, base, ratio, goal, met, unit="", n=""):
        self.rows.append({"section": section, "metric": metric, "n": n, "hawf": hawf, "base": base, "unit": unit,
                          "ratio": ratio, "goal": goal, "met": "" if met is None else ("yes" if met else "NO"),
                          "labels": None})

    def table(self):
        head = ("| benchmark | metric | n | hawf median / p90 | baseline median / p90 | unit "
                "| ratio (95% CI) | goal | met |")
        lines = [head, "|" + "---|" * 9]
        for r in self.rows:
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["section"], r["metric"], r["n"], r["hawf"], r["base"], r["unit"], r["ratio"], r["goal"], r["met"]))
        return "\n".join(lines)


def fmt(x):
    if x >= 100:
        return "%.0f" % x
    if x >= 10:
        return "%.1f" % x
    return "%.2f" % x


# ---------------------------------------------------------------------------
# 0. plugstack.conf is read at every launch

def check_plugstack_per_launch(b):
    """srun and slurmstepd read plugstack.conf at every launch: a rewritten file takes
    effect for the next step (slurmstepd is the parent of the task; root may read its maps)."""
    probe = ["srun", "-N1", "bash", "-c", 'echo "$(cat /proc/$PPID/comm) $(grep -c hawf.so /proc/$PPID/maps)"']
    seen = []
    for loaded in (True, False, True):
        b.set_plugin(loaded)
        out = subprocess.run(probe, env=b.cluster.env, cwd=b.cluster.workdir, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True).stdout.split()
        opt = b.run(["srun", "--hawf-checkpoint=probe%d" % len(seen), "true"], check=False).returncode
        seen.append((loaded, out, opt))
    for loaded, out, opt in seen:
        stepd_has_it = len(out) == 2 and out[0] == "slurmstepd" and out[1] != "0"
        if stepd_has_it != loaded or (opt == 0) != loaded:
            raise RuntimeError("plugstack.conf is not read per launch: %s" % seen)
    return "plugstack.conf rewritten between samples takes effect at the next launch " \
           "(checked: hawf.so mapped in slurmstepd and --hawf-* known to srun exactly when listed)"


# ---------------------------------------------------------------------------
# 1. Plugin overhead

def bench_overhead(b, res, n_srun, n_sbatch, n_ckpt):
    # Against no plugin (the goal), and against a plugin that does nothing (what any
    # SPANK plugin costs: the floor hawf's front can reach).
    held = []
    for other, label in ((False, "not loaded"), ("null", "a do-nothing plugin")):
        log("overhead: srun true, %d with hawf / %d with %s, interleaved" % (n_srun, n_srun, label))
        samples = {"a": [], "b": []}
        for who in abba(n_srun):
            b.set_plugin(True if who == "a" else other)
            samples[who].append(b.timed(["srun", "true"])[0])
        res.timing("overhead", "srun true (wall)" + (" vs " + label if other else ""), samples["a"], samples["b"],
                   goal=1.005 if not other else None, label=("hawf loaded", label))
        log("overhead: sbatch submission (held, returns at once), %d with hawf / %d with %s" % (n_srun, n_srun, label))
        submit = {"a": [], "b": []}
        for who in abba(n_srun):
            b.set_plugin(True if who == "a" else other)
            secs, _, p = b.timed(["sbatch", "--hold", "--parsable", "-o", "/dev/null", "--wrap", "true"])
            submit[who].append(secs)
            held.append(p.stdout.strip().split(";")[0])
        res.timing("overhead", "sbatch submission (wall)" + (" vs " + label if other else ""), submit["a"],
                   submit["b"], goal=1.005 if not other else None, label=("hawf loaded", label))
    b.set_plugin(True)
    b.run(["scancel"] + held)

    log("overhead: sbatch --wait of an empty job, %d with / %d without, interleaved" % (n_sbatch, n_sbatch))
    b.script("empty.sh", '#!/bin/bash\necho $EPOCHREALTIME > "%s/empty.$SLURM_JOB_ID"\n' % b.home)
    wait = {"a": [], "b": []}
    start = {"a": [], "b": []}
    for who in abba(n_sbatch):
        b.set_plugin(who == "a")
        t_submit = time.time()
        secs, _, p = b.timed(["sbatch", "--wait", "--parsable", "-o", "/dev/null", "empty.sh"])
        job = int(p.stdout.strip().split(";")[0])
        wait[who].append(secs)
        start[who].append(read_stamp(os.path.join(b.home, "empty.%d" % job)) - t_submit)
    b.set_plugin(True)
    res.timing("overhead", "sbatch --wait, empty job (wall)", wait["a"], wait["b"], goal=1.02,
               label=("hawf loaded", "not loaded"))
    res.timing("overhead", "sbatch -> empty job's first instruction", start["a"], start["b"],
               label=("hawf loaded", "not loaded"))

    log("overhead: srun with / without --hawf-checkpoint, %d each, interleaved" % n_ckpt)
    b.set_plugin(True)
    wall = {"a": [], "b": []}
    jobs = {"a": [], "b": []}
    for i, who in enumerate(abba(n_ckpt)):
        args = ["srun"] + (["--hawf-checkpoint=c%d" % i] if who == "a" else []) + ["bash", "-c", "echo $SLURM_JOB_ID"]
        secs, _, p = b.timed(args)
        wall[who].append(secs)
        jobs[who].append(int(p.stdout.split()[0]))
        if who == "a":
            b.wait_event("%d:c%d" % (jobs["a"][-1], i), "pending", timeout=30)
    # Where the checkpoint's work happens, from slurmstepd's own log lines (ms): opening
    # (user_init) between the launch request and the tasks starting; ending (exit)
    # between the task's exit and the step being done.
    steps = b.step_log([j for js in jobs.values() for j in js])
    start = {k: [steps[j]["start"] - steps[j]["launch"] for j in js] for k, js in jobs.items()}
    end = {k: [steps[j]["done"] - steps[j]["exited"] for j in js] for k, js in jobs.items()}
    lab = ("--hawf-checkpoint", "no checkpoint")
    res.timing("overhead", "srun step with vs without --hawf-checkpoint (wall)", wall["a"], wall["b"], label=lab)
    res.timing("overhead", "step start: launch request -> task starts (slurmd log)", start["a"], start["b"],
               label=lab)
    res.timing("overhead", "step end: task exits -> step done (slurmd log)", end["a"], end["b"], label=lab)
    for what, d in (("start", start), ("end", end)):
        extra = (median(d["a"]) - median(d["b"])) * 1000.0  # seconds in the log
        res.value("overhead", "checkpoint step %s over a plain step (medians)" % what, "%+.1f" % extra, "-", "-",
                  "<= +2 ms", extra <= 2.0, unit="ms", n="%d / %d" % (len(d["a"]), len(d["b"])))


# ---------------------------------------------------------------------------
# 2. Decision -> follow-up start

def bench_latency(b, res, n):
    log("latency: preparing %d checkpoints with a held follow-up and %d equivalent held jobs" % (n, n))
    b.set_plugin(True)
    b.script("train.sh", "#!/bin/bash\ntrue\n")
    b.script("follow.sh", '#!/bin/bash\necho $EPOCHREALTIME > "%s/ts.$SLURM_JOB_ID"\n' % b.home)
    hawf, raw, deps = [], [], []
    for _ in range(n):
        job = b.sbatch("-o", "/dev/null", "--hawf-checkpoint=eval", "--hawf-then=follow.sh", "train.sh")
        hawf.append("%d:eval" % job)
        # The same shape in raw Slurm: held, afterok on a job that runs meanwhile.
        deps.append(b.sbatch("-o", "/dev/null", "train.sh"))
        raw.append(b.sbatch("--hold", "--dependency=afterok:%d" % deps[-1], "--kill-on-invalid-dep=yes",
                            "follow.sh"))
    calibration = [b.sbatch("--hold", "-o", "/dev/null", "train.sh") for _ in range(2)]
    follow = {}
    for ckpt in hawf:
        b.wait_event(ckpt, "pending")
        follow[ckpt] = int([e for e in b.events(ckpt) if e["event"] == "follow-up"][0]["follow_up"]["job"])
    for job in deps:
        b.wait_job(job)

    # Slurm 22.05 starts a released job from its backfill loop, once a second here
    # (bf_interval=1): the wait for that tick is uniform over 0-1 s whatever released
    # the job, and would drown a difference of milliseconds. So the two sides are
    # paired: sample k of each side is released at the same phase before a tick, the
    # phases spread evenly over the second (common random numbers). The tick is
    # known from slurmctld's log of the jobs it started.
    for job in calibration:
        b.run(["scontrol", "release", str(job)])
        b.wait_job(job)
        time.sleep(0.3)
    phases = [(i + 0.5) / n for i in range(n)]
    random.Random(4).shuffle(phases)
    duration = {"a": [0.012], "b": [0.005]}       # expected command durations, updated
    log("latency: %d hawf-decide vs %d scontrol release, interleaved, phase-matched" % (n, n))
    lat, wait, launch = {"a": [], "b": []}, {"a": [], "b": []}, {"a": [], "b": []}
    decide = []
    it = {"a": iter(hawf), "b": iter(raw)}
    count = {"a": 0, "b": 0}
    for who in abba(n):
        phase = phases[count[who]]
        count[who] += 1
        b.set_plugin(who == "a")            # raw Slurm: hawf not even loaded
        ticks = b.backfill_ticks()
        period = tick_period(ticks)
        d = median(duration[who])
        now = time.time()
        k = math.ceil((now + 0.05 + phase + d - ticks[-1]) / period)
        time.sleep(max(0.0, ticks[-1] + k * period - phase - d - time.time()))
        if who == "a":
            ckpt = next(it["a"])
            secs, t_ret, _ = b.timed(["hawf-decide", ckpt, "approve"])
            decide.append(secs)
            job = follow[ckpt]
        else:
            job = next(it["b"])
            secs, t_ret, _ = b.timed(["scontrol", "release", str(job)])
        duration[who].append(secs)
        first = read_stamp(os.path.join(b.home, "ts.%d" % job))
        b.wait_job(job)                  # the next sample starts on idle nodes
        started = b.allocations([job])[job][0]
        lat[who].append(first - t_ret)
        wait[who].append(started - t_ret)
        launch[who].append(first - started)
    b.set_plugin(True)
    lab = ("hawf-decide", "scontrol release")
    res.timing("latency", "command returns -> follow-up's first instruction", lat["a"], lat["b"], goal=1.10,
               label=lab, paired=True)
    res.timing("latency", "  of which: command returns -> slurmctld starts the job", wait["a"], wait["b"],
               label=lab, paired=True)
    res.timing("latency", "  of which: job started -> its first instruction", launch["a"], launch["b"], label=lab,
               paired=True)
    res.raw["latency: hawf-decide duration"] = decide
    res.value("latency", "hawf-decide itself (record + scontrol release)",
              "%s / %s" % (fmt(median(decide) * 1000), fmt(p90(decide) * 1000)), "-", "-", "", None, unit="ms",
              n=str(len(decide)))


def tick_period(ticks):
    """The backfill loop's period, from the times it started jobs (about 1 s + its run time)."""
    periods = []
    for t0, t1 in zip(ticks, ticks[1:]):
        k = round(t1 - t0)
        if 1 <= k <= 30:
            periods.append((t1 - t0) / k)
    return median(periods) if periods else 1.0


# ---------------------------------------------------------------------------
# 3. Idle compute while the human thinks

def bench_idle(b, res, plan):
    b.set_plugin(True)
    b.script("idle-train.sh", "#!/bin/bash\ntrue\n")
    b.script("idle-resume.sh", '#!/bin/bash\necho $EPOCHREALTIME > "%s/resumed.$SLURM_JOB_ID"\n' % b.home)
    b.script("idle-naive.sh", "#!/bin/bash\n"
             "hawf-await --open=eval >/dev/null || exit 1\n"        # the checkpoint: training is done
             'hawf-await "$SLURM_JOB_ID:eval" >/dev/null || exit 1\n'  # blocks, allocation held
             'echo $EPOCHREALTIME > "%s/resumed.$SLURM_JOB_ID"\n' % b.home)
    runs = []

    def hawf_flow(delay, out):
        job = b.sbatch("-o", "/dev/null", "--hawf-checkpoint=eval", "--hawf-then=idle-resume.sh", "idle-train.sh")
        ckpt = "%d:eval" % job
        b.wait_event(ckpt, "pending")
        time.sleep(delay)                                     # the human thinks
        b.run(["hawf-decide", ckpt, "approve"])
        follow = int([e for e in b.events(ckpt) if e["event"] == "follow-up"][0]["follow_up"]["job"])
        b.wait_job(follow)
        out.update(kind="hawf", delay=delay, ckpt=ckpt, jobs=[job, follow], resume_job=follow)

    def naive_flow(delay, out):
        job = b.sbatch("-o", "/dev/null", "idle-naive.sh")
        ckpt = "%d:eval" % job
        b.wait_event(ckpt, "pending")
        time.sleep(delay)
        b.run(["hawf-decide", ckpt, "approve"])
        b.wait_job(job)
        out.update(kind="naive", delay=delay, ckpt=ckpt, jobs=[job], resume_job=None)

    for delay, pairs in plan:
        for i in range(pairs):
            log("idle: D=%ds, pair %d/%d (hawf and naive side by side)" % (delay, i + 1, pairs))
            outs = [{}, {}]
            flows = [hawf_flow, naive_flow] if i % 2 == 0 else [naive_flow, hawf_flow]
            threads = [threading.Thread(target=f, args=(delay, o)) for f, o in zip(flows, outs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for o in outs:
                if "jobs" not in o:
                    raise RuntimeError("idle benchmark flow failed: %s" % outs)
            runs += outs

    all_jobs = [j for r in runs for j in r["jobs"]]
    recs = b.wait_jobcomp(all_jobs)
    alloc = b.allocations(all_jobs)
    mismatches = []
    table = {}
    for r in runs:
        for j in r["jobs"]:
            rec = recs[j]
            if rec["JobState"] != "COMPLETED":
                raise RuntimeError("idle benchmark job %s: %s" % (j, rec["JobState"]))
            # The controller's millisecond times must round down to jobcomp's seconds.
            if (int(alloc[j][0]) != slurm_time(rec["StartTime"]) or int(alloc[j][1]) != slurm_time(rec["EndTime"])):
                mismatches.append(j)
        # The checkpoint: when its pending record was written (the spool file's mtime).
        pending = [e for e in b.events(r["ckpt"]) if e["event"] == "pending"][0]
        c = os.stat(b.event_path(r["ckpt"], pending["seq"])).st_mtime_ns / 1e9
        c_whole = hawf_time(pending["at"])
        # Resumption: the follow-up's start (hawf); the naive job's end (its resumed
        # part is one echo, so it ends as it resumes).
        if r["resume_job"]:
            end_ms, end_s = alloc[r["resume_job"]][0], slurm_time(recs[r["resume_job"]]["StartTime"])
        else:
            end_ms, end_s = alloc[r["jobs"][0]][1], slurm_time(recs[r["jobs"][0]]["EndTime"])
        held_ms = sum(int(recs[j]["ProcCnt"]) * max(0.0, min(alloc[j][1], end_ms) - max(alloc[j][0], c))
                      for j in r["jobs"])
        held_s = sum(int(recs[j]["ProcCnt"]) * max(0, min(slurm_time(recs[j]["EndTime"]), end_s) -
                                                   max(slurm_time(recs[j]["StartTime"]), c_whole))
                     for j in r["jobs"])
        total = sum(int(recs[j]["ProcCnt"]) * (slurm_time(recs[j]["EndTime"]) - slurm_time(recs[j]["StartTime"]))
                    for j in r["jobs"])
        r.update(window_s=end_ms - c, held_core_s=held_ms, held_core_s_whole=held_s, total_core_s=total,
                 alloc={j: alloc[j] for j in r["jobs"]})
        table.setdefault(r["delay"], {"hawf": [], "naive": []})[r["kind"]].append(r)
    res.raw["idle: runs"] = runs
    if mismatches:
        res.notes.append("idle: slurmctld.log and jobcomp disagree for jobs %s" % mismatches)
    for delay, kinds in sorted(table.items()):
        def col(kind, key, form):
            xs = [r[key] for r in kinds[kind]]
            return xs, (form + " (max " + form + ")") % (median(xs), max(xs))
        h, hs = col("hawf", "held_core_s", "%.3f")
        nv, ns = col("naive", "held_core_s", "%.2f")
        res.value("idle compute", "D=%ds: core-s allocated, checkpoint -> resumption (ms records)" % delay,
                  hs, ns, "%.4f" % (median(h) / median(nv)), "hawf 0 (< 0.1: teardown)",
                  max(h) < 0.1, unit="core-s", n="%d / %d" % (len(h), len(nv)))
        h, hs = col("hawf", "held_core_s_whole", "%g")
        nv, ns = col("naive", "held_core_s_whole", "%g")
        res.value("idle compute", "D=%ds: the same from jobcomp (whole seconds)" % delay,
                  hs, ns, "%.2f" % (median(h) / median(nv)), "", None, unit="core-s",
                  n="%d / %d" % (len(h), len(nv)))
        h, hs = col("hawf", "total_core_s", "%g")
        nv, ns = col("naive", "total_core_s", "%g")
        res.value("idle compute", "D=%ds: whole workflow, jobcomp (whole seconds)" % delay,
                  hs, ns, "%.2f" % (median(h) / median(nv)), "", None, unit="core-s",
                  n="%d / %d" % (len(h), len(nv)))


# ---------------------------------------------------------------------------
# 4. Spool at scale

def generate(b, name, history, pending, extra=(), parent=None, user=None):
    spool, conf = b.make_spool(name, parent)
    p = b.run(["hawf-bench-gen", spool, "--history=%d" % history, "--pending=%d" % pending] + list(extra),
              conf=conf, timeout=1800, user=user)
    return spool, conf, p.stdout.split()


def mount_tmpfs(path, res):
    """A private tmpfs for the big spools: generating them is not slowed by (nor slows)
    the other disk traffic of the machine, and removing 800 000 entries is one umount
    instead of minutes of unlinks. Falls back to a plain directory."""
    os.mkdir(path, 0o755)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8g,mode=0755", "hawf-bench", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        res.notes.append("scale: no tmpfs (%s): spools on %s, slow to remove" % (p.stdout.strip(), path))
        return None
    res.notes.append("scale: the two big spools live on a private tmpfs (see docs/benchmarks.md)")
    return path


def strace_counts(b, argv, conf):
    """({syscall: calls}, stdout) of one run under strace -c -f (as the user)."""
    out = os.path.join(b.home, "strace.out")
    if os.path.exists(out):
        os.unlink(out)
    p = b.run(["strace", "-f", "-c", "-o", out, "--"] + argv, conf=conf)
    counts = {}
    with open(out) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 5 and parts[-1] != "total" and parts[0][0].isdigit():
                counts[parts[-1]] = int(parts[3])
    return counts, p.stdout


def bench_scale(b, res, spools, n_ls, n_one):
    (spool_a, conf_a, pend_a), (spool_b, conf_b, pend_b) = spools
    pend_a, pend_b = list(pend_a), list(pend_b)
    random.Random(2).shuffle(pend_a)
    random.Random(3).shuffle(pend_b)
    log("scale: hawf ls, %d each, 1k vs 100k history, interleaved" % n_ls)
    ls = {"a": [], "b": []}
    for who in abba(n_ls):
        ls[who].append(b.timed(["hawf", "ls"], conf=conf_b if who == "b" else conf_a)[0])
    log("scale: hawf show and hawf-decide, %d each" % n_one)
    show = {"a": [], "b": []}
    dec = {"a": [], "b": []}
    it = {"a": iter(pend_a), "b": iter(pend_b)}
    for who in abba(n_one):
        conf = conf_b if who == "b" else conf_a
        show[who].append(b.timed(["hawf", "show", next(it[who])], conf=conf)[0])
    for who in abba(n_one):
        conf = conf_b if who == "b" else conf_a
        dec[who].append(b.timed(["hawf-decide", next(it[who]), "approve"], conf=conf)[0])
    lab = ("100k history", "1k history")
    res.timing("scale", "hawf ls (10 000 pending)", ls["b"], ls["a"], goal=1.2, label=lab)
    res.timing("scale", "hawf show CKPT", show["b"], show["a"], goal=1.2, label=lab)
    res.timing("scale", "hawf-decide CKPT", dec["b"], dec["a"], goal=1.2, label=lab)

    if not shutil.which("strace"):
        res.notes.append("strace not installed: syscall counts skipped (scripts/install-deps.sh installs it)")
        return
    log("scale: strace -c -f counts")
    for what, argv_of in (("hawf ls (10 000 pending)", lambda c: ["hawf", "ls"]),
                          ("hawf show CKPT", lambda c: ["hawf", "show", c]),
                          ("hawf-decide CKPT", lambda c: ["hawf-decide", c, "approve"])):
        counts, rows = {}, {}
        for key, conf in (("a", conf_a), ("b", conf_b)):
            counts[key], out = strace_counts(b, argv_of(next(it[key])), conf)
            rows[key] = len(out.splitlines()) - 1       # hawf ls: the lines under its header
        meta = {k: sum(n for s, n in c.items() if s in METADATA_CALLS) for k, c in counts.items()}
        sync = {k: sum(n for s, n in c.items() if s in SYNC_CALLS) for k, c in counts.items()}
        detail = {k: {s: n for s, n in sorted(c.items()) if s in METADATA_CALLS | SYNC_CALLS}
                  for k, c in counts.items()}
        res.raw["scale: strace " + what] = detail
        res.value("scale", what + ": metadata syscalls (fsyncs)", "%d (%d)" % (meta["b"], sync["b"]),
                  "%d (%d)" % (meta["a"], sync["a"]), "%.3f" % (meta["b"] / meta["a"]), "equal",
                  meta["a"] == meta["b"], unit="calls", n="1 / 1")
        if what.startswith("hawf ls"):                  # issue 13: each a round trip on NFS
            per = {k: meta[k] / rows[k] for k in meta}
            res.value("scale", "hawf ls: metadata syscalls per listed checkpoint", "%.2f" % per["b"],
                      "%.2f" % per["a"], "%.3f" % (per["b"] / per["a"]), "<= 4", max(per.values()) <= 4,
                      unit="calls", n="%d / %d listed" % (rows["b"], rows["a"]))


def root_peak_rss(b, argv, conf):
    """Peak resident KiB of one run of ARGV as root. GNU time forks it from a small
    process: a child forked from this Python would count Python's own pages."""
    env = b.env(conf)
    env.update({"HOME": "/root", "USER": "root", "LOGNAME": "root"})
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + argv, env=env, cwd="/", stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (" ".join(argv), p.returncode, p.stderr))
    return int(p.stderr.split()[-1])


def bench_bounds(b, res, small, big, n):
    """Root's listings over one user's flood of pending checkpoints stay within a fixed
    memory bound: peak RSS with BIG pending vs SMALL (the default per-user limit,
    limits.max_checkpoints: what is past it is not read), and with the limit raised
    above BIG (streaming alone: a small row per checkpoint)."""
    log("bounds: generating %d and %d pending checkpoints of one user" % (small, big))
    spools = {}
    for key, count in (("small", small), ("big", big)):
        spool, conf = b.make_spool("bounds-%s" % key)
        b.run(["hawf-bench-gen", spool, "--history=0", "--pending=%d" % count, "--first-job=3000000"], conf=conf,
              timeout=1800)
        raised = conf[:-len(".yaml")] + "-raised.yaml"
        with open(raised, "w") as f:
            f.write("spool: %s\npoll_interval: 1s\nlimits:\n  max_checkpoints: %d\n" % (spool, big + 1))
        os.chmod(raised, 0o644)
        spools[key] = (conf, raised)
    for what, argv in (("hawf ls --all", ["hawf", "ls", "--all"]), ("hawf log", ["hawf", "log"])):
        for limit, index in (("default limit", 0), ("limit raised to %d" % (big + 1), 1)):
            rss = {"small": [], "big": []}
            for who in abba(n):
                key = "big" if who == "b" else "small"
                rss[key].append(root_peak_rss(b, argv, spools[key][index]))
            res.raw["bounds: %s, %s" % (what, limit)] = rss
            ratio = median(rss["big"]) / median(rss["small"])
            res.value("bounds", "root's %s, %s: peak RSS" % (what, limit), "%d" % median(rss["big"]),
                      "%d" % median(rss["small"]), "%.2f" % ratio, "<= 1.2" if index == 0 else "",
                      ratio <= 1.2 if index == 0 else None, unit="KiB (%d vs %d pending)" % (big, small),
                      n="%d / %d" % (n, n))


# ---------------------------------------------------------------------------
# 5. Concurrency: 8 deciders and a timeout writer

DECIDER = r"""
while read -r c; do
  hawf-decide "$c" approve >/dev/null 2>>"$1.err"
  echo "$c $?"
done < "$1" > "$1.rc"
"""
TIMEOUT_WRITER = r"""
while read -r c; do
  hawf-await --poll "$c" >/dev/null 2>>"$1.err"
  echo "$c $?"
done < "$1" > "$1.rc"
"""


def run_workers(b, conf, workers):
    """Starts every (script, list of checkpoints) at once; returns wall seconds and exit codes."""
    procs = []
    files = []
    for i, (script, ckpts) in enumerate(workers):
        path = os.path.join(b.home, "race.%s.%d" % (os.path.basename(conf), i))
        with open(path, "w") as f:
            f.write("\n".join(ckpts) + "\n")
        os.chown(path, b.uid, b.gid)
        files.append(path)
    t0 = time.perf_counter()
    for (script, _), path in zip(workers, files):
        procs.append(b.popen(["bash", "-c", script, "worker", path], conf=conf))
    for p in procs:
        p.communicate()
    wall = time.perf_counter() - t0
    codes = []
    for path in files:
        with open(path + ".rc") as f:
            codes.append([line.split() for line in f if line.strip()])
    return wall, codes


def bench_race(b, res, n):
    log("race: %d checkpoints past their deadline" % n)
    spool, conf, ckpts = generate(b, "race", 0, n, ["--first-job=3000000", "--timeout=60", "--ago=3600"])
    spool1, conf1, ckpts1 = generate(b, "race1", 0, n, ["--first-job=4000000"])
    # Each checkpoint is given to two deciders, which reach it at about the same moment
    # (both walk their lists in order); the timeout writer walks all of them backwards.
    deciders = [[c for i, c in enumerate(ckpts) if i % 8 in (k, (k + 1) % 8)] for k in range(8)]
    workers = [(DECIDER, d) for d in deciders] + [(TIMEOUT_WRITER, list(reversed(ckpts)))]
    log("race: 8 deciders + 1 timeout writer")
    wall, codes = run_workers(b, conf, workers)
    log("race: baseline, 1 decider alone")
    wall1, codes1 = run_workers(b, conf1, [(DECIDER, ckpts1)])

    # Exactly one decision per checkpoint, read straight from the records.
    problems = []
    human = set()
    timeout = 0
    for c in ckpts:
        evs = b.events(c, spool)
        decided = [e for e in evs if e["event"] in ("decided", "amended", "revoked")]
        if len(decided) != 1 or decided[0]["event"] != "decided":
            problems.append("%s: %s" % (c, [e["event"] for e in evs]))
            continue
        if decided[0]["via"] == "timeout" and decided[0]["by"] == "timeout":
            timeout += 1
        elif decided[0]["via"] == "cli" and decided[0]["by"] == USER:
            human.add(c)
        else:
            problems.append("%s: decided by %s via %s" % (c, decided[0]["by"], decided[0]["via"]))
    wins = {}
    for worker in codes[:8]:
        for c, rc in worker:
            if rc == "0":
                wins[c] = wins.get(c, 0) + 1
            elif rc != "1":
                problems.append("%s: hawf-decide exit %s" % (c, rc))
    for c, rc in codes[8]:
        if rc != "0":
            problems.append("%s: hawf-await exit %s" % (c, rc))
    if set(wins) != human or any(v != 1 for v in wins.values()):
        problems.append("hawf-decide successes do not match the records")
    left = os.listdir(os.path.join(spool, str(b.uid), "pending"))
    if left:
        problems.append("%d entries left in the pending index" % len(left))
    attempts = sum(len(w) for w in codes)
    rate, rate1 = n / wall, n / wall1
    res.raw["race"] = {"wall_s": wall, "wall_1_s": wall1, "human": len(human), "timeout": timeout,
                       "attempts": attempts, "problems": problems[:50]}
    res.value("race", "%d checkpoints: decisions/s, 8 deciders + timeout writer vs 1 decider alone" % n,
              "%.0f" % rate, "%.0f" % rate1, "%.2f" % (rate / rate1), "", None, unit="decisions/s",
              n="%d / %d attempts" % (attempts, len(codes1[0])))
    res.value("race", "attempts/s (each hawf-decide or hawf-await run)", "%.0f" % (attempts / wall),
              "%.0f" % (len(codes1[0]) / wall1), "%.2f" % ((attempts / wall) / (len(codes1[0]) / wall1)), "", None,
              unit="runs/s", n="%d / %d" % (attempts, len(codes1[0])))
    res.value("race", "checkpoints with exactly one decision (human / timeout)",
              "%d / %d (%d / %d)" % (n - len([p for p in problems if ":" in p]), n, len(human), timeout),
              "-", "-", "all", not problems, n=str(n))
    if problems:
        res.notes.append("race problems: %s" % "; ".join(problems[:10]))
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(spool1, ignore_errors=True)


# ---------------------------------------------------------------------------
# Bulk decisions on an array (issue 12)

def user_rpcs(b):
    """The RPCs slurmctld has counted from the bench user so far (sdiag, by user; sdiag
    itself runs as root)."""
    p = subprocess.run(["sdiag"], env=b.cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    by_user = p.stdout.split("statistics by user", 1)
    if p.returncode != 0 or len(by_user) != 2:
        raise RuntimeError("sdiag: %s" % (p.stderr or p.stdout))
    for line in by_user[1].splitlines():
        m = re.match(r"\s*(\S+)\s+\(\s*(\d+)\)\s+count:(\d+)", line)
        if m and int(m.group(2)) == b.uid:
            return int(m.group(3))
    return 0


def bench_bulk(b, res, n, rounds):
    """N checkpoints of an array's tasks, each with its task of one follow-up array
    (what --hawf-then on an array job registers), decided and released by one
    hawf-decide JOB_*:eval; vs scontrol release of the N follow-up tasks alone (the
    floor: what Slurm itself needs), and vs one hawf-decide per task (before bulk
    decisions). The array's tasks stay held, so the follow-ups stay queued
    (aftercorr) and each round revokes and decides again."""
    log("bulk: %d array tasks, decided and released in one command" % n)
    job = b.sbatch("--hold", "--array=1-%d" % n, "--wrap=true")
    follow = b.sbatch("--hold", "--array=1-%d" % n, "--dependency=aftercorr:%d" % job, "--wrap=true")
    spool, conf, ckpts = generate(b, "bulk", 0, n, ["--array=%d" % job, "--followups=%d" % follow])
    every, tasks = "%d_*:eval" % job, "%d_[1-%d]" % (follow, n)
    problems = []

    def held():
        p = b.run(["squeue", "--noheader", "--array", "--jobs=%d" % follow, "--format=%r"])
        return sum(1 for line in p.stdout.splitlines() if line.strip() == "JobHeldUser")

    def measured(argv):
        before = user_rpcs(b)
        t, _, p = b.timed(argv, conf=conf)
        rpcs = user_rpcs(b) - before
        if held():
            problems.append("%s left %d follow-up tasks held" % (argv[0], held()))
        return t, rpcs

    bulk_t, bulk_rpc, floor_t, floor_rpc = [], [], [], []
    for i in range(rounds):
        log("bulk: round %d of %d" % (i + 1, rounds))
        t, r = measured(["hawf-decide", every, "approve"])
        bulk_t.append(t)
        bulk_rpc.append(r)
        b.run(["hawf-decide", "--revoke", every], conf=conf)
        if held() != n:
            problems.append("the revoke left %d of %d follow-up tasks held" % (held(), n))
        t, r = measured(["scontrol", "release", tasks])
        floor_t.append(t)
        floor_rpc.append(r)
        b.run(["scontrol", "hold", tasks])
    log("bulk: baseline, one hawf-decide per task")
    before, t0 = user_rpcs(b), time.perf_counter()
    for c in ckpts:
        b.run(["hawf-decide", c, "approve"], conf=conf)
    one_t, one_rpc = time.perf_counter() - t0, user_rpcs(b) - before
    if held():
        problems.append("one hawf-decide per task left %d follow-up tasks held" % held())
    res.raw["bulk"] = {"n": n, "bulk_s": bulk_t, "bulk_rpcs": bulk_rpc, "scontrol_s": floor_t,
                       "scontrol_rpcs": floor_rpc, "one_by_one_s": one_t, "one_by_one_rpcs": one_rpc,
                       "problems": problems}
    res.timing("bulk", "hawf-decide JOB_*:eval, %d tasks decided and released, vs scontrol release of their "
               "follow-up tasks alone" % n, bulk_t, floor_t, label=("hawf", "scontrol"))
    # The floor: the release, and the squeue that tells which tasks JOB_* names.
    before = user_rpcs(b)
    b.run(["squeue", "--noheader", "--states=all", "--jobs=%d" % job])
    rpc, rpc0 = median(bulk_rpc), median(floor_rpc) + user_rpcs(b) - before
    res.value("bulk", "Slurm RPCs of that command vs squeue --jobs=JOB and scontrol release alone", "%d" % rpc,
              "%d" % rpc0, "%.2f" % (rpc / rpc0 if rpc0 else float("inf")), "<= 1.00x", rpc <= rpc0, unit="RPCs",
              n="%d / %d" % (len(bulk_rpc), len(floor_rpc)))
    res.value("bulk", "%d tasks: one hawf-decide vs one per task, wall" % n, "%.2f" % median(bulk_t), "%.2f" % one_t,
              "%.4f" % (median(bulk_t) / one_t), "", None, unit="s")
    res.value("bulk", "%d tasks: one hawf-decide vs one per task, Slurm RPCs" % n, "%d" % rpc, "%d" % one_rpc,
              "%.4f" % (rpc / one_rpc if one_rpc else float("inf")), "", None, unit="RPCs")
    res.value("bulk", "every follow-up task released by each decision (none left held)", "yes" if not problems else "NO",
              "-", "-", "all", not problems)
    if problems:
        res.notes.append("bulk problems: %s" % "; ".join(problems[:10]))
    b.run(["scancel", str(job), str(follow)])
    shutil.rmtree(spool, ignore_errors=True)


# ---------------------------------------------------------------------------
# 6-8. Reviewers and hawfd (issue 9)

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_passwd_namespace(passwd, argv):
    """ARGV in a private mount namespace where PASSWD is /etc/passwd (the bench's extra
    users exist there alone: nothing of the machine's user database changes)."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount --bind "$0" /etc/passwd && exec "$@"', passwd] + [str(a) for a in argv]


class HawfdProc:
    """A real hawfd as root, like tests/integration/hawftest.py's Hawfd fixture: a free
    loopback port, the cluster's munged, its state under the bench's work directory,
    a hawfd: section added to CONF (which names the spool it serves), Slurm's
    SLURM_CONF and PATH in its environment. PASSWD: run it where that file is
    /etc/passwd (in_passwd_namespace)."""

    def __init__(self, b, conf, name, passwd=None, stamp=False):
        if not b.hawfd:
            raise RuntimeError("no hawfd in the build (BUILD/hawfd/hawfd): build it first")
        self.b, self.conf, self.name, self.passwd = b, conf, name, passwd
        # STAMP: hawfd's log lines (which carry no time) also kept as (time.monotonic()
        # on arrival, line), read through a pipe by a thread of the bench.
        self.stamp = stamp
        self.stamped = []
        self.reader = None
        self.address = "127.0.0.1:%d" % free_port()
        self.log_path = os.path.join(b.root, name + ".log")
        self.state = os.path.join(b.root, name + "-state")
        with open(conf) as f:
            self.original = f.read()
        with open(conf, "a") as f:
            f.write("hawfd:\n  listen: \"%s\"\n  address: \"%s\"\n  state: %s\n  munge_socket: %s\n"
                    % (self.address, self.address, self.state, b.cluster.munge_socket))
        self.proc = None

    def start(self, timeout=30):
        # The log is appended to across restarts: wait for this start's "listening on".
        offset = len(self.log())
        argv = [self.b.hawfd, "--foreground", "--conf=" + self.conf]
        if self.passwd:
            argv = in_passwd_namespace(self.passwd, argv)
        if self.stamp:
            self.proc = subprocess.Popen(argv, env=self.b.cluster.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            self.reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
            self.reader.start()
        else:
            with open(self.log_path, "ab") as f:
                self.proc = subprocess.Popen(argv, env=self.b.cluster.env, stdin=subprocess.DEVNULL, stdout=f,
                                             stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log()[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("hawfd did not start (exit %s):\n%s" % (self.proc.poll(), self.log()[offset:]))
            time.sleep(0.01)
        return self

    def _read(self, pipe):
        with open(self.log_path, "ab", buffering=0) as f:
            for line in pipe:
                self.stamped.append((time.monotonic(), line.decode(errors="replace").rstrip("\n")))
                f.write(line)
        pipe.close()

    def lines_since(self, t, needle):
        """(time, line) of the log lines containing NEEDLE that arrived at or after T (monotonic)."""
        return [(at, line) for at, line in list(self.stamped) if at >= t and needle in line]

    def stop(self, restore=True):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                log("%s did not stop within 15 s of SIGTERM: killed" % self.name)
            if time.monotonic() - t0 > 1:
                log("%s took %.1f s to stop" % (self.name, time.monotonic() - t0))
        if self.reader:
            self.reader.join(5)
            self.reader = None
        if restore:
            with open(self.conf, "w") as f:
                f.write(self.original)

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def usage(self):
        """hawfd's own CPU seconds (user+system), its children's (reaped), RSS and peak RSS (KiB), threads."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        status = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.split()[0] if value.split() else ""
        return {"cpu_s": (int(fields[11]) + int(fields[12])) / tick,
                "children_cpu_s": (int(fields[13]) + int(fields[14])) / tick,
                "rss_kib": int(status["VmRSS"]), "hwm_kib": int(status["VmHWM"]), "threads": int(status["Threads"])}


def bench_reviewer_latency(b, res, n):
    """A reviewer's hawf-decide through hawfd returning -> the follow-up's first
    instruction, vs the owner's hawf-decide on an owner-mode checkpoint, measured as
    bench_latency measures (same stamp, phase-matched interleaved pairs)."""
    b.set_plugin(True)
    hd = HawfdProc(b, b.conf, "hawfd-latency").start()
    try:
        log("reviewers: preparing %d checkpoints with reviewers and %d without, each with a held follow-up" % (n, n))
        b.script("train.sh", "#!/bin/bash\ntrue\n")
        b.script("follow.sh", '#!/bin/bash\necho $EPOCHREALTIME > "%s/ts.$SLURM_JOB_ID"\n' % b.home)
        rev, own = [], []
        for _ in range(n):
            rev.append("%d:eval" % b.sbatch("-o", "/dev/null", "--hawf-checkpoint=eval",
                                            "--hawf-reviewers=@" + REVIEWER_GROUP, "--hawf-then=follow.sh",
                                            "train.sh"))
            own.append("%d:eval" % b.sbatch("-o", "/dev/null", "--hawf-checkpoint=eval", "--hawf-then=follow.sh",
                                            "train.sh"))
        calibration = [b.sbatch("--hold", "-o", "/dev/null", "train.sh") for _ in range(2)]
        follow = {}
        for ckpt in rev + own:
            b.wait_event(ckpt, "pending")
            follow[ckpt] = int([e for e in b.events(ckpt) if e["event"] == "follow-up"][0]["follow_up"]["job"])
        for job in calibration:
            b.run(["scontrol", "release", str(job)])
            b.wait_job(job)
            time.sleep(0.3)
        phases = [(i + 0.5) / n for i in range(n)]
        random.Random(5).shuffle(phases)
        duration = {"a": [0.08], "b": [0.02]}
        log("reviewers: %d reviewer hawf-decide (hawfd) vs %d owner hawf-decide, interleaved, phase-matched" % (n, n))
        lat, wait, launch = {"a": [], "b": []}, {"a": [], "b": []}, {"a": [], "b": []}
        it = {"a": iter(rev), "b": iter(own)}
        count = {"a": 0, "b": 0}
        for who in abba(n):
            phase = phases[count[who]]
            count[who] += 1
            ticks = b.backfill_ticks()
            period = tick_period(ticks)
            d = median(duration[who])
            k = math.ceil((time.time() + 0.05 + phase + d - ticks[-1]) / period)
            time.sleep(max(0.0, ticks[-1] + k * period - phase - d - time.time()))
            ckpt = next(it[who])
            user = REVIEWERS[count[who] % 2] if who == "a" else None      # carol and dave in turn
            secs, t_ret, p = b.timed(["hawf-decide", ckpt, "approve"], user=user)
            if who == "a" and "decided %s: approve" % ckpt not in p.stdout:
                raise RuntimeError("reviewer's hawf-decide did not decide %s: %s %s" % (ckpt, p.stdout, p.stderr))
            duration[who].append(secs)
            job = follow[ckpt]
            first = read_stamp(os.path.join(b.home, "ts.%d" % job))
            b.wait_job(job)
            started = b.allocations([job])[job][0]
            lat[who].append(first - t_ret)
            wait[who].append(started - t_ret)
            launch[who].append(first - started)
        # The follow-ups ran because the decision verified: hawfd's, sealed.
        for ckpt in rev:
            decided = [e for e in b.events(ckpt) if e["event"] == "decided"]
            if len(decided) != 1 or decided[0]["via"] != "hawfd" or decided[0]["by"] not in REVIEWERS:
                raise RuntimeError("%s: not decided once by a reviewer via hawfd: %s" % (ckpt, decided))
    finally:
        hd.stop()
    lab = ("reviewer via hawfd", "owner")
    res.timing("reviewers", "command returns -> follow-up's first instruction", lat["a"], lat["b"], goal=1.10,
               label=lab, paired=True)
    res.timing("reviewers", "  of which: command returns -> slurmctld starts the job", wait["a"], wait["b"],
               label=lab, paired=True)
    res.timing("reviewers", "  of which: job started -> its first instruction", launch["a"], launch["b"],
               label=lab, paired=True)
    res.timing("reviewers", "hawf-decide itself (reviewer: munge, hawfd, record, seal, release)", duration["a"][1:],
               duration["b"][1:], label=lab)


# A reviewer client of the race: walks its list (its own random order) with its own
# choice until the bench says every checkpoint is decided (the stop file), one real
# hawf-decide per checkpoint; "hawfd is busy" (more than 64 connections at once) is
# retried after a short pause, as its message asks, and counted.
REVIEW_CLIENT = r"""
busy=0
while read -r c; do
  [ -e "$2" ] && break
  while :; do
    out=$(hawf-decide --user="$4" "$c" "$3" 2>&1); rc=$?
    case $out in *"hawfd is busy"*) busy=$((busy + 1)); sleep "0.0$((RANDOM % 9 + 1))"; continue;; esac
    break
  done
  printf '%s %s %s\n' "$c" "$rc" "${out//$'\n'/ }"
done < "$1" > "$1.rc"
echo "$busy" > "$1.busy"
"""


def run_review_clients(b, conf, spool, name, ckpts, clients, seed, limit_s):
    """CLIENTS reviewer clients at once (carol and dave in turn); returns (seconds until
    every checkpoint was decided or None, wall seconds, [(user, choice, results, busy)])."""
    stop = os.path.join(b.root, name + ".stop")
    plan = []
    for i in range(clients):
        rng = random.Random(seed + i)
        order = list(ckpts)
        rng.shuffle(order)
        choice = rng.choice(["approve", "reject"])
        user = REVIEWERS[i % 2]
        path = os.path.join(b.cluster.user_dir(user), "%s.%d" % (name, i))
        with open(path, "w") as f:
            f.write("\n".join(order) + "\n")
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)
        plan.append((user, choice, path))
    t0 = time.perf_counter()
    procs = [b.popen(["bash", "-c", REVIEW_CLIENT, "client", path, stop, choice, USER], conf=conf, user=user,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for user, choice, path in plan]
    try:
        done_at = watch_review_clients(b, spool, procs, stop, t0, limit_s)
    finally:
        open(stop, "w").close()            # also when the bench fails: no client goes on
        for p in procs:
            p.wait()
    wall = time.perf_counter() - t0
    out = []
    for user, choice, path in plan:
        with open(path + ".rc") as f:
            results = [line.rstrip("\n").split(" ", 2) for line in f if line.strip()]
        with open(path + ".busy") as f:
            busy = int(f.read().strip() or 0)
        out.append((user, choice, results, busy))
    return done_at, wall, out


def watch_review_clients(b, spool, procs, stop, t0, limit_s):
    """Seconds until every checkpoint was decided (then the clients are told to stop), or None."""
    pending_dir = os.path.join(spool, str(b.uid), "pending")
    done_at = None
    decided = set()
    last_scan = 0.0
    while True:
        # Every checkpoint decided: the pending index is empty, or (it can keep entries
        # of decided checkpoints, see docs/benchmarks.md) each one left has a decision.
        left = [c for c in os.listdir(pending_dir) if re.match(r"\d+:\w", c)]     # not the temporary names
        if done_at is None and len(left) <= 50 and time.perf_counter() - last_scan > 0.5:
            last_scan = time.perf_counter()
            for c in left:
                if c not in decided and any(e["event"] == "decided" for e in b.events(c, spool)):
                    decided.add(c)
        if done_at is None and all(c in decided for c in left):
            done_at = time.perf_counter() - t0
            open(stop, "w").close()        # nothing left to decide: the clients stop
        if all(p.poll() is not None for p in procs):
            break
        if time.perf_counter() - t0 > limit_s and not os.path.exists(stop):
            open(stop, "w").close()
        time.sleep(0.05)
    return done_at


def check_review_race(b, spool, ckpts, clients):
    """Exactly one decision per checkpoint, made by hawfd from approvals in the record,
    and every client told what the record says; returns (problems, stats)."""
    problems = []
    stats = {"approvals": 0, "multi_approval": 0, "choices": {}}
    decided_as = {}
    for c in ckpts:
        evs = b.events(c, spool)
        kinds = [e["event"] for e in evs]
        decided = [e for e in evs if e["event"] in ("decided", "amended", "revoked")]
        approved = {e["seq"]: e for e in evs if e["event"] == "approved"}
        stats["approvals"] += len(approved)
        stats["multi_approval"] += len(approved) > 1
        if len(decided) != 1 or decided[0]["event"] != "decided" or decided[0]["via"] != "hawfd":
            problems.append("%s: %s" % (c, kinds))
            continue
        d = decided[0]
        ok = d.get("approvals") and all(s in approved and approved[s]["decision"]["choice"] == d["decision"]["choice"]
                                        and approved[s]["by"] in REVIEWERS for s in d["approvals"])
        if not ok:
            problems.append("%s: decision %s not made of its approvals %s" % (c, d, list(approved.values())))
        if [k for k in kinds[kinds.index("decided") + 1:] if k not in ("applied",)]:
            problems.append("%s: events after the decision: %s" % (c, kinds))
        decided_as[c] = "%s by %s" % (d["decision"]["choice"], d["by"])
        stats["choices"][d["decision"]["choice"]] = stats["choices"].get(d["decision"]["choice"], 0) + 1
    told = {}
    for user, choice, results, busy in clients:
        for r in results:
            c, rc, text = r[0], r[1], (r[2] if len(r) > 2 else "")
            if rc == "0":
                # "decided C: CHOICE by USER": what hawfd answered must be the record.
                m = re.match(r"decided (\S+): (\S+) by (\S+)$", text.strip())
                if not m or m.group(1) != c or "%s by %s" % (m.group(2), m.group(3)) != decided_as.get(c):
                    problems.append("%s: %s was told %r, the record says %s" % (c, user, text, decided_as.get(c)))
                told[c] = told.get(c, 0) + 1
            elif rc == "1" and "cannot approve" in text:
                stats["refused_decided"] = stats.get("refused_decided", 0) + 1
            elif rc == "1" and "no longer make this decision" in text:
                # Another client of the same reviewer replaced this one's approval between
                # hawfd counting it and recording the decision: the later one decides.
                stats["replaced"] = stats.get("replaced", 0) + 1
            else:
                problems.append("%s: hawf-decide by %s exit %s: %s" % (c, user, rc, text))
    missing = [c for c in ckpts if c not in told]
    if missing:
        problems.append("%d checkpoints no client was told were decided (e.g. %s)" % (len(missing), missing[:3]))
    stats["told_decided"] = sum(told.values())
    # Every decided checkpoint has left the pending index.
    left = [c for c in os.listdir(os.path.join(spool, str(b.uid), "pending")) if re.match(r"\d+:\w", c)]
    stats["index_left"] = len(left)
    stats["index_left_sample"] = {c: [(e["seq"], e["event"], e["by"], (e.get("decision") or {}).get("choice"))
                                      for e in b.events(c, spool)] for c in left[:5]}
    return problems, stats


def verify_sample(b, conf, ckpts, k=10):
    """hawf log --verify (as root: munge decodes locally) of K checkpoints: their approvals and seals."""
    env = b.env(conf)
    env.update({"HOME": "/root", "USER": "root", "LOGNAME": "root"})
    bad = []
    for c in random.Random(7).sample(ckpts, min(k, len(ckpts))):
        p = subprocess.run(["hawf", "log", "--verify", c, "--user=" + USER], env=env, cwd="/",
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            bad.append("%s: %s" % (c, p.stdout.strip()))
    return bad


def bench_review_race(b, res, n, clients, limit_s):
    log("review-race: generating 2 x %d pending checkpoints with reviewers @%s (quorum 1)" % (n, REVIEWER_GROUP))
    # Sealed by root as the plugin seals them where hawfd runs (hawfd approves at no other).
    gen_args = ["--reviewers=@" + REVIEWER_GROUP, "--quorum=1", "--sealed-for=%d" % b.uid,
                "--munge-socket=" + b.cluster.munge_socket]
    spool, conf, ckpts = generate(b, "rrace", 0, n, ["--first-job=5000000"] + gen_args, user="root")
    spool1, conf1, ckpts1 = generate(b, "rrace1", 0, n, ["--first-job=6000000"] + gen_args, user="root")
    hd = HawfdProc(b, conf, "hawfd-race").start()
    try:
        log("review-race: %d reviewer clients through one hawfd" % clients)
        done_at, wall, out = run_review_clients(b, conf, spool, "rrace", ckpts, clients, 1000, limit_s)
        hawfd_cpu = hd.usage()
        unverified = verify_sample(b, conf, ckpts)      # root decodes with hawfd.munge_socket
    finally:
        hd.stop()
    hd1 = HawfdProc(b, conf1, "hawfd-race1").start()
    try:
        log("review-race: baseline, 1 reviewer client alone")
        done1, wall1, out1 = run_review_clients(b, conf1, spool1, "rrace1", ckpts1, 1, 5000, limit_s)
        hawfd1_cpu = hd1.usage()
    finally:
        hd1.stop()
    problems, stats = check_review_race(b, spool, ckpts, out)
    problems1, stats1 = check_review_race(b, spool1, ckpts1, out1)
    problems += ["baseline: " + p for p in problems1]
    n_decision_problems = len(problems)
    if stats["index_left"] or stats1["index_left"]:
        problems.append("pending index entries left for decided checkpoints: %d (baseline %d), e.g. %s" % (
            stats["index_left"], stats1["index_left"], stats["index_left_sample"]))
    problems += ["verify: " + p for p in unverified]
    if done_at is None:
        problems.append("not every checkpoint was decided within %d s" % limit_s)
        done_at = wall
    attempts = sum(len(r) for _, _, r, _ in out)
    busy = sum(x for _, _, _, x in out)
    attempts1 = sum(len(r) for _, _, r, _ in out1)
    rate, rate1 = n / done_at, n / (done1 or wall1)
    res.raw["review-race"] = {"until_all_decided_s": done_at, "wall_s": wall, "wall_1_s": wall1,
                              "attempts": attempts, "busy_retries": busy, "attempts_1": attempts1, "stats": stats,
                              "hawfd": hawfd_cpu, "hawfd_1": hawfd1_cpu, "problems": problems[:50],
                              "per_client_attempts": [len(r) for _, _, r, _ in out]}
    res.value("review-race", "%d checkpoints: decisions/s, %d reviewer clients vs 1 alone (one hawfd)" % (n, clients),
              "%.1f" % rate, "%.1f" % rate1, "%.2f" % (rate / rate1), "", None, unit="decisions/s",
              n="%d / %d attempts" % (attempts, attempts1))
    res.value("review-race", "attempts/s (each hawf-decide run; 'busy' retries not counted)",
              "%.1f" % (attempts / wall), "%.1f" % (attempts1 / wall1), "%.2f" % ((attempts / wall) / (attempts1 / wall1)),
              "", None, unit="runs/s", n="%d / %d" % (attempts, attempts1))
    res.value("review-race", "'hawfd is busy' answers (> 64 connections at once), retried", "%d" % busy, "%d" % sum(
        x for _, _, _, x in out1), "-", "", None, unit="answers", n="%d / %d" % (attempts, attempts1))
    res.value("review-race", "hawfd CPU (own + its --as-owner children) per attempt",
              "%.1f" % (1000 * (hawfd_cpu["cpu_s"] + hawfd_cpu["children_cpu_s"]) / max(attempts, 1)),
              "%.1f" % (1000 * (hawfd1_cpu["cpu_s"] + hawfd1_cpu["children_cpu_s"]) / max(attempts1, 1)), "-", "",
              None, unit="ms", n="%d / %d" % (attempts, attempts1))
    res.value("review-race", "checkpoints with exactly one decision, via hawfd (approve / reject)",
              "%d / %d (%d / %d)" % (n - len(set(p.split(":")[0] for p in problems[:n_decision_problems]
                                                 if re.match(r"\d+:eval: ", p))), n,
                                     stats["choices"].get("approve", 0), stats["choices"].get("reject", 0)),
              "-", "-", "all", n_decision_problems == 0, n=str(n))
    res.value("review-race", "decided checkpoints left in the pending index", "%d" % stats["index_left"],
              "%d" % stats1["index_left"], "-", "0", stats["index_left"] == 0 and stats1["index_left"] == 0,
              n="%d / %d" % (n, n))
    res.value("review-race", "approvals recorded (checkpoints with > 1)", "%d (%d)" % (
        stats["approvals"], stats["multi_approval"]), "%d (%d)" % (stats1["approvals"], stats1["multi_approval"]),
              "-", "", None, n="%d / %d" % (n, n))
    res.value("review-race", "answers: decided / refused (decided already) / own approval replaced meanwhile",
              "%d / %d / %d" % (stats["told_decided"], stats.get("refused_decided", 0), stats.get("replaced", 0)),
              "%d / %d / %d" % (stats1["told_decided"], stats1.get("refused_decided", 0), stats1.get("replaced", 0)),
              "-", "", None, n="%d / %d" % (attempts, attempts1))
    if problems:
        res.notes.append("review-race problems: %s" % "; ".join(problems[:10]))
    shutil.rmtree(spool, ignore_errors=True)
    shutil.rmtree(spool1, ignore_errors=True)


BENCH_UID0 = 2100000      # the idle benchmark's owners: uids far from any real account


def start_settled(hd, expected, timeout=1800):
    """Starts HD and waits until its notifier's start-up is done: EXPECTED checkpoints
    in its watch journal, then its CPU still (wait_hawfd_idle). Its first journal entry
    marks the end of the start-up rescan (every user's pending index read, one
    --as-owner child each; the first look then writes it). Seconds from the start, CPU
    seconds (own + reaped children)."""
    t0 = time.monotonic()
    hd.start()
    out = {"t0": t0, "listening": time.monotonic() - t0, "rescanned": None, "rescan_cpu_s": None}
    deadline = t0 + timeout
    while True:
        n = watch_count(hd)
        now = time.monotonic()
        if n and out["rescanned"] is None:
            out["rescanned"], out["rescan_cpu_s"] = now - t0, hawfd_cpu(hd)
        if n >= expected:
            break
        if now > deadline or hd.proc.poll() is not None:
            raise RuntimeError("%s watches %d of its %d pending checkpoints after %.0f s:\n%s"
                               % (hd.name, n, expected, now - t0, hd.log()[-3000:]))
        time.sleep(0.2 if out["rescanned"] is None else 1.0)
    out["watched"] = time.monotonic() - t0
    out["idle"] = wait_hawfd_idle(hd, timeout=max(60, deadline - time.monotonic())) - t0
    u = hd.usage()
    out.update(cpu_s=u["cpu_s"] + u["children_cpu_s"], entries=watch_count(hd), rss_kib=u["rss_kib"],
               hwm_kib=u["hwm_kib"])
    return out


def wait_rescan(hd, due, timeout=120):
    """HD's next periodic rescan, due at DUE (monotonic, from its start-up rescan's end
    plus notify.rescan): from when its CPU time starts moving near then until it is
    still again (its start known to about 0.1 s: once 50 ms of CPU are counted).
    Returns (start - DUE, seconds, CPU seconds own + children, watch journal
    written: its directory's mtime changed)."""
    time.sleep(max(0, due - 3 - time.monotonic()))
    watch = os.path.join(hd.state, "watch")
    mtime, cpu0 = os.stat(watch).st_mtime_ns, hawfd_cpu(hd)
    deadline = due + timeout
    while hawfd_cpu(hd) - cpu0 < 0.05:         # not a tick of its finisher's wake-up every 30 s
        if time.monotonic() > deadline:
            raise RuntimeError("%s did not rescan within %d s of when it was due" % (hd.name, timeout))
        time.sleep(0.05)
    t_move = time.monotonic()
    t_end = wait_hawfd_idle(hd)
    return t_move - due, t_end - t_move, hawfd_cpu(hd) - cpu0, os.stat(watch).st_mtime_ns != mtime


def bench_hawfd_idle(b, res, users, per_user, idle_s, n_ls, rescan=True):
    """hawfd over USERS x PER_USER pending delegated checkpoints vs over an empty spool:
    its start-up (the notifier reads every user's pending index and looks at each
    pending checkpoint once), then idle for IDLE_S (all at once); then hawf ls --review
    by a reviewer over each, and over USERS x 1 (the same number of owners, a tenth of
    the checkpoints); RESCAN: then the full one's first periodic rescan (notify.rescan,
    10 min after the start-up one)."""
    # The owners exist only in a passwd file of the bench's (bind-mounted over
    # /etc/passwd in a private mount namespace for gen and hawfd): hawfd acts as an
    # owner only if the user database knows them (run_as_user), as a real site's do.
    passwd = os.path.join(b.root, "passwd")
    with open("/etc/passwd") as f:
        text = f.read()
    with open(passwd, "w") as f:
        f.write(text + "".join("hawfb%04d:x:%d:%d::/nonexistent:/usr/sbin/nologin\n" % (i, BENCH_UID0 + i,
                                                                                     BENCH_UID0 + i)
                               for i in range(users)))
    os.chmod(passwd, 0o644)
    env = b.env()
    env.update({"HOME": "/root", "USER": "root", "LOGNAME": "root"})
    spools = {}
    counts = {"full": per_user, "one": 1, "empty": 0}
    for key, count in counts.items():
        spool, conf = b.make_spool("idle-" + key)
        spools[key] = (spool, conf)
        if not count:
            continue
        log("hawfd-idle: generating %d users x %d pending checkpoints with reviewers" % (users, count))
        script = ("for i in $(seq 0 %d); do u=$((%d + i)); setpriv --reuid=$u --regid=$u --clear-groups "
                  "hawf-bench-gen %s --history=0 --pending=%d --first-job=$((7000000 + i * 100)) "
                  "--reviewers=@%s >/dev/null || exit 1; done" % (users - 1, BENCH_UID0, spool, count, REVIEWER_GROUP))
        p = subprocess.run(in_passwd_namespace(passwd, ["bash", "-c", script]), env=env, cwd="/",
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            raise RuntimeError("generating the idle spool failed: %s" % p.stdout[-2000:])
    owners = len(os.listdir(spools["full"][0]))
    hds = {key: HawfdProc(b, conf, "hawfd-idle-" + key, passwd=passwd) for key, (_, conf) in spools.items()}
    ls = {k: [] for k in hds}
    ls_cpu = {k: [] for k in hds}
    listed = {}
    started = {}
    periodic = None
    rescan_s = 600                            # notify.rescan's default (the idle spools set no notify:)
    try:
        # One at a time, each until its start-up looks are done: their wall times do
        # not overlap (2 cores).
        for key in ("full", "one", "empty"):
            log("hawfd-idle: starting the %s hawfd, until it watches its %d pending checkpoints and idles"
                % (key, users * counts[key]))
            started[key] = start_settled(hds[key], users * counts[key])
            st = started[key]
            log("hawfd-idle: %s: pending indexes read after %s s, all watched after %.1f s, idle after %.1f s, "
                "%.1f s CPU" % (key, "-" if st["rescanned"] is None else "%.1f" % st["rescanned"], st["watched"],
                                st["idle"], st["cpu_s"]))
        log("hawfd-idle: every hawfd idle for %d s" % idle_s)
        u0 = {k: hd.usage() for k, hd in hds.items()}
        mt0 = {k: os.stat(os.path.join(hd.state, "watch")).st_mtime_ns for k, hd in hds.items()}
        t_idle = time.monotonic()
        time.sleep(idle_s)
        u1 = {k: hd.usage() for k, hd in hds.items()}
        idle_written = {k: os.stat(os.path.join(hd.state, "watch")).st_mtime_ns != mt0[k] for k, hd in hds.items()}
        cpu = {k: round(u1[k]["cpu_s"] + u1[k]["children_cpu_s"] - u0[k]["cpu_s"] - u0[k]["children_cpu_s"], 3) + 0.0
               for k in u0}           # + 0.0: no "-0.000" from the clock ticks' float sums
        due = {k: st["t0"] + (st["rescanned"] or st["listening"]) + rescan_s for k, st in started.items()}
        if any(t_idle <= d <= t_idle + idle_s for d in due.values()):
            res.notes.append("hawfd-idle: a periodic rescan was due within the idle window")
        log("hawfd-idle: hawf ls --review by %s, %d over each spool, interleaved" % (REVIEWERS[0], n_ls))
        keys = list(hds)
        for i in range(n_ls):
            for key in keys[i % 3:] + keys[:i % 3]:
                hd = hds[key]
                before = hd.usage()
                secs, _, r = b.timed(["hawf", "ls", "--review"], conf=hd.conf, user=REVIEWERS[0], check=False)
                after = hd.usage()
                ls[key].append(secs)
                ls_cpu[key].append(after["cpu_s"] + after["children_cpu_s"] - before["cpu_s"] -
                                   before["children_cpu_s"])
                listed[key] = (r.returncode, max(0, len(r.stdout.splitlines()) - 1) if r.returncode == 0 else 0,
                               r.stderr.strip()[:300])
        u2 = {k: hd.usage() for k, hd in hds.items()}
        skipped = sum(hd.log().count("review: skipping uid") + hd.log().count("watch: skipping uid")
                      for hd in hds.values())
        if rescan:
            log("hawfd-idle: waiting for the full hawfd's periodic rescan (in %.0f s)"
                % (due["full"] - time.monotonic()))
            if due["full"] < time.monotonic() + 3:
                res.notes.append("hawfd-idle: the full hawfd's periodic rescan came before its measurement")
            else:
                periodic = wait_rescan(hds["full"], due["full"])
                log("hawfd-idle: rescan %.1f s after due, %.1f s, %.1f s CPU, watch journal %s"
                    % (periodic[:3] + ("written" if periodic[3] else "untouched",)))
    finally:
        log("hawfd-idle: stopping the hawfds")
        for hd in hds.values():
            hd.stop()
    log("hawfd-idle: stopped")
    res.raw["hawfd-idle"] = {"started": started, "usage": [u0, u1, u2], "cpu_s": cpu, "idle_journal_written":
                             idle_written, "ls_s": ls, "ls_hawfd_cpu_s": ls_cpu, "listed": listed, "owners": owners,
                             "skipped": skipped, "periodic_rescan": periodic}
    lab = "%d pending, %d users" % (users * per_user, users)

    def start_row(st):
        return "%s / %.1f / %.1f s; %.1f s" % ("-" if st["rescanned"] is None else "%.1f" % st["rescanned"],
                                               st["watched"], st["idle"], st["cpu_s"])
    e = started["empty"]
    res.value("hawfd-idle", "hawfd start, %s: pending indexes read / all watched / idle; CPU (own + children)" % lab,
              start_row(started["full"]), "- / %.1f / %.1f s; %.2f s" % (e["watched"], e["idle"], e["cpu_s"]),
              "-", "", None, unit="s (vs empty spool)", n="1 / 1")
    res.value("hawfd-idle", "  the same, %d pending, %d users" % (users, users), start_row(started["one"]),
              "- / %.1f / %.1f s; %.2f s" % (e["watched"], e["idle"], e["cpu_s"]), "-", "", None,
              unit="s (vs empty spool)", n="1 / 1")
    res.value("hawfd-idle", "  watch journal entries; RSS after the start (peak)",
              "%d; %d (%d)" % (started["full"]["entries"], started["full"]["rss_kib"], started["full"]["hwm_kib"]),
              "%d; %d (%d)" % (e["entries"], e["rss_kib"], e["hwm_kib"]), "-", "", None,
              unit="KiB (%s vs empty spool)" % lab, n="1 / 1")
    res.value("hawfd-idle", "hawfd RSS after %d s idle (peak)" % idle_s,
              "%d (%d)" % (u1["full"]["rss_kib"], u1["full"]["hwm_kib"]),
              "%d (%d)" % (u1["empty"]["rss_kib"], u1["empty"]["hwm_kib"]),
              "%.2f" % (u1["full"]["rss_kib"] / u1["empty"]["rss_kib"]), "", None,
              unit="KiB (%s vs empty spool)" % lab, n="1 / 1")
    res.value("hawfd-idle", "hawfd CPU time over %d s idle, after the start (own + children); watch journal written"
              % idle_s, "%.3f; %s" % (cpu["full"], "yes" if idle_written["full"] else "no"),
              "%.3f; %s" % (cpu["empty"], "yes" if idle_written["empty"] else "no"), "-", "", None, unit="s",
              n="1 / 1")
    for key, what in (("full", lab), ("one", "%d pending, %d users" % (users, users))):
        res.timing("hawfd-idle", "hawf ls --review by a reviewer, %s (one --as-owner child per user)" % what,
                   ls[key], ls["empty"], label=(what, "empty spool"))
        res.value("hawfd-idle", "  its hawfd CPU (own + children); exit status, checkpoints listed",
                  "%.2f s; exit %d, %d" % ((median(ls_cpu[key]),) + listed[key][:2]),
                  "%.3f s; exit %d, %d" % ((median(ls_cpu["empty"]),) + listed["empty"][:2]), "-", "", None,
                  n="%d / %d" % (n_ls, n_ls))
        if listed[key][0] != 0:
            res.notes.append("hawfd-idle: hawf ls --review over %s failed: %s" % (what, listed[key][2]))
    res.value("hawfd-idle", "hawfd RSS after the listings (peak)",
              "%d (%d)" % (u2["full"]["rss_kib"], u2["full"]["hwm_kib"]),
              "%d (%d)" % (u2["empty"]["rss_kib"], u2["empty"]["hwm_kib"]), "-", "", None,
              unit="KiB (%s vs empty spool)" % lab, n="1 / 1")
    if periodic:
        res.value("hawfd-idle", "periodic rescan (notify.rescan, %d min), %s: wall; CPU (own + children); watch "
                  "journal written" % (rescan_s // 60, lab),
                  "%.1f s; %.1f s; %s" % (periodic[1], periodic[2], "yes" if periodic[3] else "no"), "-", "-", "",
                  None, n="1")
    if skipped:
        res.notes.append("hawfd-idle: hawfd skipped %d owners' trees (see its log)" % skipped)
    for spool, _ in spools.values():
        shutil.rmtree(spool, ignore_errors=True)


# ---------------------------------------------------------------------------
# 9. Notifications (issue 10)

NOTIFY_JOB0 = 8000000     # job ids of the generated pending checkpoints (Slurm does not know them)


def notify_spool(b, name, hooks, others=0):
    """A spool and its hawf.yaml with a notify: section of json webhooks {NAME: URL} (none
    when HOOKS is empty), holding OTHERS pending checkpoints of the test user that ask
    for every webhook (hawf-bench-gen --notify)."""
    spool, conf = b.make_spool(name)
    if hooks:
        with open(conf, "a") as f:
            f.write("notify:\n  webhooks:\n" + "".join("    %s: {url: \"%s\", format: json}\n" % (k, u)
                                                      for k, u in hooks.items()))
    if others:
        b.run(["hawf-bench-gen", spool, "--history=0", "--pending=%d" % others, "--first-job=%d" % NOTIFY_JOB0,
               "--notify=" + ",".join(hooks)], conf=conf, timeout=1800)
    return spool, conf


def job_dirs(b, spool):
    try:
        return set(os.listdir(os.path.join(spool, str(b.uid), "ckpt")))
    except FileNotFoundError:
        return set()


def hawfd_cpu(hd):
    u = hd.usage()
    return u["cpu_s"] + u["children_cpu_s"]


def wait_hawfd_idle(hd, timeout=900, still=1.0):
    """Until hawfd's CPU time (own + its reaped children, in clock ticks) has not moved
    for STILL seconds; returns when it last moved (monotonic)."""
    deadline = time.monotonic() + timeout
    prev, moved = hawfd_cpu(hd), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(still)
        now = hawfd_cpu(hd)
        if now == prev:
            return moved
        prev, moved = now, time.monotonic()
    raise RuntimeError("%s still busy after %d s" % (hd.name, timeout))


def watch_count(hd):
    """Entries of HD's watch journal (STATE/watch; its temporary files start with a dot)."""
    try:
        return sum(1 for n in os.listdir(os.path.join(hd.state, "watch")) if not n.startswith("."))
    except FileNotFoundError:
        return 0


def start_watching(hd, receiver, others, timeout=1800):
    """Starts HD over a spool with OTHERS pending checkpoints and waits until it has
    looked at every one: each in its watch journal (STATE/watch), its pending webhook
    received, then its CPU still. Returns (seconds until all watched, until the last
    webhook, until idle, CPU seconds own + children)."""
    t0 = time.monotonic()
    hd.start()
    deadline = t0 + timeout
    while others and watch_count(hd) < others:
        if time.monotonic() > deadline or hd.proc.poll() is not None:
            raise RuntimeError("%s did not watch its %d pending checkpoints:\n%s" % (hd.name, others, hd.log()[-3000:]))
        time.sleep(0.1)
    watched = time.monotonic() - t0
    generated = ".eval.pending."
    if others:
        receiver.wait_for(lambda rs: sum(generated in (r["key"] or "") for r in rs) >= others,
                          timeout=max(1, deadline - time.monotonic()))
    sent = max([r["time"] for r in receiver.received() if generated in (r["key"] or "")] or [t0]) - t0
    idle = wait_hawfd_idle(hd) - t0
    return watched, sent, idle, hawfd_cpu(hd)


def notify_sample(b, hd, receiver, spool, conf, name="n"):
    """One real step: srun --hawf-checkpoint=NAME --hawf-notify=hook true with hawf
    reading CONF, until its pending webhook arrives; then decided (hawf-decide) and
    that webhook awaited too, so the next sample starts with nothing in flight.
    Times are time.monotonic()."""
    b.set_plugin(True, conf)
    before = job_dirs(b, spool)
    offset = time.time() - time.monotonic()        # realtime -> monotonic, for the spool's ctime
    t0 = time.monotonic()
    b.run(["srun", "--hawf-checkpoint=" + name, "--hawf-notify=hook", "true"], conf=conf)
    t_ret = time.monotonic()
    new = job_dirs(b, spool) - before
    if len(new) != 1:
        raise RuntimeError("notify: srun made %d checkpoint directories, not one: %s" % (len(new), new))
    job = new.pop()
    ckpt = "%s:%s" % (job, name)
    prefix = "%d.%s.%s." % (b.uid, job, name)

    def first(event):
        key = prefix + event + "."
        recs = receiver.wait_for(lambda rs: any((r["key"] or "").startswith(key) for r in rs), timeout=600)
        return [r for r in recs if (r["key"] or "").startswith(key)][0]
    got = first("pending")
    # The pending event appears by link(2) and its temporary name's unlink right after:
    # its ctime (the kernel's clock, coarse: up to a tick early) is that moment.
    pend = [e for e in b.events(ckpt, spool) if e["event"] == "pending"][0]
    written = os.stat(b.event_path(ckpt, pend["seq"], spool)).st_ctime_ns / 1e9 - offset
    # The webhook may arrive before the bench's reader has stamped hawfd's log lines.
    deadline = time.monotonic() + 2
    while True:
        nudged = hd.lines_since(t0, 'op="notify": ok')
        queued = hd.lines_since(t0, "notify: queued pending of %s to hook" % ckpt)
        if (nudged and queued) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    out = {"ckpt": ckpt, "t0": t0, "srun_returned": t_ret, "pending_written": written, "received": got["time"],
           "nudge_logged": nudged[0][0] if nudged else None, "queued": queued[0][0] if queued else None}
    b.run(["hawf-decide", ckpt, "approve"], conf=conf)
    first("decided")
    entry = os.path.join(hd.state, "watch", "%d:%s" % (b.uid, ckpt))
    deadline = time.monotonic() + 30
    while os.path.exists(entry) and time.monotonic() < deadline:
        time.sleep(0.01)
    return out


def bench_notify(b, res, others, n_lat, n_start, n_end):
    """hawfd's notifications (issue 10): a new checkpoint's pending webhook while hawfd
    watches OTHERS pending checkpoints vs none (two hawfds at once, hawf switched
    between them per sample through plugstack.conf); the same right after a restart;
    and srun's step end with a dead or hanging webhook configured vs no notify:."""
    from sinks import HttpReceiver
    recv = {"full": HttpReceiver().start(), "empty": HttpReceiver().start()}
    hds = {}
    try:
        log("notify: generating %d pending checkpoints asking for the webhook" % others)
        confs = {key: notify_spool(b, "notify-" + key, {"hook": r.url("/" + key)}, others if key == "full" else 0)
                 for key, r in recv.items()}
        hds = {key: HawfdProc(b, conf, "hawfd-notify-" + key, stamp=True) for key, (_, conf) in confs.items()}
        log("notify: starting the hawfds; waiting until the full one has looked at its %d" % others)
        start = {key: start_watching(hds[key], recv[key], others if key == "full" else 0) for key in ("empty", "full")}
        log("notify: full hawfd watched all after %.1f s, sent all after %.1f s, idle after %.1f s (%.1f s CPU)"
            % start["full"])
        lab = ("%d others pending" % others, "0 others")
        log("notify: %d new checkpoints each, interleaved" % n_lat)
        samples = {"a": [], "b": []}
        for who in abba(n_lat):
            key = "full" if who == "a" else "empty"
            samples[who].append(notify_sample(b, hds[key], recv[key], *confs[key]))
        # After a restart hawfd looks again at every checkpoint it watched (1 000 on the
        # full side, about 12 s): the new checkpoint's step ends as soon as hawfd listens,
        # so its nudge lands while those start-up looks are still running (checked: the
        # looks go on for seconds after its webhook, "looks done" below).
        log("notify: %d restarts each, a new checkpoint nudged while hawfd looks again at what it watched" % n_start)
        restart = {"a": [], "b": []}
        restart_cpu = {"a": [], "b": []}
        for who in abba(n_start):
            key = "full" if who == "a" else "empty"
            hd = hds[key]
            hd.stop(restore=False)           # the state (watch journal, outbox, sent/) stays
            t0 = time.monotonic()
            hd.start()
            t_listen = time.monotonic()
            s = notify_sample(b, hd, recv[key], *confs[key])
            s["started"], s["listening"] = t0, t_listen
            s["idle"] = wait_hawfd_idle(hd)
            restart[who].append(s)
            restart_cpu[who].append((s["idle"] - t0, hawfd_cpu(hd)))
        # One more restart of the full hawfd with nothing new: what its start-up looks
        # cost alone, and whether they write the watch journal (its directory's mtime:
        # an entry added, even one found there already, goes through a temporary file).
        log("notify: one more restart of the full hawfd, nothing new")
        hd = hds["full"]
        watch = os.path.join(hd.state, "watch")
        before = (os.stat(watch).st_mtime_ns, watch_count(hd))
        hd.stop(restore=False)
        t0 = time.monotonic()
        hd.start()
        quiet_idle = wait_hawfd_idle(hd) - t0
        quiet = {"idle_s": quiet_idle, "cpu_s": hawfd_cpu(hd), "entries": [before[1], watch_count(hd)],
                 "journal_written": os.stat(watch).st_mtime_ns != before[0]}
        log("notify: restarted hawfd idle after %.1f s, %.1f s CPU, watch journal %s" % (
            quiet_idle, quiet["cpu_s"], "written" if quiet["journal_written"] else "untouched"))
    finally:
        for hd in hds.values():
            hd.stop()
        for r in recv.values():
            r.stop()
        b.set_plugin(True)

    def d(side, a, z, rows):
        return [s[z] - s[a] for s in rows[side]]
    res.raw["notify: samples"] = {"others": samples["a"], "none": samples["b"], "start": start,
                                  "restart_others": restart["a"], "restart_none": restart["b"],
                                  "restart_cpu": restart_cpu, "quiet_restart": quiet}
    res.timing("notify", "pending written -> webhook received", d("a", "pending_written", "received", samples),
               d("b", "pending_written", "received", samples), label=lab)
    res.timing("notify", "  srun returns -> webhook received", d("a", "srun_returned", "received", samples),
               d("b", "srun_returned", "received", samples), label=lab)
    if all(s["nudge_logged"] and s["queued"] for side in "ab" for s in samples[side]):
        res.timing("notify", "  of which: pending written -> hawfd logs the nudge",
                   d("a", "pending_written", "nudge_logged", samples), d("b", "pending_written", "nudge_logged", samples),
                   label=lab)
        res.timing("notify", "  of which: nudge -> queued (hawfd loads, reads files/, renders)",
                   d("a", "nudge_logged", "queued", samples), d("b", "nudge_logged", "queued", samples), label=lab)
        res.timing("notify", "  of which: queued -> received (the sender)", d("a", "queued", "received", samples),
                   d("b", "queued", "received", samples), label=lab)
    else:
        res.notes.append("notify: hawfd's log lacked a nudge or queued line for some sample: no breakdown")
    res.value("notify", "hawfd start over %d pending: all watched / all webhooks sent / idle; CPU (own + children)"
              % others, "%.1f / %.1f / %.1f s; %.1f s" % start["full"], "%.1f / %.1f / %.1f s; %.2f s" % start["empty"],
              "-", "", None, unit="s", n="1 / 1")
    res.timing("notify", "after a restart, nudged while hawfd looks again at the %d it watched: pending written -> "
               "received" % others, d("a", "pending_written", "received", restart),
               d("b", "pending_written", "received", restart), label=lab, unit="ms")
    # Nudged during the start-up looks: they still ran 3 s after the webhook arrived
    # (wait_hawfd_idle: CPU still for 1 s, polled each second).
    during = sum(s["idle"] - s["received"] > 3 for s in restart["a"])
    res.value("notify", "  restart -> listening / nudge logged / webhook received / start-up looks done (CPU still)",
              "%.2f / %.2f / %.2f / %.1f s (%d of %d nudged during the looks)" % (
                  median(d("a", "started", "listening", restart)),
                  median([(s["nudge_logged"] or float("nan")) - s["started"] for s in restart["a"]]),
                  median(d("a", "started", "received", restart)), median(d("a", "started", "idle", restart)),
                  during, len(restart["a"])),
              "%.2f / %.2f / %.2f / %.1f s" % (
                  median(d("b", "started", "listening", restart)),
                  median([(s["nudge_logged"] or float("nan")) - s["started"] for s in restart["b"]]),
                  median(d("b", "started", "received", restart)), median(d("b", "started", "idle", restart))),
              "-", "", None, unit="median", n="%d / %d" % (n_start, n_start))
    res.value("notify", "  restart -> idle; CPU since the restart (own + children)",
              "%.1f s; %.1f s" % (median([x for x, _ in restart_cpu["a"]]),
                                  median([c for _, c in restart_cpu["a"]])),
              "%.1f s; %.2f s" % (median([x for x, _ in restart_cpu["b"]]),
                                  median([c for _, c in restart_cpu["b"]])), "-", "", None,
              unit="median", n="%d / %d" % (n_start, n_start))
    res.value("notify", "restart with nothing new: restart -> idle; CPU (own + children); watch journal written",
              "%.1f s; %.1f s; %s (%d entries, %d after)" % (quiet["idle_s"], quiet["cpu_s"],
                                                               "yes" if quiet["journal_written"] else "no",
                                                               quiet["entries"][0], quiet["entries"][1]),
              "-", "-", "", None, n="1")

    # -- a dead or hanging webhook vs no notify: at all ------------------------
    hang = HttpReceiver(mode="hang").start()
    dead_port = free_port()                 # bound once and closed: nobody listens on it
    hooks = {"dead": "http://127.0.0.1:%d/dead" % dead_port, "hang": hang.url("/hang")}
    ends = {"none": notify_spool(b, "notify-none", {}), "hooks": notify_spool(b, "notify-hooks", hooks)}
    hds = {key: HawfdProc(b, conf, "hawfd-notify-" + key) for key, (_, conf) in ends.items()}
    keys = ["none", "dead", "hang"]
    wall = {k: [] for k in keys}
    jobs = {k: [] for k in keys}
    try:
        for hd in hds.values():
            hd.start()
        log("notify: srun --hawf-checkpoint=x [--hawf-notify=dead|hang] true, %d each, rotated" % n_end)
        for i in range(n_end):
            for key in keys[i % 3:] + keys[:i % 3]:
                spool, conf = ends["none" if key == "none" else "hooks"]
                b.set_plugin(True, conf)
                before = job_dirs(b, spool)
                argv = ["srun", "--hawf-checkpoint=x"] + ([] if key == "none" else ["--hawf-notify=" + key]) + ["true"]
                wall[key].append(b.timed(argv, conf=conf)[0])
                new = job_dirs(b, spool) - before
                if len(new) != 1:
                    raise RuntimeError("notify: srun made %d checkpoint directories, not one" % len(new))
                job = new.pop()
                jobs[key].append(int(job))
                deadline = time.monotonic() + 30      # the step's end written before the next one
                while not any(e["event"] == "pending" for e in b.events(job + ":x", spool)):
                    if time.monotonic() > deadline:
                        raise RuntimeError("notify: %s:x never became pending" % job)
                    time.sleep(0.01)
        time.sleep(2)
        hang_got = len(hang.received())
        dead_tried = len(set(re.findall(r"notify: cannot send pending of (\S+) \(uid \d+\) to dead",
                                        hds["hooks"].log())))
    finally:
        hang.stop()                 # first: hawfd's hanging connections end, it stops at once
        for hd in hds.values():
            hd.stop()
        b.set_plugin(True)
    steps = b.step_log([j for js in jobs.values() for j in js])
    end = {k: [steps[j]["done"] - steps[j]["exited"] for j in js] for k, js in jobs.items()}
    res.raw["notify: step end jobs"] = jobs
    for key, what in (("dead", "dead webhook (nobody listens)"), ("hang", "webhook that never answers")):
        lab = (what, "no notify:")
        res.timing("notify", "srun --hawf-checkpoint=x --hawf-notify=%s true (wall)" % key, wall[key], wall["none"],
                   label=lab)
        res.timing("notify", "  step end: task exits -> step done (slurmd log)", end[key], end["none"], label=lab)
    res.value("notify", "webhooks hawfd tried meanwhile: dead (refused, retried) / hang (received, never answered)",
              "%d / %d" % (dead_tried, hang_got), "-", "-", "%d / %d" % (n_end, n_end),
              dead_tried == n_end and hang_got == n_end, n="%d / %d" % (n_end, n_end))


# ---------------------------------------------------------------------------

def machine():
    def first(path, key):
        try:
            with open(path) as f:
                for line in f:
                    if line.startswith(key):
                        return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    slurm = subprocess.run(["slurmctld", "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
    return {"cpu": first("/proc/cpuinfo", "model name"), "cores": os.cpu_count(),
            "memory": first("/proc/meminfo", "MemTotal"), "kernel": platform.release(),
            "debian": debian, "slurm": slurm,
            "fs": subprocess.run(["findmnt", "-no", "FSTYPE", "-T", "/tmp"], stdout=subprocess.PIPE,
                                 text=True).stdout.strip()}


SECTIONS = ("overhead", "latency", "idle", "scale", "bounds", "race", "bulk", "reviewers", "review-race",
            "hawfd-idle", "notify")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", required=True, help="build directory (plugin/hawf.so, tools/)")
    parser.add_argument("--quick", action="store_true", help="few samples, small spools (to try the script)")
    parser.add_argument("--only", help="comma-separated: " + ",".join(SECTIONS))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it starts a private Slurm cluster)")
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if only - set(SECTIONS):
        sys.exit("bench: unknown section(s) %s: choose among %s" % (",".join(sorted(only - set(SECTIONS))),
                                                                     ",".join(SECTIONS)))
    q = args.quick
    n_srun, n_sbatch, n_ckpt = (10, 4, 6) if q else (200, 50, 60)
    n_lat = 4 if q else 40
    idle_plan = [(5, 1), (10, 1)] if q else [(5, 3), (30, 2)]
    hist_small, hist_big, pending = (100, 1000, 1000) if q else (1000, 100000, 10000)
    n_ls, n_one = (3, 6) if q else (20, 200)
    n_race = 200 if q else 1000
    n_rlat = 4 if q else 40
    n_rrace, n_clients = (100, 10) if q else (1000, 100)
    idle_users, idle_per_user, idle_s, n_review_ls, idle_rescan = (50, 10, 10, 2, 0) if q else (1000, 10, 60, 3, 1)
    if os.environ.get("HAWF_BENCH_IDLE"):       # USERS,PER_USER,IDLE_S,N_LS[,RESCAN 0|1]: to try other sizes
        v = list(map(int, os.environ["HAWF_BENCH_IDLE"].split(",")))
        idle_users, idle_per_user, idle_s, n_review_ls = v[:4]
        idle_rescan = v[4] if len(v) > 4 else idle_rescan
    notify_others, n_notify, n_notify_start, n_notify_end = (200, 6, 2, 10) if q else (1000, 20, 4, 40)
    if os.environ.get("HAWF_BENCH_NOTIFY"):     # OTHERS,N_LATENCY,N_RESTARTS,N_STEP_END
        notify_others, n_notify, n_notify_start, n_notify_end = map(int, os.environ["HAWF_BENCH_NOTIFY"].split(","))

    info = machine()
    load0 = os.getloadavg()
    workdir = tempfile.mkdtemp(prefix="hawf-bench-", dir="/tmp")
    os.chmod(workdir, 0o755)
    keep = os.environ.get("HAWF_KEEP_WORKDIR", "") not in ("", "0")
    res = Results()
    b = Bench(os.path.realpath(args.build), workdir)
    gen = None
    scalefs = None
    try:
        log("starting the private cluster in %s" % workdir)
        b.start()
        res.notes.append(check_plugstack_per_launch(b))
        # The big spools are generated in the background while the idle benchmark
        # mostly sleeps (its numbers come from whole-second Slurm records).
        gen_out = {}

        def gen_spools():
            try:
                gen_out["spools"] = [
                    generate(b, "scale-1k", hist_small, pending, ["--first-job=1000000"], scalefs),
                    generate(b, "scale-100k", hist_big, pending, ["--first-job=1000000"], scalefs)]
            except Exception as e:        # reported when the scale benchmark needs them
                gen_out["error"] = e
        if "overhead" in only:
            bench_overhead(b, res, n_srun, n_sbatch, n_ckpt)
        if "latency" in only:
            bench_latency(b, res, n_lat)
        if "scale" in only:
            scalefs = mount_tmpfs(os.path.join(workdir, "scalefs"), res)
            log("scale: generating spools (%d and %d history, %d pending each) in the background"
                % (hist_small, hist_big, pending))
            gen = threading.Thread(target=gen_spools)
            gen.start()
        if "idle" in only:
            bench_idle(b, res, idle_plan)
        if gen:
            gen.join()
            if "error" in gen_out:
                raise gen_out["error"]
            bench_scale(b, res, gen_out["spools"], n_ls, n_one)
        if "bounds" in only:
            # The baseline holds exactly the default limit (10 000): past it, memory must not grow.
            bench_bounds(b, res, 1000 if q else 10000, 2000 if q else 20000, 3 if q else 5)
        if "race" in only:
            bench_race(b, res, n_race)
        if "bulk" in only:
            bench_bulk(b, res, 100 if q else 1000, 1 if q else 3)
        # Reviewers and hawfd (issue 9): each starts its own hawfd and stops it.
        if "reviewers" in only:
            bench_reviewer_latency(b, res, n_rlat)
        if "review-race" in only:
            bench_review_race(b, res, n_rrace, n_clients, limit_s=900)
        if "hawfd-idle" in only:
            bench_hawfd_idle(b, res, idle_users, idle_per_user, idle_s, n_review_ls, bool(idle_rescan))
        if "notify" in only:
            bench_notify(b, res, notify_others, n_notify, n_notify_start, n_notify_end)
    finally:
        if gen:
            gen.join()
        b.stop()
        if scalefs:
            if subprocess.run(["umount", scalefs]).returncode != 0:
                subprocess.run(["umount", "-l", scalefs])
        if not keep:
            log("removing %s" % workdir)
            shutil.rmtree(workdir, ignore_errors=True)
            log("removed")
    load1 = os.getloadavg()
    elapsed = time.monotonic() - T0

    lines = ["", "hawf benchmarks (%s): hawf vs the baseline of the same run; times: median / p90" %
             time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "",
             res.table(), ""]
    lines += ["- " + n for n in res.notes]
    lines.append("- ratio: median of the hawf column / median of the baseline column (\"means, paired\": "
                 "ratio of the means of phase-matched pairs); 95% CI by bootstrap; met: ratio within the goal")
    lines.append("- machine: %(cpu)s, %(cores)s cores, %(memory)s RAM, Linux %(kernel)s, Debian %(debian)s, "
                 "%(slurm)s, /tmp on %(fs)s" % info)
    lines.append("- load average 1/5/15 min: %.2f %.2f %.2f at start, %.2f %.2f %.2f at end; total %.0f s%s" % (
        load0 + load1 + (elapsed, " (--quick)" if q else "")))
    text = "\n".join(lines) + "\n"
    print(text)
    out = os.path.join(os.path.realpath(args.build), "bench-results")
    with open(out + ".md", "w") as f:
        f.write(text)
    with open(out + ".json", "w") as f:
        json.dump({"machine": info, "load": [load0, load1], "elapsed_s": elapsed, "rows": res.rows,
                   "notes": res.notes, "samples": res.raw}, f, indent=1, default=str)
    log("written %s.md and %s.json" % (out, out))
    if res.raw.get("race", {}).get("problems") or res.raw.get("review-race", {}).get("problems"):
        sys.exit(3)


if __name__ == "__main__":
    main()
