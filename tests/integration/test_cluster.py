#!/usr/bin/env python3
"""Self-test of cluster.py: a private Slurm cluster starts, runs jobs, stops.

Run as root:  cd tests/integration && python3 -m unittest -v test_cluster
"""

import os
import pwd
import socket
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cluster  # noqa: E402
from cluster import Cluster, ClusterError, USERS  # noqa: E402

ALICE, BOB = USERS[:2]
HOSTNAME = socket.gethostname().split(".")[0]


def daemons_of(workdir):
    """Live Slurm/munge processes of the cluster in `workdir`, found
    independently of cluster.py: the path is in their command line or
    environment, or they hold a file under it open (slurmstepd: its log)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        proc = "/proc/" + name
        try:
            with open(proc + "/comm") as f:
                comm = f.read().strip()
            if comm not in ("slurmctld", "slurmd", "munged", "slurmstepd",
                            "slurmscriptd"):
                continue
            with open(proc + "/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue        # a zombie is dead already
            texts = []
            for part in ("cmdline", "environ"):
                with open("%s/%s" % (proc, part), "rb") as f:
                    texts.append(f.read().decode("utf-8", "replace"))
            for fd in os.listdir(proc + "/fd"):
                try:
                    texts.append(os.readlink("%s/fd/%s" % (proc, fd)))
                except OSError:
                    pass
        except OSError:
            continue
        if any(workdir in text for text in texts):
            found.append((int(name), comm))
    return found


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class ClusterTest(unittest.TestCase):
    """One cluster for all tests; test_9 stops it, so the order matters."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()
        cls.c.start()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def output_of(self, user, jobid):
        path = os.path.join(self.c.user_dir(user), "slurm-%d.out" % jobid)
        with open(path) as f:
            return f.read()

    def test_1_nodes_idle(self):
        info = self.c.node_info()
        self.assertEqual(sorted(info), ["n1", "n2"])
        for node, fields in info.items():
            self.assertEqual(fields["State"], "IDLE", node)
        proc = self.c.run(["sinfo", "-h", "-o", "%T"], check=True)
        self.assertEqual(proc.stdout.split(), ["idle"])

    def test_2_srun_as_user(self):
        proc = self.c.run(["srun", "-N2", "hostname"], user=ALICE, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr + self.c.daemon_logs())
        self.assertEqual(proc.stdout.split(), [HOSTNAME, HOSTNAME])
        proc = self.c.run(["srun", "-N2", "--label", "id", "-un"], user=ALICE,
                          check=True, timeout=30)
        self.assertEqual(sorted(proc.stdout.split()), ["0:", "1:", ALICE, ALICE])

    def test_2_run_passes_environment(self):
        proc = self.c.run(["env"], user=BOB, env={"HAWF_TEST_VAR": "x y"},
                          check=True)
        env = dict(line.split("=", 1) for line in proc.stdout.splitlines())
        self.assertEqual(env["HAWF_TEST_VAR"], "x y")
        self.assertEqual(env["SLURM_CONF"], self.c.conf)
        self.assertEqual(env["USER"], BOB)
        self.assertEqual(proc.stdout.count("SLURM_JOB"), 0)

    def test_3_sbatch_as_user(self):
        jobid = self.c.sbatch(BOB, "#!/bin/sh\nid -un\npwd\nhostname\n")
        info = self.c.wait_job(jobid)
        self.assertEqual(info["JobState"], "COMPLETED", self.c.daemon_logs())
        self.assertEqual(info["UserId"].split("(")[0], BOB)
        out = os.path.join(self.c.user_dir(BOB), "slurm-%d.out" % jobid)
        self.assertEqual(os.stat(out).st_uid, pwd.getpwnam(BOB).pw_uid)
        self.assertEqual(self.output_of(BOB, jobid).split(),
                         [BOB, self.c.user_dir(BOB), HOSTNAME])

    def test_4_failing_job_is_terminal(self):
        jobid = self.c.sbatch(ALICE, "#!/bin/sh\nexit 3\n")
        info = self.c.wait_job(jobid)
        self.assertEqual(info["JobState"], "FAILED")
        self.assertEqual(info["ExitCode"], "3:0")

    def test_5_held_job_survives_controller_restart(self):
        jobid = self.c.sbatch(BOB, "#!/bin/sh\necho released\n", args=["-H"])
        info = self.c.job_info(jobid)
        self.assertEqual((info["JobState"], info["Reason"]),
                         ("PENDING", "JobHeldUser"))
        self.c.restart_controller()
        info = self.c.job_info(jobid)
        self.assertEqual((info["JobState"], info["Reason"]),
                         ("PENDING", "JobHeldUser"))
        self.c.run(["scontrol", "release", str(jobid)], user=BOB, check=True)
        info = self.c.wait_job(jobid)
        self.assertEqual(info["JobState"], "COMPLETED", self.c.daemon_logs())
        self.assertEqual(self.output_of(BOB, jobid), "released\n")

    def test_6_running_job_survives_node_restart(self):
        jobid = self.c.sbatch(ALICE, "#!/bin/sh\nsleep 2\necho survived\n")
        self.wait_running(jobid)
        self.c.restart_nodes()
        info = self.c.wait_job(jobid)
        self.assertEqual(info["JobState"], "COMPLETED", self.c.daemon_logs())
        self.assertEqual(self.output_of(ALICE, jobid), "survived\n")
        self.assertEqual(self.c.run(["srun", "-N2", "true"], user=ALICE,
                                    timeout=30).returncode, 0)

    def test_9_stop_leaves_no_process(self):
        workdir = self.c.workdir
        # a running job: its slurmstepd and task must go away too
        jobid = self.c.sbatch(ALICE, "#!/bin/sh\nsleep 300\n")
        self.wait_running(jobid)
        self.assertTrue(daemons_of(workdir))
        self.c.stop()
        self.assertEqual(cluster.cluster_processes(workdir), set())
        self.assertEqual(daemons_of(workdir), [])
        self.assertFalse(os.path.exists(workdir))

    # helpers

    def wait_running(self, jobid, timeout=30):
        for _ in range(timeout * 20):
            state = self.c.job_info(jobid)["JobState"]
            if state == "RUNNING":
                return
            self.assertEqual(state, "PENDING")
            time.sleep(0.05)
        self.fail("job %d not running after %ds" % (jobid, timeout))


@unittest.skipUnless(os.geteuid() == 0, "needs root")
class StartFailureTest(unittest.TestCase):

    def test_bad_plugin_fails_start_and_cleans_up(self):
        with tempfile.TemporaryDirectory() as tmp:
            plugin = os.path.join(tmp, "broken.so")
            with open(plugin, "w") as f:
                f.write("not an ELF file\n")
            c = Cluster(plugin=plugin, plugin_args=["a=1"])
            with self.assertRaises(ClusterError) as cm:
                c.start()
            self.assertIn("Failed to load plugin", str(cm.exception))
            self.assertEqual(daemons_of(c.workdir), [])
            self.assertFalse(os.path.exists(c.workdir))

    def test_missing_plugin_is_refused(self):
        with self.assertRaises(ClusterError):
            Cluster(plugin="/nonexistent/hawf.so")


if __name__ == "__main__":
    unittest.main()
