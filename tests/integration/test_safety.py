"""Refusals and isolation on a real cluster: bad option values are refused at
submission, another user can neither decide nor plant a decision, a broken
spool or config never touches jobs that do not use hawf, and no node drains."""

import json
import os
import pwd
import threading
import time
import unittest

from hawftest import ALICE, BOB, ClusterTestCase

OK_JOB = "#!/bin/bash\necho hello\n"


class BadOptions(ClusterTestCase):

    CASES = [
        (["--hawf-checkpoint=.hidden"], ".hidden"),
        (["--hawf-checkpoint=a/b"], "a/b"),
        (["--hawf-checkpoint=x", "--hawf-options=go,go"], "go"),
        (["--hawf-checkpoint=x", "--hawf-options="], "--hawf-options"),
        (["--hawf-checkpoint=x", "--hawf-params=lr:double"], "double"),
        (["--hawf-checkpoint=x", "--hawf-params=9lr:int"], "9lr"),
        (["--hawf-checkpoint=x", "--hawf-timeout=5x", "--hawf-default=approve"], "5x"),
        (["--hawf-checkpoint=x", "--hawf-timeout=10m"], "--hawf-default"),
        (["--hawf-checkpoint=x", "--hawf-timeout=10m", "--hawf-default=maybe"], "maybe"),
        (["--hawf-checkpoint=x", "--hawf-then=next.sh:nope"], "nope"),
        (["--hawf-options=a,b"], "--hawf-checkpoint"),
    ]

    def job_count(self):
        r = self.hawf.cluster.run(["squeue", "-h", "-t", "all", "-o", "%i"])
        return len(r.stdout.split())

    def test_refused_at_submission_by_srun_and_sbatch(self):
        before = self.job_count()
        for args, needle in self.CASES:
            for command in (["srun"] + args + ["true"], ["sbatch"] + args + ["--wrap", "true"]):
                with self.subTest(command=command):
                    r = self.hawf.run(ALICE, command)
                    self.assertOneLineError(r, needle)
                    self.assertEqual(r.stdout, "")
        self.assertEqual(self.job_count(), before, "a refused submission queued a job")

    def test_salloc_refuses_a_job_level_checkpoint(self):
        r = self.hawf.run(ALICE, ["salloc", "--hawf-checkpoint=x", "true"])
        self.assertOneLineError(r, "srun")

    def test_options_are_in_help(self):
        for command in ("srun", "sbatch", "salloc"):
            out = self.hawf.run(ALICE, [command, "--help"]).stdout
            for option in ("checkpoint", "options", "params", "timeout", "default", "then"):
                self.assertIn("--hawf-" + option, out, command)

    def test_export_none_is_refused_where_slurm_drops_the_options(self):
        # Before 23.11, sbatch --export=NONE passes no SPANK option to the job: it would
        # run without its checkpoint. Refused there; from 23.11 on, the checkpoint opens.
        argv = ["sbatch", "--export=NONE", "--hawf-checkpoint=exported", "--wrap", "true"]
        if self.hawf.cluster.release < (23, 11):
            before = self.job_count()
            r = self.hawf.run(ALICE, argv)
            self.assertOneLineError(r, '--export "NONE" passes no --hawf-* option to the job in Slurm %d.%02d'
                                    % self.hawf.cluster.release)
            self.assertEqual(self.job_count(), before)  # refused before submission
        else:
            job = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n", "--export=NONE", "--hawf-checkpoint=exported")
            self.hawf.wait_state(ALICE, "%d:exported" % job, "pending")


class SecondUser(ClusterTestCase):

    def pending_checkpoint(self):
        job = self.hawf.sbatch(ALICE, OK_JOB, "--hawf-checkpoint=eval")
        self.hawf.wait_job(job)
        ckpt = "%d:eval" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        return job, ckpt

    def assert_still_pending(self, ckpt):
        poll = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(poll.returncode, 75, poll.stdout + poll.stderr)
        self.assertIn(ckpt, self.hawf.tool(ALICE, "hawf", "ls").stdout)

    def test_other_user_cannot_decide(self):
        _, ckpt = self.pending_checkpoint()
        before = self.hawf.spool_files()
        for args in ([ckpt, "approve"], ["--amend", ckpt, "approve"], ["--revoke", ckpt]):
            r = self.hawf.tool(BOB, "hawf-decide", *args)
            self.assertEqual(r.returncode, 1)
            self.assertOneLineError(r, ckpt, ALICE)
        self.assertEqual(self.hawf.spool_files(), before)
        self.assert_still_pending(ckpt)

    def test_planted_and_replaced_files_count_for_nothing(self):
        job, ckpt = self.pending_checkpoint()
        alice_uid = pwd.getpwnam(ALICE).pw_uid
        bob_uid = pwd.getpwnam(BOB).pw_uid
        alice_tree = os.path.join(self.hawf.spool, str(alice_uid))
        decided = json.dumps({"v": 1, "seq": 3, "event": "decided", "at": "2026-01-01T00:00:00Z", "by": ALICE,
                              "by_uid": alice_uid, "via": "cli", "host": "x",
                              "decision": {"choice": "approve", "params": {}, "comment": "planted"}})
        # Bob tries every directory of the spool: only the sticky root lets him in.
        writable = []
        for top, dirs, _ in os.walk(self.hawf.spool):
            probe = os.path.join(top, "planted")
            r = self.hawf.run(BOB, ["bash", "-c", 'printf "%s" "$1" > "$2"', "_", decided, probe])
            if r.returncode == 0:
                writable.append(top)
        self.assertEqual(writable, [self.hawf.spool])
        # ... and cannot replace, move or remove Alice's tree there.
        for cmd in (["mv", alice_tree, alice_tree + ".old"], ["rm", "-rf", alice_tree],
                    ["ln", "-sfn", "/tmp", alice_tree]):
            self.assertNotEqual(self.hawf.run(BOB, cmd).returncode, 0, cmd)
        # In the root he plants a look-alike tree of his own with a decision,
        # and a symlink posing as another user's tree.
        fake = os.path.join(self.hawf.spool, str(bob_uid), "ckpt", str(job), "eval", "log")
        r = self.hawf.run(BOB, ["bash", "-c", 'mkdir -p "$1" && for n in 1 2 3; do printf "%s" "$2" > "$1/0000000$n"; done',
                                "_", fake, decided])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.run(BOB, ["ln", "-s", alice_tree, os.path.join(self.hawf.spool, "0")]).returncode, 0)
        self.assert_still_pending(ckpt)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["owner"], ALICE)
        # Root takes the owner from Slurm, not from who has a tree with that id.
        r = self.hawf.cluster.run(["hawf", "show", "--json", ckpt], env=self.hawf.env())
        self.assertEqual(json.loads(r.stdout)["owner"], ALICE, r.stderr)
        self.assertNotIn("planted", r.stdout)

    def test_a_group_writable_tree_is_not_trusted(self):
        # If Alice loosens her own log directory, Bob can write there; hawf must
        # then refuse the checkpoint rather than accept what he plants.
        job, ckpt = self.pending_checkpoint()
        tree = os.path.join(self.hawf.spool, str(pwd.getpwnam(ALICE).pw_uid))
        log = os.path.join(tree, "ckpt", str(job), "eval", "log")
        for path in (tree, os.path.dirname(os.path.dirname(os.path.dirname(log))), os.path.dirname(os.path.dirname(log)),
                     os.path.dirname(log)):  # her private tree opened up on the way there
            self.assertEqual(self.hawf.run(ALICE, ["chmod", "755", path]).returncode, 0)
        self.assertEqual(self.hawf.run(ALICE, ["chmod", "777", log]).returncode, 0)
        decided = json.dumps({"v": 1, "seq": 3, "event": "decided", "at": "2026-01-01T00:00:00Z", "by": BOB,
                              "by_uid": 0, "via": "cli", "host": "x",
                              "decision": {"choice": "approve", "params": {}, "comment": "planted"}})
        r = self.hawf.run(BOB, ["bash", "-c", 'printf "%s" "$1" > "$2"', "_", decided, os.path.join(log, "00000003")])
        self.assertEqual(r.returncode, 0, r.stderr)
        waited = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(waited.returncode, 1)
        self.assertOneLineError(waited, "writable by group or others")
        # Alice tightens it again; Bob's file is still there but not hers.
        self.assertEqual(self.hawf.run(ALICE, ["chmod", "755", log]).returncode, 0)
        waited = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(waited.returncode, 1)
        self.assertOneLineError(waited, "00000003", "owned by uid %d" % pwd.getpwnam(BOB).pw_uid)


class ZeroCost(ClusterTestCase):
    """Every srun, sbatch and slurmstepd loads hawf.so; a job that uses no --hawf-*
    option maps that small C front and nothing else of hawf: not the engine (with
    its C++ runtime inside), not libyaml. (Debian's slurmstepd maps libstdc++ of its
    own, without any SPANK plugin: only srun and sbatch are checked for it.)"""

    HEAVY = ("hawf_engine.so", "libyaml")

    def maps(self, pid):
        with open("/proc/%d/maps" % pid) as f:
            return {os.path.basename(line.split()[-1]) for line in f if "/" in line}

    def processes(self, name, marker):
        """Pids of the processes NAME whose command line holds MARKER."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            if os.path.basename(argv[0]).startswith(name) and any(marker in a for a in argv):
                found.append(int(pid))
        return found

    def mapped(self, client, *options):
        """What CLIENT (srun or sbatch --wait) and the slurmstepd of its step map while
        the step runs, given OPTIONS: ({client's files}, {slurmstepd's files})."""
        marker = "zerocost-%s-%d" % (client, len(options))
        stamp = os.path.join(self.hawf.cluster.user_dir(ALICE), marker + ".job")
        if os.path.exists(stamp):
            os.unlink(stamp)
        body = "echo $SLURM_JOB_ID > %s; sleep 5" % stamp
        argv = (["srun", "--job-name=" + marker] + list(options) + ["bash", "-c", body] if client == "srun" else
                ["sbatch", "--wait", "--job-name=" + marker] + list(options) +
                ["--wrap", body])
        result = {}
        runner = threading.Thread(target=lambda: result.update(r=self.hawf.run(ALICE, argv, timeout=90)))
        runner.start()
        try:
            deadline = time.time() + 60
            while not os.path.exists(stamp) or not open(stamp).read().strip():
                self.assertLess(time.time(), deadline, "the step never started")
                time.sleep(0.1)
            job = open(stamp).read().strip()
            found = []
            for name, marker in ((client, marker), ("slurmstepd", "[%s." % job)):
                pids = self.processes(name, marker)  # srun forks a helper of its own
                self.assertTrue(pids, "no %s of job %s" % (name, job))
                found.append(set().union(*(self.maps(pid) for pid in pids)))
            return tuple(found)
        finally:
            runner.join()
            self.assertEqual(result["r"].returncode, 0, result["r"].stderr)

    def test_a_job_without_hawf_maps_only_the_front(self):
        for client in ("srun", "sbatch"):
            for files, where in zip(self.mapped(client), (client, "its slurmstepd")):
                self.assertIn("hawf.so", files, where)  # loaded: the test sees what it should
                heavy = self.HEAVY + (("libstdc++",) if where == client else ())
                self.assertEqual([f for f in files if f.startswith(heavy)], [], where)
        # Asked for, the engine is there (so the test can tell).
        for client in ("srun", "sbatch"):
            for files, where in zip(self.mapped(client, "--hawf-checkpoint=zc"), (client, "its slurmstepd")):
                self.assertIn("hawf_engine.so", files, where)


class BrokenSpool(ClusterTestCase):

    def tearDown(self):
        self.hawf.write_conf()

    def assert_nodes_healthy(self):
        # Up and usable (completing is fine: a job just ended); never drained or down.
        states = self.hawf.cluster.run(["sinfo", "-h", "-N", "-o", "%T"]).stdout.split()
        bad = ("drain", "down", "fail", "not_responding")
        self.assertTrue(states and not any(b in s for s in states for b in bad), states)

    def assert_unrelated_jobs_run(self):
        job = self.hawf.sbatch(ALICE, OK_JOB)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        self.assertNotIn("hawf", self.hawf.output(ALICE, job))
        r = self.hawf.run(ALICE, ["srun", "-N2", "true"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("hawf", r.stderr)
        self.assert_nodes_healthy()

    def test_broken_config(self):
        self.hawf.write_conf("spool: [unclosed\n")
        self.assert_unrelated_jobs_run()
        r = self.hawf.run(ALICE, ["sbatch", "--hawf-checkpoint=x", "--wrap", "true"])
        self.assertOneLineError(r, self.hawf.conf + ":")

    def test_unknown_key_in_config(self):
        self.hawf.write_conf("spool: %s\nspoool: /x\n" % self.hawf.spool)
        self.assert_unrelated_jobs_run()
        r = self.hawf.run(ALICE, ["srun", "--hawf-checkpoint=x", "true"])
        self.assertOneLineError(r, self.hawf.conf + ":2", "spoool")

    def test_missing_spool(self):
        self.hawf.write_conf("spool: /nonexistent/hawf\n")
        self.assert_unrelated_jobs_run()
        r = self.hawf.run(ALICE, ["sbatch", "--hawf-checkpoint=x", "--wrap", "true"])
        self.assertOneLineError(r, "/nonexistent/hawf")

    def test_spool_unwritable_on_the_node_fails_only_that_job(self):
        job = self.hawf.sbatch(ALICE, OK_JOB, "-H", "--hawf-checkpoint=eval")
        locked = os.path.join(self.hawf.root, "locked-spool")
        os.mkdir(locked, 0o755)  # root's, not sticky-writable: Alice cannot make her tree
        self.hawf.write_conf("spool: %s\n" % locked)
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        info = self.hawf.wait_job(job)
        self.assertEqual(info["JobState"], "FAILED")
        lines = [l for l in self.hawf.output(ALICE, job).splitlines() if "hawf:" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("cannot open checkpoint %d:eval" % job, lines[0])
        self.assertNotIn("hello", self.hawf.output(ALICE, job))
        self.assert_unrelated_jobs_run()


if __name__ == "__main__":
    unittest.main()
