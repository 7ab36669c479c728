"""Delegated decisions on a real cluster (issue 9): a real hawfd on a loopback port
with the cluster's munged, four users (Alice owns the jobs, Bob is an outsider,
Carol and Dave review as members of REVIEWER_GROUP), reviewers and a quorum asked
for at submission, approvals through hawfd, the follow-up released only by the
quorum and verified at delivery, a forged decision that starts nothing, hawfd
killed between recording a decision and releasing its follow-up, and hawfd taking
a delegated checkpoint's default (sealed) at its deadline."""

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

from cluster import RUNUSER
from hawftest import ALICE, BOB, CAROL, DAVE, REVIEWER_GROUP, HawfdTestCase

TRAIN = "#!/bin/bash\necho 'accuracy 0.93' > \"$HAWF_CHECKPOINT_DIR/report.md\"\n"
FOLLOW = r"""#!/bin/bash
name=$(basename "$SLURM_JOB_NAME" .sh)
printf '%s|%s|%s\n' "$HAWF_DECISION" "$HAWF_DECIDED_BY" "$HAWF_PARAM_LR" >> "$name.ran"
"""

# Stands in for scontrol on hawfd's PATH: while the file 'block' exists, a release
# says so and waits, so the test can kill hawfd between recording a decision and
# releasing its follow-up; then it runs the real scontrol.
SCONTROL = """#!/bin/sh
if [ "$1" = release ] && [ -e '{dir}/block' ]; then
    : > '{dir}/release-started'
    while [ -e '{dir}/block' ]; do sleep 0.05; done
fi
exec {scontrol} "$@"
"""


class Reviewers(HawfdTestCase):

    def script(self, name, text=FOLLOW):
        return self.hawf.user_file(ALICE, name, text, 0o755)

    def ran(self, name):
        """The lines the follow-up NAME.sh wrote, one per run."""
        path = os.path.join(self.hawf.cluster.user_dir(ALICE), name + ".ran")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def submit(self, follow, *options):
        """A job of Alice's with a checkpoint 'deploy' and follow-up FOLLOW.sh for
        approve; returns (checkpoint, follow-up job id) once it is pending."""
        self.script(follow + ".sh")
        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=deploy", "--hawf-params=lr:float",
                               "--hawf-then=%s.sh:approve" % follow, *options)
        ckpt = "%d:deploy" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        followups = self.hawf.show(ALICE, ckpt)["follow_ups"]
        self.assertEqual(len(followups), 1, followups)
        return ckpt, int(followups[0]["job"])

    def decide(self, user, *args):
        return self.hawf.tool(user, "hawf-decide", *args)

    def assertHeld(self, job):
        info = self.hawf.cluster.job_info(job)
        self.assertEqual((info["JobState"], info["Reason"]), ("PENDING", "JobHeldUser"), info)

    def wait_ran(self, name, lines=1, timeout=90):
        deadline = time.monotonic() + timeout
        while len(self.ran(name)) < lines:
            if time.monotonic() > deadline:
                self.fail("%s.sh did not run %d time(s): %s\n%s" % (name, lines, self.ran(name), self.hawfd.log()))
            time.sleep(0.2)
        return self.ran(name)

    def test_1_submission_refuses_bad_reviewers_in_one_line(self):
        for options, needles in [
            (["--hawf-reviewers=hawfnosuchuser"], ["hawfnosuchuser"]),
            (["--hawf-reviewers=@hawfnosuchgroup"], ["@hawfnosuchgroup"]),
            (["--hawf-reviewers=@" + REVIEWER_GROUP, "--hawf-quorum=3"], ["--hawf-quorum=3", CAROL, DAVE]),
            (["--hawf-quorum=2"], ["--hawf-quorum", "--hawf-reviewers"]),
        ]:
            r = self.hawf.cluster.run(["sbatch", "--hawf-checkpoint=deploy"] + options, user=ALICE,
                                      input=TRAIN, env=self.hawf.env(), cwd=self.hawf.cluster.user_dir(ALICE))
            self.assertOneLineError(r, *needles)

    def test_2_quorum_of_two_reviewers_releases_the_follow_up(self):
        ckpt, follow = self.submit("promote", "--hawf-reviewers=@" + REVIEWER_GROUP, "--hawf-quorum=2")
        # The owner is not a reviewer, the outsider neither: both refused, nothing recorded.
        r = self.decide(ALICE, ckpt, "approve")
        self.assertOneLineError(r, "may not decide", "@" + REVIEWER_GROUP)
        self.assertOneLineError(self.decide(BOB, ckpt, "approve"), BOB + " may not decide")
        self.assertOneLineError(self.hawf.tool(BOB, "hawf", "show", ckpt), "only " + ALICE)
        # A reviewer finds it and sees what the job left, through hawfd.
        r = self.hawf.tool(CAROL, "hawf", "ls")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(ckpt, r.stdout)
        r = self.hawf.tool(CAROL, "hawf", "show", ckpt)
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertIn("accuracy 0.93", r.stdout)
        # 1 of 2: still pending, the follow-up still held.
        r = self.decide(CAROL, ckpt, "approve", "--set", "lr=0.1", "-m", "fine by me")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertIn("1 of 2", r.stdout)
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual(shown["state"], "pending")
        self.assertEqual([(a["by"], a["choice"]) for a in shown["approvals"]], [(CAROL, "approve")])
        self.assertIn("approval:   %s: approve lr=0.1" % CAROL, self.hawf.tool(ALICE, "hawf", "show", ckpt).stdout)
        self.assertHeld(follow)
        # Other parameters are another decision: no quorum; withdrawn and approved again, it is.
        self.assertEqual(self.decide(DAVE, ckpt, "approve", "--set", "lr=0.2").returncode, 0)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")
        self.assertHeld(follow)
        r = self.decide(DAVE, "--revoke", ckpt)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.decide(DAVE, ckpt, "approve", "--set", "lr=0.1")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertIn("decided %s: approve lr=0.1 by %s,%s" % (ckpt, CAROL, DAVE), r.stdout)
        self.assertEqual(self.wait_ran("promote"), ["approve|%s,%s|0.1" % (CAROL, DAVE)])
        # Every approval, the withdrawal and the decision verify, for the owner (through hawfd) and root.
        for user in (ALICE, "root"):
            r = self.hawf.tool(user, "hawf", "log", "--verify", ckpt)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.hawfd.log())
            self.assertIn("6 credentials checked, all verified", r.stdout)  # the spec's seal, 3 approvals, ...
        # Decided is final: a late approval is refused.
        self.assertOneLineError(self.decide(CAROL, ckpt, "approve"), "cannot approve %s: it is applied" % ckpt)

    def test_3_replayed_credential_is_refused(self):
        ckpt, follow = self.submit("replayed", "--hawf-reviewers=" + CAROL)
        payload = json.dumps({"op": "decide", "checkpoint": ckpt, "choice": "reject", "params": {}, "comment": ""})
        r = self.hawf.cluster.run(["munge", "-S", self.hawfd.munge_socket, "-s", payload], user=CAROL)
        credential = r.stdout.strip()
        first = self.hawfd.request(credential)
        self.assertIs(first["ok"], True, first)
        # Seen on the wire and sent again by another user: refused, nothing changes.
        again = self.hawfd.request(credential)
        self.assertEqual((again["ok"], again["kind"]), (False, "denied"), again)
        self.assertIn("replayed", again["error"])
        self.assertEqual(self.hawf.show(ALICE, ckpt)["decision"]["choice"], "reject")

    def test_4_decision_forged_in_the_owners_tree_starts_nothing(self):
        ckpt, follow = self.submit("forged", "--hawf-reviewers=" + CAROL)
        # Alice writes a decision "by Carol via hawfd" into her own tree, then releases
        # the follow-up herself.
        uid = pwd.getpwnam(ALICE).pw_uid
        job, name = ckpt.split(":")
        log = os.path.join(self.hawf.spool, str(uid), "ckpt", job, name, "log")
        events = sorted(os.listdir(log))
        with open(os.path.join(log, events[-1])) as f:
            last = json.load(f)
        forged = dict(last, seq=last["seq"] + 1, event="decided", by=CAROL, by_uid=pwd.getpwnam(CAROL).pw_uid,
                      via="hawfd", decision={"choice": "approve", "params": {}, "comment": ""})
        write = "import json,sys; open(sys.argv[1], 'x').write(sys.argv[2])"
        path = os.path.join(log, "%08d" % forged["seq"])
        r = self.hawf.cluster.run(["python3", "-c", write, path, json.dumps(forged)], user=ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "decided")
        r = self.hawf.run(ALICE, ["scontrol", "release", str(follow)])
        self.assertEqual(r.returncode, 0, r.stderr)
        info = self.hawf.wait_job(follow)
        self.assertNotEqual(info["JobState"], "COMPLETED", info)
        self.assertEqual(self.ran("forged"), [])
        with open(os.path.join(self.hawf.cluster.user_dir(ALICE), "slurm-%d.out" % follow)) as f:
            out = f.read()
        self.assertIn("not one its reviewers made through hawfd", out)
        r = self.hawf.tool("root", "hawf", "log", "--verify", ckpt)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("decided by %s: NOT VERIFIED" % CAROL, r.stdout)

    def test_5_hawfd_killed_between_recording_and_releasing_loses_nothing(self):
        shim = os.path.join(self.hawf.root, "shim")
        os.makedirs(shim, exist_ok=True)
        scontrol = shutil.which("scontrol", path=self.hawf.cluster.path)
        with open(os.path.join(shim, "scontrol"), "w") as f:
            f.write(SCONTROL.format(dir=shim, scontrol=scontrol))
        os.chmod(os.path.join(shim, "scontrol"), 0o755)
        self.hawfd.stop()
        self.hawfd.start(path_first=shim)
        ckpt, follow = self.submit("recovered", "--hawf-reviewers=" + CAROL)
        open(os.path.join(shim, "block"), "w").close()
        # Carol's hawf-decide in the background: it waits for hawfd's answer.
        env = self.hawf.cluster.env
        env.update(self.hawf.env())
        decider = subprocess.Popen([RUNUSER, "-u", CAROL, "--", "hawf-decide", ckpt, "approve", "--set", "lr=0.5"],
                                   cwd=self.hawf.cluster.user_dir(CAROL), env=env, encoding="utf-8",
                                   errors="replace", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(lambda: decider.poll() is None and os.killpg(decider.pid, signal.SIGKILL))
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(shim, "release-started")):
            self.assertLess(time.monotonic(), deadline, self.hawfd.log())
            time.sleep(0.05)
        # The decision is recorded, the release not done: kill hawfd there, and
        # restart slurmctld meanwhile.
        self.hawfd.stop(signal.SIGKILL)
        decider.communicate(timeout=60)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "decided")
        self.assertHeld(follow)
        self.hawf.cluster.restart_controller()
        self.assertHeld(follow)
        os.unlink(os.path.join(shim, "block"))
        os.unlink(os.path.join(shim, "release-started"))
        self.hawfd.start()  # finishes what the journal says it owes, at start
        self.assertEqual(self.wait_ran("recovered"), ["approve|%s|0.5" % CAROL])
        time.sleep(2)
        self.assertEqual(self.ran("recovered"), ["approve|%s|0.5" % CAROL])  # once, not twice
        history = [e["event"] for e in json.loads(self.hawf.tool(ALICE, "hawf", "log", "--json", ckpt).stdout)]
        self.assertEqual(history.count("decided"), 1, history)
        self.assertEqual(history.count("applied"), 1, history)
        self.hawfd.wait_log("finished %s" % ckpt)

    def test_6_approval_forged_in_the_owners_tree_is_not_counted(self):
        ckpt, follow = self.submit("counted", "--hawf-reviewers=@" + REVIEWER_GROUP, "--hawf-quorum=2")
        # Alice writes an approval "by Carol" (with a credential of her own making)
        # into her tree; Dave's genuine approval must not complete the quorum with it.
        uid = pwd.getpwnam(ALICE).pw_uid
        job, name = ckpt.split(":")
        log = os.path.join(self.hawf.spool, str(uid), "ckpt", job, name, "log")
        with open(os.path.join(log, sorted(os.listdir(log))[-1])) as f:
            last = json.load(f)
        fake = self.hawf.cluster.run(["munge", "-S", self.hawfd.munge_socket, "-s", "{}"], user=ALICE).stdout.strip()
        forged = dict(last, seq=last["seq"] + 1, event="approved", by=CAROL, by_uid=pwd.getpwnam(CAROL).pw_uid,
                      via="hawfd", credential=fake, decision={"choice": "approve", "params": {}, "comment": ""})
        write = "import json,sys; open(sys.argv[1], 'x').write(sys.argv[2])"
        r = self.hawf.cluster.run(["python3", "-c", write, os.path.join(log, "%08d" % forged["seq"]),
                                   json.dumps(forged)], user=ALICE)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.decide(DAVE, ckpt, "approve")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")
        self.assertHeld(follow)
        self.hawfd.wait_log("not counting approval %d of %s by %s" % (forged["seq"], ckpt, CAROL))
        # Carol's own approval replaces the forged one and completes the quorum.
        r = self.decide(CAROL, ckpt, "approve")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertIn("decided %s: approve by %s,%s" % (ckpt, DAVE, CAROL), r.stdout)
        self.assertEqual(self.wait_ran("counted"), ["approve|%s,%s|" % (DAVE, CAROL)])

    def test_7_site_policy_binds_whatever_the_job_says(self):
        self.hawfd.stop()
        self.hawfd.start(extra_conf=(
            "policies:\n"
            "  - partition: debug\n"
            "    checkpoint: \"ship*\"\n"
            "    reviewers: [\"@%s\"]\n"
            "    owner_may_decide: false\n" % REVIEWER_GROUP))
        # The job names Alice herself and her friend Bob: neither can satisfy the policy.
        self.script("shipped.sh")
        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=ship-it", "--hawf-then=shipped.sh:approve",
                               "--hawf-reviewers=%s,%s" % (ALICE, BOB))
        ckpt = "%d:ship-it" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual([r["reviewers"] for r in shown["required"]], [["@" + REVIEWER_GROUP]], shown)
        self.assertOneLineError(self.decide(ALICE, ckpt, "approve"), "a site policy does not let %s, its owner, decide" % ALICE)
        r = self.decide(BOB, ckpt, "approve")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")  # the job's list is met, the policy's not
        r = self.hawf.tool(CAROL, "hawf", "cat", ckpt, "report.md")
        self.assertEqual((r.returncode, r.stdout), (0, "accuracy 0.93\n"), r.stderr)
        r = self.decide(CAROL, ckpt, "approve")
        self.assertEqual(r.returncode, 0, r.stderr + self.hawfd.log())
        self.assertIn("decided %s: approve by %s,%s" % (ckpt, BOB, CAROL), r.stdout)
        self.assertEqual(self.wait_ran("shipped"), ["approve|%s,%s|" % (BOB, CAROL)])
        # A checkpoint no policy matches stays in owner mode.
        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=train")
        self.hawf.wait_state(ALICE, "%d:train" % job, "pending")
        r = self.decide(ALICE, "%d:train" % job, "approve")
        self.assertEqual(r.returncode, 0, r.stderr)

    def opened_event_path(self, ckpt):
        """The file of CKPT's "opened" event in Alice's tree."""
        job, name = ckpt.split(":")
        log = os.path.join(self.hawf.spool, str(pwd.getpwnam(ALICE).pw_uid), "ckpt", job, name, "log")
        for entry in sorted(os.listdir(log)):
            with open(os.path.join(log, entry)) as f:
                event = json.load(f)
            if event["event"] == "opened":
                return os.path.join(log, entry), event
        self.fail("no opened event in %s" % log)

    def verify_as_root(self, ckpt):
        """hawfd's verify op, asked by root: the check of CKPT's spec (the opened event)."""
        payload = json.dumps({"op": "verify", "checkpoint": ckpt, "user": ALICE})
        r = self.hawf.cluster.run(["munge", "-S", self.hawfd.munge_socket, "-s", payload], user="root")
        self.assertEqual(r.returncode, 0, r.stderr)
        answer = self.hawfd.request(r.stdout.strip())
        self.assertIs(answer["ok"], True, answer)
        checks = [c for c in answer["checks"] if c["event"] == "opened"]
        self.assertEqual(len(checks), 1, answer)
        return checks[0]

    def test_8_spec_rewritten_by_the_owner_starts_nothing(self):
        # Alice's job asked for Carol's review. She rewrites the checkpoint's spec in her
        # own tree without the reviewers (keeping hawf's seal, or dropping it), decides
        # in owner mode and releases the follow-up herself: it must run nothing.
        for keep_seal in (True, False):
            with self.subTest(keep_seal=keep_seal):
                follow_name = "rewritten-%s" % ("kept" if keep_seal else "dropped")
                ckpt, follow = self.submit(follow_name, "--hawf-reviewers=" + CAROL)
                path, opened = self.opened_event_path(ckpt)
                self.assertTrue(opened["spec"]["seal"].startswith("MUNGE:"), opened)  # sealed by the plugin
                self.assertEqual(self.verify_as_root(ckpt)["ok"], True)
                spec = {k: v for k, v in opened["spec"].items()
                        if k not in ("reviewers", "quorum", "owner_may_decide", "required")}
                if not keep_seal:
                    del spec["seal"]
                rewrite = ("import os,sys; t=sys.argv[1]+'.new'; open(t,'x').write(sys.argv[2]); "
                           "os.chmod(t, 0o600); os.replace(t, sys.argv[1])")
                r = self.hawf.cluster.run(["python3", "-c", rewrite, path, json.dumps(dict(opened, spec=spec))],
                                          user=ALICE)
                self.assertEqual(r.returncode, 0, r.stderr)
                shown = self.hawf.show(ALICE, ckpt)
                self.assertFalse(shown.get("reviewers"), shown)  # owner mode, as far as the spec says
                # Her hawf-decide now takes the owner-mode path; whatever it does, then
                # she releases the follow-up herself.
                self.decide(ALICE, ckpt, "approve", "--set", "lr=0.9")
                self.hawf.run(ALICE, ["scontrol", "release", str(follow)])
                info = self.hawf.wait_job(follow)
                self.assertNotEqual(info["JobState"], "COMPLETED", info)
                self.assertEqual(self.ran(follow_name), [])
                out = self.hawf.output(ALICE, follow)
                lines = [l for l in out.splitlines() if "hawf: " in l]  # "slurmstepd-n1: error: hawf: ..."
                self.assertEqual(len(lines), 1, out)
                self.assertIn("the checkpoint %s was not opened by hawf (its spec is not sealed): " % ckpt, lines[0])
                self.assertIn("the seal is for another spec" if keep_seal else "it has no seal", lines[0])
                self.assertNotEqual(self.hawf.show(ALICE, ckpt)["state"], "applied")
                # The audit says so too.
                check = self.verify_as_root(ckpt)
                self.assertEqual(check["ok"], False, check)
                self.assertIn("the seal is for another spec" if keep_seal else "it has no seal", check["problem"])
                r = self.hawf.tool("root", "hawf", "log", "--verify", ckpt)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("opened by %s: NOT VERIFIED" % ALICE, r.stdout)

    def test_9_in_job_checkpoint_gets_a_sealed_spec_from_hawfd(self):
        # hawf-await --open inside a running job: hawfd checks the job with Slurm and
        # seals the spec; with hawfd unreachable, --open fails with one line.
        elsewhere = os.path.join(self.hawf.root, "no-hawfd.yaml")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = "127.0.0.1:%d" % s.getsockname()[1]
        with open(self.hawf.conf) as f:
            conf = f.read()
        with open(elsewhere, "w") as f:
            f.write(conf.replace('address: "%s"' % self.hawfd.address, 'address: "%s"' % closed))
        os.chmod(elsewhere, 0o644)
        script = r"""#!/bin/bash
HAWF_CONF=%s hawf-await --open=nohawfd --options=go,halt 2>err.$SLURM_JOB_ID
echo "UNREACHABLE=$?"
hawf-await --open=mid --options=go,halt || exit 1
for i in $(seq 1 240); do
  choice=$(hawf-await --poll "$SLURM_JOB_ID:mid") && break
  sleep 0.25
done
echo "CHOICE=$choice"
""" % elsewhere
        job = self.hawf.sbatch(ALICE, script)
        ckpt = "%d:mid" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        path, opened = self.opened_event_path(ckpt)
        self.assertEqual(opened["spec"]["scope"], "inline")
        self.assertTrue(opened["spec"]["seal"].startswith("MUNGE:"), opened)
        check = self.verify_as_root(ckpt)
        self.assertEqual(check["ok"], True, check)
        self.hawfd.wait_log('op="seal": ok')
        r = self.decide(ALICE, ckpt, "go")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.wait_job(job)["JobState"], "COMPLETED", self.hawf.output(ALICE, job))
        out = self.hawf.output(ALICE, job)
        self.assertIn("UNREACHABLE=1", out)
        self.assertIn("CHOICE=go", out)
        with open(os.path.join(self.hawf.cluster.user_dir(ALICE), "err.%d" % job)) as f:
            err = f.read()
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("cannot open %d:nohawfd: hawfd must seal its spec" % job, err)
        self.assertFalse(self.hawf.tool(ALICE, "hawf", "show", "%d:nohawfd" % job).returncode == 0)

    def test_10_hawfd_takes_a_delegated_default_at_the_deadline(self):
        # A follow-up cannot seal a decision: hawfd takes the default of a checkpoint
        # with reviewers at its deadline, seals it, and only then releases the follow-up
        # for it (not made eligible by a begin time, so it cannot start undecided).
        self.script("ondefault.sh")
        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=deploy", "--hawf-reviewers=" + CAROL,
                               "--hawf-timeout=20s", "--hawf-default=reject", "--hawf-then=ondefault.sh:reject")
        ckpt = "%d:deploy" % job
        pending = self.hawf.wait_state(ALICE, ckpt, "pending")
        follow = int(pending["follow_ups"][0]["job"])
        self.assertHeld(follow)
        # Neither the owner nor root take it around hawfd.
        self.assertOneLineError(self.decide(ALICE, ckpt, "reject"), "may not decide")
        self.assertEqual(self.wait_ran("ondefault", timeout=120), ["reject|timeout|"])
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual((shown["decision"]["choice"], shown["decision"]["via"]), ("reject", "timeout"))
        self.hawfd.wait_log("deadline of %s" % ckpt)
        for user in (ALICE, "root"):
            r = self.hawf.tool(user, "hawf", "log", "--verify", ckpt)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.hawfd.log())
            self.assertIn("all verified", r.stdout)
        # Too late to approve.
        self.assertOneLineError(self.decide(CAROL, ckpt, "approve"), "cannot approve %s" % ckpt)
