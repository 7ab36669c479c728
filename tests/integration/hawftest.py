"""Fixture for hawf's integration tests: a private real Slurm cluster (cluster.py)
with the hawf plugin in its plugstack, a spool and hawf.yaml of its own, and the
hawf tools, run as the two ordinary test users.

CTest passes the artifacts to test: HAWF_PLUGIN (hawf.so), HAWF_BINDIR (the
directory holding hawf, hawf-decide, hawf-await) and HAWF_HAWFD (the hawfd
program). They are copied into the work directory so the test users can run them
whatever the permissions of the build tree (a clone under /root is not readable
by them).
"""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from cluster import REVIEWER_GROUP, USERS, Cluster

ALICE, BOB, CAROL, DAVE = USERS  # the owner, an outsider, two reviewers in REVIEWER_GROUP
TOOLS = ("hawf", "hawf-decide", "hawf-await")


class Hawf:
    """The cluster plus everything hawf needs: spool, config, plugin, tools."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="hawf-it-", dir="/tmp")
        os.chmod(self.root, 0o755)
        self.bindir = os.path.join(self.root, "bin")
        os.mkdir(self.bindir, 0o755)
        self.plugin = os.path.join(self.bindir, "hawf.so")
        shutil.copy(os.environ["HAWF_PLUGIN"], self.plugin)
        # ... and the engine it loads from beside itself for a job that uses hawf.
        shutil.copy(os.path.join(os.path.dirname(os.environ["HAWF_PLUGIN"]), "hawf_engine.so"), self.bindir)
        for tool in TOOLS:
            shutil.copy(os.path.join(os.environ["HAWF_BINDIR"], tool), self.bindir)
        self.hawfd_program = None
        if os.environ.get("HAWF_HAWFD"):
            self.hawfd_program = shutil.copy(os.environ["HAWF_HAWFD"], self.bindir)
        self.spool = os.path.join(self.root, "spool")
        os.mkdir(self.spool)
        os.chmod(self.spool, 0o1777)
        self.conf = os.path.join(self.root, "hawf.yaml")
        self.write_conf()
        # The plugin's built-in helper path (the installed one) unless a build's is given.
        args = ["conf=" + self.conf]
        # hawf-local-job for flows run without Slurm (hawf submit --local).
        self.local_job = None
        if os.environ.get("HAWF_LOCAL_JOB"):
            self.local_job = shutil.copy(os.environ["HAWF_LOCAL_JOB"], self.bindir)
        self.step_helper = None
        if os.environ.get("HAWF_STEP_HELPER"):
            self.step_helper = shutil.copy(os.environ["HAWF_STEP_HELPER"], self.bindir)
            args.append("step_helper=" + self.step_helper)
        self.cluster = Cluster(plugin=self.plugin, plugin_args=args)

    def doctor_args(self):
        """hawf doctor's options naming this install's plugin and step helper."""
        return ["--plugin=" + self.plugin] + (["--step-helper=" + self.step_helper] if self.step_helper else [])

    def default_conf(self):
        return "spool: %s\npoll_interval: 1s\n" % self.spool

    def write_conf(self, text=None):
        if text is None:
            text = self.default_conf()
        with open(self.conf, "w") as f:
            f.write(text)
        os.chmod(self.conf, 0o644)

    def start(self):
        self.cluster.start()

    def stop(self):
        try:
            self.cluster.stop()
        finally:
            if not self.cluster.keep:
                shutil.rmtree(self.root, ignore_errors=True)

    def env(self, extra=None):
        env = {"HAWF_CONF": self.conf, "PATH": self.bindir + ":" + self.cluster.env["PATH"]}
        env.update(extra or {})
        return env

    def run(self, user, argv, env=None, input=None, timeout=60, cwd=None):
        """Runs argv (no shell) as USER with the hawf tools on PATH."""
        return self.cluster.run(argv, user=user, env=self.env(env), input=input, timeout=timeout,
                                cwd=cwd or self.cluster.user_dir(user))

    def tool(self, user, *args, **kw):
        return self.run(user, list(args), **kw)

    def user_file(self, user, name, text, mode=0o644):
        """A file NAME holding TEXT in USER's working directory, owned by USER."""
        path = os.path.join(self.cluster.user_dir(user), name)
        with open(path, "w") as f:
            f.write(text)
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        os.chmod(path, mode)
        return path

    def sbatch(self, user, script, *args):
        return self.cluster.sbatch(user, script, args=list(args), env=self.env())

    def wait_job(self, jobid, timeout=90):
        return self.cluster.wait_job(jobid, timeout=timeout)

    def output(self, user, jobid):
        path = os.path.join(self.cluster.user_dir(user), "slurm-%d.out" % jobid)
        with open(path, errors="replace") as f:
            return f.read()

    def show(self, user, ckpt):
        r = self.tool(user, "hawf", "show", "--json", ckpt)
        if r.returncode != 0:
            raise AssertionError("hawf show %s failed: %s" % (ckpt, r.stderr))
        return json.loads(r.stdout)

    def wait_state(self, user, ckpt, state, timeout=60):
        """The checkpoint ends in slurmstepd's exit callback, around job completion."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = self.tool(user, "hawf", "show", "--json", ckpt)
            if r.returncode == 0:
                last = json.loads(r.stdout)
                if last["state"] == state:
                    return last
            time.sleep(0.2)
        raise AssertionError("%s never reached %s; last: %s\n%s" % (ckpt, state, last, self.cluster.daemon_logs()))

    def spool_files(self):
        """Every path under the spool with its content (files) or None (dirs)."""
        found = {}
        for top, dirs, files in os.walk(self.spool):
            for name in dirs + files:
                path = os.path.join(top, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    with open(path, "rb") as f:
                        found[path] = f.read()
                else:
                    found[path] = os.readlink(path) if os.path.islink(path) else None
        return found


class Hawfd:
    """A real hawfd process (HAWF_HAWFD) on a free loopback port, with the
    cluster's munged; its hawfd: section is added to the test's hawf.yaml."""

    def __init__(self, hawf):
        if not hawf.hawfd_program:
            raise AssertionError("HAWF_HAWFD is not set: ctest passes the hawfd to test")
        self.hawf = hawf
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.munge_socket = hawf.cluster.munge_socket
        self.log_path = os.path.join(hawf.root, "hawfd.log")
        self.proc = None

    def conf_section(self, address=None):
        return ("hawfd:\n  listen: \"%s\"\n  address: \"%s\"\n  state: %s\n  munge_socket: %s\n"
                % (self.address, address or self.address, os.path.join(self.hawf.root, "hawfd-state"),
                   self.munge_socket))

    def start(self, timeout=15, extra_conf="", path_first=None):
        """Writes the config (with EXTRA_CONF) and starts hawfd as a Slurm client of
        the cluster (PATH_FIRST: a directory searched before Slurm's); returns once
        it listens."""
        self.hawf.write_conf(self.hawf.default_conf() + self.conf_section() + extra_conf)
        env = self.hawf.cluster.env
        if path_first:
            env["PATH"] = path_first + ":" + env["PATH"]
        started = len(self.log())
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.hawf.hawfd_program, "--foreground", "--conf=" + self.hawf.conf],
                env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log()[started:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("hawfd did not start (exit %s):\n%s" % (self.proc.poll(), self.log()))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Sends SIG and returns hawfd's exit status (SIGKILL after TIMEOUT)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_log(self, needle, timeout=10):
        """hawfd's log once it holds NEEDLE (it logs just after answering)."""
        deadline = time.monotonic() + timeout
        while needle not in self.log():
            if time.monotonic() > deadline:
                raise AssertionError("%r not in hawfd's log:\n%s" % (needle, self.log()))
            time.sleep(0.05)
        return self.log()

    def exchange(self, data, timeout=15):
        """Sends DATA (bytes) on a new connection; returns all hawfd answers before closing."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)

    def request(self, credential, timeout=15):
        """Sends the request for CREDENTIAL; returns hawfd's answer (a dict)."""
        raw = self.exchange(json.dumps({"v": 1, "credential": credential}).encode() + b"\n", timeout)
        return one_answer(raw)


def one_answer(raw):
    """The JSON object of an answer that must be exactly one line."""
    if not raw.endswith(b"\n") or raw.count(b"\n") != 1:
        raise AssertionError("not one line: %r" % raw)
    return json.loads(raw)


class ClusterTestCase(unittest.TestCase):
    """One private cluster per test module (class), stopped also on failure."""

    hawf = None

    @classmethod
    def setUpClass(cls):
        cls.hawf = Hawf()
        cls.addClassCleanup(cls.hawf.stop)
        cls.hawf.start()

    def assertOneLineError(self, result, *needles):
        """A refusal: non-zero exit and one 'hawf' line naming the bad value."""
        self.assertNotEqual(result.returncode, 0, result.stdout)
        lines = [l for l in result.stderr.splitlines() if "hawf" in l]
        self.assertTrue(lines, "no hawf line in: %r" % result.stderr)
        for needle in needles:
            self.assertIn(needle, lines[0], result.stderr)


class HawfdTestCase(ClusterTestCase):
    """A private cluster with a real hawfd (cls.hawfd) for the module."""

    @classmethod
    def hawfd_conf(cls):
        """What the module adds to hawf.yaml besides hawfd: (e.g. notify:)."""
        return ""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.hawfd = Hawfd(cls.hawf)
        cls.addClassCleanup(cls.hawfd.stop, signal.SIGKILL)
        cls.hawfd.start(extra_conf=cls.hawfd_conf())
