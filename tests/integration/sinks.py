"""Loopback receivers for hawfd's notifications: an HTTP receiver for webhooks
(HttpReceiver) and an SMTP sink for mail (SmtpSink).

Each listens on 127.0.0.1, on a free port or a given one (to come back on the
same port after stop()), serves every connection in a thread of its own and
records what it received; wait_for() blocks until the records satisfy a
predicate. Records survive stop() and start().
"""

import email
import email.policy
import http.server
import json
import re
import socket
import socketserver
import struct
import sys
import threading
import time

HOST = "127.0.0.1"


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """A threaded TCP server that can break off all its connections at once."""

    allow_reuse_address = True

    def __init__(self, port, handler, sink):
        self.sink = sink
        self.stopping = threading.Event()  # set by stop(): hanging handlers give up
        self._lock = threading.Lock()
        self._open = set()  # connections not yet closed
        self._workers = []
        super().__init__((HOST, port), handler)

    def process_request(self, request, client_address):
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), daemon=True)
        with self._lock:
            self._open.add(request)
            self._workers = [t for t in self._workers if t.is_alive()] + [thread]
        thread.start()

    def shutdown_request(self, request):
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def abort(self, request):
        """Close a connection with a TCP reset rather than a FIN."""
        request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._lock:
            self._open.discard(request)
        request.close()  # the reset goes out once the handler's streams are closed too

    def close(self):
        """Stop accepting, break off every connection, wait for the handlers."""
        self.stopping.set()
        self.shutdown()
        with self._lock:
            for request in self._open:
                try:
                    request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            threads = list(self._workers)
        self.server_close()
        for thread in threads:
            thread.join(timeout=5)

    def handle_error(self, request, client_address):
        # A client that went away (or stop() cutting it off) is not an error.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Sink:
    """Lifecycle and records shared by HttpReceiver and SmtpSink."""

    scheme = None
    handler = None

    def __init__(self):
        self.port = None
        self._server = None
        self._thread = None
        self._records = []
        self._cond = threading.Condition()

    def start(self, port=None):
        """Listen on 127.0.0.1:port (a free port if None) and serve; returns self."""
        if self._server is not None:
            raise RuntimeError("%r is already started" % self)
        self._server = _Server(port or 0, self.handler, self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        """Close the port and every open connection; the port is free again at once."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __repr__(self):
        return "%s(%s:%s)" % (type(self).__name__, HOST, self.port)

    def url(self, path=""):
        return "%s://%s:%d%s" % (self.scheme, HOST, self.port, path)

    def received(self):
        """A copy of the records, in arrival order."""
        with self._cond:
            return list(self._records)

    def wait_for(self, predicate, timeout=10.0):
        """The records once predicate(records) is true; AssertionError after timeout."""
        with self._cond:
            if self._cond.wait_for(lambda: predicate(list(self._records)), timeout):
                return list(self._records)
            got = [self._summary(r) for r in self._records]
        raise AssertionError("%r: condition not met within %gs; received %d: %s"
                             % (self, timeout, len(got), got))

    def _record(self, record):
        record["time"] = time.monotonic()
        with self._cond:
            self._records.append(record)
            self._cond.notify_all()


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers "Expect: 100-continue" (libcurl sends it)

    def do_POST(self):
        receiver = self.server.sink
        self.close_connection = True  # one request per connection
        body = self._body()
        if body is None:
            return  # the client went away mid-body: not a delivery
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        receiver._record({"path": self.path, "headers": self.headers, "body": body,
                          "json": parsed, "key": self.headers.get("X-Hawf-Event-Id")})
        mode = receiver.mode
        if mode == "hang":
            self.server.stopping.wait()
        elif mode == "reset":
            self.server.abort(self.connection)
        else:
            status = 200 if mode == "ok" else mode
            text = b"ok" if mode == "ok" else self.responses.get(status, ("error",))[0].encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(text)

    def _body(self):
        """The request body (Content-Length or chunked), None if cut short."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                line = self.rfile.readline()
                try:
                    size = int(line.split(b";")[0], 16)
                except ValueError:
                    return None
                if size == 0:
                    break
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    return None
                chunks.append(chunk)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        return body if len(body) == length else None

    def log_message(self, format, *args):
        pass


class HttpReceiver(_Sink):
    """Records webhook POSTs and answers them as `mode` says.

    mode (settable at any time): "ok" (200, body "ok"), an int status (answers
    that status), "hang" (reads the request, answers nothing until stop()),
    "reset" (closes the connection with a TCP reset, no answer).

    Each record: path, headers (an email.message.Message: case-insensitive
    .get()), body (bytes), json (the parsed body or None), key (the
    X-Hawf-Event-Id header or None), time (time.monotonic() on arrival).
    """

    scheme = "http"
    handler = _HttpHandler

    def __init__(self, mode="ok"):
        super().__init__()
        self.mode = mode

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, mode):
        if mode not in ("ok", "hang", "reset") and not (isinstance(mode, int) and 100 <= mode <= 599):
            raise ValueError("mode: 'ok', 'hang', 'reset' or an HTTP status, not %r" % (mode,))
        self._mode = mode

    def url(self, path="/hook"):
        return super().url(path)

    def received(self, path=None):
        """A copy of the records (those for path only, if given), in arrival order."""
        return [r for r in super().received() if path is None or r["path"] == path]

    def keys(self):
        """The X-Hawf-Event-Id of each POST, in arrival order."""
        return [r["key"] for r in self.received()]

    @staticmethod
    def _summary(r):
        return (r["path"], r["key"], r["json"] if r["json"] is not None else r["body"][:200])


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self):
        sink = self.server.sink
        self._reply("220 %s hawf test SMTP sink" % HOST)
        mail_from, rcpt_to = None, []
        while True:
            line = self._line()
            if line is None:
                return
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self._reply("250-%s\r\n250-8BITMIME\r\n250 SIZE 10485760" % HOST)
            elif verb == "HELO":
                self._reply("250 %s" % HOST)
            elif verb == "MAIL":
                if not arg.upper().startswith("FROM:"):
                    self._reply("501 5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                mail_from, rcpt_to = _address(arg[5:]), []
                self._reply("250 2.1.0 OK")
            elif verb == "RCPT":
                if not arg.upper().startswith("TO:"):
                    self._reply("501 5.5.4 Syntax: RCPT TO:<address>")
                elif mail_from is None:
                    self._reply("503 5.5.1 MAIL first")
                else:
                    code = sink.rcpt_code
                    if code == 250:
                        rcpt_to.append(_address(arg[3:]))
                        self._reply("250 2.1.5 OK")
                    elif code >= 500:
                        self._reply("%d 5.1.1 Recipient refused" % code)
                    else:
                        self._reply("%d 4.2.0 Try again later" % code)
            elif verb == "DATA":
                if not rcpt_to:
                    self._reply("503 5.5.1 RCPT first")
                    continue
                self._reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._data()
                if data is None:
                    return
                message = email.message_from_string(data, policy=email.policy.default)
                sink._record({"mail_from": mail_from, "rcpt_to": rcpt_to, "data": data,
                              "message": message,
                              "message_id": _header(message, "Message-ID"),
                              "subject": _header(message, "Subject")})
                mail_from, rcpt_to = None, []
                self._reply("250 2.0.0 OK queued")
            elif verb == "RSET":
                mail_from, rcpt_to = None, []
                self._reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self._reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self._reply("221 2.0.0 Bye")
                return
            else:
                self._reply("502 5.5.2 Command not recognized")

    def _line(self):
        """The next line without its CRLF (or bare LF); None at end of stream."""
        line = self.rfile.readline()
        if not line.endswith(b"\n"):
            return None
        return line.rstrip(b"\r\n").decode("utf-8", "surrogateescape")

    def _data(self):
        """The message up to the "." line, un-dot-stuffed, with "\\n" line ends."""
        lines = []
        while True:
            line = self._line()
            if line is None:
                return None
            if line == ".":
                return "".join(l + "\n" for l in lines)
            lines.append(line[1:] if line.startswith(".") else line)

    def _reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")


def _address(arg):
    """The address in "<a@x> SIZE=..." (or a bare "a@x")."""
    m = re.match(r"\s*<([^>]*)>", arg)
    if m:
        return m.group(1)
    words = arg.split()
    return words[0] if words else ""


def _header(message, name):
    value = message[name]
    return None if value is None else str(value)


class SmtpSink(_Sink):
    """Records the mail delivered to it over SMTP (no STARTTLS, no AUTH).

    rcpt_code (settable at any time): how RCPT TO is answered; 250 accepts,
    e.g. 550 refuses, a 4xx defers.

    Each record: mail_from, rcpt_to (list of the accepted recipients), data (the
    message text, un-dot-stuffed, "\\n" line ends), message (data parsed with
    email.policy.default), message_id and subject (str or None), time
    (time.monotonic() on arrival).
    """

    scheme = "smtp"
    handler = _SmtpHandler

    def __init__(self, rcpt_code=250):
        super().__init__()
        self.rcpt_code = rcpt_code

    @staticmethod
    def _summary(r):
        return (r["mail_from"], r["rcpt_to"], r["subject"], r["message_id"])
