"""Flow files on a real cluster (hawf submit, hawf status, hawf cancel): a flow with a
branch and a join becomes its whole Slurm job chain at once; the decision at its
checkpoint starts one branch and cancels the other, and the join runs after both of
its stages; a malformed flow is refused with its lines and submits nothing."""

import json
import os
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
        # Not someone else's flow.
        r = h.tool("hawfbob", "hawf", "status", flow)
        self.assertEqual((r.returncode, r.stderr), (1, "hawf: you have no flow %s\n" % flow))


if __name__ == "__main__":
    import unittest
    unittest.main()
