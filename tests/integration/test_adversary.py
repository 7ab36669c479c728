"""A second user (Bob) and a careless owner against hawf on a real cluster: every
way Bob can put things in his own spool tree or environment must count for
nothing against Alice's checkpoints and never mislead, hang or fail root's
commands; what Alice's jobs leave stays private to her (issue 8)."""

import json
import os
import pwd
import time

from hawftest import ALICE, BOB, ClusterTestCase

OK_JOB = "#!/bin/bash\necho hello\n"
ESC = "\x1b"
HOSTILE = "\x1b[2J\x1b]0;OWNED\x1b\\\nfake row\r\x9b31m\u202e"

# Writes {relative path: content or None (a directory)} under the spool as the
# calling user, with a private tree's modes; content may set "mtime".
FORGE = r"""
import json, os, sys
root, items = sys.argv[1], json.load(sys.stdin)
for rel, content in items:
    path = os.path.join(root, rel)
    if content is None:
        os.makedirs(path, 0o700, exist_ok=True)
        continue
    os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else content["text"])
    if not isinstance(content, str):
        os.utime(path, (content["mtime"], content["mtime"]))
"""


def event(seq, kind, uid, user, **extra):
    ev = {"v": 1, "seq": seq, "event": kind, "at": "2026-01-01T00:00:00Z", "by": user, "by_uid": uid,
          "via": "cli", "host": "node1"}
    ev.update(extra)
    return json.dumps(ev) + "\n"


def spec(ckpt, uid, owner, options=("continue", "stop"), params=()):
    return {"checkpoint": ckpt, "owner_uid": uid, "owner": owner, "scope": "job", "options": list(options),
            "params": [{"key": k, "type": t} for k, t in params], "timeout_s": 0, "default": "", "then": [],
            "signal": ""}


class Adversary(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.alice_uid = pwd.getpwnam(ALICE).pw_uid
        cls.bob_uid = pwd.getpwnam(BOB).pw_uid
        cls.forge_py = os.path.join(cls.hawf.root, "forge.py")
        with open(cls.forge_py, "w") as f:
            f.write(FORGE)
        os.chmod(cls.forge_py, 0o644)

    def forge(self, user, items):
        r = self.hawf.run(user, ["python3", self.forge_py, self.hawf.spool], input=json.dumps(items))
        self.assertEqual(r.returncode, 0, r.stderr)

    def forged_checkpoint(self, user, uid, ckpt, decided=None, owner=None, host="node1", params=()):
        """Records of a pending (or decided) checkpoint, as hawf would write them."""
        job, name = ckpt.split(":")
        log = "%d/ckpt/%s/%s/log/" % (uid, job, name)
        items = [(log + "00000001", event(1, "opened", uid, user, host=host,
                                          spec=spec(ckpt, uid, owner or user, params=params))),
                 (log + "00000002", event(2, "pending", uid, user, exit_status=0)),
                 ("%d/pending/%s" % (uid, ckpt), "")]
        if decided:
            items.append((log + "00000003", event(3, "decided", uid, user, decision=decided)))
        return items

    def pending_checkpoint(self, user=ALICE, script=OK_JOB, *args):
        job = self.hawf.sbatch(user, script, "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-params=lr:float,note:string", *args)
        self.hawf.wait_job(job)
        ckpt = "%d:eval" % job
        self.hawf.wait_state(user, ckpt, "pending")
        return job, ckpt

    def as_root(self, *argv):
        return self.hawf.cluster.run(list(argv), env=self.hawf.env())

    def assert_safe_output(self, r):
        for stream in (r.stdout, r.stderr):
            self.assertNotIn(ESC, stream)
            self.assertNotIn("\r", stream)
            self.assertNotIn("\x9b", stream)
            self.assertNotIn("\u202e", stream)

    # ------------------------------------------------------------ lookups by job id

    def test_a_copy_in_another_tree_is_never_my_checkpoint(self):
        job = self.hawf.sbatch(ALICE, OK_JOB, "-H", "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-params=lr:float")
        ckpt = "%d:eval" % job
        # Bob cannot open a checkpoint for Alice's job by setting SLURM_JOB_ID...
        r = self.hawf.tool(BOB, "hawf-await", "--open=eval", "--options=continue,stop", "--params=lr:float",
                           env={"SLURM_JOB_ID": str(job)})
        self.assertOneLineError(r, str(job), ALICE)
        self.assertFalse(os.path.exists(os.path.join(self.hawf.spool, str(self.bob_uid), "ckpt", str(job))))
        # ...so he writes the records by hand, decided with his values, even naming Alice.
        self.forge(BOB, self.forged_checkpoint(ALICE, self.bob_uid, ckpt, owner=ALICE, params=[("lr", "float")],
                                               decided={"choice": "continue", "params": {"lr": "1e9"},
                                                        "comment": "bob was here"}))
        for user in (ALICE, "root"):
            run = self.as_root if user == "root" else lambda *a: self.hawf.tool(ALICE, *a)
            r = run("hawf-await", "--poll", ckpt)
            self.assertEqual(r.returncode, 75, r.stdout + r.stderr)
            self.assertNotIn("1e9", r.stdout)
            r = run("hawf", "show", ckpt)
            self.assertNotEqual(r.returncode, 0)
            self.assertNotIn("bob was here", r.stdout + r.stderr)
            r = run("hawf", "log", ckpt)
            self.assertNotIn("bob was here", r.stdout + r.stderr)
        # Bob's decision on Alice's job id is refused as hers, not applied to his copy.
        r = self.hawf.tool(BOB, "hawf-decide", ckpt, "stop")
        self.assertOneLineError(r, ckpt, ALICE)
        for user in (ALICE, BOB):
            self.hawf.run(user, ["bash", "-c", "printf '#!/bin/bash\\ntrue\\n' > next.sh"])
        r = self.hawf.tool(BOB, "hawf-await", "--then=next.sh", ckpt)
        self.assertOneLineError(r, str(job), ALICE)
        # Alice's own follow-up registers in her tree; her job's checkpoint is hers.
        r = self.hawf.tool(ALICE, "hawf-await", "--then=next.sh", "--on=continue", ckpt)
        self.assertEqual(r.returncode, 0, r.stderr)
        follow = int(r.stdout.strip())
        self.assertEqual(self.hawf.run(ALICE, ["scontrol", "release", str(job)]).returncode, 0)
        self.hawf.wait_job(job)
        shown = self.hawf.wait_state(ALICE, ckpt, "pending")
        self.assertEqual(shown["owner"], ALICE)
        self.assertNotIn("decision", shown)
        waited = self.hawf.tool(ALICE, "hawf-await", "--env", "--poll", ckpt)
        self.assertEqual(waited.returncode, 75, waited.stdout)
        r = self.hawf.tool(ALICE, "hawf-decide", ckpt, "stop", "-m", "alice decides")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("follow-up %d cancelled" % follow, r.stdout)
        r = self.hawf.tool(ALICE, "hawf-await", "--env", ckpt)
        self.assertIn("HAWF_DECISION='stop'", r.stdout)
        self.assertIn("HAWF_DECIDED_BY='%s'" % ALICE, r.stdout)
        self.assertIn("/%d/ckpt/" % self.alice_uid, r.stdout)

    def test_root_finds_the_owner_from_slurm(self):
        job, ckpt = self.pending_checkpoint()
        self.forge(BOB, self.forged_checkpoint(BOB, self.bob_uid, ckpt))
        r = self.as_root("hawf", "show", "--json", ckpt)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["owner"], ALICE)
        r = self.as_root("hawf-decide", ckpt, "continue", "--set", "lr=0.5")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.hawf.show(ALICE, ckpt)["decision"]["decided_by"], "root")
        # --user naming someone Slurm contradicts is refused.
        r = self.as_root("hawf", "show", "--user=" + BOB, ckpt)
        self.assertOneLineError(r, BOB, ALICE)

    def test_a_job_slurm_forgot_belongs_to_the_caller(self):
        ckpt = "999999:eval"  # no such job: Bob's own copy is his, and only his
        self.forge(BOB, self.forged_checkpoint(BOB, self.bob_uid, ckpt))
        self.assertEqual(self.hawf.show(BOB, ckpt)["owner"], BOB)
        r = self.hawf.tool(ALICE, "hawf-await", "--poll", ckpt)
        self.assertEqual(r.returncode, 1)
        self.assertNotIn("pending", r.stdout)
        r = self.as_root("hawf", "show", ckpt)
        self.assertOneLineError(r, "--user")
        self.assertEqual(self.as_root("hawf", "show", "--user=" + BOB, ckpt).returncode, 0)

    # ------------------------------------------------------------ what reaches a terminal

    def test_control_characters_never_reach_a_terminal(self):
        job, ckpt = self.pending_checkpoint(BOB, "#!/bin/bash\nprintf '# %s\\n' \"$EVIL\" > \"$HAWF_CHECKPOINT_DIR/report.md\"\n"
                                            "touch \"$HAWF_CHECKPOINT_DIR/$EVIL\"\n", "--export=ALL,EVIL=" + HOSTILE.replace("\n", " "))
        r = self.hawf.tool(BOB, "hawf-decide", ckpt, "continue", "--set", "note=" + HOSTILE, "-m", HOSTILE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assert_safe_output(r)
        # A record naming an owner, host and actor with control characters: refused when read.
        bad = "%d:bad" % job
        self.forge(BOB, self.forged_checkpoint(BOB, self.bob_uid, bad, owner="x\n" + bad + "  pending  root",
                                               host=HOSTILE))
        for argv in (["hawf", "show", ckpt], ["hawf", "log", ckpt], ["hawf", "log"], ["hawf", "ls", "--all"],
                     ["hawf", "ls"], ["hawf", "show", "--user=" + BOB, bad], ["hawf", "gc", "--older-than=30d"]):
            with self.subTest(argv=argv):
                r = self.as_root(*argv)
                self.assert_safe_output(r)
                if argv[1] == "ls":
                    rows = [l for l in r.stdout.splitlines() if l.split()[0].endswith(":bad")]
                    self.assertEqual(rows, [], r.stdout)
        shown = self.as_root("hawf", "show", ckpt).stdout
        self.assertIn("\\e[2J", shown)  # escaped, still readable
        self.assertIn("note = ", shown)
        # JSON stays exact.
        r = self.as_root("hawf", "show", "--json", ckpt)
        self.assertEqual(json.loads(r.stdout)["decision"]["params"]["note"], HOSTILE)

    # ------------------------------------------------------------ bounded root commands

    def test_deep_trees_do_not_stop_gc(self):
        job, ckpt = self.pending_checkpoint(ALICE)  # kept by gc: still waiting for its decision
        bob_job = self.hawf.sbatch(BOB, "#!/bin/bash\ncd \"$HAWF_CHECKPOINT_DIR\"\n"
                                        "for i in $(seq 1500); do mkdir d; cd d; done\nexit 3\n",
                                   "--hawf-checkpoint=deep")
        self.hawf.wait_job(bob_job)
        bob_ckpt = "%d:deep" % bob_job
        self.hawf.wait_state(BOB, bob_ckpt, "failed")
        alice_failed = self.hawf.sbatch(ALICE, "#!/bin/bash\nexit 1\n", "--hawf-checkpoint=old")
        self.hawf.wait_job(alice_failed)
        self.hawf.wait_state(ALICE, "%d:old" % alice_failed, "failed")
        # A writer killed mid-write left a temporary file long ago.
        stale = "%d/ckpt/%d/eval/log/.tmp.node1.99999.0" % (self.alice_uid, job)
        self.forge(ALICE, [(stale, {"text": "half", "mtime": time.time() - 7200})])
        time.sleep(2)
        r = self.as_root("hawf", "gc", "--older-than=1s")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("removed %s" % bob_ckpt, r.stdout)
        self.assertIn("removed %d:old" % alice_failed, r.stdout)
        self.assertFalse(os.path.exists(os.path.join(self.hawf.spool, str(self.bob_uid), "ckpt", str(bob_job))))
        self.assertFalse(os.path.exists(os.path.join(self.hawf.spool, stale)))
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "pending")

    def test_uid_aliases_name_no_tree(self):
        job, ckpt = self.pending_checkpoint(ALICE)
        for alias in ("0%d" % self.alice_uid, str(self.alice_uid + 2 ** 32)):
            forged = [("%s/%s" % (alias, rel.split("/", 1)[1]), content)
                      for rel, content in self.forged_checkpoint(BOB, self.bob_uid, ckpt)]
            self.forge(BOB, forged)
        r = self.as_root("hawf", "ls", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([c["checkpoint"] for c in json.loads(r.stdout)].count(ckpt), 1)
        r = self.as_root("hawf-decide", ckpt, "continue")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.as_root("hawf", "log", "--json")
        self.assertEqual(len([e for e in json.loads(r.stdout) if e["checkpoint"] == ckpt and e["event"] == "decided"]), 1)

    def test_listings_stop_at_the_per_user_limit(self):
        self.hawf.write_conf("spool: %s\npoll_interval: 1s\nlimits:\n  max_checkpoints: 20\n" % self.hawf.spool)
        self.addCleanup(self.hawf.write_conf)
        items = []
        for i in range(30):
            items += self.forged_checkpoint(BOB, self.bob_uid, "%d:flood" % (800000 + i))
        self.forge(BOB, items)
        job, ckpt = self.pending_checkpoint(ALICE)
        r = self.as_root("hawf", "ls", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        listed = json.loads(r.stdout)
        self.assertIn(ckpt, [c["checkpoint"] for c in listed])
        # Bob's first 20 index entries are read (some may be others he planted that fail their checks).
        others = len([n for n in os.listdir(os.path.join(self.hawf.spool, str(self.bob_uid), "pending"))
                      if not n.endswith(":flood")])
        bobs = len([c for c in listed if c["owner"] == BOB])
        self.assertTrue(20 - others <= bobs <= 20, (bobs, others))
        self.assertIn("max_checkpoints", r.stderr)
        # Bob, over his limit, cannot open more checkpoints: refused at submission.
        r = self.hawf.run(BOB, ["sbatch", "--hawf-checkpoint=more", "--wrap", "true"])
        self.assertOneLineError(r, "max_checkpoints")

    # ------------------------------------------------------------ misleading results

    def test_a_symlinked_tree_is_named_as_such(self):
        tree = os.path.join(self.hawf.spool, str(self.bob_uid))
        if os.path.exists(tree):  # earlier tests made it: put it aside meanwhile
            os.rename(tree, tree + ".aside")
            self.addCleanup(os.rename, tree + ".aside", tree)
        self.assertEqual(self.hawf.run(BOB, ["ln", "-s", "/tmp", tree]).returncode, 0)
        self.addCleanup(os.unlink, tree)
        r = self.hawf.tool(BOB, "hawf", "ls")
        self.assertOneLineError(r, "symbolic link")

    # ------------------------------------------------------------ privacy

    def test_what_a_job_left_is_private(self):
        job, ckpt = self.pending_checkpoint(ALICE, "#!/bin/bash\necho secret > \"$HAWF_CHECKPOINT_DIR/report.md\"\n")
        tree = os.path.join(self.hawf.spool, str(self.alice_uid))
        self.assertEqual(os.stat(tree).st_mode & 0o777, 0o700)
        report = os.path.join(tree, "ckpt", str(job), "eval", "files", "report.md")
        for argv in (["cat", report], ["ls", tree]):
            self.assertNotEqual(self.hawf.run(BOB, argv).returncode, 0, argv)
        for argv in (["hawf", "show", ckpt], ["hawf", "log", ckpt], ["hawf-await", "--poll", ckpt]):
            r = self.hawf.tool(BOB, *argv)
            self.assertOneLineError(r, ckpt, ALICE)
            self.assertNotIn("secret", r.stdout)
        self.assertIn("secret", self.as_root("hawf", "show", ckpt).stdout)


if __name__ == "__main__":
    import unittest
    unittest.main()
