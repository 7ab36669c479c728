"""The foundation loop on a real cluster: a marked job or step opens a checkpoint
when it ends, its owner looks at it and decides from a login shell, and the
decision is read back."""

import calendar
import json
import os
import subprocess
import time
import unittest

from hawftest import ALICE, BOB, ClusterTestCase

TRAIN = r"""#!/bin/bash
echo "CKPT=$HAWF_CHECKPOINT"
echo "DIR=$HAWF_CHECKPOINT_DIR"
echo '{"loss": 0.25}' > "$HAWF_CHECKPOINT_DIR/metrics.json"
printf '# Eval\nloss 0.25\n' > "$HAWF_CHECKPOINT_DIR/report.md"
# Inner steps inherit the job's options but must not open checkpoints of their own.
srun bash -c 'echo "INNER=$HAWF_CHECKPOINT"'
srun true
"""

NOTE = 'line one\nline "two" with a=b and \'quotes\''


class BatchCheckpoint(ClusterTestCase):

    def submit_eval(self, *extra):
        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-params=lr:float,note:string", *extra)
        info = self.hawf.wait_job(job)
        self.assertEqual(info["JobState"], "COMPLETED", self.hawf.output(ALICE, job))
        ckpt = "%d:eval" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        return job, ckpt

    def test_job_checkpoint_decided_and_read_back(self):
        job, ckpt = self.submit_eval()
        out = self.hawf.output(ALICE, job)
        self.assertIn("CKPT=%s\n" % ckpt, out)
        self.assertIn("INNER=%s\n" % ckpt, out)
        shown = self.hawf.show(ALICE, ckpt)
        self.assertIn("DIR=%s\n" % shown["files_dir"], out)
        self.assertEqual(shown["spec"]["scope"], "job")
        self.assertEqual([f["name"] for f in shown["files"]], ["metrics.json", "report.md"])
        self.assertIn("loss 0.25", shown["report"])
        # Exactly one checkpoint for the job: the inner steps opened none.
        listed = json.loads(self.hawf.tool(ALICE, "hawf", "ls", "--all", "--json").stdout)
        self.assertEqual([c["checkpoint"] for c in listed if c["checkpoint"].startswith("%d:" % job)], [ckpt])
        self.assertIn(ckpt, self.hawf.tool(ALICE, "hawf", "ls").stdout)
        self.assertNotIn(ckpt, self.hawf.tool(BOB, "hawf", "ls").stdout)

        poll = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(poll.returncode, 75, poll.stderr)
        short = self.hawf.tool(ALICE, "hawf-await", "--timeout=1s", ckpt)
        self.assertEqual(short.returncode, 75, short.stderr)

        # A blocking waiter started before the decision returns with it.
        waiter = subprocess.Popen(
            ["runuser", "-u", ALICE, "--", "hawf-await", "--json", ckpt],
            env=dict(self.hawf.cluster.env, **self.hawf.env()), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd="/")
        time.sleep(1.5)
        self.assertIsNone(waiter.poll(), "hawf-await returned before the decision")
        decided = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=1e-4",
                                 "--set", "note=" + NOTE, "-m", "good enough")
        self.assertEqual(decided.returncode, 0, decided.stderr)
        out, err = waiter.communicate(timeout=30)
        self.assertEqual(waiter.returncode, 0, err)
        decision = json.loads(out)
        self.assertEqual(decision["choice"], "continue")
        # Parameters keep their declared types in JSON; the environment has the text as given.
        self.assertEqual(decision["params"], {"lr": 1e-4, "note": NOTE})
        self.assertIsInstance(decision["params"]["lr"], float)
        self.assertEqual(decision["comment"], "good enough")
        self.assertEqual(decision["decided_by"], ALICE)

        # --env output, eval'd by a shell, gives back every value exactly.
        script = 'eval "$(hawf-await --env %s)" && printf "%%s|%%s|%%s" "$HAWF_DECISION" "$HAWF_PARAM_LR" "$HAWF_PARAM_NOTE"' % ckpt
        env_out = self.hawf.run(ALICE, ["bash", "-c", script])
        self.assertEqual(env_out.stdout, "continue|1e-4|" + NOTE, env_out.stderr)
        self.assertEqual(self.hawf.tool(ALICE, "hawf-await", ckpt).stdout, "continue\n")

        again = self.hawf.tool(ALICE, "hawf-decide", ckpt, "stop")
        self.assertOneLineError(again, ckpt, "--amend")
        amended = self.hawf.tool(ALICE, "hawf-decide", "--amend", ckpt, "stop", "-m", "changed my mind")
        self.assertEqual(amended.returncode, 0, amended.stderr)
        self.assertEqual(self.hawf.tool(ALICE, "hawf-await", ckpt).stdout, "stop\n")
        revoked = self.hawf.tool(ALICE, "hawf-decide", "--revoke", ckpt)
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        self.assertEqual(self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt).returncode, 75)
        self.assertIn(ckpt, self.hawf.tool(ALICE, "hawf", "ls").stdout)

        log = json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", ckpt).stdout)
        self.assertEqual([e["event"] for e in log], ["opened", "pending", "decided", "amended", "revoked"])
        self.assertEqual(log[2]["by"], ALICE)
        self.assertEqual(log[2]["via"], "cli")

    def test_bad_choice_and_params_refused_at_decision(self):
        _, ckpt = self.submit_eval()
        cases = [
            (["maybe"], "maybe"),
            (["continue", "--set", "lr=fast"], "fast"),
            (["continue", "--set", "epochs=3"], "epochs"),
            (["continue", "--set", "lr"], "lr"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                r = self.hawf.tool(ALICE, "hawf-decide", ckpt, *args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertOneLineError(r, needle)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")

    def test_root_decides_as_the_owner(self):
        _, ckpt = self.submit_eval()
        r = self.hawf.cluster.run(["hawf-decide", ckpt, "stop", "-m", "admin override"], env=self.hawf.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual(shown["decision"]["decided_by"], "root")
        # The record is still owned by the checkpoint's owner, so it is trusted.
        self.assertEqual(self.hawf.tool(ALICE, "hawf-await", ckpt).stdout, "stop\n")


class ArrayJob(ClusterTestCase):

    def test_each_array_task_has_its_own_checkpoint(self):
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\necho \"CKPT=$HAWF_CHECKPOINT\"\n[ $SLURM_ARRAY_TASK_ID = 2 ] && exit 1\nexit 0\n",
                               "--array=1-2", "--hawf-checkpoint=eval")
        for task, state in ((1, "pending"), (2, "failed")):
            self.hawf.wait_state(ALICE, "%d_%d:eval" % (job, task), state)
        listed = self.hawf.cluster.run(["hawf", "ls", "--all", "--json"], env=self.hawf.env())
        self.assertEqual(listed.returncode, 0, listed.stderr)
        mine = sorted(c["checkpoint"] for c in json.loads(listed.stdout) if c["checkpoint"].startswith("%d_" % job))
        self.assertEqual(mine, ["%d_1:eval" % job, "%d_2:eval" % job])


    def decide(self, *args):
        return self.hawf.tool(ALICE, "hawf-decide", *args)

    def test_array_tasks_decided_together_with_values_per_task(self):
        # Each task leaves its own job id, so the test can name a task by it.
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\necho $SLURM_JOB_ID > \"$HAWF_CHECKPOINT_DIR/raw\"\n",
                               "--array=1-3", "--hawf-checkpoint=eval", "--hawf-params=lr:float,tag:string")
        tasks = ["%d_%d:eval" % (job, t) for t in (1, 2, 3)]
        for ckpt in tasks:
            self.hawf.wait_state(ALICE, ckpt, "pending")
        raw2 = self.hawf.tool(ALICE, "hawf", "cat", tasks[1], "raw").stdout.strip()
        self.assertNotEqual(raw2, str(job))
        # A task's own job id names its checkpoint.
        self.assertEqual(self.hawf.show(ALICE, "%s:eval" % raw2)["checkpoint"], tasks[1])

        # A row for a task not named refuses everything before anything is decided.
        values = self.hawf.user_file(ALICE, "values.csv", "task,lr,tag\n1,0.1,\"a, b\"\n3,0.3,\n")
        r = self.decide("%d_[1-2]:eval" % job, "approve", "--params-from=" + values)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn('"3" is none of the checkpoints named', r.stderr)
        self.assertEqual(self.hawf.show(ALICE, tasks[0])["state"], "pending")

        r = self.decide("%d_[1,3]:eval" % job, "approve", "--params-from=" + values, "--set", "tag=all")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["decided %s: approve lr=0.1 tag=a, b" % tasks[0],
                                                 "decided %s: approve lr=0.3 tag=all" % tasks[2]])
        self.assertEqual(self.hawf.show(ALICE, tasks[0])["decision"]["params"], {"lr": 0.1, "tag": "a, b"})

        # The array's job id names every task: two are decided already, so exit 1, one line each.
        r = self.decide("%d:eval" % job, "reject", "-m", "enough")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["decided %s: reject" % tasks[1]])
        errors = r.stderr.splitlines()
        self.assertEqual(len(errors), 3, r.stderr)
        self.assertTrue(errors[0].startswith("hawf-decide: %s: " % tasks[0]), r.stderr)
        self.assertTrue(errors[1].startswith("hawf-decide: %s: " % tasks[2]), r.stderr)
        self.assertEqual(errors[2], "hawf-decide: 2 of 3 checkpoints not decided as asked")

        # All tasks, and a task by its own id, in one command; JSON is a list.
        r = self.decide("--revoke", "%d_*:eval" % job)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 3)
        r = self.decide("--json", "%d_1,%s:eval" % (job, raw2), "approve")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([d["checkpoint"] for d in json.loads(r.stdout)], tasks[:2])
        self.assertEqual(self.hawf.show(ALICE, tasks[2])["state"], "pending")
        # Something it cannot be: refused with the forms it can.
        r = self.decide("%d_[2-1]:eval" % job, "approve")
        self.assertOneLineError(r, "it runs backwards")

    def test_array_task_polls_its_own_checkpoint(self):
        script = """#!/bin/bash
hawf-await --open=mid --options=go,halt >/dev/null
for i in $(seq 120); do own=$(hawf-await --poll 2>/dev/null) && break; sleep 0.5; done
echo "OWN=$own RAW=$(hawf-await --poll "$SLURM_JOB_ID:mid")"
"""
        job = self.hawf.sbatch(ALICE, script, "--array=1-2", "-o", "array-%A_%a.out")
        for t in (1, 2):
            self.hawf.wait_state(ALICE, "%d_%d:mid" % (job, t), "pending")
        r = self.decide("%d_*:mid" % job, "go")
        self.assertEqual(r.returncode, 0, r.stderr)
        for t in (1, 2):
            self.assertEqual(self.hawf.wait_job("%d_%d" % (job, t))["JobState"], "COMPLETED")
            with open(os.path.join(self.hawf.cluster.user_dir(ALICE), "array-%d_%d.out" % (job, t))) as f:
                self.assertEqual(f.read(), "OWN=go RAW=go\n")
        # Outside a job there is no checkpoint of its own.
        r = self.hawf.tool(ALICE, "hawf-await", "--poll")
        self.assertOneLineError(r, "no CKPT given, and not in a Slurm job")
        self.assertEqual(r.returncode, 2)


class RequeuedJob(ClusterTestCase):

    def test_requeued_job_reopens_its_checkpoint(self):
        script = "#!/bin/bash\nif [ \"${SLURM_RESTART_COUNT:-0}\" = 0 ]; then touch started; sleep 60; fi\necho run\n"
        job = self.hawf.sbatch(ALICE, script, "--requeue", "--hawf-checkpoint=rq")
        ckpt = "%d:rq" % job
        started = os.path.join(self.hawf.cluster.user_dir(ALICE), "started")
        deadline = time.time() + 60
        while not os.path.exists(started) and time.time() < deadline:
            time.sleep(0.1)
        r = self.hawf.run(ALICE, ["scontrol", "requeue", str(job)])
        self.assertEqual(r.returncode, 0, r.stderr)
        # The killed run ends its checkpoint as failed; Slurm delays the requeued
        # job's start (for that, among others), and its owner may bring it forward.
        self.hawf.wait_state(ALICE, ckpt, "failed")
        # Not before the killed run is cleaned up on its node (slurmd otherwise refuses
        # the relaunch: "Job 1 already killed, do not launch batch job").
        def settled():
            nodes = self.hawf.cluster.run(["sinfo", "-h", "-N", "-o", "%T"]).stdout.split()
            return self.hawf.cluster.job_info(job)["JobState"] == "PENDING" and \
                not any("completing" in n for n in nodes)
        while not settled() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        self.hawf.run(ALICE, ["scontrol", "update", "JobId=%d" % job, "StartTime=now"])
        self.assertEqual(self.hawf.wait_job(job, timeout=180)["JobState"], "COMPLETED")
        self.hawf.wait_state(ALICE, ckpt, "pending")
        events = [e["event"] for e in json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", ckpt).stdout)]
        self.assertEqual(events, ["opened", "failed", "reopened", "pending"])


class FailedJob(ClusterTestCase):

    def test_failed_job_opens_nothing_to_decide(self):
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\necho working\nexit 3\n", "--hawf-checkpoint=eval")
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "FAILED")
        ckpt = "%d:eval" % job
        shown = self.hawf.wait_state(ALICE, ckpt, "failed")
        self.assertNotIn("decision", shown)
        self.assertNotIn(ckpt, self.hawf.tool(ALICE, "hawf", "ls").stdout)
        self.assertIn(ckpt, self.hawf.tool(ALICE, "hawf", "ls", "--state=failed").stdout)
        waited = self.hawf.tool(ALICE, "hawf-await", ckpt)
        self.assertEqual(waited.returncode, 1)
        self.assertOneLineError(waited, ckpt, "failed (its step ended with exit 3)")
        # Its end as Slurm shows it, not a wait status.
        self.assertRegex(self.hawf.tool(ALICE, "hawf", "log", ckpt).stdout, r"  failed by %s \(.*\): exit 3\n" % ALICE)
        refused = self.hawf.tool(ALICE, "hawf-decide", ckpt, "approve")
        self.assertEqual(refused.returncode, 1)
        self.assertOneLineError(refused, ckpt, "failed")
        log = json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", ckpt).stdout)
        self.assertEqual([e["event"] for e in log], ["opened", "failed"])
        self.assertEqual(log[1]["exit_status"] >> 8, 3)


class Listing(ClusterTestCase):

    def test_ls_takes_squeues_options(self):
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n", "--hawf-checkpoint=lsme")
        ckpt = "%d:lsme" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        r = self.hawf.tool(ALICE, "hawf", "ls", "-h", "-o", "job,name,state", "--parsable", "-t", "PENDING,Decided",
                           "-j", str(job))
        self.assertEqual((r.returncode, r.stdout), (0, "%d|lsme|pending\n" % job), r.stderr)
        r = self.hawf.tool(ALICE, "hawf", "ls", "--me", "--jobs=%d" % job, "--format=checkpoint")
        self.assertEqual(r.stdout, "CHECKPOINT\n%s\n" % ckpt, r.stderr)
        self.assertEqual(self.hawf.tool(ALICE, "hawf", "ls", "-h", "-t", "applied", "-j", str(job)).stdout, "")
        # Root lists the owners it is asked for, as squeue -u.
        root = self.hawf.cluster.run(["hawf", "ls", "-h", "-o", "checkpoint", "-u", BOB], env=self.hawf.env())
        self.assertNotIn(ckpt, root.stdout, root.stderr)
        root = self.hawf.cluster.run(["hawf", "ls", "-h", "-o", "checkpoint", "--user=%s,%s" % (BOB, ALICE)],
                                     env=self.hawf.env())
        self.assertIn(ckpt + "\n", root.stdout, root.stderr)
        # --help is help; what is not a column, a state or a job is refused in one line.
        self.assertIn("Usage: hawf", self.hawf.tool(ALICE, "hawf", "ls", "--help").stdout)
        for args, needle in ((["-o", "size"], "unknown column \"size\""), (["-t", "done"], "\"done\""),
                             (["-j", "x"], "bad job id \"x\""), (["--me", "-u", BOB], "--me and --user")):
            r = self.hawf.tool(ALICE, "hawf", "ls", *args)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertOneLineError(r, needle)


    def test_show_lists_directories_and_previews_a_long_report(self):
        # 70,000 bytes of report with a 3-byte character across the 64 KiB cut.
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\ncd \"$HAWF_CHECKPOINT_DIR\"\nmkdir -p plots/epoch9\n"
                                      "echo x > plots/epoch9/loss.csv\nln -s /etc/passwd plots/link\n"
                                      "{ head -c 65535 /dev/zero | tr '\\0' a; printf '\\xe2\\x82\\xac'; "
                                      "head -c 4462 /dev/zero | tr '\\0' b; } > report.md\n", "--hawf-checkpoint=long")
        ckpt = "%d:long" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual([(f["name"], f["type"]) for f in shown["files"]],
                         [("plots", "dir"), ("plots/epoch9", "dir"), ("plots/epoch9/loss.csv", "file"),
                          ("plots/link", "link"), ("report.md", "file")])
        self.assertEqual(shown["report"], "a" * 65535 + "\n[... report.md has 70000 bytes; the first 64 KiB are "
                                          "shown: hawf cat %s report.md]\n" % ckpt)
        whole = self.hawf.tool(ALICE, "hawf", "cat", ckpt, "report.md")
        self.assertEqual(len(whole.stdout.encode()), 70000, whole.stderr)
        # People see local time as Slurm prints it (no zone); JSON has UTC with its "Z".
        self.assertRegex(shown["opened_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        text = self.hawf.tool(ALICE, "hawf", "show", ckpt, env={"TZ": "IST-5:30"}).stdout
        opened = time.strptime(shown["opened_at"], "%Y-%m-%dT%H:%M:%SZ")
        kolkata = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(calendar.timegm(opened) + 5 * 3600 + 1800))
        self.assertIn("opened:     %s on " % kolkata, text)
        log = self.hawf.tool(ALICE, "hawf", "log", ckpt, env={"TZ": "IST-5:30"}).stdout
        self.assertTrue(log.startswith(kolkata + "  " + ckpt), log)


class GarbageCollection(ClusterTestCase):

    def test_gc_removes_only_old_ended_checkpoints(self):
        failed = self.hawf.sbatch(ALICE, "#!/bin/bash\nexit 1\n", "--hawf-checkpoint=old")
        pending = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n", "--hawf-checkpoint=open")
        stopped = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n", "--hawf-checkpoint=done")
        waiting = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n", "--hawf-checkpoint=next")
        bobs = self.hawf.sbatch(BOB, "#!/bin/bash\nexit 1\n", "--hawf-checkpoint=old")
        for user, ckpt, state in ((ALICE, "%d:old" % failed, "failed"), (ALICE, "%d:open" % pending, "pending"),
                                  (ALICE, "%d:done" % stopped, "pending"), (ALICE, "%d:next" % waiting, "pending"),
                                  (BOB, "%d:old" % bobs, "failed")):
            self.hawf.wait_state(user, ckpt, state)
        # Decided: a stop that ends the chain, and one whose follow-up is released but
        # cannot start for an hour yet (it still reads the decision when it starts).
        self.hawf.user_file(ALICE, "later.sh", "#!/bin/bash\ntrue\n", 0o755)
        r = self.hawf.tool(ALICE, "hawf-await", "--then=later.sh", "--on=approve", "%d:next" % waiting, "--",
                           "--begin=now+3600")
        self.assertEqual(r.returncode, 0, r.stderr)
        later = r.stdout.strip()
        for ckpt, choice in (("%d:done" % stopped, "reject"), ("%d:next" % waiting, "approve")):
            r = self.hawf.tool(ALICE, "hawf-decide", ckpt, choice)
            self.assertEqual(r.returncode, 0, r.stderr)
        time.sleep(2)
        dry = self.hawf.tool(ALICE, "hawf", "gc", "--older-than=1s", "--dry-run")
        self.assertEqual(sorted(dry.stdout.splitlines()), sorted(["would remove %d:old (%s, failed)" % (failed, ALICE),
                                                                   "would remove %d:done (%s, decided)" % (stopped, ALICE)]),
                         dry.stderr)
        self.assertEqual(self.hawf.show(ALICE, "%d:old" % failed)["state"], "failed")
        gone = self.hawf.tool(ALICE, "hawf", "gc", "--older-than=1s", "--json")
        self.assertEqual(sorted(c["checkpoint"] for c in json.loads(gone.stdout)),
                         sorted(["%d:old" % failed, "%d:done" % stopped]))
        self.assertEqual(self.hawf.tool(ALICE, "hawf", "show", "%d:old" % failed).returncode, 1)
        self.assertEqual(self.hawf.tool(ALICE, "hawf", "show", "%d:done" % stopped).returncode, 1)
        self.assertEqual(self.hawf.show(ALICE, "%d:open" % pending)["state"], "pending")
        self.assertEqual(self.hawf.show(ALICE, "%d:next" % waiting)["state"], "decided")
        # Once its follow-up is gone from the queue, nothing reads it any more.
        self.hawf.run(ALICE, ["scancel", later])
        self.hawf.wait_job(int(later))
        gone = self.hawf.tool(ALICE, "hawf", "gc", "--older-than=1s", "--json")
        self.assertEqual([c["checkpoint"] for c in json.loads(gone.stdout)], ["%d:next" % waiting])
        self.assertEqual(self.hawf.show(BOB, "%d:old" % bobs)["state"], "failed")
        # Root collects everyone's, writing as each owner.
        r = self.hawf.cluster.run(["hawf", "gc", "--older-than=1s"], env=self.hawf.env())
        self.assertIn("removed %d:old (%s, failed)" % (bobs, BOB), r.stdout, r.stderr)
        self.assertEqual(self.hawf.tool(BOB, "hawf", "show", "%d:old" % bobs).returncode, 1)
        self.assertFalse(any(p.endswith("/ckpt/%d" % bobs) for p in self.hawf.spool_files()))


class StepCheckpoint(ClusterTestCase):

    def test_srun_step_from_login_shell(self):
        r = self.hawf.run(ALICE, ["srun", "--hawf-checkpoint=step1", "--hawf-options=go,halt", "bash", "-c",
                                  'echo "$HAWF_CHECKPOINT" && echo ok > "$HAWF_CHECKPOINT_DIR/out.txt"'])
        self.assertEqual(r.returncode, 0, r.stderr)
        ckpt = r.stdout.strip()
        self.assertRegex(ckpt, r"^\d+:step1$")
        shown = self.hawf.wait_state(ALICE, ckpt, "pending")
        self.assertEqual(shown["spec"]["scope"], "step")
        self.assertEqual(shown["options"], ["go", "halt"])
        self.assertEqual([f["name"] for f in shown["files"]], ["out.txt"])
        self.assertEqual(self.hawf.tool(ALICE, "hawf-decide", ckpt, "go").returncode, 0)
        self.assertEqual(self.hawf.tool(ALICE, "hawf-await", ckpt).stdout, "go\n")

    def test_srun_step_inside_a_batch_job(self):
        script = "#!/bin/bash\necho \"BATCH=$HAWF_CHECKPOINT\"\nsrun --hawf-checkpoint=inner bash -c 'echo \"STEP=$HAWF_CHECKPOINT\"'\n"
        job = self.hawf.sbatch(ALICE, script)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        out = self.hawf.output(ALICE, job)
        self.assertIn("BATCH=\n", out)
        self.assertIn("STEP=%d:inner\n" % job, out)
        self.hawf.wait_state(ALICE, "%d:inner" % job, "pending")

    def test_multi_node_step_is_pending_only_if_every_node_succeeds(self):
        ok = self.hawf.run(ALICE, ["srun", "-N2", "--hawf-checkpoint=both", "bash", "-c",
                                   '[ $SLURM_NODEID = 0 ] && echo "$HAWF_CHECKPOINT"; true'])
        self.assertEqual(ok.returncode, 0, ok.stderr)
        self.hawf.wait_state(ALICE, ok.stdout.strip(), "pending")
        bad = self.hawf.run(ALICE, ["srun", "-N2", "--hawf-checkpoint=second", "bash", "-c",
                                    '[ $SLURM_NODEID = 0 ] && echo "$HAWF_CHECKPOINT"; exit $SLURM_NODEID'])
        self.assertNotEqual(bad.returncode, 0)
        shown = self.hawf.wait_state(ALICE, bad.stdout.strip(), "failed")
        log = json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", shown["checkpoint"]).stdout)
        self.assertEqual(sorted(e["node"] for e in log if e["event"] == "node-ended"), [0, 1])

    def test_failed_srun_step(self):
        r = self.hawf.run(ALICE, ["srun", "--hawf-checkpoint=bad", "bash", "-c", 'echo "$HAWF_CHECKPOINT"; exit 4'])
        self.assertNotEqual(r.returncode, 0)
        ckpt = r.stdout.strip()
        self.hawf.wait_state(ALICE, ckpt, "failed")


if __name__ == "__main__":
    unittest.main()
