"""Self-test of sinks.py (no cluster): the receivers against the standard
library's clients, and against curl (libcurl, as hawfd uses) if installed."""

import http.client
import json
import os
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

from sinks import HttpReceiver, SmtpSink

CURL = shutil.which("curl")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # whatever *_proxy says


def post(url, payload, key=None, timeout=5):
    """POST payload as JSON; the response's (status, body)."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if key is not None:
        request.add_header("X-Hawf-Event-Id", key)
    with OPENER.open(request, timeout=timeout) as response:
        return response.status, response.read()


class HttpReceiverTest(unittest.TestCase):
    def setUp(self):
        self.receiver = HttpReceiver().start()
        self.addCleanup(self.receiver.stop)

    def test_records_and_answers_ok(self):
        r = self.receiver
        self.assertEqual(r.url(), "http://127.0.0.1:%d/hook" % r.port)
        self.assertEqual(post(r.url(), {"event": "approved"}, key="k1"), (200, b"ok"))
        post(r.url("/other"), {"event": "denied"}, key="k2")
        self.assertEqual(r.keys(), ["k1", "k2"])
        first, second = r.received()
        self.assertEqual(first["path"], "/hook")
        self.assertEqual(first["json"], {"event": "approved"})
        self.assertEqual(first["body"], b'{"event": "approved"}')
        self.assertEqual(first["headers"]["x-hawf-event-id"], "k1")
        self.assertEqual(first["headers"]["CONTENT-TYPE"], "application/json")
        self.assertLessEqual(first["time"], second["time"])
        self.assertEqual([x["key"] for x in r.received(path="/other")], ["k2"])

    def test_no_key_and_not_json(self):
        request = urllib.request.Request(self.receiver.url(), data=b"not json", method="POST")
        OPENER.open(request, timeout=5).close()
        (record,) = self.receiver.received()
        self.assertIsNone(record["key"])
        self.assertIsNone(record["json"])
        self.assertEqual(record["body"], b"not json")

    def test_status_mode(self):
        self.receiver.mode = 500
        with self.assertRaises(urllib.error.HTTPError) as caught:
            post(self.receiver.url(), {}, key="k")
        self.assertEqual(caught.exception.code, 500)
        self.receiver.mode = "ok"
        self.assertEqual(post(self.receiver.url(), {}, key="k")[0], 200)
        self.assertEqual(self.receiver.keys(), ["k", "k"])

    def test_bad_mode(self):
        for mode in ("bogus", 42, None):
            with self.assertRaises(ValueError):
                self.receiver.mode = mode

    def test_hang_mode_until_stop(self):
        self.receiver.mode = "hang"
        with self.assertRaises(TimeoutError):
            post(self.receiver.url(), {}, key="timed-out", timeout=0.5)
        errors = []

        def patient():
            try:
                post(self.receiver.url(), {}, key="patient", timeout=30)
            except Exception as e:
                errors.append(e)

        client = threading.Thread(target=patient)
        client.start()
        self.receiver.wait_for(lambda got: len(got) == 2)
        started = time.monotonic()
        self.receiver.stop()
        self.assertLess(time.monotonic() - started, 2)
        client.join(timeout=5)
        self.assertFalse(client.is_alive())
        self.assertEqual(len(errors), 1)  # cut off, not answered
        self.assertIsInstance(errors[0], (ConnectionError, http.client.HTTPException))
        self.assertEqual(self.receiver.keys(), ["timed-out", "patient"])

    def test_reset_mode(self):
        self.receiver.mode = "reset"
        with self.assertRaises(ConnectionResetError):
            post(self.receiver.url(), {}, key="k")
        self.assertEqual(self.receiver.keys(), ["k"])

    def test_restart_on_the_same_port(self):
        r = self.receiver
        url = r.url()
        post(url, {}, key="before")
        r.stop()
        with self.assertRaises(urllib.error.URLError):
            post(url, {}, key="while-down")
        r.start(port=r.port)
        self.assertEqual(r.url(), url)
        post(url, {}, key="after")
        self.assertEqual(r.keys(), ["before", "after"])
        with self.assertRaises(RuntimeError):
            r.start()

    def test_wait_for(self):
        r = self.receiver
        timer = threading.Timer(0.2, post, (r.url(), {"n": 1}, "late"))
        timer.start()
        self.addCleanup(timer.join)
        got = r.wait_for(lambda got: any(x["key"] == "late" for x in got), timeout=5)
        self.assertEqual([x["json"] for x in got], [{"n": 1}])
        with self.assertRaisesRegex(AssertionError, "received 1: .*'late'"):
            r.wait_for(lambda got: len(got) == 2, timeout=0.2)

    def test_concurrent_posts(self):
        clients = [threading.Thread(target=post, args=(self.receiver.url(), {"n": n}, str(n)))
                   for n in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        self.assertEqual(sorted(self.receiver.keys(), key=int), [str(n) for n in range(8)])

    def test_chunked_body(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.receiver.port, timeout=5)
        self.addCleanup(connection.close)
        connection.request("POST", "/hook", body=iter([b'{"a": ', b"1}"]), encode_chunked=True,
                           headers={"Transfer-Encoding": "chunked", "X-Hawf-Event-Id": "c"})
        self.assertEqual(connection.getresponse().status, 200)
        self.assertEqual(self.receiver.received()[0]["json"], {"a": 1})

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl_expect_100_continue(self):
        body = json.dumps({"pad": "x" * 4000})  # big enough for curl to send Expect: 100-continue
        result = subprocess.run(
            [CURL, "-sS", "-v", "--noproxy", "*", "--max-time", "10", "-H", "Expect: 100-continue",
             "-H", "Content-Type: application/json", "-H", "X-Hawf-Event-Id: curl-1",
             "--data-binary", body, self.receiver.url()],
            capture_output=True, text=True, timeout=20)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "ok")
        self.assertIn("< HTTP/1.1 100 Continue", result.stderr)
        self.assertEqual(self.receiver.received()[0]["json"], json.loads(body))


MESSAGE = """\
From: hawfd <hawfd@example.org>
To: alice@example.org, bob@example.org
Subject: job 42 needs your review
Message-ID: <42.1@hawf.example.org>

Approve with: hawf approve 42
.leading dot
..two leading dots
.
"""


class SmtpSinkTest(unittest.TestCase):
    def setUp(self):
        self.sink = SmtpSink().start()
        self.addCleanup(self.sink.stop)

    def smtp(self):
        client = smtplib.SMTP("127.0.0.1", self.sink.port, timeout=5)
        self.addCleanup(client.close)
        return client

    def check_message(self, record, rcpt_to):
        self.assertEqual(record["mail_from"], "hawfd@example.org")
        self.assertEqual(record["rcpt_to"], rcpt_to)
        self.assertEqual(record["subject"], "job 42 needs your review")
        self.assertEqual(record["message_id"], "<42.1@hawf.example.org>")
        self.assertEqual(record["message"]["To"].addresses[1].addr_spec, "bob@example.org")
        self.assertEqual(record["message"].get_content().splitlines(),
                         ["Approve with: hawf approve 42", ".leading dot", "..two leading dots", "."])

    def test_smtplib(self):
        self.assertEqual(self.sink.url(), "smtp://127.0.0.1:%d" % self.sink.port)
        with self.smtp() as client:
            self.assertEqual(client.ehlo()[0], 250)
            self.assertTrue(client.has_extn("8bitmime"))
            self.assertEqual(client.esmtp_features["size"], "10485760")
            self.assertFalse(client.has_extn("starttls") or client.has_extn("auth"))
            self.assertEqual(client.noop()[0], 250)
            self.assertEqual(client.rset()[0], 250)
            self.assertEqual(client.sendmail("hawfd@example.org", ["alice@example.org", "bob@example.org"],
                                             MESSAGE), {})
        (record,) = self.sink.received()
        self.check_message(record, ["alice@example.org", "bob@example.org"])
        self.assertIn("\n..two leading dots\n.\n", record["data"])

    def test_command_errors(self):
        with self.smtp() as client:
            self.assertEqual(client.helo()[0], 250)
            self.assertEqual(client.docmd("VRFY", "alice")[0], 502)
            self.assertEqual(client.docmd("RCPT", "TO:<a@x>")[0], 503)
            self.assertEqual(client.docmd("MAIL", "<a@x>")[0], 501)
            self.assertEqual(client.mail("a@x")[0], 250)
            self.assertEqual(client.docmd("DATA")[0], 503)
        self.assertEqual(self.sink.received(), [])

    def test_refused_and_deferred_recipients(self):
        for code in (550, 451):
            self.sink.rcpt_code = code
            with self.smtp() as client:
                with self.assertRaises(smtplib.SMTPRecipientsRefused) as caught:
                    client.sendmail("hawfd@example.org", ["alice@example.org"], MESSAGE)
            self.assertEqual(caught.exception.recipients["alice@example.org"][0], code)
        self.assertEqual(self.sink.received(), [])

    def test_bare_lf(self):
        with socket.create_connection(("127.0.0.1", self.sink.port), timeout=5) as s:
            f = s.makefile("rwb")
            f.write(b"HELO me\nMAIL FROM:<a@x> SIZE=10\nRCPT TO:<b@y>\nDATA\n"
                    b"Subject: bare\n\n..dot\n.\nQUIT\n")
            f.flush()
            replies = [line.split()[0] for line in f.read().splitlines()]
        self.assertEqual(replies, [b"220", b"250", b"250", b"250", b"354", b"250", b"221"])
        (record,) = self.sink.received()
        self.assertEqual((record["mail_from"], record["rcpt_to"], record["subject"]), ("a@x", ["b@y"], "bare"))
        self.assertEqual(record["data"], "Subject: bare\n\n.dot\n")

    def test_restart_and_wait_for(self):
        port = self.sink.port
        self.sink.stop()
        with self.assertRaises(ConnectionRefusedError):
            smtplib.SMTP("127.0.0.1", port, timeout=5)
        self.sink.start(port=port)
        timer = threading.Timer(0.2, lambda: self.smtp().sendmail("hawfd@example.org", ["c@x"], MESSAGE))
        timer.start()
        self.addCleanup(timer.join)
        (record,) = self.sink.wait_for(lambda got: len(got) == 1)
        self.assertEqual(record["rcpt_to"], ["c@x"])
        with self.assertRaisesRegex(AssertionError, "received 1: .*job 42 needs your review"):
            self.sink.wait_for(lambda got: len(got) == 2, timeout=0.2)

    def test_stop_with_an_idle_client(self):
        client = self.smtp()
        client.ehlo()
        started = time.monotonic()
        self.sink.stop()
        self.assertLess(time.monotonic() - started, 2)
        with self.assertRaises((smtplib.SMTPServerDisconnected, ConnectionError)):
            client.noop()

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl(self):
        with tempfile.NamedTemporaryFile("w", suffix=".eml") as f:
            f.write(MESSAGE.replace("\n", "\r\n"))
            f.flush()

            def curl(*rcpts):
                args = [CURL, "-sS", "--max-time", "10", "--url", self.sink.url(),
                        "--mail-from", "hawfd@example.org", "--upload-file", f.name]
                for rcpt in rcpts:
                    args += ["--mail-rcpt", rcpt]
                return subprocess.run(args, capture_output=True, text=True, timeout=20)

            result = curl("alice@example.org", "bob@example.org")
            self.assertEqual(result.returncode, 0, result.stderr)
            (record,) = self.sink.received()
            self.check_message(record, ["alice@example.org", "bob@example.org"])
            self.sink.rcpt_code = 550
            result = curl("alice@example.org")
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("550", result.stderr)
            self.assertEqual(len(self.sink.received()), 1)


if __name__ == "__main__":
    unittest.main()
