"""Tasks in containers on a real cluster: Slurm's native OCI support (srun/sbatch
--container) with runc, on a rootfs of busybox made here (no download). The
cluster's oci.conf puts hawf-oci-run in front of runc, as spank-hawf(8) tells a
site to. A checkpoint step writes its report from inside its container, a
follow-up reads its decision inside its container (variables and file), and an
in-job checkpoint is waited for inside a container without hawf's tools through
files/decision.json (demo/container/wait-decision.sh, the documented snippet).
Every task proves it ran inside by the bundle's hostname: without oci.conf Slurm
would run it on the host without a word.

Apptainer and pyxis/enroot are not installed here (not packaged in Debian 12).
For Apptainer, a task runs what `apptainer exec --cleanenv` documents with
bubblewrap instead: an environment of APPTAINERENV_* alone, binds of
APPTAINER_BINDPATH alone, over the same rootfs. hawf's enroot hook is run on its
own (test_enroot_hook.py); pyxis itself is not run."""

import json
import os
import pwd
import shutil
import time
import unittest

from hawftest import ALICE, ClusterTestCase
from oci import BUSYBOX, HOSTNAME, RUNC, make_bundle, write_oci_conf

HERE = os.path.dirname(os.path.abspath(__file__))
SNIPPETS = os.path.join(HERE, "..", "..", "demo", "container")
BWRAP = shutil.which("bwrap")

# What `apptainer exec --cleanenv ROOTFS CMD...` does with a task's environment, by
# Apptainer's documentation, with bubblewrap doing the sandbox: the command gets
# APPTAINERENV_<NAME> as <NAME> and nothing else, and each SRC:DST[:ro|rw] of
# APPTAINER_BINDPATH bound. Anything else the task has is out of reach.
APPTAINER_RULES = r"""#!/bin/bash
set -euo pipefail
rootfs=$1
shift
args=(--unshare-all --hostname hawfbox --bind "$rootfs" / --proc /proc --dev /dev --tmpfs /tmp --clearenv)
for name in ${!APPTAINERENV_@}; do
  args+=(--setenv "${name#APPTAINERENV_}" "${!name}")
done
IFS=, read -ra binds <<< "${APPTAINER_BINDPATH:-}"
for bind in "${binds[@]}"; do
  IFS=: read -r src dst mode <<< "$bind"
  if [[ ${mode:-rw} == ro ]]; then args+=(--ro-bind "$src" "${dst:-$src}"); else args+=(--bind "$src" "${dst:-$src}"); fi
done
exec bwrap "${args[@]}" "$@"
"""


@unittest.skipUnless(BUSYBOX and RUNC and BWRAP, "needs runc, busybox-static and bubblewrap (scripts/install-deps.sh)")
class NativeOci(ClusterTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        h = cls.hawf
        oci = os.path.join(h.root, "oci")
        os.makedirs(oci, mode=0o755)
        cls.bundle = os.path.join(oci, "bundle-" + ALICE)
        make_bundle(cls.bundle, ALICE, extra_files=[os.path.join(SNIPPETS, "wait-decision.sh")])
        wrapper = shutil.copy(os.environ["HAWF_OCI_RUN"], h.bindir)
        write_oci_conf(os.path.dirname(h.cluster.conf), wrapper, os.path.join(oci, "runc"), [ALICE])

    def script(self, name, text):
        return self.hawf.user_file(ALICE, name, text, 0o755)

    def test_doctor_checks_oci_conf(self):
        h = self.hawf
        r = h.tool(ALICE, "hawf", "doctor", *h.doctor_args())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ok    containers       %s/oci.conf runs the runtime through %s/hawf-oci-run\n"
                      % (os.path.dirname(h.cluster.conf), h.bindir), r.stdout)
        # A site's oci.conf without it: tasks would miss their directories.
        etc = os.path.join(h.root, "etc-without-wrapper")
        shutil.copytree(os.path.dirname(h.cluster.conf), etc)
        with open(os.path.join(etc, "oci.conf"), "w") as f:
            f.write('RunTimeRun="exec runc run %n.%u.%j.%s.%t -b %b"\n')
        r = h.tool(ALICE, "hawf", "doctor", *h.doctor_args(), env={"SLURM_CONF": os.path.join(etc, "slurm.conf")})
        self.assertEqual(r.returncode, 1, r.stdout)
        [line] = [l for l in r.stdout.splitlines() if "containers" in l]
        self.assertTrue(line.startswith("FAIL  containers       %s/oci.conf runs the container runtime without "
                                        "hawf-oci-run" % etc), line)

    def test_apptainer_rules_suffice(self):
        h = self.hawf
        self.script("apptainer-rules.sh", APPTAINER_RULES)
        r = h.run(ALICE, ["srun", "--hawf-checkpoint=app", "bash", "apptainer-rules.sh",
                          os.path.join(self.bundle, "rootfs"), "/bin/sh", "-c",
                          'echo "host=$(hostname)"; echo "ckpt=$HAWF_CHECKPOINT"; echo "job=${SLURM_JOB_ID:-unset}";'
                          ' echo "inside" > "$HAWF_CHECKPOINT_DIR/report.md"'], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        self.assertEqual(lines["host"], HOSTNAME)  # in the sandbox
        self.assertEqual(lines["job"], "unset")     # and its environment clean
        shown = h.wait_state(ALICE, lines["ckpt"], "pending")
        self.assertEqual(shown["report"].strip(), "inside")

    def finished(self, jobid, timeout=120):
        info = self.hawf.wait_job(jobid, timeout=timeout)
        out = self.hawf.output(ALICE, jobid)
        self.assertEqual(info["JobState"], "COMPLETED", out + self.hawf.cluster.daemon_logs())
        return out

    def test_checkpoint_step_and_follow_up_in_containers(self):
        h = self.hawf
        # The follow-up's batch script runs in the container (busybox sh), as does the step.
        self.script("in-box.sh", "#!/bin/sh\n#SBATCH --container=%s\n"
                    'echo "host=$(hostname)"\n'
                    'echo "decision=$HAWF_DECISION lr=$HAWF_PARAM_LR after=$HAWF_AFTER"\n'
                    'echo "file=$(sed -n \'s/^  "choice": "\\(.*\\)",$/\\1/p\' "$HAWF_DECISION_FILE")"\n'
                    'echo "report=$(cat "$HAWF_AFTER_DIR/report.md")"\n' % self.bundle)
        r = h.run(ALICE, ["srun", "--container=" + self.bundle, "--hawf-checkpoint=eval", "--hawf-params=lr:float",
                          "--hawf-then=in-box.sh:approve", "sh", "-c",
                          'echo "host=$(hostname)"; echo "ckpt=$HAWF_CHECKPOINT";'
                          ' echo "apptainer=$APPTAINERENV_HAWF_CHECKPOINT_DIR|$APPTAINER_BINDPATH";'
                          ' echo "from $(hostname)" > "$HAWF_CHECKPOINT_DIR/report.md"'], timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + h.cluster.daemon_logs())
        lines = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
        self.assertEqual(lines["host"], HOSTNAME, r.stdout)  # it ran inside
        ckpt = lines["ckpt"]
        self.assertRegex(ckpt, r"^\d+:eval$")
        shown = h.wait_state(ALICE, ckpt, "pending")
        # Written inside the container, there in the spool.
        self.assertEqual(shown["report"].strip(), "from " + HOSTNAME)
        directory = shown["files_dir"]
        self.assertEqual(lines["apptainer"], "%s|%s:%s:rw" % (directory, directory, directory))

        [follow] = shown["follow_ups"]
        d = h.tool(ALICE, "hawf-decide", ckpt, "approve", "--set", "lr=0.25")
        self.assertEqual(d.returncode, 0, d.stderr)
        out = self.finished(int(follow["job"]))
        self.assertIn("host=%s\n" % HOSTNAME, out)
        self.assertIn("decision=approve lr=0.25 after=%s\n" % ckpt, out)
        self.assertIn("file=approve\n", out)
        self.assertIn("report=from %s\n" % HOSTNAME, out)

    def test_in_job_checkpoint_waited_for_without_hawf_tools(self):
        h = self.hawf
        job = h.sbatch(ALICE, "#!/bin/bash\n"
                       'eval "$(hawf-await --open=mid --options=continue,stop --params=lr:float --env)"\n'
                       "srun --container=%s sh -c 'echo \"host=$(hostname)\"; touch \"$HAWF_CHECKPOINT_DIR/waiting\";"
                       ' echo "choice=$(/hawf/wait-decision.sh 1)"\'\n'
                       # The Python snippet, on the host: the same file.
                       "python3 %s\n" % (self.bundle, os.path.join(SNIPPETS, "wait_decision.py")))
        ckpt = "%d:mid" % job
        directory = h.wait_state(ALICE, ckpt, "pending", timeout=90)["files_dir"]
        # Decided once the task in the container waits (it left a mark where it waits).
        deadline = time.monotonic() + 90
        while not os.path.exists(os.path.join(directory, "waiting")):
            self.assertLess(time.monotonic(), deadline, h.output(ALICE, job))
            time.sleep(0.2)
        d = h.tool(ALICE, "hawf-decide", ckpt, "continue", "--set", "lr=0.5")
        self.assertEqual(d.returncode, 0, d.stderr)
        out = self.finished(job)
        self.assertIn("host=%s\n" % HOSTNAME, out)
        self.assertIn("choice=continue\n", out)
        self.assertIn('continue {"lr": 0.5}\n', out)

    def test_decision_file_follows_amend_and_revoke(self):
        h = self.hawf
        job = h.sbatch(ALICE, "#!/bin/bash\nhawf-await --open=watch >/dev/null\nsleep 300\n")
        ckpt = "%d:watch" % job
        directory = h.wait_state(ALICE, ckpt, "pending", timeout=90)["files_dir"]
        path = os.path.join(directory, "decision.json")
        try:
            self.assertFalse(os.path.exists(path))
            self.assertEqual(h.tool(ALICE, "hawf-decide", ckpt, "approve", "-m", "first").returncode, 0)
            with open(path) as f:
                first = json.load(f)
            self.assertEqual((first["choice"], first["comment"], first["checkpoint"]), ("approve", "first", ckpt))
            self.assertEqual(h.tool(ALICE, "hawf-decide", "--amend", ckpt, "reject").returncode, 0)
            with open(path) as f:
                self.assertEqual(json.load(f)["choice"], "reject")
            self.assertEqual(h.tool(ALICE, "hawf-decide", "--revoke", ckpt).returncode, 0)
            self.assertFalse(os.path.exists(path))
            self.assertEqual(os.stat(directory).st_uid, pwd.getpwnam(ALICE).pw_uid)
        finally:
            h.cluster.run(["scancel", str(job)])


if __name__ == "__main__":
    unittest.main()
