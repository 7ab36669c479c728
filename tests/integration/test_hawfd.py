"""hawfd on a real cluster: a real hawfd process from the build under test (or
the installed one), on a loopback port, authenticating with the cluster's own
munged. The tools reach it (hawf doctor), credentials made by other users with
the munge CLI are accepted once and never again, stale and bad requests are
refused with one line, a silent client blocks no one, and SIGTERM ends it
cleanly, after the request in flight."""

import json
import os
import pwd
import shutil
import signal
import socket
import time

from hawftest import ALICE, BOB, HawfdTestCase, one_answer

PING = '{"op":"ping"}'


class HawfdService(HawfdTestCase):
    """One hawfd for the module; test_9 stops it, so the order matters."""

    def munge(self, user, payload, *args):
        """A credential for PAYLOAD made by USER with the munge command."""
        r = self.hawf.cluster.run(["munge", "-S", self.hawfd.munge_socket, "-s", payload] + list(args), user=user)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def assertRefused(self, answer, kind, needle):
        self.assertIs(answer["ok"], False, answer)
        self.assertEqual(answer["kind"], kind, answer)
        self.assertIn(needle, answer["error"])
        self.assertNotIn("\n", answer["error"])

    def test_1_doctor_checks_munge_and_hawfd(self):
        r = self.hawf.tool(ALICE, "hawf", "doctor", *self.hawf.doctor_args())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr + self.hawfd.log())
        lines = {line.split()[1]: line for line in r.stdout.splitlines()}
        self.assertRegex(lines["step"], r"^ok +step helper +/.*/hawf-step-helper \(hawf-step-helper \d+\.\d+\.\d+\)$")
        self.assertEqual(lines["slurm"].split(None, 2)[2], "srun --help shows --hawf-checkpoint: Slurm loads hawf")
        self.assertTrue(lines["munge"].startswith("ok "), r.stdout)
        self.assertIn(self.hawfd.munge_socket + ": a credential round trip works", lines["munge"])
        self.assertTrue(lines["hawfd"].startswith("ok "), r.stdout)
        self.assertRegex(lines["hawfd"], r"hawfd at %s answers \(version \d+\.\d+\.\d+\), knows you as %s$"
                         % (self.hawfd.address, ALICE))
        alice = pwd.getpwnam(ALICE).pw_uid
        self.hawfd.wait_log('uid=%d (%s) op="ping": ok' % (alice, ALICE))

    def test_1_doctor_fails_when_hawfd_is_not_there(self):
        # Another config naming a port nobody listens on: the check must fail.
        conf = os.path.join(self.hawf.root, "elsewhere.yaml")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = "127.0.0.1:%d" % s.getsockname()[1]
        with open(conf, "w") as f:
            f.write(self.hawf.default_conf() + self.hawfd.conf_section(address=closed))
        os.chmod(conf, 0o644)
        r = self.hawf.tool(ALICE, "hawf", "doctor", "--json", *self.hawf.doctor_args(), env={"HAWF_CONF": conf})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertTrue(checks["munge"]["ok"], checks)
        self.assertFalse(checks["hawfd"]["ok"], checks)
        self.assertIn("hawfd at %s is not reachable: Connection refused" % closed, checks["hawfd"]["detail"])

    def test_1_doctor_with_a_config_that_is_not_there_or_broken(self):
        missing = os.path.join(self.hawf.root, "missing.yaml")
        broken = os.path.join(self.hawf.root, "broken.yaml")
        with open(broken, "w") as f:
            f.write("spool: %s\npoll_interval: soon\ncolour: blue\nmax_param_bytes: -1\n" % self.hawf.spool)
        os.chmod(broken, 0o644)
        # Every mistake of the file, each on its line.
        for conf, needles in ((missing, ["HAWF_CONF names %s, which does not exist" % missing]),
                              (broken, ['broken.yaml:2: bad duration "soon"', 'broken.yaml:3: unknown key "colour"',
                                        "broken.yaml:4: max_param_bytes: bad value"])):
            r = self.hawf.tool(ALICE, "hawf", "doctor", "--json", *self.hawf.doctor_args(), env={"HAWF_CONF": conf})
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            checks = json.loads(r.stdout)["checks"]
            self.assertEqual([(c["check"], c["ok"]) for c in checks],
                             [("config", False)] * len(needles) + [("spool", False)])
            for check, needle in zip(checks, needles):
                self.assertIn(needle, check["detail"])
            self.assertEqual(checks[-1]["detail"], "not checked: the config has errors (above)")

    def test_1_doctor_sees_whether_slurm_loads_hawf(self):
        # An srun whose --help has no --hawf-* options: a plugstack.conf without hawf.
        bindir = os.path.join(self.hawf.root, "plain-srun")
        os.makedirs(bindir, exist_ok=True)
        with open(os.path.join(bindir, "srun"), "w") as f:
            f.write("#!/bin/sh\necho 'Usage: srun [OPTIONS(0)...]'\n")
        os.chmod(os.path.join(bindir, "srun"), 0o755)
        r = self.hawf.tool(ALICE, "hawf", "doctor", "--json", *self.hawf.doctor_args(),
                           env={"PATH": bindir + ":" + self.hawf.env()["PATH"]})
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertFalse(checks["slurm"]["ok"])
        self.assertIn("srun --help does not show --hawf-checkpoint: Slurm does not load hawf", checks["slurm"]["detail"])

    def test_1_doctor_refuses_a_step_helper_others_may_change(self):
        if not self.hawf.step_helper:
            self.skipTest("the installed step helper is not this test's to change")
        unsafe = os.path.join(self.hawf.root, "unsafe-helper")
        shutil.copy(self.hawf.step_helper, unsafe)
        os.chmod(unsafe, 0o775)
        r = self.hawf.tool(ALICE, "hawf", "doctor", "--json", "--plugin=" + self.hawf.plugin, "--step-helper=" + unsafe)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        checks = {c["check"]: c for c in json.loads(r.stdout)["checks"]}
        self.assertFalse(checks["step helper"]["ok"], checks)
        self.assertIn("refusing to run %s: it must be a regular file owned by root" % unsafe,
                      checks["step helper"]["detail"])

    def test_2_a_credential_counts_once(self):
        credential = self.munge(BOB, PING)
        first = self.hawfd.request(credential)
        self.assertEqual(first, {"ok": True, "uid": pwd.getpwnam(BOB).pw_uid, "user": BOB,
                                 "hawfd": first.get("hawfd")}, first)
        self.assertRegex(first["hawfd"], r"^\d+\.\d+\.\d+$")
        self.assertRefused(self.hawfd.request(credential), "denied", "replayed")
        # Logged with who made it, escaped where the client chose the text.
        self.hawfd.wait_log('(%s) op="ping": refused: the munge credential was replayed' % BOB)

    def test_3_expired_credential_refused(self):
        credential = self.munge(BOB, PING, "-t", "1")
        time.sleep(2.5)  # munged counts whole seconds past the TTL
        self.assertRefused(self.hawfd.request(credential), "denied", "expired")

    def test_4_bad_requests_refused_in_one_line(self):
        answer = one_answer(self.hawfd.exchange(b"garbage\n"))
        self.assertRefused(answer, "usage", "the request is not a JSON object")
        answer = one_answer(self.hawfd.exchange(b"x" * 530000 + b"\n"))
        self.assertRefused(answer, "usage", "the request is longer than 524288 bytes")
        answer = self.hawfd.request(self.munge(BOB, '{"op":"frobnicate\\u001b[2J"}'))
        self.assertRefused(answer, "usage", 'unknown op "frobnicate\\e[2J": known are cat, decide, notify, outbox, ping, review, seal, show, verify, withdraw')
        # Logged escaped: what the client chose never reaches the journal raw.
        self.assertNotIn("\x1b", self.hawfd.wait_log('op="frobnicate\\e[2J": refused: unknown op'))
        forged = self.munge(BOB, PING)
        middle = len(forged) // 2
        forged = forged[:middle] + ("A" if forged[middle] != "A" else "B") + forged[middle + 1:]
        self.assertRefused(self.hawfd.request(forged), "untrusted", "invalid munge credential")

    def test_5_silent_client_blocks_no_one(self):
        silent = socket.create_connection(("127.0.0.1", self.hawfd.port), timeout=15)
        try:
            time.sleep(0.2)  # hawfd has accepted it and waits for its line
            start = time.monotonic()
            self.assertTrue(self.hawfd.request(self.munge(ALICE, PING))["ok"])
            self.assertLess(time.monotonic() - start, 2)
            # ...and the silent one is dropped after a few seconds, with a reason.
            answer = one_answer(silent.makefile("rb").read())
            self.assertRefused(answer, "usage", "no whole request line within 5 s")
        finally:
            silent.close()

    def test_9_sigterm_finishes_the_request_in_flight_and_exits_0(self):
        line = json.dumps({"v": 1, "credential": self.munge(ALICE, PING)}).encode() + b"\n"
        with socket.create_connection(("127.0.0.1", self.hawfd.port), timeout=15) as client:
            client.sendall(line[:20])
            time.sleep(0.2)
            self.hawfd.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            self.assertIsNone(self.hawfd.proc.poll(), "hawfd exited with a request in flight")
            with self.assertRaises(ConnectionRefusedError):  # no new connections meanwhile
                socket.create_connection(("127.0.0.1", self.hawfd.port), timeout=5).close()
            client.sendall(line[20:])
            self.assertTrue(one_answer(client.makefile("rb").read())["ok"])
        self.assertEqual(self.hawfd.stop(timeout=10), 0, self.hawfd.log())
        self.assertIn("stopped by SIGTERM", self.hawfd.log())
        # Nothing in its log says it crashed or hit a bug.
        self.assertNotIn("internal error", self.hawfd.log())
