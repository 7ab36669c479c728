"""Notifications on a real cluster (issue 10): a real hawfd with the cluster's
munged sends mail to a loopback SMTP sink and webhooks to loopback HTTP receivers
(tests/integration/sinks.py). Checked: what the pending mail and webhooks say, a
reminder before a short deadline and hawfd taking the default at it with no
follow-up and no hawf-await, `decided` naming who decided, a receiver down at first,
hawfd killed with SIGKILL while the receiver is down (the message arrives once
after the restart), a webhook that never answers delaying nothing else, a failed
step, a message given up reported by hawf doctor, and the reviewers of a delegated
checkpoint told by mail."""

import json
import os
import signal
import time

from hawftest import ALICE, CAROL, DAVE, REVIEWER_GROUP, HawfdTestCase
from sinks import HttpReceiver, SmtpSink

REPORT = r"""#!/bin/bash
printf 'accuracy 0.93 <!channel> & `x`\nloss 0.21\n' > "$HAWF_CHECKPOINT_DIR/report.md"
"""
FAIL = "#!/bin/bash\nexit 3\n"
DOMAIN = "cluster.test"


class Notify(HawfdTestCase):

    @classmethod
    def setUpClass(cls):
        cls.smtp = SmtpSink().start()
        cls.team = HttpReceiver().start()       # slack format
        cls.audit = HttpReceiver().start()      # json format, URL in a root-only url_file
        cls.slow = HttpReceiver(mode="hang").start()
        cls.broken = HttpReceiver(mode=404).start()
        for sink in (cls.smtp, cls.team, cls.audit, cls.slow, cls.broken):
            cls.addClassCleanup(sink.stop)
        super().setUpClass()

    @classmethod
    def hawfd_conf(cls):
        url_file = os.path.join(cls.hawf.root, "audit.url")
        with open(url_file, "w") as f:
            f.write(cls.audit.url("/audit") + "\n")
        os.chmod(url_file, 0o600)
        return ("notify:\n"
                "  smtp: {url: \"%s\", from: \"hawf@%s\", domain: \"%s\"}\n"
                "  webhooks:\n"
                "    team: {url: \"%s\", format: slack}\n"
                "    audit: {url_file: %s, format: json}\n"
                "    slow: {url: \"%s\", format: json}\n"
                "    broken: {url: \"%s\", format: mattermost}\n"
                "  remind_before: [25s]\n"
                "  timeout: 20s\n"
                "  retry_for: 1h\n"
                % (cls.smtp.url(), DOMAIN, DOMAIN, cls.team.url("/team"), url_file, cls.slow.url("/slow"),
                   cls.broken.url("/broken")))

    def checkpoint(self, name, *options, script=REPORT):
        job = self.hawf.sbatch(ALICE, script, "--hawf-checkpoint=" + name, *options)
        return "%d:%s" % (job, name)

    @staticmethod
    def about(ckpt, event=None):
        """A predicate: a webhook (json or slack) record mentioning CKPT (and EVENT)."""
        def match(records):
            for r in records:
                body = r["json"] or {}
                if body.get("event"):
                    if body["checkpoint"]["checkpoint"] == ckpt and (event is None or body["event"]["type"] == event):
                        return True
                elif ckpt in body.get("text", "") and (event is None or (r["key"] or "").split(".")[-3]
                                                         .startswith(event)):
                    return True
            return False
        return match

    def records(self, receiver, ckpt, event=None):
        return [r for r in receiver.received() if self.about(ckpt, event)([r])]

    def test_1_submission_checks_the_channels(self):
        for options, needles in [
            (["--hawf-notify=nosuch"], ["nosuch", "mail, team, audit, slow, broken"]),
            (["--hawf-notify=mail,none"], ["none"]),
            (["--hawf-notify=https://evil.example/hook"], ["https://evil.example/hook"]),
        ]:
            r = self.hawf.cluster.run(["sbatch", "--hawf-checkpoint=x"] + options + ["--wrap=true"], user=ALICE,
                                      env=self.hawf.env())
            self.assertOneLineError(r, *needles)
        r = self.hawf.cluster.run(["sbatch", "--hawf-notify=mail", "--wrap=true"], user=ALICE, env=self.hawf.env())
        self.assertOneLineError(r, "--hawf-notify need --hawf-checkpoint")

    def test_2_pending_mail_and_webhooks_then_decided(self):
        ckpt = self.checkpoint("eval", "--hawf-options=continue,stop", "--hawf-params=lr:float",
                               "--hawf-notify=mail,team,audit", "--mail-type=FAIL",
                               "--mail-user=alice.phone@%s" % DOMAIN)
        job = ckpt.split(":")[0]
        self.hawf.wait_state(ALICE, ckpt, "pending")
        mails = self.smtp.wait_for(lambda m: any(ckpt in (x["subject"] or "") for x in m), timeout=30)
        mail = [m for m in mails if ckpt in (m["subject"] or "")][0]
        self.assertEqual(mail["rcpt_to"], ["alice.phone@%s" % DOMAIN], mail)
        self.assertEqual(mail["mail_from"], "hawf@%s" % DOMAIN)
        self.assertIn("waits for a decision", mail["subject"])
        body = mail["message"].get_content()
        for needle in ["Checkpoint %s of %s waits for a decision." % (ckpt, ALICE), "Options: continue, stop",
                       "Parameters: lr (float)", "  | accuracy 0.93", "  | loss 0.21",
                       "hawf-decide %s continue --set lr=VALUE" % ckpt]:
            self.assertIn(needle, body)
        self.assertRegex(mail["message_id"], r"^<\d+\.%s\.eval\.pending\.\d+\.mail@" % job)
        self.assertEqual(mail["message"]["X-Hawf-Event-Id"], mail["message_id"][1:].split("@")[0])

        self.team.wait_for(self.about(ckpt, "pending"), timeout=30)
        slack = self.records(self.team, ckpt)[0]
        self.assertRegex(slack["key"], r"^\d+\.%s\.eval\.pending\.\d+\.team$" % job)
        self.assertIn("accuracy 0.93 &lt;!channel&gt; &amp; 'x'", slack["json"]["text"])  # defused
        self.assertNotIn("<!channel>", slack["json"]["text"])

        self.audit.wait_for(self.about(ckpt, "pending"), timeout=30)
        audit = self.records(self.audit, ckpt)[0]
        self.assertEqual(audit["path"], "/audit")
        self.assertEqual(audit["json"]["event"]["type"], "pending")
        self.assertEqual(audit["key"], audit["json"]["event"]["key"] + ".audit")
        shown = audit["json"]["checkpoint"]
        self.assertEqual((shown["checkpoint"], shown["owner"], shown["state"]), (ckpt, ALICE, "pending"))
        self.assertIn("accuracy 0.93 <!channel>", shown["report"])  # JSON stays exact
        self.assertEqual(shown["spec"]["notify"], ["mail", "team", "audit"])

        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=1e-4", "-m", "looks good")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.audit.wait_for(self.about(ckpt, "decided"), timeout=30)
        decided = self.records(self.audit, ckpt, "decided")[0]["json"]["checkpoint"]["decision"]
        self.assertEqual((decided["choice"], decided["decided_by"], decided["comment"]), ("continue", ALICE, "looks good"))
        mails = self.smtp.wait_for(lambda m: any(ckpt in (x["subject"] or "") and "continue" in x["subject"]
                                                 for x in m), timeout=30)
        body = [m for m in mails if ckpt in m["subject"] and "continue" in m["subject"]][0]["message"].get_content()
        self.assertIn("was decided: continue, by %s." % ALICE, body)
        self.assertIn("lr = 1e-4", body)
        self.assertIn("Comment: looks good", body)

    def test_3_reminder_then_the_default_at_the_deadline_without_followup(self):
        ckpt = self.checkpoint("timed", "--hawf-timeout=45s", "--hawf-default=reject", "--hawf-notify=audit")
        pending = self.hawf.wait_state(ALICE, ckpt, "pending")
        self.audit.wait_for(self.about(ckpt, "reminder"), timeout=60)
        # Nobody runs hawf-await and nothing follows: hawfd takes the default.
        self.audit.wait_for(self.about(ckpt, "timeout"), timeout=60)
        events = [r["json"]["event"]["type"] for r in self.records(self.audit, ckpt)]
        self.assertEqual(events, ["pending", "reminder", "timeout"])
        reminder = self.records(self.audit, ckpt, "reminder")[0]["json"]
        self.assertIn("still waits for a decision; without one, reject is taken at", reminder["text"])
        shown = self.hawf.show(ALICE, ckpt)
        self.assertEqual((shown["state"], shown["decision"]["choice"], shown["decision"]["decided_by"]),
                         ("decided", "reject", "timeout"))
        self.assertEqual(shown["deadline"], pending["deadline"])

    def test_4_a_receiver_down_at_first_gets_the_message_when_back(self):
        self.team.stop()
        try:
            ckpt = self.checkpoint("later", "--hawf-notify=team")
            self.hawf.wait_state(ALICE, ckpt, "pending")
            self.hawfd.wait_log("cannot send pending of %s" % ckpt, timeout=30)
        finally:
            self.team.start(port=self.team.port)
        self.team.wait_for(self.about(ckpt, "pending"), timeout=60)

    def test_5_sigkill_while_down_sends_once_after_restart(self):
        self.audit.stop()
        try:
            ckpt = self.checkpoint("crash", "--hawf-notify=audit")
            self.hawf.wait_state(ALICE, ckpt, "pending")
            self.hawfd.wait_log("cannot send pending of %s" % ckpt, timeout=30)
            self.hawfd.stop(signal.SIGKILL)
        finally:
            self.audit.start(port=self.audit.port)
        self.hawfd.start(extra_conf=self.hawfd_conf())
        self.audit.wait_for(self.about(ckpt, "pending"), timeout=60)
        self.hawfd.wait_log("notify: sent pending of %s" % ckpt, timeout=30)
        time.sleep(3)  # a second copy would come now, from the outbox or the rescan at start
        keys = [r["key"] for r in self.records(self.audit, ckpt)]
        self.assertEqual(len(keys), 1, keys)
        # Nothing sent before the restart is sent again.
        all_keys = self.audit.keys()
        self.assertEqual(len(all_keys), len(set(all_keys)), all_keys)

    def test_6_a_webhook_that_never_answers_delays_nothing_else(self):
        hung = self.checkpoint("hung", "--hawf-notify=slow")
        self.hawf.wait_state(ALICE, hung, "pending")
        self.hawfd.wait_log("notify: queued pending of %s to slow" % hung, timeout=30)
        quick = self.checkpoint("quick", "--hawf-notify=team")
        self.hawf.wait_state(ALICE, quick, "pending")
        self.team.wait_for(self.about(quick, "pending"), timeout=19)
        # The slow webhook still holds its request: the quick one did not wait for it.
        self.assertNotIn("cannot send pending of %s" % hung, self.hawfd.log())

    def test_7_a_failed_step_is_told(self):
        ckpt = self.checkpoint("broke", "--hawf-notify=audit", script=FAIL)
        self.hawf.wait_state(ALICE, ckpt, "failed")
        self.audit.wait_for(self.about(ckpt, "failed"), timeout=30)
        self.assertIn("failed: its step ended with exit 3", self.records(self.audit, ckpt, "failed")[0]["json"]["text"])

    def test_8_a_message_given_up_is_reported_by_doctor(self):
        ckpt = self.checkpoint("lost", "--hawf-notify=broken")
        self.hawf.wait_state(ALICE, ckpt, "pending")
        self.hawfd.wait_log("notify: gave up pending of %s" % ckpt, timeout=30)
        self.assertEqual(len(self.broken.received()), 1)  # 404: never retried
        r = self.hawf.tool(ALICE, "hawf", "doctor", "--json", *self.hawf.doctor_args())
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertFalse(checks["notify"]["ok"], checks)
        self.assertIn("pending of %s to broken: HTTP 404" % ckpt, checks["notify"]["detail"])

    def test_9_reviewers_are_told_by_mail_and_decided_names_the_approver(self):
        ckpt = self.checkpoint("review", "--hawf-reviewers=@" + REVIEWER_GROUP, "--hawf-notify=mail")
        self.hawf.wait_state(ALICE, ckpt, "pending")
        mails = self.smtp.wait_for(lambda m: any(ckpt in (x["subject"] or "") for x in m), timeout=30)
        pending = [m for m in mails if ckpt in m["subject"]][0]
        self.assertEqual(sorted(pending["rcpt_to"]), sorted("%s@%s" % (u, DOMAIN) for u in (ALICE, CAROL, DAVE)))
        self.assertIn("Reviewers: @%s (1 must agree)" % REVIEWER_GROUP, pending["message"].get_content())
        r = self.hawf.tool(CAROL, "hawf-decide", ckpt, "approve", "-m", "fine by me")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.hawfd.log())
        mails = self.smtp.wait_for(lambda m: any(ckpt in (x["subject"] or "") and "approve" in x["subject"]
                                                 for x in m), timeout=30)
        decided = [m for m in mails if ckpt in m["subject"] and "approve" in m["subject"]][0]
        self.assertIn("was decided: approve, by %s." % CAROL, decided["message"].get_content())
        self.assertEqual(len(decided["rcpt_to"]), 3)
