"""Flow files on a real cluster (hawf submit, hawf status, hawf cancel): a flow with a
branch and a join becomes its whole Slurm job chain at once; the decision at its
checkpoint starts one branch and cancels the other, and the join runs after both of
its stages; a malformed flow is refused with its lines and submits nothing."""

import json
import os
import pwd
import subprocess
import time

from hawftest import ALICE, ClusterTestCase

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "demo")

FLOW = """name: demo
stages:
  train:
    run: 'echo trained > "$HAWF_CHECKPOINT_DIR/report.md"'
    sbatch: [--time=10]
    checkpoint: {name: eval, options: [continue, stop], params: {lr: float}}
  finetune:
    after: train.eval
    on: [continue]
    run: 'echo "finetune $HAWF_DECISION $HAWF_PARAM_LR" > finetune.out'
  report: {after: train.eval, on: [stop], run: 'echo report > report.out'}
  prepare: {run: 'echo prepared > prepare.out'}
  publish: {after: [finetune, prepare], run: 'cat finetune.out prepare.out > publish.out'}
"""

TIMEOUT_FLOW = """stages:
  train:
    run: 'true'
    checkpoint: {name: eval, options: [continue, stop], timeout: 5s, default: stop}
  more: {after: train.eval, on: [continue], run: 'echo "$HAWF_DECISION" > more.out'}
  summary: {after: train.eval, on: [stop], run: 'echo "$HAWF_DECISION" > summary.out'}
"""

LOOP_FLOW = """name: loop
stages:
  train:
    run: 'echo "train $SLURM_JOB_ID ${HAWF_PARAM_LR:-start}" >> rounds.out'
    checkpoint: {name: eval, options: [continue, stop], params: {lr: float}}
    repeat: {max: 3, on: [continue]}
  report: {after: train.eval, on: [stop], run: 'echo "report $HAWF_AFTER" > report.out'}
"""

BAD = """name: demo
stages:
  train:
    run: 'true'
    checkpoint: {name: eval, options: [continue, stop]}
  finetune: {after: train.eval, on: [go], run: 'true'}
  report: {after: nowhere, run: 'true', sbatch: [--hold]}
"""


class Flows(ClusterTestCase):

    def path(self, name):
        return os.path.join(self.hawf.cluster.user_dir(ALICE), name)

    def read(self, name):
        with open(self.path(name)) as f:
            return f.read()

    def status(self, flow):
        r = self.hawf.tool(ALICE, "hawf", "status", "--json", flow)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {s["name"]: s for s in json.loads(r.stdout)["stages"]}

    def alice_jobs(self):
        r = self.hawf.cluster.run(["squeue", "-h", "-u", ALICE, "-t", "all", "-o", "%i"])
        return set(r.stdout.split())

    def wait_job_state(self, job, states, timeout=120):
        deadline = time.monotonic() + timeout
        while True:
            state = self.hawf.cluster.job_info(job)["JobState"]
            if state in states:
                return state
            self.assertLess(time.monotonic(), deadline, "job %s is %s\n%s" % (job, state, self.hawf.cluster.daemon_logs()))
            time.sleep(0.3)

    def test_malformed_flow_submits_nothing(self):
        self.hawf.user_file(ALICE, "bad.yaml", BAD)
        before = self.alice_jobs()
        r = self.hawf.tool(ALICE, "hawf", "submit", "bad.yaml")
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.splitlines(), [
            "hawf: bad.yaml:6: stage finetune: on: \"go\" is not an option of checkpoint eval (continue, stop)",
            "hawf: bad.yaml:7: stage report: sbatch: --hold is hawf's to set in a flow (the chain, the checkpoint: "
            "use after:, on:, checkpoint:)",
            "hawf: bad.yaml:7: stage report: after: no stage \"nowhere\" in this flow"])
        self.assertEqual(self.alice_jobs(), before)

    def test_branch_and_join(self):
        h = self.hawf
        h.user_file(ALICE, "flow.yaml", FLOW)
        check = h.tool(ALICE, "hawf", "submit", "--check", "flow.yaml")
        self.assertEqual(check.returncode, 0, check.stderr)
        self.assertIn("flow demo (flow.yaml): 5 stages, no mistakes\n", check.stdout)
        r = h.tool(ALICE, "hawf", "submit", "flow.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        flow = r.stdout.strip()
        stages = self.status(flow)
        self.assertEqual(set(stages), {"train", "finetune", "report", "prepare", "publish"})
        train = stages["train"]["job"]
        self.assertEqual(flow, train)  # a flow is known by its first stage's job
        self.assertEqual(stages["train"]["checkpoint"]["id"], train + ":eval")
        # Everything is in the queue at once; the branches wait held for the decision.
        for name in ("finetune", "report"):
            info = h.cluster.job_info(stages[name]["job"])
            self.assertIn("afterok:" + train, info["Dependency"])
            self.assertEqual(info["JobName"], "demo." + name)
        self.assertTrue(stages["finetune"]["held"])
        h.wait_state(ALICE, train + ":eval", "pending", timeout=120)
        # hawf ls and hawf show know the flow a checkpoint belongs to.
        ls = h.tool(ALICE, "hawf", "ls", "-h", "-o", "checkpoint,flow", "-j", train)
        self.assertEqual(ls.stdout.split(), [train + ":eval", flow])
        self.assertIn("flow:       %s demo, stage train\n" % flow, h.tool(ALICE, "hawf", "show", train + ":eval").stdout)
        self.assertEqual(h.show(ALICE, train + ":eval")["flow"], {"flow": flow, "name": "demo", "stage": "train"})
        text = h.tool(ALICE, "hawf", "status", flow)
        self.assertIn("checkpoint %s:eval pending: waits for %s" % (train, ALICE), text.stdout)
        self.assertIn("|- finetune  job %s" % stages["finetune"]["job"], text.stdout)

        d = h.tool(ALICE, "hawf-decide", train + ":eval", "continue", "--set", "lr=0.25")
        self.assertEqual(d.returncode, 0, d.stderr)
        self.assertEqual(self.wait_job_state(stages["publish"]["job"], {"COMPLETED", "CANCELLED", "FAILED"}),
                         "COMPLETED")
        self.assertEqual(self.read("finetune.out"), "finetune continue 0.25\n")
        self.assertEqual(self.read("publish.out"), "finetune continue 0.25\nprepared\n")
        self.assertFalse(os.path.exists(self.path("report.out")))
        after = self.status(flow)
        self.assertEqual(after["report"]["state"], "CANCELLED")  # the other branch
        self.assertEqual(after["train"]["checkpoint"]["decision"], "continue")
        self.assertEqual(h.tool(ALICE, "hawf", "cancel", flow).stdout, "flow %s: nothing left to cancel\n" % flow)

    def test_demo_flow(self):
        """demo/flow.yaml with the demo's scripts: the decision's rate reaches the fine-tune."""
        h = self.hawf
        for name in ("flow.yaml", "train.sbatch", "finetune.sbatch", "train.py"):
            with open(os.path.join(DEMO, name)) as f:
                h.user_file(ALICE, "demo-" + name if name == "flow.yaml" else name, f.read())
        r = h.tool(ALICE, "hawf", "submit", "demo-flow.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        stages = self.status(r.stdout.strip())
        ckpt = stages["train"]["checkpoint"]["id"]
        h.wait_state(ALICE, ckpt, "pending", timeout=120)
        d = h.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=0.5")
        self.assertEqual(d.returncode, 0, d.stderr)
        finetune = stages["finetune"]["job"]
        self.assertEqual(self.wait_job_state(finetune, {"COMPLETED", "FAILED", "CANCELLED"}), "COMPLETED")
        self.assertIn("learning rate 0.5\n", self.read("finetune-%s.out" % finetune))
        self.assertEqual(self.wait_job_state(stages["summary"]["job"], {"CANCELLED", "COMPLETED"}), "CANCELLED")

    def test_timeout_default_takes_its_branch(self):
        """Nobody decides: at the deadline the default (stop) takes its branch, no daemon."""
        h = self.hawf
        h.user_file(ALICE, "timeout.yaml", TIMEOUT_FLOW)
        r = h.tool(ALICE, "hawf", "submit", "timeout.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        stages = self.status(r.stdout.strip())
        self.assertEqual(self.wait_job_state(stages["summary"]["job"], {"COMPLETED", "FAILED", "CANCELLED"}, 240),
                         "COMPLETED")
        self.assertEqual(self.read("summary.out"), "stop\n")
        self.assertNotEqual(self.wait_job_state(stages["more"]["job"], {"COMPLETED", "FAILED", "CANCELLED"}, 240),
                            "COMPLETED")
        self.assertFalse(os.path.exists(self.path("more.out")))
        ckpt = self.status(r.stdout.strip())["train"]["checkpoint"]
        self.assertEqual(ckpt["decision"], "stop")

    def test_loop_stopped_after_two_rounds(self):
        """repeat: each round's decision starts the next (submitted held as the round
        before starts) until a person says stop; the stage after the loop follows the
        last round, and the rounds it did not follow are cancelled."""
        h = self.hawf
        h.user_file(ALICE, "loop.yaml", LOOP_FLOW)
        r = h.tool(ALICE, "hawf", "submit", "loop.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        flow = r.stdout.strip()
        stages = self.status(flow)
        self.assertEqual(set(stages), {"train", "train@2", "report"})  # round 3 is not submitted yet
        first, second = stages["train"]["job"], stages["train@2"]["job"]
        self.assertTrue(stages["train@2"]["held"])
        self.assertEqual(stages["train@2"]["after"], ["train.eval"])
        self.assertIn("afterok:" + first, h.cluster.job_info(second)["Dependency"])
        h.wait_state(ALICE, first + ":eval", "pending", timeout=120)
        d = h.tool(ALICE, "hawf-decide", first + ":eval", "continue", "--set", "lr=0.1")
        self.assertEqual(d.returncode, 0, d.stderr)
        h.wait_state(ALICE, second + ":eval", "pending", timeout=120)
        stages = self.status(flow)
        self.assertEqual(set(stages), {"train", "train@2", "train@3", "report", "report@2"})
        self.assertEqual(stages["report"]["state"], "CANCELLED")  # round 1's: the loop went on
        third = stages["train@3"]["job"]
        self.assertTrue(stages["train@3"]["held"])
        self.assertEqual(stages["train@3"]["after"], ["train@2.eval"])
        self.assertEqual(stages["report@2"]["after"], ["train@2.eval"])
        self.assertEqual(h.cluster.job_info(third)["JobName"], "loop.train")
        text = h.tool(ALICE, "hawf", "status", flow).stdout
        self.assertIn("|- train (round 2)  job %s" % second, text)
        self.assertIn("checkpoint %s:eval pending: waits for %s" % (second, ALICE), text)
        d = h.tool(ALICE, "hawf-decide", second + ":eval", "stop")
        self.assertEqual(d.returncode, 0, d.stderr)
        report = stages["report@2"]["job"]
        self.assertEqual(self.wait_job_state(report, {"COMPLETED", "FAILED", "CANCELLED"}), "COMPLETED")
        self.assertEqual(self.read("report.out"), "report %s:eval\n" % second)
        self.assertEqual(self.read("rounds.out"), "train %s start\ntrain %s 0.1\n" % (first, second))
        self.assertEqual(self.wait_job_state(third, {"CANCELLED", "COMPLETED"}), "CANCELLED")
        self.assertEqual(self.status(flow)["train@2"]["checkpoint"]["decision"], "stop")
        self.assertEqual(h.tool(ALICE, "hawf", "cancel", flow).stdout, "flow %s: nothing left to cancel\n" % flow)

    def local_run(self, name):
        """A directory of ALICE's for a run without Slurm, and the environment that
        runs it: Slurm's commands on PATH are stubs that fail and log their call."""
        h = self.hawf
        work = os.path.join(h.cluster.user_dir(ALICE), name)
        stubs = os.path.join(h.root, "no-slurm")
        log = os.path.join(work, "slurm-calls.log")
        os.makedirs(work)
        open(log, "w").close()
        entry = pwd.getpwnam(ALICE)
        for path in (work, log):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        os.makedirs(stubs, exist_ok=True)
        for command in ("sbatch", "scontrol", "scancel", "squeue", "srun", "salloc", "sinfo", "sacct"):
            with open(os.path.join(stubs, command), "w") as f:
                f.write('#!/bin/sh\necho "$0 $*" >> %s\necho "no Slurm here" >&2\nexit 1\n' % log)
            os.chmod(os.path.join(stubs, command), 0o755)
        env = {"PATH": stubs + ":" + h.bindir + ":/usr/bin:/bin", "XDG_STATE_HOME": os.path.join(work, "state")}
        if h.local_job:
            env["HAWF_LOCAL_JOB"] = h.local_job
        return work, env, log

    @staticmethod
    def local_processes(work):
        """hawf-local-job processes of the runs in WORK: jobs running, or waiting for a deadline."""
        r = subprocess.run(["pgrep", "-u", ALICE, "-f", "hawf-local-job --conf=" + os.path.join(work, "state")],
                           stdout=subprocess.PIPE, text=True)
        return r.stdout.split()

    def local(self, env, work, *args):
        return self.hawf.tool(ALICE, *args, env=env, cwd=work)

    def wait_local(self, env, work, flow, stage, states, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            r = self.local(env, work, "hawf", "--local", "status", "--json", flow)
            self.assertEqual(r.returncode, 0, r.stderr)
            stages = {s["name"]: s for s in json.loads(r.stdout)["stages"]}
            if stage in stages and stages[stage]["state"] in states:
                return stages
            self.assertLess(time.monotonic(), deadline, "%s: %s" % (stage, stages))
            time.sleep(0.2)

    def wait_local_checkpoint(self, env, work, ckpt, state, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            r = self.local(env, work, "hawf", "--local", "show", "--json", ckpt)
            if r.returncode == 0 and json.loads(r.stdout)["state"] == state:
                return
            self.assertLess(time.monotonic(), deadline, "%s: %s%s" % (ckpt, r.stdout, r.stderr))
            time.sleep(0.2)

    def test_the_same_flow_runs_without_slurm(self):
        """hawf submit --local: the branch-and-join flow of test_branch_and_join and the
        loop of test_loop_stopped_after_two_rounds as processes of the user, decided
        with hawf-decide --local; no Slurm command runs, the stages write what they
        write on the cluster."""
        work, env, log = self.local_run("local")
        with open(os.path.join(work, "flow.yaml"), "w") as f:
            f.write(FLOW.replace("sbatch: [--time=10]", "sbatch: [--time=10, --gpus=1]"))
        r = self.local(env, work, "hawf", "submit", "--local", "flow.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("hawf: note: flow.yaml:3: stage train: sbatch --gpus=1 ignored: a local run has no Slurm", r.stderr)
        flow = r.stdout.strip()
        stages = self.wait_local(env, work, flow, "prepare", {"COMPLETED"})
        train = stages["train"]["job"]
        self.assertTrue(stages["finetune"]["held"])
        self.wait_local_checkpoint(env, work, train + ":eval", "pending")
        # Nothing runs while the checkpoint waits (the finished job's process may take a moment to go).
        deadline = time.monotonic() + 10
        while self.local_processes(work):
            self.assertLess(time.monotonic(), deadline, self.local_processes(work))
            time.sleep(0.2)
        ls = self.local(env, work, "hawf", "--local", "ls", "-h", "-o", "checkpoint,state,flow")
        self.assertEqual(ls.stdout.split(), [train + ":eval", "pending", flow])
        show = self.local(env, work, "hawf", "--local", "show", train + ":eval")
        self.assertIn("--- report.md ---\ntrained\n", show.stdout)
        d = self.local(env, work, "hawf-decide", "--local", train + ":eval", "continue", "--set", "lr=0.25")
        self.assertEqual(d.returncode, 0, d.stderr)
        stages = self.wait_local(env, work, flow, "publish", {"COMPLETED", "FAILED", "CANCELLED"})
        self.assertEqual(stages["publish"]["state"], "COMPLETED")
        self.assertEqual(stages["report"]["state"], "CANCELLED")
        for name, text in (("finetune.out", "finetune continue 0.25\n"),
                           ("publish.out", "finetune continue 0.25\nprepared\n")):
            with open(os.path.join(work, name)) as f:
                self.assertEqual(f.read(), text)  # as on the cluster (test_branch_and_join)
        self.assertFalse(os.path.exists(os.path.join(work, "report.out")))

        # The loop: round 2 runs with its decision, "stop" at round 2 runs the report.
        with open(os.path.join(work, "loop.yaml"), "w") as f:
            f.write(LOOP_FLOW)
        r = self.local(env, work, "hawf", "submit", "--local", "loop.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        loop = r.stdout.strip()
        first = self.wait_local(env, work, loop, "train", {"COMPLETED"})["train"]["job"]
        self.wait_local_checkpoint(env, work, first + ":eval", "pending")
        self.assertEqual(self.local(env, work, "hawf-decide", "--local", first + ":eval", "continue",
                                    "--set", "lr=0.1").returncode, 0)
        second = self.wait_local(env, work, loop, "train@3", {"PENDING"})["train@2"]["job"]
        self.wait_local_checkpoint(env, work, second + ":eval", "pending")
        self.assertEqual(self.local(env, work, "hawf-decide", "--local", second + ":eval", "stop").returncode, 0)
        stages = self.wait_local(env, work, loop, "report@2", {"COMPLETED", "FAILED", "CANCELLED"})
        self.assertEqual(stages["report@2"]["state"], "COMPLETED")
        self.assertEqual(stages["train@3"]["state"], "CANCELLED")
        with open(os.path.join(work, "rounds.out")) as f:
            self.assertEqual(f.read(), "train %s start\ntrain %s 0.1\n" % (first, second))
        with open(os.path.join(work, "report.out")) as f:
            self.assertEqual(f.read(), "report %s:eval\n" % second)
        # An in-job checkpoint: hawf-await --open in a local job, decided with hawf-decide --local.
        with open(os.path.join(work, "inner.yaml"), "w") as f:
            f.write("stages:\n  train:\n    run: 'hawf-await --open=inner --options=go,halt > inner.out; "
                    "echo \"$?\" >> inner.out'\n")
        r = self.local(env, work, "hawf", "submit", "--local", "inner.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        job = self.wait_local(env, work, r.stdout.strip(), "train", {"RUNNING"})["train"]["job"]
        self.wait_local_checkpoint(env, work, job + ":inner", "pending")
        self.assertEqual(self.local(env, work, "hawf-decide", "--local", job + ":inner", "go").returncode, 0)
        self.wait_local(env, work, r.stdout.strip(), "train", {"COMPLETED"})
        with open(os.path.join(work, "inner.out")) as f:
            self.assertEqual(f.read(), job + ":inner\n0\n")
        # A timeout: one sleeper waits for the deadline, and the default takes its branch.
        with open(os.path.join(work, "timeout.yaml"), "w") as f:
            f.write(TIMEOUT_FLOW)
        r = self.local(env, work, "hawf", "submit", "--local", "timeout.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        stages = self.wait_local(env, work, r.stdout.strip(), "summary", {"COMPLETED", "FAILED", "CANCELLED"})
        self.assertEqual(stages["summary"]["state"], "COMPLETED")
        self.assertEqual(stages["train"]["checkpoint"]["decision"], "stop")
        with open(os.path.join(work, "summary.out")) as f:
            self.assertEqual(f.read(), "stop\n")
        self.assertFalse(os.path.exists(os.path.join(work, "more.out")))
        with open(log) as f:
            self.assertEqual(f.read(), "")  # no Slurm command ran

    def test_cancel(self):
        h = self.hawf
        h.user_file(ALICE, "cancel.yaml", FLOW.replace("name: demo", "name: gone"))
        r = h.tool(ALICE, "hawf", "submit", "cancel.yaml")
        self.assertEqual(r.returncode, 0, r.stderr)
        flow = r.stdout.strip()
        jobs = [s["job"] for s in self.status(flow).values()]
        c = h.tool(ALICE, "hawf", "cancel", flow)
        self.assertEqual(c.returncode, 0, c.stderr)
        self.assertTrue(c.stdout.startswith("flow %s: cancelled " % flow), c.stdout)
        for job in jobs:
            self.assertIn(self.wait_job_state(job, {"CANCELLED", "COMPLETED"}), {"CANCELLED", "COMPLETED"})
        # Not someone else's flow; root's, with --user.
        r = h.tool("hawfbob", "hawf", "status", flow)
        self.assertEqual((r.returncode, r.stderr), (1, "hawf: you have no flow %s\n" % flow))
        r = h.tool("hawfbob", "hawf", "status", "--user=" + ALICE, flow)
        self.assertEqual((r.returncode, r.stderr), (2, "hawf: --user=%s: only root sees another user's flows\n" % ALICE))
        r = h.cluster.run(["hawf", "status", "--user=" + ALICE, flow], env=h.env())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("flow %s gone (" % flow), r.stdout)
        self.assertIn("checkpoint %s:eval" % flow, r.stdout)


if __name__ == "__main__":
    import unittest
    unittest.main()
