"""hawf's enroot hook (etc/enroot/50-hawf.sh) on its own, without enroot (not
packaged in Debian 12): run as enroot runs a hook, with the job's environment and
ENROOT_MOUNTS naming the fstab-format list to append to."""

import os
import subprocess
import tempfile
import unittest

HOOK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "etc", "enroot", "50-hawf.sh")


class EnrootHook(unittest.TestCase):

    def run_hook(self, env):
        with tempfile.TemporaryDirectory() as d:
            mounts = os.path.join(d, "mounts")
            with open(mounts, "w") as f:
                f.write("/existing /existing none bind\n")
            r = subprocess.run([HOOK], env=dict(env, ENROOT_MOUNTS=mounts, PATH=os.environ["PATH"]),
                               capture_output=True, text=True, timeout=10)
            with open(mounts) as f:
                return r, f.read().splitlines()[1:]

    def test_binds_what_the_variables_name(self):
        r, lines = self.run_hook({"HAWF_CHECKPOINT": "42:eval", "HAWF_CHECKPOINT_DIR": "/spool/1/ckpt/42/eval/files",
                                  "HAWF_AFTER_DIR": "/spool/1/ckpt/41/eval/files",
                                  "HAWF_DECISION_FILE": "/spool/1/ckpt/41/eval/delivered/42"})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(lines, [
            "/spool/1/ckpt/42/eval/files /spool/1/ckpt/42/eval/files none x-create=dir,rbind,rw,nosuid,nodev",
            "/spool/1/ckpt/41/eval/files /spool/1/ckpt/41/eval/files none x-create=dir,rbind,ro,nosuid,nodev",
            "/spool/1/ckpt/41/eval/delivered/42 /spool/1/ckpt/41/eval/delivered/42 none "
            "x-create=file,bind,ro,nosuid,nodev"])

    def test_nothing_for_a_job_without_hawf(self):
        r, lines = self.run_hook({"HOME": "/home/x", "HAWF_CHECKPOINT_DIR": "relative/dir"})
        self.assertEqual((r.returncode, r.stderr, lines), (0, "", []))

    def test_refuses_what_fstab_cannot_say(self):
        r, lines = self.run_hook({"HAWF_CHECKPOINT_DIR": "/spool/a b"})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "hawf: HAWF_CHECKPOINT_DIR=/spool/a b: a path with a blank cannot be bound by enroot\n")
        self.assertEqual(lines, [])


if __name__ == "__main__":
    unittest.main()
