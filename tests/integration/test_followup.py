"""Gated follow-ups on a real cluster: held afterok jobs released (or cancelled) by
the decision, delivery of the decision into them, timeouts taken without a daemon,
in-job checkpoints, decisions that reshape the follow-up, and restarts."""

import json
import os
import pwd
import subprocess
import time
import unittest

from hawftest import ALICE, ClusterTestCase

TRAIN = "#!/bin/bash\necho trained > \"$HAWF_CHECKPOINT_DIR/report.md\"\n"

# A follow-up that records what it was given; an inner srun step checks that every
# task sees the decision too.
FOLLOW = r"""#!/bin/bash
name=$(basename "$SLURM_JOB_NAME" .sh)
printf '%s' "$HAWF_DECISION" > "$name.decision"
printf '%s' "$HAWF_DECIDED_BY" > "$name.by"
printf '%s' "$HAWF_PARAM_NOTE" > "$name.note"
printf '%s' "$HAWF_PARAM_LR" > "$name.lr"
cp "$HAWF_DECISION_FILE" "$name.json"
ls "$HAWF_AFTER_DIR" > "$name.afterdir"
srun bash -c 'printf "%s|%s" "$HAWF_AFTER" "$HAWF_PARAM_NOTE"' > "$name.step"
"""

NOTE = 'multi\nline "quoted" \'single\' a=b=c $HOME `x`'


class FollowUpTestCase(ClusterTestCase):

    def script(self, name, text=FOLLOW):
        """An executable script of Alice's in her working directory."""
        return self.hawf.user_file(ALICE, name, text, 0o755)

    def read(self, name):
        path = os.path.join(self.hawf.cluster.user_dir(ALICE), name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def clear(self, *names):
        for name in names:
            for ext in (".decision", ".by", ".note", ".lr", ".json", ".afterdir", ".step"):
                path = os.path.join(self.hawf.cluster.user_dir(ALICE), name + ext)
                if os.path.exists(path):
                    os.unlink(path)

    def followups(self, ckpt):
        return {f["script"].rsplit("/", 1)[-1]: f for f in self.hawf.show(ALICE, ckpt)["follow_ups"]}

    def job(self, jobid):
        return self.hawf.cluster.job_info(jobid)

    def train_with_branches(self, *extra):
        """A training job whose checkpoint has two follow-ups: finetune.sh (chained by
        --hawf-then) for "continue", cleanup.sh (by hawf-await --then) for "stop"."""
        self.script("finetune.sh")
        self.script("cleanup.sh")
        self.clear("finetune", "cleanup")
        job = self.hawf.sbatch(ALICE, TRAIN, "-H", "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-params=lr:float,note:string", "--hawf-then=finetune.sh:continue", *extra)
        r = self.hawf.tool(ALICE, "hawf-await", "--then=cleanup.sh", "--on=stop", "%d:eval" % job)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        ckpt = "%d:eval" % job
        return job, ckpt


class Branches(FollowUpTestCase):

    def test_decision_releases_one_branch_and_cancels_the_other(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        ups = self.followups(ckpt)
        self.assertEqual(sorted(ups), ["cleanup.sh", "finetune.sh"])
        self.assertEqual(ups["finetune.sh"]["on"], ["continue"])
        # Nothing of Alice's runs while the checkpoint waits: both are held.
        time.sleep(3)
        for name, f in ups.items():
            info = self.job(f["job"])
            self.assertEqual((info["JobState"], info["Reason"]), ("PENDING", "JobHeldUser"), name)
            self.assertIn("afterok:%d" % job, info["Dependency"])
            # What they wait for, where Slurm users look (squeue -o %k).
            r = self.hawf.run(ALICE, ["squeue", "--noheader", "--jobs=" + f["job"], "--format=%k"])
            self.assertEqual(r.stdout.strip(), "hawf: waiting for " + ckpt, name)
        self.assertIsNone(self.read("finetune.decision"))

        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=1e-4", "--set", "note=" + NOTE,
                           "-m", "go on")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow-up %s released" % ups["finetune.sh"]["job"], r.stdout)
        self.assertIn("follow-up %s cancelled" % ups["cleanup.sh"]["job"], r.stdout)
        self.assertEqual(self.hawf.wait_job(int(ups["finetune.sh"]["job"]))["JobState"], "COMPLETED",
                         self.hawf.output(ALICE, int(ups["finetune.sh"]["job"])))
        self.assertEqual(self.job(ups["cleanup.sh"]["job"])["JobState"], "CANCELLED")
        self.assertIsNone(self.read("cleanup.decision"))

        # Delivered verbatim, to the batch script and to every task of its steps.
        self.assertEqual(self.read("finetune.decision"), "continue")
        self.assertEqual(self.read("finetune.lr"), "1e-4")
        self.assertEqual(self.read("finetune.note"), NOTE)
        self.assertEqual(self.read("finetune.by"), ALICE)
        self.assertEqual(self.read("finetune.step"), ckpt + "|" + NOTE)
        # What the step left, and the decision hawf wrote beside it.
        self.assertEqual(self.read("finetune.afterdir"), "decision.json\nreport.md\n")
        delivered = json.loads(self.read("finetune.json"))
        self.assertEqual((delivered["choice"], delivered["params"]["note"], delivered["comment"]),
                         ("continue", NOTE, "go on"))

        # The decision is applied: it can no longer change.
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "applied")
        for args in (["--amend", ckpt, "stop"], ["--revoke", ckpt]):
            r = self.hawf.tool(ALICE, "hawf-decide", *args)
            self.assertOneLineError(r, "already used it")

    def test_failed_job_cancels_its_followups(self):
        self.script("finetune.sh")
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\nexit 2\n", "--hawf-checkpoint=eval",
                               "--hawf-then=finetune.sh")
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "FAILED")
        follow = self.followups("%d:eval" % job)["finetune.sh"]["job"]
        # hawf cancels it when the checkpoint fails; Slurm would too (afterok, kill-on-invalid-dep).
        self.assertEqual(self.hawf.wait_job(int(follow))["JobState"], "CANCELLED")

    def test_failed_step_checkpoint_cancels_its_followups_even_if_the_job_succeeds(self):
        self.script("finetune.sh")
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\nsrun --hawf-checkpoint=step --hawf-then=finetune.sh false\nexit 0\n")
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        self.hawf.wait_state(ALICE, "%d:step" % job, "failed")
        follow = self.followups("%d:step" % job)["finetune.sh"]["job"]
        self.assertEqual(self.hawf.wait_job(int(follow))["JobState"], "CANCELLED")

    def test_followup_that_cannot_be_submitted_fails_the_job_and_ends_the_checkpoint(self):
        # The copy is taken at submission (deleting the script later changes nothing);
        # what Slurm refuses only when the follow-up is submitted is a directive in it.
        self.script("refused.sh", "#!/bin/bash\n#SBATCH --partition=nosuch\ntrue\n")
        job = self.hawf.sbatch(ALICE, TRAIN, "-H", "--hawf-checkpoint=eval", "--hawf-then=refused.sh")
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "FAILED")
        lines = [l for l in self.hawf.output(ALICE, job).splitlines() if "hawf:" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("cannot submit the --hawf-then follow-up", lines[0])
        self.assertIn("invalid partition", lines[0].lower())
        self.hawf.wait_state(ALICE, "%d:eval" % job, "failed")

    def test_followup_runs_the_script_as_it_was_at_submission(self):
        # Whoever can write the submit directory until the job starts must not choose
        # the follow-up: it is the script as submitted, like sbatch's batch script.
        path = self.script("next.sh", "#!/bin/bash\necho as submitted > next.out\n")
        job = self.hawf.sbatch(ALICE, TRAIN, "-H", "--hawf-checkpoint=eval", "--hawf-then=next.sh")
        os.unlink(path)
        self.script("next.sh", "#!/bin/bash\necho replaced > next.out\n")
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED", self.hawf.output(ALICE, job))
        ckpt = "%d:eval" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        follow = self.followups(ckpt)["next.sh"]["job"]
        info = self.job(follow)
        # sbatch read the private copy in Alice's spool tree; the job keeps the name.
        uid = pwd.getpwnam(ALICE).pw_uid
        self.assertRegex(info["Command"], r"^%s/%d/scripts/[0-9a-f]{32}/next\.sh$" % (self.hawf.spool, uid))
        self.assertEqual(info["JobName"], "next.sh")
        self.assertEqual(os.stat(info["Command"]).st_mode & 0o777, 0o600)
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "approve")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.wait_job(int(follow))["JobState"], "COMPLETED")
        self.assertEqual(self.read("next.out"), "as submitted\n")

    def test_followup_without_its_copy_fails_the_job(self):
        # The copy is found through HAWF_THEN_SCRIPT in the job's environment, which
        # the user controls: blanked, or pointed outside the copies, the job fails
        # closed (nothing submitted) instead of reading the submit directory or the
        # file named.
        self.script("next.sh")
        cases = (("", "the copy of \"next.sh\" taken at submission did not reach this job"),
                 ("../../../next.sh", "invalid script snapshot \"../../../next.sh\""))
        jobs = [(self.hawf.sbatch(ALICE, TRAIN, "--export=ALL,HAWF_THEN_SCRIPT=" + ref, "--hawf-checkpoint=eval",
                                  "--hawf-then=next.sh"), needle) for ref, needle in cases]
        for job, needle in jobs:
            self.assertEqual(self.hawf.wait_job(job)["JobState"], "FAILED")
            lines = [l for l in self.hawf.output(ALICE, job).splitlines() if "hawf:" in l]
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("cannot submit the --hawf-then follow-up: " + needle, lines[0])
            state = self.hawf.wait_state(ALICE, "%d:eval" % job, "failed")
            self.assertEqual(state.get("follow_ups", []), [])

    def test_bad_then_is_refused_at_submission(self):
        self.script("a.sh")
        self.script("b.sh")
        for args, needle in ((["--hawf-then=nosuch.sh"], "nosuch.sh"),
                             (["--hawf-then=a.sh", "--hawf-then=b.sh"], "hawf-await --then")):
            r = self.hawf.run(ALICE, ["sbatch", "--hawf-checkpoint=eval"] + args + ["--wrap", "true"])
            self.assertOneLineError(r, needle)
            self.assertEqual(r.stdout, "")


class ChainFromLoginShell(FollowUpTestCase):

    def test_follow_up_chained_before_the_job_starts(self):
        self.script("next.sh")
        self.clear("next")
        job = self.hawf.sbatch(ALICE, TRAIN, "-H", "--hawf-checkpoint=eval", "--hawf-params=lr:float")
        ckpt = "%d:eval" % job
        # The job has not started: waiting is fine, it is queued.
        poll = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(poll.returncode, 75, poll.stderr)
        r = self.hawf.tool(ALICE, "hawf-await", "--then=next.sh", "--on=approve", ckpt, "--", "--job-name=next")
        self.assertEqual(r.returncode, 0, r.stderr)
        follow = int(r.stdout)
        self.assertEqual(self.job(follow)["JobName"], "next")
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "expected")
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        self.hawf.wait_job(job)
        self.hawf.wait_state(ALICE, ckpt, "pending")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "approve", "--set", "lr=0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.wait_job(follow)["JobState"], "COMPLETED")
        self.assertEqual(self.read("next.lr"), "0.5")
        # Too late now.
        late = self.hawf.tool(ALICE, "hawf-await", "--then=next.sh", ckpt)
        self.assertOneLineError(late, ckpt, "too late")

    def test_a_job_that_never_opens_its_checkpoint_is_not_waited_for(self):
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\ntrue\n")
        self.hawf.wait_job(job)
        r = self.hawf.tool(ALICE, "hawf-await", "%d:eval" % job)
        self.assertEqual(r.returncode, 1)
        self.assertOneLineError(r, "%d:eval" % job, "not queued or running")


class Timeouts(FollowUpTestCase):

    def test_timeout_takes_the_default_by_itself(self):
        job, ckpt = self.train_with_branches("--hawf-timeout=15s", "--hawf-default=stop")
        shown = self.hawf.wait_state(ALICE, ckpt, "pending")
        self.assertIn("deadline", shown)
        ups = self.followups(ckpt)
        for f in ups.values():
            self.assertEqual(self.job(f["job"])["JobState"], "PENDING")
        cleanup = self.hawf.wait_job(int(ups["cleanup.sh"]["job"]), timeout=90)
        finetune = self.hawf.wait_job(int(ups["finetune.sh"]["job"]), timeout=90)
        self.assertEqual(cleanup["JobState"], "COMPLETED")
        self.assertEqual(self.read("cleanup.decision"), "stop")
        self.assertEqual(self.read("cleanup.by"), "timeout")
        # The branch the default is not for ends at once, its script never runs.
        self.assertIn(finetune["JobState"], ("FAILED", "CANCELLED"))
        self.assertIsNone(self.read("finetune.decision"))
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual((shown["state"], shown["decision"]["decided_by"]), ("applied", "timeout"))

    def test_human_and_timeout_race_leaves_exactly_one_decision(self):
        job, ckpt = self.train_with_branches("--hawf-timeout=8s", "--hawf-default=stop")
        shown = self.hawf.wait_state(ALICE, ckpt, "pending")
        deadline = time.mktime(time.strptime(shown["deadline"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        time.sleep(max(0, deadline - time.time()))
        env = dict(self.hawf.cluster.env, **self.hawf.env())
        procs = [subprocess.Popen(["runuser", "-u", ALICE, "--", "hawf-decide", ckpt, "continue"], env=env, cwd="/",
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        procs += [subprocess.Popen(["runuser", "-u", ALICE, "--", "hawf-await", ckpt], env=env, cwd="/",
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
        results = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
        ups = self.followups(ckpt)
        for f in ups.values():
            self.hawf.wait_job(int(f["job"]), timeout=90)
        log = json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", ckpt).stdout)
        decided = [e for e in log if e["event"] == "decided"]
        self.assertEqual(len(decided), 1, log)
        winner = decided[0]["decision"]["choice"]
        self.assertEqual(decided[0]["by"], ALICE if winner == "continue" else "timeout")
        for out, err, rc in results[3:]:
            self.assertEqual((rc, out), (0, winner + "\n"), err)
        self.assertEqual(sum(rc == 0 for _, _, rc in results[:3]), 1 if winner == "continue" else 0)
        ran = "finetune" if winner == "continue" else "cleanup"
        self.assertEqual(self.read(ran + ".decision"), winner)
        self.assertIsNone(self.read(("cleanup" if ran == "finetune" else "finetune") + ".decision"))


class RunningJob(FollowUpTestCase):

    def test_in_job_checkpoint_decided_while_the_job_runs(self):
        script = r"""#!/bin/bash
got=
trap 'got=USR1' USR1
hawf-await --open=mid --options=go,halt --signal=USR1
for i in $(seq 1 240); do
  [ -n "$got" ] && break
  sleep 0.25
done
choice=$(hawf-await --poll "$SLURM_JOB_ID:mid")
echo "SIGNAL=$got CHOICE=$choice"
"""
        job = self.hawf.sbatch(ALICE, script)
        ckpt = "%d:mid" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        self.assertEqual(self.job(job)["JobState"], "RUNNING")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "go")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sent SIGUSR1 to job %d" % job, r.stdout)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        self.assertIn("SIGNAL=USR1 CHOICE=go", self.hawf.output(ALICE, job))

    def test_signal_to_the_batch_shell_alone_spares_its_children(self):
        # The child sleep neither traps nor ignores SIGUSR1: --full would kill it.
        script = r"""#!/bin/bash
got=
trap 'got=USR1' USR1
hawf-await --open=mid --options=go,halt --signal=USR1@batch
sleep 120 &
child=$!
for i in 1 2 3; do
  [ -n "$got" ] && break
  wait $child
done
kill -0 $child && alive=yes || alive=no
kill $child
echo "SIGNAL=$got CHILD=$alive CHOICE=$(hawf-await --poll "$SLURM_JOB_ID:mid")"
"""
        job = self.hawf.sbatch(ALICE, script)
        ckpt = "%d:mid" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "go")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("sent SIGUSR1 to the batch shell of job %d" % job, r.stdout)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED")
        self.assertIn("SIGNAL=USR1 CHILD=yes CHOICE=go", self.hawf.output(ALICE, job))


class Reshape(FollowUpTestCase):

    def test_decision_changes_the_followups_time_limit(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        ups = self.followups(ckpt)
        refused = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--partition=nosuch")
        self.assertEqual(refused.returncode, 1)
        self.assertOneLineError(refused, ups["finetune.sh"]["job"], "nothing recorded or released")
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")
        self.assertEqual(self.job(ups["finetune.sh"]["job"])["Reason"], "JobHeldUser")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--time=00:05:00")
        self.assertEqual(r.returncode, 0, r.stderr)
        # It says what it changed.
        self.assertIn("follow-up %s reshaped: TimeLimit UNLIMITED -> 5:00\n" % ups["finetune.sh"]["job"], r.stdout)
        self.assertEqual(self.job(ups["finetune.sh"]["job"])["TimeLimit"], "00:05:00")
        self.assertEqual(self.hawf.wait_job(int(ups["finetune.sh"]["job"]))["JobState"], "COMPLETED")

    def test_a_reshape_slurm_refuses_in_part_leaves_the_followup_as_it_was(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        follow = self.followups(ckpt)["finetune.sh"]["job"]
        fields = ("TimeLimit", "Partition", "NumNodes", "NumCPUs", "NumTasks", "MinCPUsNode")
        before = {k: self.job(follow)[k] for k in fields}
        # The partition has 2 nodes: Slurm sets the time limit and NumNodes=5 (with
        # NumCPUs=5 NumTasks=5), then refuses; the follow-up would be stuck in PartitionConfig.
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--time=00:05:00", "--nodes=5")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertOneLineError(r, "follow-up %s not reshaped" % follow, "NumNodes=5",
                                "Requested partition configuration not available now",
                                "nothing recorded or released, every follow-up is as it was")
        self.assertEqual({k: self.job(follow)[k] for k in fields}, before)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")
        self.assertEqual(self.job(follow)["Reason"], "JobHeldUser")
        # A later plain decision releases it, and it runs.
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.wait_job(int(follow))["JobState"], "COMPLETED", self.hawf.output(ALICE, int(follow)))


class ArrayFollowUps(FollowUpTestCase):

    def test_an_array_job_gets_one_followup_array_released_task_by_task(self):
        self.script("next.sh", "#!/bin/bash\nprintf '%s|%s|%s|%s' \"$HAWF_AFTER\" \"$HAWF_DECISION\" "
                               "\"$HAWF_PARAM_LR\" \"$(cat \"$HAWF_AFTER_DIR/task\")\" > next.$SLURM_ARRAY_TASK_ID\n")
        for t in range(1, 5):
            path = os.path.join(self.hawf.cluster.user_dir(ALICE), "next.%d" % t)
            if os.path.exists(path):
                os.unlink(path)
        job = self.hawf.sbatch(ALICE, "#!/bin/bash\necho $SLURM_ARRAY_TASK_ID > \"$HAWF_CHECKPOINT_DIR/task\"\n",
                               "--array=1-4", "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-params=lr:float", "--hawf-then=next.sh:continue")
        tasks = ["%d_%d:eval" % (job, t) for t in range(1, 5)]
        for ckpt in tasks:
            self.hawf.wait_state(ALICE, ckpt, "pending")
        # One follow-up array for all the tasks; its task T waits for task T's checkpoint.
        jobs = [[f["job"] for f in self.hawf.show(ALICE, ckpt)["follow_ups"]] for ckpt in tasks]
        follow = jobs[0][0].split("_")[0]
        self.assertEqual(jobs, [["%s_%d" % (follow, t)] for t in range(1, 5)])
        info = self.job(follow)
        self.assertEqual((info["JobState"], info["Reason"]), ("PENDING", "JobHeldUser"))
        self.assertIn("aftercorr:%d" % job, info["Dependency"])
        r = self.hawf.run(ALICE, ["squeue", "--noheader", "--array", "--jobs=" + follow, "--format=%i %k"])
        self.assertEqual(sorted(r.stdout.splitlines()),
                         ["%s_%d hawf: waiting for %d_*:eval" % (follow, t, job) for t in range(1, 5)])

        def state(task):
            return self.job("%s_%d" % (follow, task))["JobState"]

        # Task 2's decision releases task 2 of the follow-up alone; task 4's cancels its own.
        r = self.hawf.tool(ALICE, "hawf-decide", tasks[1], "continue", "--set", "lr=0.2")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow-up %s_2 released" % follow, r.stdout)
        self.assertEqual(self.hawf.wait_job("%s_2" % follow)["JobState"], "COMPLETED")
        self.assertEqual(self.read("next.2"), "%s|continue|0.2|2" % tasks[1])
        r = self.hawf.tool(ALICE, "hawf-decide", tasks[3], "stop")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(state(4), "CANCELLED")
        self.assertEqual((state(1), state(3)), ("PENDING", "PENDING"))
        self.assertIsNone(self.read("next.1"))

        # The rest in one command, one line each; their tasks are released together.
        r = self.hawf.tool(ALICE, "hawf-decide", "%d_[1,3]:eval" % job, "continue", "--set", "lr=0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["decided %s: continue lr=0.5 (released %s_%d)" % (tasks[t - 1], follow, t)
                                                 for t in (1, 3)])
        for t in (1, 3):
            self.assertEqual(self.hawf.wait_job("%s_%d" % (follow, t))["JobState"], "COMPLETED")
            self.assertEqual(self.read("next.%d" % t), "%s|continue|0.5|%d" % (tasks[t - 1], t))
        self.assertIsNone(self.read("next.4"))


class ByHand(FollowUpTestCase):
    """What a user does to a held follow-up with Slurm's own commands."""

    def test_followup_released_by_hand_goes_back_to_held_until_the_decision(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        follow = self.followups(ckpt)["finetune.sh"]["job"]
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", follow]).returncode, 0)
        # It starts, finds no decision, and puts itself back in the queue, held.
        deadline = time.monotonic() + 60
        while True:
            info = self.job(follow)
            if info["JobState"] == "PENDING" and int(info["Restarts"]) >= 1:
                break
            self.assertLess(time.monotonic(), deadline, info)
            time.sleep(0.5)
        self.assertEqual(info["Priority"], "0")  # held
        self.assertIsNone(self.read("finetune.decision"))  # its script did not run
        lines = [l for l in self.hawf.output(ALICE, int(follow)).splitlines() if "hawf:" in l]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("went back to held waiting for " + ckpt, lines[0])
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")
        # The decision releases it as any held follow-up, and it runs with the decision.
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=0.25")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow-up %s released" % follow, r.stdout)
        # Slurm delays a requeued job's start (AuthInfo=cred_expire, 120 s by default).
        self.assertEqual(self.hawf.wait_job(int(follow), timeout=240)["JobState"], "COMPLETED",
                         self.hawf.output(ALICE, int(follow)))
        self.assertEqual((self.read("finetune.decision"), self.read("finetune.lr")), ("continue", "0.25"))

    def test_decision_after_a_followup_died_says_so_and_decides(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        ups = self.followups(ckpt)
        dead, other = ups["finetune.sh"]["job"], ups["cleanup.sh"]["job"]
        self.assertEqual(self.hawf.run(ALICE, ["scancel", dead]).returncode, 0)
        self.assertEqual(self.hawf.wait_job(int(dead))["JobState"], "CANCELLED")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow-up %s already ended" % dead, r.stdout)
        self.assertIn("follow-up %s cancelled" % other, r.stdout)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["decision"]["choice"], "continue")


class Restarts(FollowUpTestCase):

    def test_pending_checkpoint_survives_daemon_restarts(self):
        job, ckpt = self.train_with_branches()
        self.hawf.wait_state(ALICE, ckpt, "pending")
        ups = self.followups(ckpt)
        self.hawf.cluster.restart_controller()
        self.hawf.cluster.restart_nodes()
        self.assertEqual(self.job(ups["finetune.sh"]["job"])["Reason"], "JobHeldUser")
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=2e-3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.wait_job(int(ups["finetune.sh"]["job"]))["JobState"], "COMPLETED")
        self.assertEqual(self.read("finetune.lr"), "2e-3")


if __name__ == "__main__":
    unittest.main()
