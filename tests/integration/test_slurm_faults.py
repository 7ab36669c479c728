"""Slurm not answering while hawf changes follow-ups (issue 8, defect 7): a command
that times out because slurmctld is paused may still be carried out when slurmctld
resumes, so hawf asks Slurm what became of the job instead of reporting a failure."""

import os
import pwd
import shutil
import signal
import subprocess
import time
import unittest

from cluster import RUNUSER, proc_table
from hawftest import ALICE, ClusterTestCase

TRAIN = "#!/bin/bash\necho trained > \"$HAWF_CHECKPOINT_DIR/report.md\"\n"
FOLLOW = "#!/bin/bash\nprintf '%s' \"$HAWF_DECISION\" > next.decision\n"

# Stands in for scontrol on hawf-decide's PATH: a release first says so and waits
# for the test's go-ahead (given once slurmctld is paused), then runs the real one.
# So the request reaches a paused slurmctld whatever else hawf-decide asked Slurm
# before (its owner lookup), without a fixed sleep.
SCONTROL = """#!/bin/sh
if [ "$1" = release ]; then
    : > '{dir}/release-started'
    while [ ! -e '{dir}/go' ]; do sleep 0.05; done
fi
exec {scontrol} "$@"
"""


def session_commands(sid):
    """{pid: command name} of the live processes in session SID."""
    return {pid: comm for pid, (_, state, session, comm) in proc_table().items() if state != "Z" and session == sid}


class PausedController(ClusterTestCase):

    def wait_for(self, what, predicate, proc, timeout=120):
        deadline = time.monotonic() + timeout
        while not predicate():
            if proc.poll() is not None:
                out, err = proc.communicate()
                self.fail("hawf-decide exited (%s) before %s\nstdout: %s\nstderr: %s"
                          % (proc.returncode, what, out, err))
            if time.monotonic() > deadline:
                self.fail("no %s within %d s: %s" % (what, timeout, session_commands(proc.pid)))
            time.sleep(0.05)

    def test_release_that_times_out_is_checked_and_reported_released(self):
        self.hawf.user_file(ALICE, "next.sh", FOLLOW, 0o755)
        gate = os.path.join(self.hawf.cluster.user_dir(ALICE), "gate")
        os.makedirs(gate, exist_ok=True)
        entry = pwd.getpwnam(ALICE)
        os.chown(gate, entry.pw_uid, entry.pw_gid)
        with open(os.path.join(gate, "scontrol"), "w") as f:
            # The cluster's own scontrol (a Slurm prefix's, or Debian's).
            f.write(SCONTROL.format(dir=gate, scontrol=shutil.which("scontrol", path=self.hawf.cluster.path)))
        os.chmod(os.path.join(gate, "scontrol"), 0o755)

        job = self.hawf.sbatch(ALICE, TRAIN, "--hawf-checkpoint=eval", "--hawf-options=continue,stop",
                               "--hawf-then=next.sh:continue")
        ckpt = "%d:eval" % job
        self.hawf.wait_state(ALICE, ckpt, "pending")
        follow = self.hawf.show(ALICE, ckpt)["follow_ups"][0]["job"]
        self.assertEqual(self.hawf.cluster.job_info(follow)["Reason"], "JobHeldUser")

        env = self.hawf.cluster.env
        env.update(self.hawf.env({"PATH": gate + ":" + self.hawf.env()["PATH"]}))
        decide = subprocess.Popen([RUNUSER, "-u", ALICE, "--", "hawf-decide", ckpt, "continue"],
                                  cwd=self.hawf.cluster.user_dir(ALICE), env=env, encoding="utf-8",
                                  errors="replace", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, start_new_session=True)
        self.addCleanup(lambda: decide.poll() is None and os.killpg(decide.pid, signal.SIGKILL))
        self.addCleanup(self.hawf.cluster.resume_controller)
        started = time.monotonic()
        self.wait_for("scontrol release", lambda: os.path.exists(os.path.join(gate, "release-started")), decide)
        self.hawf.cluster.pause_controller()
        with open(os.path.join(gate, "go"), "w"):
            pass
        # scontrol release times out (MessageTimeout); hawf then asks squeue what
        # became of the job: that squeue, not a sleep, tells it is time to resume.
        self.wait_for("squeue after the failed release",
                      lambda: "squeue" in session_commands(decide.pid).values(), decide)
        self.assertNotIn("scontrol", session_commands(decide.pid).values())
        paused = time.monotonic() - started
        self.hawf.cluster.resume_controller()

        out, err = decide.communicate(timeout=120)
        self.assertEqual(decide.returncode, 0, "stdout: %s\nstderr: %s" % (out, err))
        self.assertIn("follow-up %s released" % follow, out)
        self.assertNotIn("not released", err)
        self.assertNotIn("did not answer", err)
        # The follow-up really runs, with the decision.
        info = self.hawf.wait_job(int(follow), timeout=120)
        self.assertEqual(info["JobState"], "COMPLETED", self.hawf.output(ALICE, int(follow)))
        with open(os.path.join(self.hawf.cluster.user_dir(ALICE), "next.decision")) as f:
            self.assertEqual(f.read(), "continue")
        self.assertEqual(self.hawf.show(ALICE, ckpt)["state"], "applied")
        # It was the paused slurmctld that made scontrol fail, not something else.
        self.assertGreater(paused, 5, "scontrol release came back too soon to have timed out")


if __name__ == "__main__":
    unittest.main()
