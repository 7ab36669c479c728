#!/usr/bin/env python3
"""A private, real Slurm cluster on this one host, for integration tests and demos.

Everything lives in one work directory: its own munged (own key and socket),
one slurmctld and N slurmd daemons (n1..nN, all on this host, each on its own
loopback TCP port), configuration, state, spool and logs.  Nothing under
/etc/slurm, /etc/munge or /run/munge is used, and no system service is touched.

Layout of the work directory::

    etc/slurm.conf etc/plugstack.conf etc/cgroup.conf
    munge/munge.key munge/munge.sock munge/munged.log munge/munged.seed
    state/               StateSaveLocation
    spool/n1 ...         SlurmdSpoolDir (%n)
    log/slurmctld.log log/slurmd.n1.log ... log/jobcomp.log log/*.stdio
    run/*.pid            one pid file per daemon
    users/<user>/        per-user working directories (see Cluster.user_dir)
    env.sh               "export SLURM_CONF=..." for shell scripts
    cluster.json         ports, nodes and plugin of the running cluster

All daemons run in the foreground (-D/-F) in their own session, with the
environment variable HAWF_CLUSTER_DIR=<workdir>.  stop() kills every process
that carries this marker, every slurmstepd serving a step of this cluster, and
all their descendants (the jobs' tasks), so no stray process survives even when
a test fails or start() fails halfway.

Python use::

    with Cluster(plugin="/path/hawf.so", plugin_args=["spool=/x"]) as c:
        jobid = c.sbatch("hawfalice", "#!/bin/sh\\nhostname\\n")
        info = c.wait_job(jobid)
        assert info["JobState"] == "COMPLETED", c.daemon_logs()

Shell use (the daemons keep running after the command returns)::

    python3 cluster.py start --workdir /tmp/demo [--plugin P] [--plugin-arg A]...
    . /tmp/demo/env.sh && srun -N2 hostname
    python3 cluster.py stop --workdir /tmp/demo

Slurm itself: Debian's packages in PATH (/usr/sbin/slurmctld ...) by default, or
an install built from source (scripts/build-slurm.sh) given as `slurm_prefix` or
in the environment variable HAWF_SLURM_PREFIX: its daemons are started from
PREFIX/sbin, and PREFIX/bin comes first in PATH for every command run through
the cluster (also as the test users) and in env.sh.  Settings that only some
releases need are added for those releases alone (see _release_settings).

Needs root (it starts slurmd and switches to the test users with runuser).
Set HAWF_KEEP_WORKDIR=1 to keep temporary work directories for inspection.
"""

import argparse
import atexit
import fcntl
import grp
import json
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The owner, an outsider, and two reviewers who share a group (for --hawf-reviewers=@GROUP).
USERS = ("hawfalice", "hawfbob", "hawfcarol", "hawfdave")
REVIEWER_GROUP = "hawfreviewers"
REVIEWERS = ("hawfcarol", "hawfdave")

CLUSTER_NAME = "hawftest"
PARTITION = "debug"

# JobState values after which a job never changes again.
TERMINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE",
})

# Node states in which a node is up and usable (scontrol State, lower case).
BUSY_OR_IDLE = ("idle", "allocated", "mixed", "completing", "idle+completing",
                "allocated+completing", "mixed+completing")

# Environment variable that marks every daemon started for a work directory.
MARKER = "HAWF_CLUSTER_DIR"

# Environment variable naming a Slurm install prefix to use instead of the one in PATH.
PREFIX_VARIABLE = "HAWF_SLURM_PREFIX"

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
RUNUSER = "/usr/sbin/runuser"

# Ports are picked from below the kernel's ephemeral range (32768-60999 by
# default), so that the outgoing connections of srun/slurmd cannot take a
# daemon's port while that daemon is being restarted.
PORT_RANGE = (20000, 32000)

START_TIMEOUT = 60      # seconds for the whole cluster to come up
STOP_GRACE = 5          # seconds between SIGTERM and SIGKILL for daemons


class ClusterError(RuntimeError):
    """The cluster could not be started, restarted or queried."""


class CommandError(subprocess.CalledProcessError):
    """A command run by Cluster.run(check=True) failed; str() shows its output."""

    def __str__(self):
        text = super().__str__()
        for name, data in (("stdout", self.stdout), ("stderr", self.stderr)):
            if data:
                text += "\n--- %s ---\n%s" % (name, data.rstrip())
        return text


# ---------------------------------------------------------------------------
# Test users

def ensure_users(users=USERS):
    """Create the ordinary test users (useradd -m) that do not exist yet, and the
    reviewers' group (REVIEWERS as supplementary members).

    Idempotent.  Concurrent callers are serialized by a lock file, and a user
    created meanwhile by someone else (useradd exit code 9) is not an error.
    """
    missing = [u for u in users if not _user_exists(u)]
    if not missing and _group_members(REVIEWER_GROUP) == set(REVIEWERS):
        return
    with open("/run/hawf-ensure-users.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_group()
        for user in missing:
            for _attempt in range(10):
                if _user_exists(user):
                    break
                proc = subprocess.run(
                    ["useradd", "-m", user], env={"PATH": SYSTEM_PATH},
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                if proc.returncode in (0, 9):       # 9: user already exists
                    break
                if proc.returncode != 10:           # 10: passwd file busy
                    raise ClusterError("useradd -m %s failed (exit %d): %s"
                                       % (user, proc.returncode, proc.stdout))
                time.sleep(0.2)
            if not _user_exists(user):
                raise ClusterError("could not create user %s" % user)
        _join_reviewers()


def _group_members(group):
    try:
        return set(grp.getgrnam(group).gr_mem)
    except KeyError:
        return None


def _ensure_group():
    """The reviewers' group (groupadd), made before the users who join it."""
    if _group_members(REVIEWER_GROUP) is None:
        proc = subprocess.run(["groupadd", REVIEWER_GROUP], env={"PATH": SYSTEM_PATH},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode not in (0, 9):           # 9: group already exists
            raise ClusterError("groupadd %s failed (exit %d): %s" % (REVIEWER_GROUP, proc.returncode, proc.stdout))


def _join_reviewers():
    for user in REVIEWERS:
        if user not in (_group_members(REVIEWER_GROUP) or set()):
            proc = subprocess.run(["usermod", "-a", "-G", REVIEWER_GROUP, user], env={"PATH": SYSTEM_PATH},
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0:
                raise ClusterError("usermod -a -G %s %s failed: %s" % (REVIEWER_GROUP, user, proc.stdout))


def _user_exists(user):
    try:
        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


# ---------------------------------------------------------------------------
# Small helpers

def _free_ports(count):
    """Return `count` distinct TCP ports that are free right now."""
    ports = []
    candidates = list(range(*PORT_RANGE))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise ClusterError("no free TCP ports in range %s" % (PORT_RANGE,))


def _poll_intervals(first=0.02, factor=1.5, cap=0.25):
    """Sleep times for polling: start fast, back off to `cap` seconds."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, cap)


def _parse_time(text):
    """Seconds since the epoch of a Slurm time stamp (local time), or 0."""
    try:
        return int(time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S")))
    except (TypeError, ValueError):
        return 0


def _tail(path, lines):
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 200 * lines))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return "(cannot read %s: %s)" % (path, e.strerror)
    return "\n".join(data.splitlines()[-lines:])


def slurm_release(slurmctld="slurmctld"):
    """(major, minor) of the Slurm whose slurmctld is given, from `slurmctld -V`
    ("slurm 26.05.3", "slurm-wlm 22.05.8")."""
    try:
        out = subprocess.run([slurmctld, "-V"], env={"PATH": SYSTEM_PATH}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=30).stdout
    except OSError as e:
        raise ClusterError("%s -V: %s" % (slurmctld, e))
    words = out.split()
    parts = words[-1].split(".") if len(words) == 2 else []
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        raise ClusterError("%s -V printed %r, not a Slurm version" % (slurmctld, out))
    return int(parts[0]), int(parts[1])


def _release_settings(release):
    """slurm.conf lines that Slurm RELEASE (major, minor) needs beyond the common ones."""
    lines = []
    if release >= (25, 11):
        # 25.11 serves HTTP on slurmctld's port and logs http_parser errors when
        # built without libhttp-parser (scripts/build-slurm.sh builds it so).
        lines.append("CommunicationParameters=disable_http")
    return lines


def parse_scontrol(line):
    """Parse one line of `scontrol show ... -o` output into a dict.

    Values may contain '=' (TRES=cpu=1,node=1) and, rarely, spaces (Command,
    WorkDir): a word that does not look like Key=... continues the last value.
    """
    fields = {}
    last = None
    for word in line.split():
        key, sep, value = word.partition("=")
        if sep and key and (key[0].isalpha()) and all(
                c.isalnum() or c in "_:/.-" for c in key):
            fields[key] = value
            last = key
        elif last is not None:
            fields[last] += " " + word
    return fields


# ---------------------------------------------------------------------------
# Processes of a cluster

def proc_table():
    """{pid: (ppid, state, session, command name)} of all processes, from /proc/<pid>/stat."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                data = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may contain spaces and ')'.
        rest = data[data.rfind(b")") + 2:].split()
        comm = data[data.find(b"(") + 1:data.rfind(b")")].decode(errors="replace")
        table[int(name)] = (int(rest[1]), rest[0].decode(), int(rest[3]), comm)
    return table


def _proc_stat():
    """{pid: (ppid, state)} of all processes."""
    return {pid: (ppid, state) for pid, (ppid, state, _, _) in proc_table().items()}


def _alive(pid):
    """True if the process exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rfind(b")") + 2:data.rfind(b")") + 3] != b"Z"


def _has_marker(pid, entry):
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            return entry in f.read().split(b"\0")
    except OSError:
        return False


def _stepd_pids(spool_dir):
    """Pids of the slurmstepd processes that listen on a socket in spool_dir.

    slurmstepd rewrites its environment area for its process title, so the
    marker cannot be read from it; each stepd listens on a Unix socket
    <SlurmdSpoolDir>/<node>_<job>.<step>, which is how slurmd finds them too.
    """
    prefix = spool_dir.rstrip("/") + "/"
    inodes = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                parts = line.split()
                if len(parts) >= 8 and parts[7].startswith(prefix):
                    inodes.add("socket:[%s]" % parts[6])
    except OSError:
        return set()
    pids = set()
    if not inodes:
        return pids
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % name
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink("%s/%s" % (fd_dir, fd)) in inodes:
                    pids.add(int(name))
                    break
            except OSError:
                continue
    return pids


def _process_tree(workdir):
    """(daemons, steps, table) of the cluster in `workdir`.

    daemons: processes started with MARKER=<workdir> in their environment.
    steps: the slurmstepds of this cluster and their descendants (job tasks).
    Zombies, the calling process and its ancestors are left out.
    """
    entry = ("%s=%s" % (MARKER, os.path.realpath(workdir))).encode()
    table = _proc_stat()
    children = {}
    for pid, (ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)

    def with_descendants(roots):
        found, todo = set(), list(roots)
        while todo:
            pid = todo.pop()
            if pid not in found:
                found.add(pid)
                todo.extend(children.get(pid, ()))
        return found

    daemons = {pid for pid in table if _has_marker(pid, entry)}
    steps = with_descendants(
        _stepd_pids(os.path.join(os.path.realpath(workdir), "spool")))
    everything = with_descendants(daemons) | steps
    pid = os.getpid()           # never kill ourselves or whoever runs us
    while pid > 1:
        everything.discard(pid)
        pid = table.get(pid, (0, ""))[0]
    everything = {p for p in everything if table.get(p, (0, ""))[1] != "Z"}
    return daemons & everything, steps & everything, everything


def cluster_processes(workdir):
    """Pids of all live processes of the cluster in `workdir`.

    That is: the daemons (started with MARKER=<workdir> in their
    environment), the slurmstepds of this cluster, and all descendants of
    these (e.g. slurmscriptd, job tasks).
    """
    return _process_tree(workdir)[2]


def kill_cluster(workdir, grace=STOP_GRACE, reap=None):
    """Stop every process of the cluster in `workdir`; return pids that survived.

    Job steps (slurmstepd and their tasks) get SIGKILL at once; the daemons
    get SIGTERM, so that they shut down cleanly (slurmctld hangs in shutdown
    if its slurmscriptd child is killed first), and anything left after
    `grace` seconds gets SIGKILL.  `reap` is called while waiting, so that
    the caller can collect its own children (no zombies).
    """
    reap = reap or (lambda: None)

    def wait(deadline):
        for delay in _poll_intervals():
            reap()
            pids = cluster_processes(workdir)
            if not pids or time.monotonic() > deadline:
                return pids
            time.sleep(delay)

    daemons, steps, _ = _process_tree(workdir)
    for pid in steps:
        _signal(pid, signal.SIGKILL)
    for pid in daemons - steps:
        _signal(pid, signal.SIGTERM)
    left = wait(time.monotonic() + grace)
    if left:
        for pid in left:
            _signal(pid, signal.SIGKILL)
        left = wait(time.monotonic() + 5)
    return left


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def daemon_logs(workdir, lines=40):
    """Tails of the daemon logs in `workdir`, as one text for error messages.

    Besides the log files, shows what the daemons wrote to stdout/stderr
    that is not a copy of their log (in the foreground they copy each log
    line to stderr as "slurmd: ..."), e.g. a crash message from a plugin.
    """
    parts = []
    logdir = os.path.join(workdir, "log")
    names = sorted(os.listdir(logdir)) if os.path.isdir(logdir) else []
    paths = [os.path.join(workdir, "munge", "munged.log")]
    paths += [os.path.join(logdir, n) for n in names
              if n.endswith(".log") and n != "jobcomp.log"]
    for path in paths:
        if os.path.exists(path):
            parts.append("==> %s <==\n%s" % (path, _tail(path, lines)))
    for name in names:
        if not name.endswith(".stdio"):
            continue
        program = name.split(".")[0]
        path = os.path.join(logdir, name)
        extra = [line for line in _tail(path, 10 * lines).splitlines()
                 if not line.startswith(program + ": ")]
        if extra:
            parts.append("==> %s (not in the log) <==\n%s"
                         % (path, "\n".join(extra[-lines:])))
    return "\n".join(parts) if parts else "(no daemon logs in %s)" % workdir


# ---------------------------------------------------------------------------
# The cluster

class Cluster:
    """A private Slurm cluster: one munged, one slurmctld, `nodes` slurmds.

    Use as a context manager (start on enter, stop on exit), or call start()
    and stop() yourself.  stop() is idempotent and is also run at interpreter
    exit and when start() fails.  A work directory created here (workdir=None)
    is removed by stop() unless keep=True (or HAWF_KEEP_WORKDIR=1); a work
    directory given by the caller is never removed.
    """

    def __init__(self, workdir=None, plugin=None, plugin_args=(), nodes=2,
                 keep=None, slurm_prefix=None):
        if os.geteuid() != 0:
            raise ClusterError("a private Slurm cluster needs root")
        if slurm_prefix is None:
            slurm_prefix = os.environ.get(PREFIX_VARIABLE) or None
        if slurm_prefix is not None:
            slurm_prefix = os.path.realpath(slurm_prefix)
            for program in ("sbin/slurmctld", "sbin/slurmd", "bin/srun"):
                if not os.access(os.path.join(slurm_prefix, program), os.X_OK):
                    raise ClusterError("Slurm prefix %s: no %s" % (slurm_prefix, program))
        self.slurm_prefix = slurm_prefix
        self.release = slurm_release(self.sbin("slurmctld"))
        if plugin and not os.path.isfile(plugin):
            raise ClusterError("SPANK plugin %s: no such file" % plugin)
        if nodes < 1:
            raise ClusterError("a cluster needs at least one node")
        ensure_users()
        if keep is None:
            keep = os.environ.get("HAWF_KEEP_WORKDIR", "") not in ("", "0")
        self.keep = keep
        self._own_workdir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="hawf-cluster-", dir="/tmp")
        else:
            os.makedirs(workdir, exist_ok=True)
        self.workdir = os.path.realpath(workdir)
        self.plugin = os.path.realpath(plugin) if plugin else None
        self.plugin_args = [str(a) for a in plugin_args]
        self.nodes = ["n%d" % i for i in range(1, nodes + 1)]
        self.hostname = socket.gethostname().split(".")[0]
        self.conf = self._path("etc", "slurm.conf")
        self.munge_socket = self._path("munge", "munge.sock")
        self.ctld_port = None
        self.node_ports = {}
        self._procs = {}        # daemon name -> subprocess.Popen
        self._started = False
        self._removed = False
        atexit.register(self.stop)

    # -- context manager -------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    # -- paths and environment -------------------------------------------

    def _path(self, *parts):
        return os.path.join(self.workdir, *parts)

    def sbin(self, daemon):
        """How to start DAEMON (slurmctld, slurmd): from the prefix, or found in PATH."""
        return os.path.join(self.slurm_prefix, "sbin", daemon) if self.slurm_prefix else daemon

    @property
    def path(self):
        """PATH for everything run through the cluster: the prefix's clients first."""
        if self.slurm_prefix:
            return os.path.join(self.slurm_prefix, "bin") + ":" + SYSTEM_PATH
        return SYSTEM_PATH

    @property
    def env(self):
        """Environment for Slurm client commands (a fresh dict each time).

        Deliberately minimal: SLURM_* variables of the caller (e.g. when the
        tests themselves run inside a Slurm job) must not leak in.
        """
        return {
            "PATH": self.path,
            "SLURM_CONF": self.conf,
            "LANG": "C.UTF-8",
            "HOME": pwd.getpwuid(os.geteuid()).pw_dir,
        }

    def _daemon_env(self):
        env = self.env
        env[MARKER] = self.workdir
        return env

    def user_dir(self, user):
        """A directory in the work directory owned by `user` (mode 0755)."""
        entry = pwd.getpwnam(user)
        base = self._path("users")
        os.makedirs(base, mode=0o755, exist_ok=True)
        path = os.path.join(base, user)
        os.makedirs(path, mode=0o755, exist_ok=True)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, 0o755)
        return path

    # -- configuration ----------------------------------------------------

    def _write(self, relpath, text, mode=0o644):
        path = self._path(*relpath.split("/"))
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    # What start() creates in the work directory; cluster.json marks a
    # directory as one that start() has used before.
    _OWN_ENTRIES = ("etc", "munge", "state", "log", "run", "spool", "users",
                    "env.sh", "cluster.json")

    def _prepare_workdir(self):
        """Check the work directory; empty it if a previous start() used it."""
        if any(c.isspace() for c in self.workdir):
            raise ClusterError("work directory %r: Slurm paths must not "
                               "contain white space" % self.workdir)
        if len(self.munge_socket.encode()) >= 108:
            raise ClusterError("work directory %s is too long for munge's "
                               "Unix socket path" % self.workdir)
        if cluster_processes(self.workdir):
            raise ClusterError("a cluster is already running in %s"
                               % self.workdir)
        entries = os.listdir(self.workdir)
        if entries and "cluster.json" not in entries:
            raise ClusterError("work directory %s is not empty and was not "
                               "used by cluster.py before: refusing to use it"
                               % self.workdir)
        for name in self._OWN_ENTRIES:
            path = self._path(name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        # Ordinary users must reach their directories and the munge socket.
        os.chmod(self.workdir, 0o755)
        parent = os.path.dirname(self.workdir)
        while True:
            if not os.stat(parent).st_mode & 0o001:
                raise ClusterError("work directory %s: %s is not searchable by "
                                   "other users (mode o+x needed)"
                                   % (self.workdir, parent))
            if parent == "/":
                break
            parent = os.path.dirname(parent)

    def _write_config(self):
        ports = _free_ports(1 + len(self.nodes))
        self.ctld_port = ports[0]
        self.node_ports = dict(zip(self.nodes, ports[1:]))
        self._save_state()

        for sub in ("etc", "munge", "state", "log", "run", "spool"):
            os.makedirs(self._path(sub), mode=0o755, exist_ok=True)
        for node in self.nodes:
            os.makedirs(self._path("spool", node), mode=0o755, exist_ok=True)

        # munge key: random bytes, like `mungekey` or dd from /dev/urandom.
        key = self._path("munge", "munge.key")
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(os.urandom(128))
        os.chmod(key, 0o600)

        if self.plugin:
            plugstack = "required %s\n" % " ".join([self.plugin] + self.plugin_args)
        else:
            plugstack = "# no SPANK plugin\n"
        self._write("etc/plugstack.conf", plugstack)
        # Not needed with proctrack/linuxproc and task/none; written so that
        # no cgroup.conf from elsewhere can ever apply.
        self._write("etc/cgroup.conf", "# not used: proctrack/linuxproc, task/none\n")

        w = self.workdir
        lines = [
            "# Private test cluster written by %s" % os.path.basename(__file__),
            "ClusterName=%s" % CLUSTER_NAME,
            # Everything talks over loopback; ports are private (see below).
            "SlurmctldHost=%s(127.0.0.1)" % self.hostname,
            "SlurmctldPort=%d" % self.ctld_port,
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            # Daemons *and* clients (srun, sbatch as any user) use the
            # private munged through this; no MUNGE_* environment needed.
            "AuthInfo=socket=%s" % self.munge_socket,
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/filetxt",
            "JobCompLoc=%s/log/jobcomp.log" % w,
            # Always set, so /etc/slurm/plugstack.conf is never read.
            "PlugStackConfig=%s/etc/plugstack.conf" % w,
            "StateSaveLocation=%s/state" % w,
            "SlurmdSpoolDir=%s/spool/%%n" % w,
            "SlurmctldPidFile=%s/run/slurmctld.pid" % w,
            "SlurmdPidFile=%s/run/slurmd.%%n.pid" % w,
            "SlurmctldLogFile=%s/log/slurmctld.log" % w,
            "SlurmdLogFile=%s/log/slurmd.%%n.log" % w,
            "SlurmctldDebug=verbose",
            "SlurmdDebug=verbose",
            "MailProg=/bin/true",
            "ReturnToService=2",
            "MinJobAge=3600",           # finished jobs stay in scontrol
            "KillWait=5",               # SIGTERM->SIGKILL on cancel/timeout
            # Start batch jobs within ~1 s: slurmctld 22.05 schedules them
            # from a once-a-second background loop, backfill every bf_interval.
            "SchedulerType=sched/backfill",
            "SchedulerParameters=batch_sched_delay=0,sched_interval=2,"
            "bf_interval=1",
        ] + _release_settings(self.release) + [
            "",
        ]
        for node in self.nodes:
            lines.append(
                "NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%d "
                "CPUs=1 RealMemory=1000 State=UNKNOWN"
                % (node, self.hostname, self.node_ports[node]))
        lines.append("PartitionName=%s Nodes=%s Default=YES MaxTime=INFINITE "
                     "State=UP" % (PARTITION, ",".join(self.nodes)))
        self._write("etc/slurm.conf", "\n".join(lines) + "\n")
        env_sh = "export SLURM_CONF=%s\n" % self.conf
        if self.slurm_prefix:
            env_sh += "export PATH=%s/bin:$PATH\n" % self.slurm_prefix
        self._write("env.sh", env_sh)

    def _save_state(self):
        state = {"workdir": self.workdir, "nodes": self.nodes,
                 "ctld_port": self.ctld_port, "node_ports": self.node_ports,
                 "plugin": self.plugin, "plugin_args": self.plugin_args,
                 "slurm_prefix": self.slurm_prefix,
                 "slurm_release": "%d.%02d" % self.release}
        self._write("cluster.json", json.dumps(state, indent=2) + "\n")

    # -- daemons ----------------------------------------------------------

    def _spawn(self, name, argv):
        """Start one daemon in the foreground, in its own session."""
        stdio = open(self._path("log", name + ".stdio"), "ab")
        try:
            proc = subprocess.Popen(
                argv, env=self._daemon_env(), cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=stdio, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            stdio.close()
        self._procs[name] = proc
        with open(self._path("run", name + ".pid"), "w") as f:
            f.write("%d\n" % proc.pid)
        return proc

    def _check_alive(self):
        """Raise if a daemon started by this object has exited."""
        for name, proc in list(self._procs.items()):
            if proc.poll() is not None:
                raise ClusterError("%s exited with status %s\n%s"
                                   % (name, proc.returncode, self.daemon_logs()))

    def _wait(self, what, predicate, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        for delay in _poll_intervals():
            self._check_alive()
            if predicate():
                return
            if time.monotonic() > deadline:
                raise ClusterError("timed out after %ds waiting for %s\n%s"
                                   % (timeout, what, self.daemon_logs()))
            time.sleep(delay)

    def _start_munged(self):
        m = self._path("munge")
        self._spawn("munged", [
            "munged", "--foreground",
            "--socket=%s/munge.sock" % m,
            "--key-file=%s/munge.key" % m,
            "--pid-file=%s" % self._path("run", "munged.pid"),
            "--log-file=%s/munged.log" % m,
            "--seed-file=%s/munged.seed" % m,
        ])
        self._wait("munged socket %s" % self.munge_socket, self._munge_ready)

    def _munge_ready(self):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            return s.connect_ex(self.munge_socket) == 0

    def _start_slurmctld(self, clean):
        argv = [self.sbin("slurmctld"), "-D"] + (["-c"] if clean else [])
        self._spawn("slurmctld", argv)
        # `scontrol ping` fails at once while nothing listens; a bare TCP
        # probe would work too but leaves an error in slurmctld.log.
        self._wait("slurmctld to answer `scontrol ping`",
                   lambda: self.run(["scontrol", "ping"], timeout=10).returncode == 0)

    def _start_slurmd(self, node):
        self._spawn("slurmd." + node, [self.sbin("slurmd"), "-D", "-N", node])

    def node_info(self):
        """{node name: fields of `scontrol show node -o`}; {} if no answer."""
        proc = self.run(["scontrol", "show", "node", "-o"], timeout=10)
        if proc.returncode != 0:
            return {}
        nodes = {}
        for line in proc.stdout.splitlines():
            fields = parse_scontrol(line)
            if "NodeName" in fields:
                nodes[fields["NodeName"]] = fields
        return nodes

    def wait_nodes(self, states=("idle",), timeout=START_TIMEOUT,
                   condition=None):
        """Wait until every node's State (lower case) is one of `states`.

        A node that does not respond shows as e.g. "idle*" and never matches;
        "unknown" is what a restarted slurmctld shows until a node registers.
        `condition(node, fields)`, if given, must also hold for every node.
        """
        def ready():
            info = self.node_info()
            return (set(info) == set(self.nodes) and all(
                f.get("State", "").lower() in states
                and (condition is None or condition(n, f))
                for n, f in info.items()))
        try:
            self._wait("nodes %s to be %s" % (",".join(self.nodes),
                                             "/".join(states)),
                       ready, timeout)
        except ClusterError as e:
            summary = ["%s State=%s Reason=%s" % (n, f.get("State"),
                                                 f.get("Reason", ""))
                       for n, f in sorted(self.node_info().items())]
            raise ClusterError("%s\nnodes: %s" % (e, "; ".join(summary)))

    def _daemon_pid(self, name):
        """Pid of a running daemon of this cluster, or None."""
        proc = self._procs.get(name)
        if proc is not None:
            return proc.pid if proc.poll() is None else None
        pid = _read_pid(self._path("run", name + ".pid"))
        marker = ("%s=%s" % (MARKER, self.workdir)).encode()
        return pid if pid and _alive(pid) and _has_marker(pid, marker) else None

    def _signal_daemon(self, name, sig):
        pid = self._daemon_pid(name)
        if pid:
            _signal(pid, sig)

    def _stop_daemon(self, name, timeout=30):
        """SIGTERM one daemon and wait until it has exited (SIGKILL at timeout)."""
        pid = self._daemon_pid(name)
        proc = self._procs.pop(name, None)
        if pid is None:
            return
        _signal(pid, signal.SIGTERM)
        killed, deadline = False, time.monotonic() + timeout
        for delay in _poll_intervals():
            if proc is not None:
                proc.poll()             # reap it, so that it is really gone
            if not _alive(pid):
                return
            if time.monotonic() > deadline:
                if killed:
                    raise ClusterError("%s (pid %d) survives SIGKILL" % (name, pid))
                _signal(pid, signal.SIGKILL)
                killed, deadline = True, time.monotonic() + 5
            time.sleep(delay)

    # -- public control ---------------------------------------------------

    def start(self):
        """Write the configuration, start all daemons, wait for idle nodes."""
        if self._started:
            return self
        self._prepare_workdir()
        self._started = True
        try:
            self._write_config()
            self._start_munged()
            self._start_slurmctld(clean=True)
            for node in self.nodes:
                self._start_slurmd(node)
            self.wait_nodes(("idle",))
        except BaseException:
            self.stop()
            raise
        return self

    def restart_controller(self, reregister=True):
        """Stop slurmctld and start it again, recovering its saved state.

        Jobs (pending, held, running) survive.  A restarted slurmctld shows
        the nodes as "unknown" until it pings them (about 4 s after start);
        with `reregister` the slurmds get SIGHUP (Slurm's reconfigure,
        which keeps running steps) and register at once instead.
        """
        self._stop_daemon("slurmctld")
        self._start_slurmctld(clean=False)
        if reregister:
            for node in self.nodes:
                self._signal_daemon("slurmd." + node, signal.SIGHUP)
        self.wait_nodes(BUSY_OR_IDLE)

    def restart_nodes(self):
        """Stop all slurmds and start them again; running steps keep running.

        Returns once every node has registered with its new slurmd (its
        SlurmdStartTime changed) and is usable again.
        """
        old = {n: f.get("SlurmdStartTime") for n, f in self.node_info().items()}
        for node in self.nodes:
            self._stop_daemon("slurmd." + node)
        # SlurmdStartTime has a resolution of one second: make sure the new
        # start time differs from the old one.
        newest = max((_parse_time(t) for t in old.values()), default=0)
        if newest >= int(time.time()):
            time.sleep(newest + 1 - time.time())
        for node in self.nodes:
            self._start_slurmd(node)
        self.wait_nodes(BUSY_OR_IDLE, condition=lambda n, f: (
            f.get("SlurmdStartTime") != old.get(n)))

    def stop(self):
        """Kill everything started for this cluster.  Safe to call repeatedly.

        Does nothing if start() was never called, or refused to start (so a
        cluster already running in the same work directory is left alone).
        """
        if not self._started or self._removed:
            self._remove_workdir()
            return
        if os.path.isdir(self.workdir):
            survivors = kill_cluster(self.workdir, reap=self._reap)
            if survivors:
                sys.stderr.write("cluster.py: processes survived SIGKILL: %s\n"
                                 % sorted(survivors))
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self._procs.clear()
        self._remove_workdir()

    def _remove_workdir(self):
        """Remove the work directory if we created it (and keep is off)."""
        if self._own_workdir and not self.keep and not self._removed:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._removed = True

    def _reap(self):
        for proc in self._procs.values():
            proc.poll()

    def processes(self):
        """Pids of all live processes of this cluster (daemons, steps, tasks)."""
        return cluster_processes(self.workdir)

    def daemon_logs(self, lines=40):
        """Tails of the munged, slurmctld and slurmd logs."""
        return daemon_logs(self.workdir, lines)

    # -- running commands -------------------------------------------------

    def run(self, argv, user=None, cwd=None, env=None, input=None, timeout=60,
            check=False):
        """Run argv (a list, no shell) as root or as `user`, with self.env.

        `env` adds to / overrides self.env.  As a user the command runs via
        `runuser -u USER --`, which keeps the given environment (only HOME,
        USER and LOGNAME are set to the user's) and starts in `cwd`, by
        default user_dir(user).  On timeout the whole process group is killed
        and subprocess.TimeoutExpired raised.  Returns CompletedProcess (text).
        """
        argv = [str(a) for a in argv]
        full_env = self.env
        full_env.update(env or {})
        if user is not None:
            cmd = [RUNUSER, "-u", user, "--"] + argv
            cwd = cwd or self.user_dir(user)
        else:
            cmd = argv
            cwd = cwd or self.workdir
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=full_env, encoding="utf-8", errors="replace",
            start_new_session=True,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(cmd, timeout, out, err)
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        if check and result.returncode != 0:
            raise CommandError(result.returncode, cmd, out, err)
        return result

    def sbatch(self, user, script_text, args=(), cwd=None, env=None):
        """Submit script_text as `user` with sbatch --parsable; return job id."""
        entry = pwd.getpwnam(user)
        directory = self.user_dir(user)
        fd, script = tempfile.mkstemp(prefix="job-", suffix=".sh", dir=directory)
        with os.fdopen(fd, "w") as f:
            f.write(script_text)
        os.chown(script, entry.pw_uid, entry.pw_gid)
        os.chmod(script, 0o755)
        argv = ["sbatch", "--parsable"] + [str(a) for a in args] + [script]
        proc = self.run(argv, user=user, cwd=cwd or directory, env=env)
        jobid = proc.stdout.strip().split(";")[0]
        if proc.returncode != 0 or not jobid.isdigit():
            raise ClusterError("sbatch as %s failed (exit %d): %s\nstdout: %s\n%s"
                               % (user, proc.returncode, proc.stderr.strip(),
                                  proc.stdout.strip(), self.daemon_logs()))
        return int(jobid)

    def job_info(self, jobid):
        """Fields of `scontrol show job -o JOBID` as a dict."""
        proc = self.run(["scontrol", "show", "job", "-o", str(jobid)], timeout=30)
        if proc.returncode != 0 or "JobId=" not in proc.stdout:
            raise ClusterError("scontrol show job %s failed: %s"
                               % (jobid, (proc.stderr or proc.stdout).strip()))
        # A heterogeneous or array job prints several lines; use the first.
        return parse_scontrol(proc.stdout.strip().splitlines()[0])

    def wait_job(self, jobid, timeout=60):
        """Wait until the job is in a terminal state; return job_info()."""
        deadline = time.monotonic() + timeout
        for delay in _poll_intervals(first=0.05, cap=0.25):
            info = self.job_info(jobid)
            if info.get("JobState") in TERMINAL_STATES:
                return info
            if time.monotonic() > deadline:
                raise ClusterError(
                    "job %s not finished after %ds: JobState=%s Reason=%s\n%s"
                    % (jobid, timeout, info.get("JobState"), info.get("Reason"),
                       self.daemon_logs()))
            time.sleep(delay)

    def pause_controller(self):
        """SIGSTOP slurmctld: connections still queue up, nothing is answered
        (clients time out after MessageTimeout) until resume_controller()."""
        pid = self._daemon_pid("slurmctld")
        if pid is None:
            raise ClusterError("slurmctld is not running\n%s" % self.daemon_logs())
        _signal(pid, signal.SIGSTOP)

    def resume_controller(self):
        """SIGCONT slurmctld: it handles what queued up meanwhile."""
        self._signal_daemon("slurmctld", signal.SIGCONT)


# ---------------------------------------------------------------------------
# Command line

def _main(argv=None):
    parser = argparse.ArgumentParser(
        description="Start or stop a private Slurm test cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start daemons, write WORKDIR/env.sh")
    start.add_argument("--workdir", required=True)
    start.add_argument("--plugin", help="SPANK plugin .so (required in plugstack)")
    start.add_argument("--plugin-arg", action="append", default=[],
                       help="argument for the plugin line (repeatable)")
    start.add_argument("--nodes", type=int, default=2)
    start.add_argument("--slurm-prefix",
                       help="Slurm install to run (default: $%s, else the one in PATH)"
                       % PREFIX_VARIABLE)
    stop = sub.add_parser("stop", help="kill everything started for WORKDIR")
    stop.add_argument("--workdir", required=True)
    logs = sub.add_parser("logs", help="print the tails of the daemon logs")
    logs.add_argument("--workdir", required=True)
    logs.add_argument("--lines", type=int, default=40)
    args = parser.parse_args(argv)
    workdir = os.path.realpath(args.workdir)

    if args.command == "start":
        try:
            cluster = Cluster(workdir=workdir, plugin=args.plugin,
                              plugin_args=args.plugin_arg, nodes=args.nodes,
                              slurm_prefix=args.slurm_prefix)
            cluster.start()
        except ClusterError as e:
            print("cluster.py: %s" % e, file=sys.stderr)
            return 1
        atexit.unregister(cluster.stop)     # leave the daemons running
        print("cluster running; source %s/env.sh" % workdir)
        return 0
    if args.command == "stop":
        if not os.path.isdir(workdir):
            return 0
        survivors = kill_cluster(workdir)
        if survivors:
            print("cluster.py: processes survived: %s" % sorted(survivors),
                  file=sys.stderr)
            return 1
        return 0
    print(daemon_logs(workdir, args.lines))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
