"""The specification of credits_gateway, as tests.

    python -m unittest -v test_credits_gateway

Everything runs on 127.0.0.1: a fake OpenRouter (below) plays the upstream, the
gateway runs in-process on port 0 or as a real subprocess, and MCP is spoken
through the `mcp` SDK's own client.
"""
import asyncio
import contextlib
import http.client
import http.server
import io
import json
import os
import queue
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import credits_gateway as gateway

try:
    import mcp
except ImportError:
    mcp = None
needs_mcp = unittest.skipIf(mcp is None, 'mcp is not installed (pip install "mcp>=2.3,<3")')

HERE = os.path.dirname(os.path.abspath(__file__))
# The tests reach only their own fakes on loopback: a proxy of the machine's (which the gateway
# reads from os.environ, as urllib does) would stand in between, so none is inherited.
for _name in [name for name in os.environ if name.lower().endswith("_proxy")]:
    del os.environ[_name]
KEY = "sk-or-v1-SECRET-MARKER-5f0c2d9e"  # must never appear in anything the gateway says
CREDITS = {"data": {"total_credits": 50.0, "total_usage": 12.345678}}
# Where OAuth-capable MCP clients look after a 401 (mcp-remote 0.15.1, the Inspector 2.12).
OAUTH_PROBES = ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-authorization-server", "/.well-known/oauth-authorization-server/mcp",
                "/.well-known/openid-configuration", "/.well-known/openid-configuration/mcp",
                "/mcp/.well-known/openid-configuration", "/register")
ZEROS = {"data": {"total_credits": 0, "total_usage": 0}}  # an inference key's, or a new account's


# --- A fake OpenRouter -------------------------------------------------------------

# The fake's modes: a test sets fake.mode to one of these, and each says, here and only here,
# what the fake then answers to GET /api/v1/credits (and to GET /api/v1/key). An int mode is
# an HTTP status: the fake answers it with an OpenRouter error body, "upstream says <status>".
OK = "ok"  # 200 with CREDITS, as OpenRouter answers a management key
FORBIDDEN = 403  # 403, as OpenRouter documents it for a key that may not read /credits
RATE_LIMITED = 429  # 429 with Retry-After: 7
SERVER_ERROR = 500  # 500, OpenRouter failing
UNAVAILABLE = 503  # 503, OpenRouter down for a while
STATUSES = (FORBIDDEN, RATE_LIMITED, SERVER_ERROR, UNAVAILABLE)  # the int modes
ECHO = "echo"  # 500 whose JSON message echoes the "Bearer <key>" header
RETRY_ECHO = "retryecho"  # 429 whose Retry-After echoes the "Bearer <key>" header, not seconds
PADDED_ECHO = "padded-echo"  # 500, not JSON: "Authorization: Bearer <key>" past 64 KiB of spaces
REDIRECT = "redirect"  # 302 to the trap server, which counts any call it gets
SLOW = "slow"  # CREDITS, after 3 s
CLOSE = "close"  # closes the connection without a word
HANG = "hang"  # says nothing for 5 s, then closes
DRIP = "drip"  # a 200 head, then its CREDITS body a byte every 0.25 s: each read is quick, the whole is not
HEAD_DRIP = "headdrip"  # a 200 status line, then a header a byte every 0.25 s: the head never ends
ERROR_STALL = "errstall"  # a 500 head and 9 of its 100 body bytes, then 6 s of silence, then a close
ERROR_DRIP = "errdrip"  # a 500 head, then its 100000-byte body a byte every 0.25 s
ERROR_RESET = "errreset"  # a 500 head and 9 of its 100 body bytes, then after 0.2 s a reset (not a FIN)
NAN = "nan"  # 200 with NaN and 1e400, which JSON does not have
STRINGS = "strings"  # 200 with a JSON object whose total_credits is the string "50.00"
BIG_INT = "bigint"  # 200 with valid JSON whose total_credits is 10 ** 400, which no float holds
HUGE = "huge"  # 200 with a 64 MiB body, streamed so that the fake itself stays small
NON_JSON = "nonjson"  # 200 with an HTML page
ARRAY = "array"  # 200 with a JSON array
EMPTY = "empty"  # 200 with an empty body
DEEP = "deep"  # 200 with 100000 nested JSON arrays
SURROGATE = "surrogate"  # 200 with CREDITS and a "note" of one lone surrogate escape, "\ud800"
NESTED = "nested"  # 200 with CREDITS and "tiers", arrays nested 300 deep: JSON Python parses
EXTRA = "extra"  # 200 with EXTRA_CREDITS: integers, and keys OpenRouter may add
LONG = "long"  # 200 with CREDITS and a 200,000-character "note": more than a pipe holds
INFERENCE_KEY = "inference"  # an inference key's: ZEROS from /credits; /key says no management key
NEW_ACCOUNT = "newaccount"  # a new account's management key: ZEROS from /credits; /key says it is one
KEY_LOOKUP_FAILS = "keyfail"  # ZEROS from /credits; /key answers 500 "key lookup is down"
SLOW_ZEROS = "slowzeros"  # INFERENCE_KEY, each of its two answers after 0.6 s
ZEROS_MODES = (INFERENCE_KEY, NEW_ACCOUNT, KEY_LOOKUP_FAILS, SLOW_ZEROS)  # those that answer ZEROS
EXTRA_CREDITS = {"data": {"total_credits": 50, "total_usage": 12, "currency": "USD"},
                 "meta": {"source": "billing"}}
BODIES = {NON_JSON: b"<html>Bad gateway</html>", ARRAY: b"[1, 2, 3]", EMPTY: b"",
          DEEP: b"[" * 100000 + b"]" * 100000,
          SURROGATE: json.dumps(dict(CREDITS, note="\ud800")).encode(),  # "\\ud800": ASCII
          NESTED: json.dumps(dict(CREDITS, tiers=json.loads("[" * 300 + "]" * 300))).encode(),
          EXTRA: json.dumps(EXTRA_CREDITS).encode(),
          LONG: json.dumps(dict(CREDITS, note="x" * 200000)).encode()}


class FakeOpenRouter(http.server.BaseHTTPRequestHandler):
    """GET /api/v1/credits the way OpenRouter answers it, or the fault named by server.mode
    (one of the modes above). While server.hold is an unset Event, /credits answers only once
    it is set (or after 10 s), in every mode but the ZEROS_MODES."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        fake = self.server
        with fake.lock:
            fake.calls += 1
            fake.key_calls += self.path == "/api/v1/key"
            fake.auth_seen.append(self.headers.get("Authorization"))
        if self.path not in ("/api/v1/credits", "/api/v1/key"):
            return self.reply(404, {"error": {"code": 404, "message": "Not Found"}})
        if self.headers.get("Authorization") != "Bearer " + KEY:
            return self.reply(401, {"error": {"code": 401, "message": "User not found."}})
        if fake.mode == SLOW_ZEROS:
            time.sleep(0.6)
        if self.path == "/api/v1/key":  # the key's own record, as OpenRouter answers it
            if fake.mode == KEY_LOOKUP_FAILS:
                return self.reply(500, {"error": {"code": 500, "message": "key lookup is down"}})
            return self.reply(200, {"data": {"label": "sk-or-v1-5f0...", "usage": 3.2, "limit": 10,
                                             "is_management_key": fake.mode == NEW_ACCOUNT}})
        if fake.mode in ZEROS_MODES:
            return self.reply(200, ZEROS)
        if fake.hold:
            fake.hold.wait(10)  # a test holds the answer to pile up concurrent callers
        mode = fake.mode
        if mode == OK:
            return self.reply(200, CREDITS)
        if mode in STATUSES:
            extra = {"Retry-After": "7"} if mode == RATE_LIMITED else {}
            return self.reply(mode, {"error": {"code": mode, "message": "upstream says %d" % mode}}, extra)
        if mode == ECHO:
            return self.reply(500, {"error": {"code": 500, "message": "bad header Bearer " + KEY}})
        if mode == RETRY_ECHO:
            return self.reply(429, {"error": {"code": 429, "message": "slow down"}},
                              {"Retry-After": "see " + self.headers["Authorization"]})
        if mode == REDIRECT:
            return self.reply(302, b"", {"Location": "http://127.0.0.1:%d/api/v1/credits" % fake.trap_port})
        if mode == SLOW:
            time.sleep(3)
            return self.reply(200, CREDITS)
        if mode == CLOSE:
            self.close_connection = True
            return
        if mode == HANG:
            time.sleep(5)
            self.close_connection = True
            return
        if mode == DRIP:
            body = json.dumps(CREDITS).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.drip(body)
        if mode == HEAD_DRIP:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Pad: ")
            return self.drip(b"a" * 40)
        if mode in (ERROR_STALL, ERROR_DRIP, ERROR_RESET):
            self.close_connection = True
            self.wfile.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n{\"error\":" % (100000 if mode == ERROR_DRIP else 100))
            if mode == ERROR_DRIP:
                return self.drip(b" " * 40)
            time.sleep(6 if mode == ERROR_STALL else 0.2)
            if mode == ERROR_RESET:  # SO_LINGER 0: close() sends a reset
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        if mode == PADDED_ECHO:
            return self.reply(500, b" " * 65536 + b"Authorization: Bearer " + KEY.encode())
        if mode == BIG_INT:
            return self.reply(200, b'{"data": {"total_credits": 1%s, "total_usage": 0}}' % (b"0" * 400))
        if mode == NAN:
            return self.reply(200, b'{"data": {"total_credits": NaN, "total_usage": 1e400}}')
        if mode == STRINGS:
            return self.reply(200, b'{"data": {"total_credits": "50.00"}}')
        if mode == HUGE:
            self.send_response(200)
            self.send_header("Content-Length", str(64 * 1024 * 1024))
            self.end_headers()
            chunk = b"x" * (1024 * 1024)
            try:
                for _ in range(64):
                    self.wfile.write(chunk)
            except ConnectionError:
                pass  # the gateway stopped reading at its limit
            return
        return self.reply(200, BODIES[mode])

    def drip(self, data):
        """Send `data` a byte every 0.25 s: each read is quick, the whole answer is not."""
        try:
            for byte in data:
                time.sleep(0.25)
                self.wfile.write(bytes([byte]))
        except OSError:
            pass  # the gateway gave up on it

    def reply(self, status, body, headers=None):
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except ConnectionError:
            pass  # the gateway stopped reading at its limit

    def log_message(self, *args):
        pass


def start_fake(tls=None):
    """The fake upstream, plus a trap server that a redirect points at; with `tls` (an
    ssl.SSLContext holding the fake's certificate), the fake speaks HTTPS as localhost."""
    fake = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenRouter)
    if tls:
        fake.socket = tls.wrap_socket(fake.socket, server_side=True)
    trap = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenRouter)
    for server in (fake, trap):
        server.lock, server.calls, server.auth_seen, server.mode, server.hold = threading.Lock(), 0, [], OK, None
        server.key_calls = 0  # of the calls, those to /api/v1/key
        threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.trap, fake.trap_port = trap, trap.server_address[1]
    fake.base_url = ("https://localhost:%d/api/v1" if tls else "http://127.0.0.1:%d/api/v1") % fake.server_address[1]
    return fake


def make_private_ca(folder):
    """A private CA, as a company's TLS-inspecting proxy has, and a certificate it signed for
    localhost, made with openssl(1): (CA file, certificate file, key file). The CA marks its
    basicConstraints critical, which Python 3.13 demands."""
    ca, cert, key = (os.path.join(folder, name) for name in ("ca.pem", "localhost.pem", "localhost.key"))
    extensions = os.path.join(folder, "leaf.ext")
    with open(extensions, "w") as file:
        file.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
    for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out", ca, "-days", "2",
             "-subj", "/CN=credits_gateway test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert + ".csr", "-subj", "/CN=localhost"],
            ["x509", "-req", "-in", cert + ".csr", "-CA", ca, "-CAkey", ca + ".key", "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", extensions]):
        subprocess.run(["openssl", *command], check=True, capture_output=True)
    return ca, cert, key


def stop_fake(fake):
    for server in (fake, fake.trap):
        server.shutdown()
        server.server_close()


# --- Helpers -----------------------------------------------------------------------

def config_for(fake, *args, env=None):
    environ = {"OPENROUTER_API_KEY": KEY} if env is None else env
    return gateway.parse_config(["--rest-port", "0", "--mcp-port", "0", "--base-url", fake.base_url,
                                 "--quiet", *args], environ)


def request(port, method, path, headers=None, body=None, address="127.0.0.1"):
    conn = http.client.HTTPConnection(address, port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        if KEY in body.decode("latin-1") + str(response.headers):  # checked on every response of the suite
            raise AssertionError("the OpenRouter key leaked into a response to %s %s" % (method, path))
        return response.status, response.headers, body
    finally:
        conn.close()


def pieces_of_the_key(text):
    """The 8-character pieces of KEY's secret part (after "sk-or-v1-") that `text` holds: a key
    cut short, say at a length limit, leaks as surely as a whole one."""
    secret = KEY[len("sk-or-v1-"):]
    return [secret[at:at + 8] for at in range(len(secret) - 7) if secret[at:at + 8] in text]


def mcp_call(port, headers=None, method="tools/call", address="127.0.0.1"):
    """One JSON-RPC request to POST /mcp, as an MCP client sends it: (status, headers, body)."""
    params = {"name": "get-credit-balance", "arguments": {}} if method == "tools/call" else {}
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               **(headers or {})}
    return request(port, "POST", "/mcp", headers, body, address)


GET_CREDITS = b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n\r\n"  # one request, as raw bytes
TOOL_CALL_BODY = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                             "params": {"name": "get-credit-balance", "arguments": {}}}).encode()
TOOL_CALL = (b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
             % (len(TOOL_CALL_BODY), TOOL_CALL_BODY))  # an MCP client's tools/call, as raw bytes


def read_responses(sock, count):
    """Read `count` HTTP responses off one connection: [(status, parsed JSON body)]."""
    stream = sock.makefile("rb")
    responses = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        headers = http.client.parse_headers(stream)
        responses.append((status, json.loads(stream.read(int(headers["Content-Length"])))))
    return responses


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_of(listening_line):
    """The port in 'credits-gateway: REST listening on http://127.0.0.1:PORT/v1/credits'."""
    return int(listening_line.rsplit(":", 1)[1].split("/")[0])


def wait_for_mcp(server):
    """Until the MCP thread has imported mcp and answers on its port, or MCP is off."""
    deadline = time.monotonic() + 10
    while server.mcp_status == "starting":
        if time.monotonic() > deadline:
            raise AssertionError("MCP still starting after 10 s")
        time.sleep(0.01)


def start_gateway(owner, *args, token=None):
    """The one way to start a gateway in-process: on free ports, with the fake of `owner` as its
    upstream, once MCP serves or is off. `owner` is a test, whose end stops it, or a test class
    (in setUpClass), whose end does. It logs to the test's stderr (see FakeUpstreamTestCase.run);
    a class's gateway logs nowhere."""
    environ = {"OPENROUTER_API_KEY": KEY, **({"CREDITS_GATEWAY_TOKEN": token} if token else {})}
    whole_class = isinstance(owner, type)
    with contextlib.redirect_stderr(io.StringIO()) if whole_class else contextlib.nullcontext():
        server = gateway.Gateway(config_for(owner.fake, *args, env=environ))
        server.start()
        (owner.addClassCleanup if whole_class else owner.addCleanup)(server.stop)
        wait_for_mcp(server)
    return server


def refuses(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except (ConnectionRefusedError, ConnectionResetError):  # reset: queued as the listener closed
        return True


def wait_until(condition, seconds, what):
    """Poll `condition` until it holds; AssertionError naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("%s: not within %g s" % (what, seconds))
        time.sleep(0.02)


def tcp_queues(local_port, remote_port):
    """The kernel's queues of the loopback TCP socket from `local_port` to `remote_port`, whichever
    process holds it, as /proc/net/tcp shows them: (bytes written and not yet acknowledged,
    bytes received and not yet read), or None if there is no such socket."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as file:
            for line in file.readlines()[1:]:
                fields = line.split()
                local, remote, queues = fields[1], fields[2], fields[4]
                if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (local_port, remote_port):
                    return tuple(int(queue, 16) for queue in queues.split(":"))
    return None


def resident_bytes():
    """This process's resident set size now (VmRSS), not its peak."""
    with open("/proc/self/status") as status:
        return int(status.read().split("VmRSS:")[1].split()[0]) * 1024


class FakeUpstreamTestCase(unittest.TestCase):
    """One fake OpenRouter per test class, reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.fake = start_fake()
        cls.addClassCleanup(stop_fake, cls.fake)

    def setUp(self):
        for server in (self.fake, self.fake.trap):
            server.mode, server.calls, server.auth_seen, server.hold = OK, 0, [], None
            server.key_calls = 0

    def run(self, result=None):
        """Keep what in-process gateways write to stderr during a test, and show it only if
        the test fails: a passing run shows the test names alone."""
        problems = (lambda: len(result.errors) + len(result.failures)) if result else (lambda: 0)
        before = problems()
        with contextlib.redirect_stderr(io.StringIO()) as err:
            outcome = super().run(result)
        if problems() > before:
            sys.stderr.write("--- stderr of %s:\n%s" % (self.id(), err.getvalue()))
        return outcome

    def tearDown(self):
        self.assertNotIn("Traceback", sys.stderr.getvalue())  # in-process gateways' stderr

    def held_requests(self, port, requests):
        """Send each of `requests` (raw HTTP) to `port` on a connection of its own while the fake
        holds its answer: the connections, once one call is held at the fake and the gateway has
        read every request (the kernel holds none of their bytes unread)."""
        self.fake.hold = self.fake.hold or threading.Event()  # or the one a call already waits on
        self.addCleanup(self.fake.hold.set)  # should a wait below fail
        clients = []
        for raw in requests:
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(client.close)
            client.sendall(raw)
            clients.append(client)
        wait_until(lambda: self.fake.calls >= 1 and all(
            tcp_queues(port, client.getsockname()[1]) == (0, 0) for client in clients), 10,
            "a call held at the fake, and every request read by the gateway")
        return clients

    def concurrently(self, port, requests):
        """held_requests(), then the fake's answer let go: each answer, as (status, JSON body)."""
        clients = self.held_requests(port, requests)
        self.fake.hold.set()
        return [read_responses(client, 1)[0] for client in clients]

    def run_gateway(self, *args, env=None, prelude=None, stdout=subprocess.PIPE, preexec_fn=None):
        """Start the real command line. Its stderr is drained as it comes (into
        proc.stderr_lines), so that a gateway logging every request never blocks."""
        environ = dict(os.environ, OPENROUTER_API_KEY=KEY) if env is None else env
        command = [sys.executable, os.path.join(HERE, "credits_gateway.py"), *args]
        if prelude:  # run the same file after `prelude`, e.g. to make mcp unimportable
            code = prelude + "; import runpy, sys; sys.argv = %r; runpy.run_path(sys.argv[0], run_name='__main__')"
            command = [sys.executable, "-c", code % command[1:]]
        proc = subprocess.Popen(command, env=environ, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                preexec_fn=preexec_fn)
        proc.stderr_lines, proc.new_lines = [], queue.Queue()

        def drain():
            for line in proc.stderr:
                proc.stderr_lines.append(line)
                proc.new_lines.put(line)
            proc.new_lines.put(None)
        proc.drain = threading.Thread(target=drain, daemon=True)
        proc.drain.start()
        self.addCleanup(_reap, proc)
        return proc

    def wait_lines(self, proc, count):
        """The next `count` lines the gateway writes to stderr."""
        lines = []
        while len(lines) < count:
            line = proc.new_lines.get(timeout=10)
            if line is None:
                self.fail("gateway ended early: %r" % lines)
            lines.append(line)
        return lines

    def finish(self, proc, timeout=5):
        """Wait for the exit; return (code, stdout, stderr), having checked both for the key."""
        proc.wait(timeout)
        proc.drain.join(5)
        out, err = proc.stdout.read() if proc.stdout else "", "".join(proc.stderr_lines)
        self.assertNotIn(KEY, out + err)
        return proc.returncode, out, err


# --- The upstream call -------------------------------------------------------------

class TestUpstreamMapping(FakeUpstreamTestCase):
    """Every upstream outcome becomes one answer, the same for REST and MCP: what the call they
    share (SharedCall) gives, a balance or an UpstreamError."""

    def fetch(self, mode, *args, env=None):
        self.fake.mode = mode
        try:
            return gateway.SharedCall(config_for(self.fake, *args, env=env)).get().credits
        except gateway.UpstreamError as error:
            self.assertNotIn(KEY, error.message)
            return error

    def test_success_returns_the_upstream_object_and_sends_the_bearer_key(self):
        self.assertEqual(self.fetch(OK), CREDITS)
        self.assertEqual(self.fake.auth_seen, ["Bearer " + KEY])

    def test_rejected_key_is_502_naming_the_key_with_the_upstream_message(self):
        error = self.fetch(OK, env={"OPENROUTER_API_KEY": "sk-or-v1-wrong"})
        self.assertEqual((error.status, error.upstream_status), (502, 401))
        self.assertIn("OPENROUTER_API_KEY", error.message)
        self.assertIn("User not found.", error.message)

    def test_403_is_502_explaining_that_credits_needs_a_management_key(self):
        error = self.fetch(FORBIDDEN)
        self.assertEqual((error.status, error.upstream_status), (502, 403))
        self.assertIn("management key", error.message)

    def test_429_stays_429_and_keeps_retry_after(self):
        error = self.fetch(RATE_LIMITED)
        self.assertEqual((error.status, error.upstream_status, error.retry_after), (429, 429, "7"))

    def test_other_upstream_errors_are_502_with_status_and_message(self):
        for status in (SERVER_ERROR, UNAVAILABLE):
            error = self.fetch(status)
            self.assertEqual((error.status, error.upstream_status), (502, status))
            self.assertIn("upstream says %d" % status, error.message)

    def test_redirect_is_refused_and_the_key_never_reaches_its_target(self):
        error = self.fetch(REDIRECT)
        self.assertEqual((error.status, error.upstream_status), (502, 302))
        self.assertEqual(self.fake.trap.calls, 0)

    def test_no_answer_within_the_timeout_is_504(self):
        started = time.monotonic()
        error = self.fetch(SLOW, "--timeout", "0.3")
        self.assertEqual(error.status, 504)
        self.assertLess(time.monotonic() - started, 1.3)

    def test_an_answer_that_trickles_in_past_the_timeout_is_504(self):
        started = time.monotonic()
        error = self.fetch(DRIP, "--timeout", "1")
        elapsed = time.monotonic() - started
        self.assertEqual(error.status, 504)
        self.assertGreater(elapsed, 0.9)
        self.assertLess(elapsed, 1.5)  # --timeout + 0.5 s: each byte came well within 1 s

    def test_a_head_or_an_error_body_that_trickles_past_the_timeout_is_504(self):
        for mode in (HEAD_DRIP, ERROR_DRIP, ERROR_STALL):
            started = time.monotonic()
            error = self.fetch(mode, "--timeout", "1")
            elapsed = time.monotonic() - started
            self.assertEqual((error.status, error.upstream_status), (504, None), mode)
            self.assertLess(elapsed, 1.5, mode)
            self.assertEqual(error.message, "OpenRouter did not answer within 1 s.")

    def test_an_error_answer_that_resets_is_502(self):
        error = self.fetch(ERROR_RESET, "--timeout", "2")
        self.assertEqual((error.status, error.upstream_status), (502, None))
        self.assertTrue(error.message.startswith("Could not reach OpenRouter: "), error.message)

    def test_nan_and_infinite_numbers_are_not_json_and_get_502(self):
        error = self.fetch(NAN)
        self.assertEqual((error.status, error.upstream_status), (502, 200))
        self.assertIn("not with a JSON object", error.message)

    def test_a_404_names_the_url_it_tried(self):
        error = self.fetch(OK, "--base-url", self.fake.base_url + "/typo")
        self.assertEqual((error.status, error.upstream_status), (502, 404))
        self.assertIn(self.fake.base_url + "/typo/credits", error.message)

    def test_connection_refused_is_502(self):
        error = self.fetch(OK, "--base-url", "http://127.0.0.1:%d/api/v1" % free_port())
        self.assertEqual(error.status, 502)
        self.assertIn("Could not reach OpenRouter", error.message)

    def test_tls_failure_is_502(self):
        error = self.fetch(OK, "--base-url", self.fake.base_url.replace("http://", "https://"))
        self.assertEqual(error.status, 502)  # the fake speaks no TLS

    def test_dropped_connection_is_502(self):
        self.assertEqual(self.fetch(CLOSE).status, 502)

    def test_body_that_is_not_a_json_object_is_502(self):
        for mode in (NON_JSON, ARRAY, EMPTY, DEEP):
            error = self.fetch(mode)
            self.assertEqual((error.status, error.upstream_status), (502, 200), mode)

    def test_body_over_1_mib_is_502(self):
        error = self.fetch(HUGE)
        self.assertEqual(error.status, 502)
        self.assertIn("1 MiB", error.message)

    def test_upstream_message_echoing_the_key_is_redacted(self):
        error = self.fetch(ECHO)  # fetch() asserts the key is absent
        self.assertIn("[redacted]", error.message)

    def test_a_key_past_64_kib_of_padding_is_redacted_before_the_message_is_cut(self):
        error = self.fetch(PADDED_ECHO)
        self.assertEqual((error.status, error.upstream_status), (502, 500))
        self.assertNotIn("sk-or-v1", error.message)  # not even the part before a cut
        self.assertIn("Authorization: Bearer [redacted]", error.message)

    def test_an_integer_no_float_holds_is_no_balance_and_gets_502(self):
        error = self.fetch(BIG_INT)
        self.assertEqual((error.status, error.upstream_status), (502, 200))
        self.assertEqual(error.message, gateway.NOT_A_BALANCE)


# --- REST --------------------------------------------------------------------------

SLOW_MCP_IMPORT_PRELUDE = r'''
import importlib.abc, sys, time
class _SlowMcp(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "mcp":
            time.sleep(3)
sys.meta_path.insert(0, _SlowMcp())'''


class TestRest(FakeUpstreamTestCase):
    """GET /v1/credits and the health endpoints, over real HTTP/1.1."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.port = start_gateway(cls, "--no-mcp").rest.server_address[1]

    def test_get_credits_answers_the_upstream_object_as_json(self):
        status, headers, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), CREDITS)
        self.assertEqual(int(headers["Content-Length"]), len(body))

    def test_head_answers_the_same_status_and_headers_without_a_body(self):
        status, headers, body = request(self.port, "HEAD", "/v1/credits")
        self.assertEqual((status, body), (200, b""))
        get_headers = request(self.port, "GET", "/v1/credits")[1]
        self.assertEqual(headers["Content-Length"], get_headers["Content-Length"])

    def test_query_string_is_ignored(self):
        status, _, body = request(self.port, "GET", "/v1/credits?x=1")
        self.assertEqual((status, json.loads(body)), (200, CREDITS))

    def test_other_methods_on_credits_get_405_with_allow(self):
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY"):
            status, headers, body = request(self.port, method, "/v1/credits")
            self.assertEqual(status, 405, method)
            self.assertEqual(headers["Allow"], "GET, HEAD")
            self.assertEqual(json.loads(body)["error"]["code"], 405)
        status, _, body = request(self.port, "FOO", "/v1/credits")  # a method HTTP does not define
        self.assertEqual((status, json.loads(body)["error"]["code"]), (501, 501))
        self.assertEqual(self.fake.calls, 0)

    def test_other_paths_get_404_in_openrouter_error_shape(self):
        for path in ("/", "/v1/credits/", "/v1", "/credits"):
            status, _, body = request(self.port, "GET", path)
            self.assertEqual(status, 404, path)
            error = json.loads(body)["error"]
            self.assertEqual(error["code"], 404)
            self.assertTrue(error["message"])

    def test_upstream_error_answers_its_status_message_and_upstream_status(self):
        self.fake.mode = RATE_LIMITED
        status, headers, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual((status, headers["Retry-After"]), (429, "7"))
        self.assertEqual(json.loads(body), {"error": {
            "code": 429, "message": "OpenRouter is rate-limiting this key; retry in 7 s.",
            "metadata": {"upstream_status": 429}}})

    def test_a_retry_after_that_is_not_seconds_is_not_passed_on(self):
        self.fake.mode = RETRY_ECHO  # request() fails the test should the key come back
        status, headers, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual((status, headers["Retry-After"]), (429, None))
        self.assertIn("retry later", json.loads(body)["error"]["message"])

    def test_unreachable_upstream_has_no_upstream_status(self):
        self.fake.mode = CLOSE
        status, _, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual(status, 502)
        self.assertNotIn("metadata", json.loads(body)["error"])

    def test_health_live_is_up_without_calling_upstream(self):
        status, _, body = request(self.port, "GET", "/health/live")
        self.assertEqual((status, json.loads(body)), (200, {"status": "UP"}))
        self.assertEqual(self.fake.calls, 0)

    def test_health_ready_is_up_when_rest_alone_is_enabled(self):
        status, _, body = request(self.port, "GET", "/health/ready")
        self.assertEqual((status, json.loads(body)), (200, {"status": "UP"}))

    def test_health_ready_is_503_down_while_a_listener_is_not_serving(self):
        proc = self.run_gateway("--rest-port", "0", "--mcp-port", "0", "--base-url", self.fake.base_url,
                                prelude=SLOW_MCP_IMPORT_PRELUDE)  # MCP serves 3 s after REST
        rest = port_of(self.wait_lines(proc, 1)[0])
        status, _, body = request(rest, "GET", "/health/ready")
        self.assertEqual((status, json.loads(body)), (503, {"status": "DOWN"}))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    def test_openapi_json_describes_each_path_and_every_status_credits_answers(self):
        status, _, body = request(self.port, "GET", "/openapi.json")
        description = json.loads(body)
        self.assertEqual((status, description["openapi"]), (200, "3.1.0"))
        for path in description["paths"]:
            self.assertEqual(request(self.port, "GET", path)[0], 200, path)
        seen = set()
        for mode in (OK, RATE_LIMITED, SERVER_ERROR, CLOSE):
            self.fake.mode = mode
            seen.add(request(self.port, "GET", "/v1/credits")[0])
        for raw in (b"Content-Length: x\r\n", b"Content-Length: 70000\r\n", b"X-A: b\r\n" * 101):
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                sock.sendall(b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n" + raw + b"\r\n")
                seen.add(read_responses(sock, 1)[0][0])
        seen.add(request(self.port, "GET", "/v1/credits", {"Host": "evil.example"})[0])
        self.assertEqual(seen, {200, 400, 413, 421, 429, 431, 502})
        documented = description["paths"]["/v1/credits"]["get"]["responses"]
        self.assertLessEqual({str(status) for status in seen}, set(documented))
        self.assertNotIn("401", documented)  # no caller token here
        self.assertFalse(description["components"]["securitySchemes"])

    def test_an_upstream_object_is_passed_on_as_is_with_the_numbers_the_description_promises(self):
        self.fake.mode = EXTRA
        status, _, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual((status, json.loads(body)), (200, EXTRA_CREDITS))
        self.assertIs(type(json.loads(body)["data"]["total_credits"]), int)  # 50, not 50.0
        description = json.loads(request(self.port, "GET", "/openapi.json")[2])
        schema = description["components"]["schemas"]["Credits"]
        data = schema["properties"]["data"]
        self.assertEqual((schema["required"], data["required"]), (["data"], ["total_credits", "total_usage"]))
        self.assertEqual({name: data["properties"][name] for name in data["required"]},
                         {"total_credits": {"type": "number"}, "total_usage": {"type": "number"}})
        self.assertNotIn("additionalProperties", schema)  # JSON Schema's default: other keys allowed
        self.assertNotIn("additionalProperties", data)
        self.fake.mode = STRINGS  # what the description promises is checked: no numbers, a 502
        status, _, body = request(self.port, "GET", "/v1/credits")
        self.assertEqual((status, json.loads(body)["error"]["message"]), (502, gateway.NOT_A_BALANCE))

    def test_keep_alive_answers_several_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        self.addCleanup(conn.close)
        for path, expected in (("/v1/credits", 200), ("/nope", 404), ("/health/live", 200)):
            conn.request("GET", path)
            response = conn.getresponse()
            self.assertEqual(response.status, expected)
            response.read()
        self.assertEqual(response.getheader("Connection"), None)  # still open

    def test_client_that_disconnects_mid_request_leaves_the_server_serving(self):
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(b"GET /v1/credits HTTP/1.1\r\nHost: loc")
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n\r\n")
            sock.shutdown(socket.SHUT_RDWR)
        self.assertEqual(request(self.port, "GET", "/v1/credits")[0], 200)


# --- Sharing the call --------------------------------------------------------------

class TestSharing(FakeUpstreamTestCase):
    """SharedCall: one upstream call for many callers, and the optional cache."""

    def test_concurrent_rest_requests_while_upstream_holds_make_one_call(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        self.assertEqual(self.concurrently(port, [GET_CREDITS] * 16), [(200, CREDITS)] * 16)
        self.assertEqual(self.fake.calls, 1)

    def test_a_failing_call_releases_every_waiter_with_its_error(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        self.fake.mode = SERVER_ERROR
        outcomes = self.concurrently(port, [GET_CREDITS] * 8)
        self.assertEqual({(status, body["error"]["metadata"]["upstream_status"])
                          for status, body in outcomes}, {(502, 500)})
        self.assertEqual(self.fake.calls, 1)

    def test_rest_callers_sharing_a_stalled_or_reset_error_each_get_its_json(self):
        port = start_gateway(self, "--no-mcp", "--timeout", "1").rest.server_address[1]
        for mode, expected in ((ERROR_STALL, 504), (ERROR_RESET, 502)):
            self.fake.calls, self.fake.mode = 0, mode
            outcomes = self.concurrently(port, [GET_CREDITS] * 8)
            self.assertEqual([(status, body["error"]["code"]) for status, body in outcomes],
                             [(expected, expected)] * 8, mode)
            self.assertEqual(self.fake.calls, 1)

    @needs_mcp
    def test_100_concurrent_mcp_calls_share_one_upstream_call(self):
        port = start_gateway(self).mcp.server_address[1]
        self.fake.mode = SLOW  # 3 s: every call below arrives while the first is in flight
        started = time.monotonic()
        outcomes = []
        threads = [threading.Thread(target=lambda: outcomes.append(mcp_call(port))) for _ in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual([json.loads(body)["result"]["structuredContent"] for _, _, body in outcomes],
                         [CREDITS] * 100)
        self.assertEqual(self.fake.calls, 1)

    def test_without_cache_each_call_after_the_last_one_asks_upstream(self):
        get_credits = gateway.SharedCall(config_for(self.fake)).get
        get_credits(), get_credits()
        self.assertEqual(self.fake.calls, 2)

    def test_cached_answer_is_reused_until_the_ttl_passes(self):
        get_credits = gateway.SharedCall(config_for(self.fake, "--cache-ttl", "0.5")).get
        first = get_credits()
        self.assertEqual(get_credits(), first)
        self.assertEqual(self.fake.calls, 1)
        time.sleep(0.6)
        self.assertEqual(get_credits()[0], CREDITS)
        self.assertEqual(self.fake.calls, 2)

    def test_errors_are_never_cached(self):
        self.fake.mode = UNAVAILABLE
        get_credits = gateway.SharedCall(config_for(self.fake, "--cache-ttl", "60")).get
        for _ in range(2):
            self.assertRaises(gateway.UpstreamError, get_credits)
        self.fake.mode = OK
        self.assertEqual(get_credits()[0], CREDITS)
        self.assertEqual(self.fake.calls, 3)

    def test_cache_ttl_comes_from_the_environment_and_the_flag_wins(self):
        env = {"OPENROUTER_API_KEY": KEY, "CREDITS_CACHE_TTL": "7"}
        self.assertEqual(config_for(self.fake, env=env).cache_ttl, 7)
        self.assertEqual(config_for(self.fake, "--cache-ttl", "3", env=env).cache_ttl, 3)

    def test_rest_says_no_store_without_cache(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        headers = request(port, "GET", "/v1/credits")[1]
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertIsNone(headers["Age"])

    def test_rest_answers_from_cache_carry_max_age_and_their_age(self):
        port = start_gateway(self, "--no-mcp", "--cache-ttl", "5").rest.server_address[1]
        first = request(port, "GET", "/v1/credits")[1]
        time.sleep(1.05)
        status, second, body = request(port, "GET", "/v1/credits")
        self.assertEqual((status, json.loads(body)), (200, CREDITS))
        self.assertEqual((first["Cache-Control"], first["Age"]), ("max-age=5", "0"))
        self.assertEqual((second["Cache-Control"], second["Age"]), ("max-age=5", "1"))
        self.assertEqual(self.fake.calls, 1)

    @needs_mcp
    def test_rest_and_mcp_callers_share_one_call(self):
        state = start_gateway(self)
        self.fake.hold = threading.Event()
        self.addCleanup(self.fake.hold.set)  # should a wait below fail
        rest, mcp_port = state.rest.server_address[1], state.mcp.server_address[1]
        mcp_client = socket.create_connection(("127.0.0.1", mcp_port), timeout=10)
        self.addCleanup(mcp_client.close)
        mcp_client.sendall(TOOL_CALL)
        wait_until(lambda: self.fake.calls >= 1, 10, "the tool call's upstream call held at the fake")
        (status, body), = self.concurrently(rest, [GET_CREDITS])  # joins the call in flight
        self.assertEqual((status, body), (200, CREDITS))
        status, body = read_responses(mcp_client, 1)[0]
        self.assertEqual((status, body["result"]["structuredContent"]), (200, CREDITS))
        self.assertEqual(self.fake.calls, 1)


# --- Protection --------------------------------------------------------------------

class TestProtection(FakeUpstreamTestCase):
    """Faults, bad input and unwanted callers: clear refusals, nothing lost, nothing leaked."""

    def test_caller_token_guards_credits_but_not_health(self):
        port = start_gateway(self, "--no-mcp", token="caller-token").rest.server_address[1]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "caller-token"}):
            status, response_headers, body = request(port, "GET", "/v1/credits", headers)
            self.assertEqual((status, response_headers["WWW-Authenticate"]), (401, "Bearer"))
            self.assertEqual(json.loads(body)["error"]["code"], 401)
        self.assertEqual(request(port, "GET", "/v1/credits", {"Authorization": "Bearer caller-token"})[0], 200)
        self.assertEqual(request(port, "GET", "/health/live")[0], 200)
        self.assertEqual(request(port, "GET", "/health/ready")[0], 200)
        self.assertEqual(self.fake.calls, 1)

    @needs_mcp
    def test_caller_token_guards_every_mcp_request(self):
        state = start_gateway(self, token="caller-token")
        wait_for_mcp(state)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        status, response_headers, _ = request(state.mcp.server_address[1], "POST", "/mcp", headers, body)
        self.assertEqual((status, response_headers["WWW-Authenticate"]), (401, "Bearer"))
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def call():
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer caller-token"}) as http_client:
                transport = streamable_http_client("http://127.0.0.1:%d/mcp" % state.mcp.server_address[1], http_client=http_client)
                async with mcp.Client(transport) as client:
                    return await client.call_tool("get-credit-balance", {})
        self.assertEqual(asyncio.run(call()).structured_content, CREDITS)

    def requests_with_a_header(self, token):
        """A gateway with the caller `token`: for each port, (the port, a request to it, raw,
        with %s for a header line): GET /v1/credits on REST, tools/call on MCP."""
        state = start_gateway(self, token=token)
        requests = {"REST": (state.rest.server_address[1],
                             b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n%s\r\n")}
        if state.mcp_status == "ready":
            requests["MCP"] = (state.mcp.server_address[1], TOOL_CALL.replace(b"\r\n", b"\r\n%s", 1))
        return requests

    def test_a_wrong_caller_token_is_told_from_a_missing_one_on_both_ports(self):
        for surface, (port, raw) in self.requests_with_a_header(token="s3cret").items():
            messages = {}
            for sent, header in (("missing", b""), ("other scheme", b"Authorization: Basic s3cret\r\n"),
                                 ("wrong", b"Authorization: Bearer s3cre\r\n")):
                status, headers, body = exchange(port, raw % header)
                self.assertEqual((status, headers["WWW-Authenticate"]), (401, "Bearer"), (surface, sent))
                messages[sent] = json.loads(body)["error"]["message"]
                self.assertIn("CREDITS_GATEWAY_TOKEN", messages[sent], (surface, sent))
                self.assertNotIn("s3cre", messages[sent], (surface, sent))
            self.assertEqual(messages["missing"], messages["other scheme"], surface)
            self.assertNotEqual(messages["missing"], messages["wrong"], surface)
            self.assertIn("Send Authorization: Bearer", messages["missing"], surface)
            self.assertIn("is wrong", messages["wrong"], surface)

    def test_spaces_around_the_caller_token_are_not_part_of_it_on_both_ports(self):
        for surface, (port, raw) in self.requests_with_a_header(token="s3cret").items():
            for header in (b"Authorization: Bearer  s3cret\r\n", b"Authorization: Bearer s3cret \r\n",
                           b"Authorization: bearer   s3cret  \r\n"):
                status, _, body = exchange(port, raw % header)
                self.assertEqual(status, 200, (surface, header, body))

    def test_openapi_json_needs_no_token_and_shows_the_bearer_scheme_when_one_is_set(self):
        port = start_gateway(self, "--no-mcp", token="caller-token").rest.server_address[1]
        status, _, body = request(port, "GET", "/openapi.json")
        description = json.loads(body)
        self.assertEqual(status, 200)
        operation = description["paths"]["/v1/credits"]["get"]
        self.assertEqual(operation["security"], [{"bearer": []}])
        self.assertIn("401", operation["responses"])
        self.assertEqual(description["components"]["securitySchemes"]["bearer"]["scheme"], "bearer")
        self.assertNotIn("caller-token", body.decode())

    def test_a_non_loopback_host_without_token_warns_once(self):
        for flags, token, warnings in ((["--host", "0.0.0.0"], None, 1), (["--host", "0.0.0.0"], "t", 0), ([], None, 0)):
            logged = len(sys.stderr.getvalue())
            start_gateway(self, "--no-mcp", *flags, token=token)
            self.assertEqual(sys.stderr.getvalue()[logged:].count("warning"), warnings, (flags, token))

    def test_foreign_host_header_gets_421_and_loopback_names_pass(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        for host in ("evil.example", "evil.example:%d" % port, "10.0.0.1", "localhost.evil.example", "[::1",
                     "127.0.0.1.evil.example", ""):
            status, _, body = request(port, "GET", "/v1/credits", {"Host": host})
            self.assertEqual((status, json.loads(body)["error"]["code"]), (421, 421), host)
        for host in ("localhost", "localhost:%d" % port, "127.0.0.1:1", "[::1]:8080", "127.1.2.3"):
            self.assertEqual(request(port, "GET", "/v1/credits", {"Host": host})[0], 200, host)
        self.assertEqual(self.fake.calls, 5)

    def test_rest_sends_no_cors_headers(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        for method in ("GET", "OPTIONS"):
            headers = request(port, method, "/v1/credits", {"Origin": "http://evil.example"})[1]
            self.assertFalse([name for name in headers if name.lower().startswith("access-control")])

    def assert_slow_clients_are_closed(self, port):
        """With --idle-timeout 1: a client that sends nothing, and one that sends a byte every
        0.2 s, are both closed within a few seconds, and the port still serves."""
        silent = socket.create_connection(("127.0.0.1", port))
        dribbler = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(silent.close)
        self.addCleanup(dribbler.close)
        started = time.monotonic()
        closed_at = None
        for byte in b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 200:
            try:
                dribbler.send(bytes([byte]))
            except OSError:
                closed_at = time.monotonic() - started
                break
            time.sleep(0.2)
        self.assertIsNotNone(closed_at, "a dribbling client was never closed")
        self.assertLess(closed_at, 3.5)
        silent.settimeout(3)
        self.assertEqual(silent.recv(100), b"")  # closed with nothing to say

    def test_silent_and_dribbling_clients_are_closed_after_the_idle_timeout(self):
        port = start_gateway(self, "--no-mcp", "--idle-timeout", "1").rest.server_address[1]
        self.assert_slow_clients_are_closed(port)
        self.assertEqual(request(port, "GET", "/health/live")[0], 200)

    @needs_mcp
    def test_silent_and_dribbling_mcp_clients_are_closed_after_the_idle_timeout(self):
        state = start_gateway(self, "--idle-timeout", "1")
        wait_for_mcp(state)
        self.assert_slow_clients_are_closed(state.mcp.server_address[1])
        self.assertEqual(mcp_call(state.mcp.server_address[1])[0], 200)

    def test_a_request_cut_off_by_the_idle_timeout_is_answered_408_and_never_run(self):
        """A head that has not ended by --idle-timeout is not a request: it is neither served
        nor sent upstream, on either port, whether it stops in a header or in the request line."""
        state = start_gateway(self, "--idle-timeout", "1", *([] if mcp else ["--no-mcp"]))
        wait_for_mcp(state)
        heads = [(state.rest, b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n"),
                 (state.rest, b"GET /v1/credits"),
                 (state.rest, b"GE")]
        if mcp:  # the MCP port, where the same front door reads the head
            heads.append((state.mcp, b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Ty"))
        for server, head in heads:
            port = server.server_address[1]
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head)
                started = time.monotonic()
                answer = http.client.HTTPResponse(sock)
                answer.begin()
                self.assertLess(time.monotonic() - started, 2.5)
                self.assertEqual((answer.status, answer.getheader("Connection")), (408, "close"), head)
                self.assertIn("--idle-timeout", json.loads(answer.read())["error"]["message"])
                self.assertEqual(sock.recv(100), b"")
        self.assertEqual(self.fake.calls, 0)  # nothing went upstream for them

    def test_a_burst_of_64_clients_is_accepted_without_syn_retries(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        durations = []

        def one():
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                durations.append(time.monotonic() - started)
        threads = [threading.Thread(target=one) for _ in range(64)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(len(durations), 64)
        self.assertLess(max(durations), 0.9)  # a dropped SYN is retried after 1 s

    def test_past_max_connections_a_new_client_gets_503_and_the_server_recovers(self):
        port = start_gateway(self, "--no-mcp", "--max-connections", "2").rest.server_address[1]
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(2)]
        for sock in held:  # an answer proves the connection holds a slot; keep-alive keeps it
            sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_responses(sock, 1)[0][0], 200)
        status, headers, body = request(port, "GET", "/v1/credits")
        self.assertEqual((status, headers["Connection"]), (503, "close"))
        self.assertEqual(json.loads(body)["error"]["code"], 503)
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 3
        while request(port, "GET", "/v1/credits")[0] != 200:
            self.assertLess(time.monotonic(), deadline, "the server did not recover")
            time.sleep(0.05)

    @needs_mcp
    def test_silent_mcp_clients_past_max_connections_give_way_after_the_idle_timeout(self):
        state = start_gateway(self, "--max-connections", "2", "--idle-timeout", "1")
        wait_for_mcp(state)
        silent = [socket.create_connection(("127.0.0.1", state.mcp.server_address[1])) for _ in range(2)]
        for sock in silent:  # an answer proves the connection holds a slot; then it falls silent
            self.addCleanup(sock.close)
            sock.sendall(b"GET /mcp HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_responses(sock, 1)[0][0], 405)
        status, headers, body = mcp_call(state.mcp.server_address[1])
        self.assertEqual((status, headers["Connection"]), (503, "close"))
        self.assertEqual(json.loads(body)["error"]["code"], 503)
        for sock in silent:
            sock.settimeout(3)
            self.assertEqual(sock.recv(100), b"")  # closed by the idle timeout
        deadline = time.monotonic() + 2
        while mcp_call(state.mcp.server_address[1])[0] != 200:  # the slots are free again
            self.assertLess(time.monotonic(), deadline, "the MCP port did not recover")
            time.sleep(0.05)

    @needs_mcp
    def test_the_mcp_port_refuses_bad_requests_in_openrouter_error_shape(self):
        state = start_gateway(self, token="caller-token")
        wait_for_mcp(state)
        port, auth = state.mcp.server_address[1], {"Authorization": "Bearer caller-token"}
        json_rpc = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        cases = [  # (method, path, headers, body, status)
            ("POST", "/mcp", {**json_rpc, **auth}, b"x" * 70000, 413),
            ("POST", "/mcp", {**auth, "Transfer-Encoding": "chunked"}, None, 400),
            ("POST", "/mcp", json_rpc, b"{}", 401),
            ("POST", "/mcp", {**json_rpc, "Authorization": "Bearer wrong"}, b"{}", 401),
            ("GET", "/mcp", {**auth, "Accept": "text/event-stream"}, None, 405),
            ("DELETE", "/mcp", auth, None, 405),
            ("POST", "/other", auth, b"{}", 404),
            ("GET", "/health/live", auth, None, 404),
        ]
        for method, path, headers, body, expected in cases:
            status, response_headers, answer = request(port, method, path, headers, body)
            self.assertEqual((status, json.loads(answer)["error"]["code"]), (expected, expected),
                             (method, path))
            if expected == 405:
                self.assertEqual(response_headers["Allow"], "POST")
            if expected == 401:
                self.assertEqual(response_headers["WWW-Authenticate"], "Bearer")
        self.assertEqual(mcp_call(port, auth)[0], 200)
        self.assertEqual(self.fake.calls, 1)

    @needs_mcp
    def test_a_loopback_host_without_a_port_is_accepted_on_both_ports(self):
        state = start_gateway(self)
        wait_for_mcp(state)
        for host in ("127.0.0.1", "localhost", "[::1]"):
            self.assertEqual(request(state.rest.server_address[1], "GET", "/v1/credits", {"Host": host})[0],
                             200, host)
            status, _, body = mcp_call(state.mcp.server_address[1], {"Host": host})
            self.assertEqual(status, 200, host)
            self.assertEqual(json.loads(body)["result"]["structuredContent"], CREDITS)

    @needs_mcp
    def test_on_loopback_a_foreign_origin_gets_403_on_both_ports(self):
        state = start_gateway(self)
        wait_for_mcp(state)
        for origin, expected in (("http://evil.example", 403), ("null", 403), ("http://[::1", 403),
                                 ("http://localhost:3000", 200), ("http://localhost", 200),
                                 ("https://127.0.0.1", 200)):
            status, _, body = mcp_call(state.mcp.server_address[1], {"Origin": origin})
            self.assertEqual(status, expected, origin)
            status, _, body = request(state.rest.server_address[1], "GET", "/v1/credits", {"Origin": origin})
            self.assertEqual(status, expected, origin)
            if expected == 403:
                self.assertEqual(json.loads(body)["error"]["code"], 403)

    def test_oversized_or_malformed_requests_get_json_errors_and_the_server_keeps_serving(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        cases = {
            b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n": 414,
            b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n": 431,
            b"GET / HTTP/1.1\r\nX-A: " + b"b" * 70000 + b"\r\n\r\n": 431,
            b"GARBAGE\r\n\r\n": 400,
            b"GET / HTTP/9.9\r\n\r\n": 505,
            b"GET /v1/credits HTTP/1.1\r\nContent-Length: 70000\r\n\r\n": 413,
            b"GET /v1/credits HTTP/1.1\r\nContent-Length: -1\r\n\r\n": 400,
            b"GET /v1/credits HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n": 400,
        }
        for raw, expected in cases.items():
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(raw)
                response = http.client.HTTPResponse(sock)
                response.begin()
                self.assertEqual(response.status, expected, raw[:40])
                self.assertEqual(response.getheader("Connection"), "close")  # it could not be framed
                self.assertEqual(json.loads(response.read())["error"]["code"], expected)
            self.assertEqual(request(port, "GET", "/health/live")[0], 200)

    def test_a_get_with_a_small_body_is_answered_and_the_connection_stays_usable(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n"
                         + b"z" * 5000 + b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_responses(sock, 2), [(200, CREDITS), (200, {"status": "UP"})])

    def test_pipelined_requests_each_get_exactly_one_response(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            one = b"GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n"
            sock.sendall(one % b"/v1/credits" + one % b"/nope" + (b"POST" + one[3:]) % b"/v1/credits"
                         + one % b"/health/live")
            statuses = [status for status, _ in read_responses(sock, 4)]
            self.assertEqual(statuses, [200, 404, 405, 200])
            sock.settimeout(0.3)
            with self.assertRaises(socket.timeout):
                sock.recv(1)  # nothing more: one response per request

    def test_garbage_leaves_the_process_serving_without_leaking_threads_or_files(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", "--quiet",
                                "--cache-ttl", "60")  # garbage that parses as GET /v1/credits stays local
        port = port_of(self.wait_lines(proc, 1)[0])

        def threads_and_files():
            return threads_of(proc.pid), len(os.listdir("/proc/%d/fd" % proc.pid))
        request(port, "GET", "/health/live")  # the first connection starts the deadline thread
        before = threads_and_files()
        rng = random.Random(20261127)
        valid = b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
        pieces = [b"\x00", b"\r\n", b"\r", b"\n", b" ", b":", b"GET", b"FOO", b"HTTP/1.1", b"HTTP/0.9",
                  b"HTTP/2.0", b"Content-Length: -5\r\n", b"Content-Length: 99999999999999\r\n",
                  b"Host: \x00evil\r\n", b"/v1/\x00credits", b"%00", b"\xff\xfe"]

        def garbage():
            kind = rng.randrange(3)
            if kind == 0:
                size = rng.randrange(1, 200)
                return rng.getrandbits(8 * size).to_bytes(size, "little")
            if kind == 1:
                return valid[:rng.randrange(len(valid))]
            data = bytearray(valid)
            for _ in range(rng.randrange(1, 5)):
                at = rng.randrange(len(data))
                data[at:at + rng.randrange(4)] = rng.choice(pieces)
            return bytes(data)
        payloads = [garbage() for _ in range(10000)]

        def send_all(chunk):
            for payload in chunk:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                        sock.sendall(payload)
                        sock.shutdown(socket.SHUT_WR)
                        while sock.recv(65536):
                            pass
                except OSError:
                    pass  # a reset is a fine answer to garbage
        threads = [threading.Thread(target=send_all, args=(payloads[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        status, _, body = request(port, "GET", "/v1/credits")
        self.assertEqual((status, json.loads(body)), (200, CREDITS))
        deadline = time.monotonic() + 5
        while threads_and_files() > before:
            self.assertLess(time.monotonic(), deadline, "leak: %r -> %r" % (before, threads_and_files()))
            time.sleep(0.05)
        self.assertIsNone(proc.poll())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    @needs_mcp
    def test_an_mcp_client_that_never_reads_does_not_hold_up_another(self):
        state = start_gateway(self)
        wait_for_mcp(state)
        port = state.mcp.server_address[1]
        hog = socket.socket()
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        hog.connect(("127.0.0.1", port))
        self.addCleanup(hog.close)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode()
        one = (b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
               b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

        def pipeline():  # it blocks once the gateway stops reading, until cleanup closes it
            with contextlib.suppress(OSError):
                hog.sendall(one * 5000)
        threading.Thread(target=pipeline, daemon=True).start()
        # Its answers fill its window, then the gateway's send buffer (some MB on loopback, about
        # 5 s of answers here); from then on the gateway could block writing to it. Another
        # client is served throughout: for 10 s, and for at least 5 calls made while the send
        # queue of the gateway's side of the hog's connection is full: over 64 KiB, and not a
        # byte shorter or longer than at the look before, though the hog still sends requests.
        hog_port = hog.getsockname()[1]
        began, served_while_full, queues, before = time.monotonic(), 0, None, None
        while time.monotonic() - began < 10 or served_while_full < 5:
            self.assertLess(time.monotonic() - began, 30, "the gateway's send queue to the hog never filled"
                            " (its queues, unacknowledged and unread: %r)" % (queues,))
            queues = tcp_queues(port, hog_port)  # the gateway's side of the hog's connection
            full = queues is not None and queues[0] > 64 * 1024 and queues[0] == before
            before = queues and queues[0]
            started = time.monotonic()
            self.assertEqual(mcp_call(port)[0], 200)
            self.assertLess(time.monotonic() - started, 1)
            served_while_full += full
            time.sleep(0.2)
        self.assertGreater(tcp_queues(hog_port, port)[1], 0)  # the hog's window holds answers it never read

    def test_a_body_shorter_than_its_content_length_is_not_run(self):
        """The client stops sending (it shuts down its side) before its body is whole: 400. (One
        that goes silent instead gets 408 at --idle-timeout: see TestEveryRefusalIsDelivered.)"""
        state = start_gateway(self, "--idle-timeout", "5")
        ports = [state.rest.server_address[1]] + ([state.mcp.server_address[1]] if state.mcp_status == "ready" else [])
        for port, method, path in zip(ports, ("GET", "POST"), ("/v1/credits", "/mcp")):
            for sent in (b"{}", b""):
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"%s %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 10\r\n\r\n%s" % (method.encode(), path.encode(), sent))
                    sock.shutdown(socket.SHUT_WR)
                    status, body = read_responses(sock, 1)[0]
                    self.assertEqual((status, body["error"]["code"]), (400, 400), (path, sent))
                    self.assertEqual(sock.recv(1), b"")  # and the connection closes
        self.assertEqual(self.fake.calls, 0)

    def test_malformed_content_lengths_get_a_json_400_and_close(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        for lengths in ([b"9" * 5000], [b"2", b"20"]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                head = b"".join(b"Content-Length: %s\r\n" % length for length in lengths)
                sock.sendall(b"GET /v1/credits HTTP/1.1\r\nHost: localhost\r\n" + head + b"\r\n{}"
                             + b"z" * 18)
                response = http.client.HTTPResponse(sock)
                response.begin()
                self.assertEqual((response.status, response.getheader("Connection")), (400, "close"))
                self.assertEqual(json.loads(response.read())["error"]["code"], 400)
                self.assertEqual(sock.recv(100), b"")  # the rest was not taken for a request
        self.assertEqual(self.fake.calls, 0)

    def test_an_ipv4_mapped_loopback_address_is_loopback_on_every_python(self):
        self.assertTrue(gateway.loopback("::ffff:127.0.0.1"))
        self.assertFalse(gateway.loopback("::ffff:10.1.2.3"))
        port = start_gateway(self, "--no-mcp", "--host", "::ffff:127.0.0.1").rest.server_address[1]
        for host, expected in (("rebind.attacker.example", 421), ("[::ffff:127.0.0.1]:%d" % port, 200)):
            status, _, _ = request(port, "GET", "/v1/credits", {"Host": host}, address="::ffff:127.0.0.1")
            self.assertEqual(status, expected, host)

    def test_with_few_descriptors_a_crowd_waits_its_turn_and_an_admitted_one_still_reaches_upstream(self):
        """Open-file limit 64: 8 connections served at once on each port, and 8 being refused;
        a crowd of 24 that never speaks fills both, and the rest wait in the listen queue, so the
        process never runs out of descriptors. A new client is answered once a refused one's
        linger (2 s, the client silent) is over, and an admitted client still reaches upstream."""
        def limit_descriptors():
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # soft and hard: it cannot be raised
        proc = self.run_gateway("--rest-port", "0", "--mcp-port", "0", "--base-url", self.fake.base_url,
                                "--idle-timeout", "30", "--quiet", preexec_fn=limit_descriptors)
        warning, rest_line, _ = self.wait_lines(proc, 3)  # the third: MCP listening, or off
        self.assertIn("the open-file limit is 64", warning)
        self.assertIn("serving 8 at once on each", warning)
        port = port_of(rest_line)
        admitted = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(admitted.close)
        admitted.request("GET", "/v1/credits")
        self.assertEqual(admitted.getresponse().read(), json.dumps(CREDITS).encode())
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(24)]
        for sock in idle:
            self.addCleanup(sock.close)
        started = time.monotonic()
        status, _, body = request(port, "GET", "/v1/credits")
        self.assertLess(time.monotonic() - started, 2 * 2 + 1)  # behind two rounds of lingers
        self.assertIn(status, (200, 503), body)
        admitted.request("GET", "/v1/credits")  # on the connection admitted before the crowd
        self.assertEqual(admitted.getresponse().read(), json.dumps(CREDITS).encode())
        self.assertEqual(self.fake.calls, 2 + (status == 200))
        with open("/proc/%d/stat" % proc.pid) as stat:
            before = sum(map(int, stat.read().rsplit(")", 1)[1].split()[11:13]))  # utime + stime
        self.assertRaises(subprocess.TimeoutExpired, proc.wait, 1)  # a second with the crowd held
        with open("/proc/%d/stat" % proc.pid) as stat:
            after = sum(map(int, stat.read().rsplit(")", 1)[1].split()[11:13]))
        self.assertLess((after - before) / os.sysconf("SC_CLK_TCK"), 0.3)  # nothing spins

    def test_loopback_is_decided_by_the_address_bound_whatever_its_spelling(self):
        for host in ("127.1", "127.0.1.1"):
            port = start_gateway(self, "--no-mcp", "--host", host).rest.server_address[1]
            address = "127.0.0.1" if host == "127.1" else host
            status, _, _ = request(port, "GET", "/v1/credits", {"Host": "evil.example"}, address=address)
            self.assertEqual(status, 421, host)

    @needs_mcp
    def test_every_spelling_of_a_loopback_host_passes_on_both_ports(self):
        state = start_gateway(self)
        wait_for_mcp(state)
        for host in ("LOCALHOST", "Localhost:8080", "127.0.0.2", "[0:0:0:0:0:0:0:1]", "[::1]:9090"):
            self.assertEqual(request(state.rest.server_address[1], "GET", "/v1/credits", {"Host": host})[0],
                             200, host)
            self.assertEqual(mcp_call(state.mcp.server_address[1], {"Host": host})[0], 200, host)

    def test_slow_and_hung_upstreams_get_504_soon_after_the_timeout(self):
        port = start_gateway(self, "--no-mcp", "--timeout", "0.5").rest.server_address[1]
        for mode in (SLOW, HANG):
            self.fake.mode = mode
            started = time.monotonic()
            self.assertEqual(request(port, "GET", "/v1/credits")[0], 504, mode)
            self.assertLess(time.monotonic() - started, 1.5, mode)

    def test_a_64_mib_upstream_body_is_cut_at_1_mib_and_memory_stays_flat(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        self.fake.mode = HUGE
        before, sizes, done = resident_bytes(), [], threading.Event()

        def sample():  # the resident size now, every 10 ms while the requests run
            while not done.wait(0.01):
                sizes.append(resident_bytes())
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for _ in range(3):
                status, _, body = request(port, "GET", "/v1/credits")
                self.assertEqual(status, 502)
                self.assertIn("1 MiB", json.loads(body)["error"]["message"])
        finally:
            done.set()
            sampler.join(5)
        sizes.append(resident_bytes())
        grown_mib = (max(sizes) - before) / (1024 * 1024)
        self.assertLess(grown_mib, 16)

    def test_a_busy_mcp_port_leaves_no_rest_port_or_thread_behind(self):
        threads_before = threading.active_count()
        with socket.create_server(("127.0.0.1", 0)) as busy:
            rest = free_port()
            config = config_for(self.fake, "--rest-port", str(rest), "--mcp-port", str(busy.getsockname()[1]))
            with contextlib.redirect_stderr(io.StringIO()), self.assertRaises(SystemExit) as caught:
                gateway.Gateway(config).start()
        self.assertEqual(caught.exception.code, 1)
        self.assertTrue(refuses(rest))
        deadline = time.monotonic() + 3
        while threading.active_count() > threads_before:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)


def threads_of(pid):
    """How many threads process `pid` has now."""
    with open("/proc/%d/status" % pid) as status:
        return int(status.read().split("Threads:")[1].split()[0])


def read_answer(sock):
    """Read one HTTP answer off `sock`, as a client does: (its status line as text, its headers,
    its body's bytes, as many as its Content-Length says, none if it has none)."""
    with sock.makefile("rb") as stream:
        status_line = stream.readline().decode("latin-1").rstrip("\r\n")
        headers = http.client.parse_headers(stream)
        return status_line, headers, stream.read(int(headers.get("Content-Length", "0")))


def exchange(port, raw):
    """Send `raw`, one request exactly as written, on a connection of its own: (status, headers,
    body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        status_line, headers, body = read_answer(sock)
    return int(status_line.split()[1]), headers, body


class TestHttpAsTheRfcsHaveIt(FakeUpstreamTestCase):
    """Requests framed as RFC 9112 and RFC 9110 have them, on both ports: one Host header; a
    field's value without the spaces around it; a target in absolute form, whose host is the one
    checked; CONNECT, a method for proxies, refused as such."""

    def setUp(self):
        super().setUp()
        state = start_gateway(self)
        self.ports = {"REST": state.rest.server_address[1]}
        if state.mcp_status == "ready":
            self.ports["MCP"] = state.mcp.server_address[1]

    def each_port(self, target=b"", head=b"Host: localhost\r\n", length=b"%d"):
        """A GET /v1/credits to REST and a tools/call to MCP, each with `head` (header lines) and
        `target` (before the path): {surface: (status, headers, body)}."""
        raws = {"REST": b"GET %s/v1/credits HTTP/1.1\r\n%sContent-Length: %s\r\n\r\n" % (
            target, head, length % 0),
            "MCP": b"POST %s/mcp HTTP/1.1\r\n%sContent-Type: application/json\r\nAccept: application/json, "
                   b"text/event-stream\r\nContent-Length: %s\r\n\r\n%s" % (
                       target, head, length % len(TOOL_CALL_BODY), TOOL_CALL_BODY)}
        return {surface: exchange(port, raws[surface]) for surface, port in self.ports.items()}

    def test_two_host_headers_get_400_on_both_ports(self):
        for surface, (status, _, body) in self.each_port(head=b"Host: localhost\r\nHost: evil.example\r\n").items():
            self.assertEqual((status, json.loads(body)["error"]["code"]), (400, 400), surface)
            self.assertIn("one Host header", json.loads(body)["error"]["message"], surface)

    def test_spaces_around_a_fields_value_are_not_part_of_it(self):
        answers = self.each_port(head=b"Host: localhost \t\r\n", length=b" %d  ")
        for surface, (status, _, body) in answers.items():
            self.assertEqual(status, 200, (surface, body))

    def test_a_line_that_is_no_header_field_gets_400_and_hides_no_header_after_it(self):
        for head in (b"Foo bar\r\nHost: evil.example\r\n", b"Host : evil.example\r\n",
                     b"Host: localhost\r\nContent-Length\t: 5\r\n"):
            for surface, (status, headers, body) in self.each_port(head=head).items():
                self.assertEqual((status, headers["Connection"]), (400, "close"), (surface, head))
                self.assertIn("header line", json.loads(body)["error"]["message"])

    def test_an_http_1_1_request_without_host_gets_400_and_an_http_1_0_one_is_served(self):
        for surface, (status, _, body) in self.each_port(head=b"").items():
            self.assertEqual(status, 400, surface)
            self.assertIn("one Host header", json.loads(body)["error"]["message"])
        self.assertEqual(exchange(self.ports["REST"], b"GET /v1/credits HTTP/1.0\r\n\r\n")[0], 200)

    def test_a_malformed_authority_in_absolute_form_is_refused_like_any_foreign_host(self):
        for target in (b"http://[evil", b"http://evil]", b"HTTP://localhost@evil.example"):
            for surface, (status, _, _) in self.each_port(target).items():
                self.assertEqual(status, 421, (surface, target))  # tearDown: and no traceback

    def test_a_target_in_absolute_form_is_served_and_its_host_is_the_one_checked(self):
        for surface, port in self.ports.items():
            target = b"http://localhost:%d" % port
            self.assertEqual(self.each_port(target)[surface][0], 200, surface)
            self.assertEqual(self.each_port(b"http://evil.example")[surface][0], 421, surface)

    def test_connect_gets_405_with_allow_on_both_ports(self):
        for surface, port in self.ports.items():
            status, headers, body = exchange(port, b"CONNECT openrouter.ai:443 HTTP/1.1\r\n"
                                                   b"Host: openrouter.ai:443\r\n\r\n")
            self.assertEqual((status, headers["Allow"]), (405, "POST" if surface == "MCP" else "GET, HEAD"))
            self.assertIn("CONNECT", json.loads(body)["error"]["message"])


class TestEveryRefusalIsDelivered(FakeUpstreamTestCase):
    """A refusal reaches the client whole: one that closes the connection first lets the client
    finish sending (a lingering close), so that no reset destroys the answer; no 100 Continue
    invites a body that will be refused; and a body cut off by --idle-timeout is a 408.

    What each test saw on the code before this behaviour (commit 0dd2e1e), which failed them all:
    - ..._413_every_time_on_the_rest_port / _mcp_port: http.client raised BrokenPipeError, the
      413 lost to the reset, within the 1 MiB tries (at try 1 to 5) or else at the first 8 MiB;
    - ..._reads_its_whole_503_on_the_rest_port / _mcp_port: of the 20 clients past both tiers,
      about half got BrokenPipeError on their second sendall() (the 503s that came whole had no
      Retry-After, and their message named --max-connections);
    - ..._names_the_flag_in_the_log_for_the_operator: the 503 came, but within 5 s no stderr
      line said --max-connections (the access line alone: "GET /v1/credits 503 ...");
    - ..._without_a_100_continue_first (both ports): the first status line read was
      "HTTP/1.1 100 Continue" (the 413 came after it);
    - ..._gets_408_not_400_on_the_rest_port / _mcp_port: "HTTP/1.1 400 Bad Request" ("The request
      body ended before its Content-Length."), for the stalled body and the trickling one alike."""

    TOO_BIG = {"error": {"code": 413, "message": "A request body over 64 KiB is refused."}}
    BUSY = {"error": {"code": 503, "message": "The gateway is busy; retry in a second."}}
    CUT_OFF = {"error": {"code": 408, "message": "The request did not arrive whole within --idle-timeout."}}
    JSON_RPC = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}

    @staticmethod
    def on_mcp(body):
        """An error body as the MCP port sends it: a JSON-RPC error too."""
        return {**body, "jsonrpc": "2.0", "id": None}

    def assert_big_bodies_get_413(self, port, path, headers, expected):
        for size in (1024 * 1024, 8 * 1024 * 1024):
            body = b"x" * size
            for attempt in range(5):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("POST", path, body=body, headers=headers)
                    response = conn.getresponse()
                    answer = response.status, response.getheader("Connection"), json.loads(response.read())
                except (BrokenPipeError, ConnectionResetError) as error:
                    self.fail("%d bytes, try %d: the 413 was lost: %r" % (size, attempt + 1, error))
                finally:
                    conn.close()
                self.assertEqual(answer, (413, "close", expected), (size, attempt + 1))

    def test_a_body_over_64_kib_sent_whole_gets_its_413_every_time_on_the_rest_port(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        self.assert_big_bodies_get_413(port, "/v1/credits", {}, self.TOO_BIG)
        self.assertEqual(self.fake.calls, 0)

    @needs_mcp
    def test_a_body_over_64_kib_sent_whole_gets_its_413_every_time_on_the_mcp_port(self):
        port = start_gateway(self).mcp.server_address[1]
        self.assert_big_bodies_get_413(port, "/mcp", self.JSON_RPC, self.on_mcp(self.TOO_BIG))
        self.assertEqual(self.fake.calls, 0)

    def assert_busy_refusals_arrive_whole(self, server, head, body, expected):
        """With --max-connections 1, one kept-alive connection holds the slot and a silent one is
        being refused (the gateway lingers on it); then 20 clients in turn send a head
        and its body in two sendall() calls, as httpx does, and each must read its whole 503. The
        body goes a moment after the head, as over a real network, where a quick refusal can
        leave before the body's packets arrive: once the answer has begun, or after 0.2 s."""
        port = server.server_address[1]
        holder = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(holder.close)
        holder.sendall(b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(read_answer(holder)[0].startswith("HTTP/1.1 404 "))  # it holds the slot, kept alive
        refused = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(refused.close)
        self.assertTrue(read_answer(refused)[0].startswith("HTTP/1.1 503 "))  # silent, lingered on
        answers, lost = [], []
        for attempt in range(20):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                try:
                    sock.sendall(head % len(body))
                    sock.settimeout(0.2)  # the body follows once the answer has begun, or in 0.2 s
                    with contextlib.suppress(socket.timeout):
                        sock.recv(1, socket.MSG_PEEK)
                    sock.settimeout(10)  # a client past the cap may wait a little for its 503
                    sock.sendall(body)
                    answers.append(read_answer(sock))
                except OSError as error:
                    lost.append((attempt + 1, repr(error)))
        self.assertEqual(lost, [], "of 20 tries, these lost their 503")
        for status_line, headers, answer in answers:
            self.assertTrue(status_line.startswith("HTTP/1.1 503 "), status_line)
            self.assertEqual((headers["Retry-After"], headers["Connection"]), ("1", "close"))
            self.assertEqual(json.loads(answer), expected)
            self.assertNotIn("--max-connections", answer.decode())  # a client cannot act on a flag
        self.assertEqual(self.fake.calls, 0)

    def test_past_max_connections_a_client_sending_head_then_body_reads_its_whole_503_on_the_rest_port(self):
        server = start_gateway(self, "--no-mcp", "--max-connections", "1").rest
        head = b"POST /v1/credits HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" \
               b"Content-Length: %d\r\n\r\n"
        self.assert_busy_refusals_arrive_whole(server, head, b'{"a": 1}', self.BUSY)

    @needs_mcp
    def test_past_max_connections_a_client_sending_head_then_body_reads_its_whole_503_on_the_mcp_port(self):
        server = start_gateway(self, "--max-connections", "1").mcp
        head = b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" \
               b"Accept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                           "params": {"name": "get-credit-balance", "arguments": {}}}).encode()
        self.assert_busy_refusals_arrive_whole(server, head, body, self.on_mcp(self.BUSY))

    def test_a_refusal_past_max_connections_names_the_flag_in_the_log_for_the_operator(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp",
                                "--max-connections", "1")
        port = port_of(self.wait_lines(proc, 1)[0])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as holder:
            # It holds the one slot: an answer proves it was admitted, and keep-alive keeps it.
            holder.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertEqual(read_answer(holder)[0], "HTTP/1.1 200 OK")
            status, _, body = request(port, "GET", "/v1/credits")
            self.assertEqual(status, 503, body)
            wait_until(lambda: any("--max-connections" in line for line in proc.stderr_lines), 5,
                       "a log line naming --max-connections")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    def assert_no_100_continue(self, port, path, expected):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048576\r\n"
                         b"Expect: 100-continue\r\n\r\n" % path)
            status_line, headers, body = read_answer(sock)
        self.assertTrue(status_line.startswith("HTTP/1.1 413 "), status_line)  # never a 100 first
        self.assertEqual((headers["Connection"], json.loads(body)), ("close", expected))

    def test_a_body_that_will_be_refused_gets_its_413_without_a_100_continue_first(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        self.assert_no_100_continue(port, b"/v1/credits", self.TOO_BIG)

    @needs_mcp
    def test_a_body_that_will_be_refused_gets_its_413_without_a_100_continue_first_on_the_mcp_port(self):
        port = start_gateway(self).mcp.server_address[1]
        self.assert_no_100_continue(port, b"/mcp", self.on_mcp(self.TOO_BIG))

    @needs_mcp
    def test_a_request_its_head_refuses_gets_no_100_continue_and_the_connection_closes(self):
        state = start_gateway(self, token="caller-token")
        rest, mcp_port = state.rest.server_address[1], state.mcp.server_address[1]
        auth = b"Authorization: Bearer caller-token\r\n"
        for port, path, headers, status in (
                (mcp_port, b"/mcp", b"", 401), (rest, b"/v1/credits", auth, 405),
                (rest, b"/nowhere", auth, 404), (mcp_port, b"/mcp", auth + b"Host: evil.example\r\n", 421),
                (mcp_port, b"/mcp", auth + b"Origin: http://evil.example\r\n", 403)):
            with self.subTest(path=path, status=status), \
                    socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                host = b"" if b"Host:" in headers else b"Host: localhost\r\n"
                sock.sendall(b"POST %s HTTP/1.1\r\n%s%sContent-Length: 60000\r\nExpect: 100-continue\r\n\r\n"
                             % (path, host, headers))
                status_line, answer_headers, body = read_answer(sock)
                self.assertTrue(status_line.startswith("HTTP/1.1 %d " % status), status_line)  # never a 100
                self.assertEqual((answer_headers["Connection"], json.loads(body)["error"]["code"]),
                                 ("close", status))
                self.assertEqual(sock.recv(1), b"")  # closed: the body was never invited

    def test_clients_one_after_another_are_never_refused_for_their_own_closed_connection(self):
        """With --max-connections 1, each client closes before the next connects: the gateway
        may not have seen the close yet, but waits a moment for the slot rather than answer 503."""
        port = start_gateway(self, "--no-mcp", "--max-connections", "1").rest.server_address[1]
        statuses = []
        for attempt in range(60):
            keep_alive = attempt % 2  # a kept-alive 200, or a 404 after which the gateway closes
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n" if keep_alive else
                             b"GET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                statuses.append(read_answer(sock)[0].split()[1])
        self.assertEqual(statuses, ["404", "200"] * 30)

    def assert_cut_off_bodies_get_408(self, port, head, expected):
        """With --idle-timeout 1: a body that stops after 10 of its 100 bytes, and one that
        trickles a byte every 0.3 s from right after the head, each get a 408 and a close."""
        for trickling in (False, True):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head + (b"" if trickling else b"{" + b" " * 9))
                started = time.monotonic()
                sock.settimeout(0.3)  # paces the trickle, while waiting for the answer
                while True:
                    try:
                        if not sock.recv(1, socket.MSG_PEEK):
                            self.fail("closed without an answer (trickling: %s)" % trickling)
                        break  # the answer has begun
                    except socket.timeout:
                        self.assertLess(time.monotonic() - started, 3, "no answer yet")
                        if trickling:
                            sock.sendall(b" ")
                elapsed = time.monotonic() - started
                sock.settimeout(5)
                status_line, headers, body = read_answer(sock)
                self.assertTrue(status_line.startswith("HTTP/1.1 408 "), (trickling, status_line))
                self.assertEqual((headers["Connection"], json.loads(body)), ("close", expected))
                self.assertLess(elapsed, 1 + 1, trickling)  # --idle-timeout, and a second at most
                self.assertEqual(sock.recv(100), b"")  # then the connection closes
        self.assertEqual(self.fake.calls, 0)  # the request never ran

    def test_a_body_stalled_or_trickling_past_the_idle_timeout_gets_408_not_400_on_the_rest_port(self):
        port = start_gateway(self, "--no-mcp", "--idle-timeout", "1").rest.server_address[1]
        head = b"POST /v1/credits HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n"
        self.assert_cut_off_bodies_get_408(port, head, self.CUT_OFF)

    @needs_mcp
    def test_a_body_stalled_or_trickling_past_the_idle_timeout_gets_408_not_400_on_the_mcp_port(self):
        port = start_gateway(self, "--idle-timeout", "1").mcp.server_address[1]
        head = (b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Accept: application/json, text/event-stream\r\nContent-Length: 100\r\n\r\n")
        self.assert_cut_off_bodies_get_408(port, head, self.on_mcp(self.CUT_OFF))


# --- Watching the balance ------------------------------------------------------------

def parse_metrics(text):
    """Prometheus text format back into {name: {labels: value}} and {name: (type, help)}."""
    samples, described = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            described[name] = (None, help_text)
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            described[name] = (kind, described[name][1])
        else:
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            samples.setdefault(name, {})[labels.rstrip("}")] = float(value)
    return samples, described


class TestMetrics(FakeUpstreamTestCase):
    """GET /metrics: the balance for Prometheus, read through the shared call on each scrape."""

    def scrape(self, port, headers=None):
        status, response_headers, body = request(port, "GET", "/metrics", headers)
        self.assertEqual((status, response_headers["Content-Type"]),
                         (200, "text/plain; version=0.0.4; charset=utf-8"))
        return parse_metrics(body.decode())

    def test_the_balance_parsed_back_equals_the_upstream_numbers(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        samples, described = self.scrape(port)
        self.assertEqual(samples["openrouter_total_credits"], {"": 50.0})
        self.assertEqual(samples["openrouter_total_usage"], {"": 12.345678})
        self.assertAlmostEqual(samples["openrouter_credits_remaining"][""], 37.654322, places=9)
        self.assertEqual(samples["openrouter_up"], {"": 1.0})
        self.assertEqual(samples["credits_gateway_build_info"], {'version="%s"' % gateway.__version__: 1.0})
        self.assertEqual(samples["credits_gateway_upstream_calls_total"], {'status="200"': 1.0})
        self.assertEqual(set(described), set(samples))
        for name, (kind, help_text) in described.items():
            self.assertEqual(kind, "counter" if name.endswith("_total") else "gauge", name)
            self.assertTrue(help_text, name)

    def test_a_failed_read_or_an_answer_without_numbers_shows_up_0_and_no_balance(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        for mode in (SERVER_ERROR, STRINGS, BIG_INT):
            self.fake.mode = mode
            samples, _ = self.scrape(port)
            self.assertEqual(samples["openrouter_up"], {"": 0.0}, mode)
            self.assertFalse({"openrouter_total_credits", "openrouter_total_usage",
                              "openrouter_credits_remaining"} & set(samples), mode)

    def test_upstream_calls_are_counted_by_status_once_per_shared_call(self):
        port = start_gateway(self, "--no-mcp", "--timeout", "0.5").rest.server_address[1]
        for mode in (SERVER_ERROR, HANG):
            self.fake.mode = mode
            request(port, "GET", "/v1/credits")
        self.fake.mode = OK
        self.assertEqual(self.concurrently(port, [GET_CREDITS] * 8), [(200, CREDITS)] * 8)  # one call
        scrapes = []  # each scrape makes a call of its own, counted before it answers

        def counted():
            scrapes.append(self.scrape(port)[0]["credits_gateway_upstream_calls_total"])
            return scrapes[-1] == {'status="200"': 1 + len(scrapes), 'status="500"': 1,
                                   'status="timeout"': 1}
        # The call cut at its deadline is counted as it ends, just after its caller's 504.
        wait_until(counted, 5, "the calls counted by status: %r" % (scrapes,))

    def test_the_caller_token_guards_metrics_and_its_scheme_is_case_insensitive(self):
        port = start_gateway(self, "--no-mcp", token="caller-token").rest.server_address[1]
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer Caller-token"}):
            status, response_headers, body = request(port, "GET", "/metrics", headers)
            self.assertEqual((status, json.loads(body)["error"]["code"]), (401, 401), headers)
        for scheme in ("Bearer", "bearer", "BEARER"):
            self.assertEqual(self.scrape(port, {"Authorization": scheme + " caller-token"})[0]["openrouter_up"],
                             {"": 1.0})
            self.assertEqual(request(port, "GET", "/v1/credits", {"Authorization": scheme + " caller-token"})[0],
                             200)

    def test_metrics_answers_get_and_head_and_405_otherwise(self):
        port = start_gateway(self, "--no-mcp").rest.server_address[1]
        status, headers, body = request(port, "HEAD", "/metrics")
        self.assertEqual((status, body), (200, b""))
        status, headers, _ = request(port, "POST", "/metrics", body=b"")
        self.assertEqual((status, headers["Allow"]), (405, "GET, HEAD"))


# --- Beyond loopback ----------------------------------------------------------------

class TestNetwork(FakeUpstreamTestCase):
    """Off loopback the caller token is the guard and every Host is served; IPv6 listens too."""

    FOREIGN_HOSTS = ("credits.internal", "credits.internal:8080", "10.1.2.3:9090", "[2001:db8::7]:9090")

    @needs_mcp
    def test_off_loopback_every_host_is_served_with_the_token_and_refused_without(self):
        state = start_gateway(self, "--host", "0.0.0.0", token="t0k")
        rest, mcp_port = state.rest.server_address[1], state.mcp.server_address[1]
        for host in self.FOREIGN_HOSTS:
            for auth, expected in (({"Authorization": "Bearer t0k"}, 200), ({}, 401)):
                headers = {"Host": host, **auth}
                status, _, body = request(rest, "GET", "/v1/credits", headers)
                self.assertEqual(status, expected, host)
                status, _, body = mcp_call(mcp_port, headers)
                self.assertEqual(status, expected, host)
                if expected == 200:
                    self.assertEqual(json.loads(body)["result"]["structuredContent"], CREDITS)
        self.assertEqual(mcp_call(mcp_port, {"Authorization": "Bearer t0k",
                                             "Origin": "https://dashboard.example"})[0], 200)

    @needs_mcp
    def test_the_sdk_client_completes_a_tool_call_through_a_foreign_host(self):
        state = start_gateway(self, "--host", "0.0.0.0", token="t0k")
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def call():
            headers = {"Authorization": "Bearer t0k", "Host": "credits.internal:9090"}
            async with httpx2.AsyncClient(headers=headers) as http_client:
                url = "http://127.0.0.1:%d/mcp" % state.mcp.server_address[1]
                async with mcp.Client(streamable_http_client(url, http_client=http_client)) as client:
                    return await client.call_tool("get-credit-balance", {})
        self.assertEqual(asyncio.run(call()).structured_content, CREDITS)

    @needs_mcp
    def test_ipv6_loopback_serves_both_ports_and_refuses_foreign_hosts(self):
        state = start_gateway(self, "--host", "::1", token="t0k")
        rest, mcp_port = state.rest.server_address[1], state.mcp.server_address[1]
        self.assertIn("REST listening on http://[::1]:%d/v1/credits" % rest, sys.stderr.getvalue())
        auth = {"Authorization": "Bearer t0k"}
        self.assertEqual(request(rest, "GET", "/v1/credits", auth, address="::1")[0], 200)
        self.assertEqual(mcp_call(mcp_port, auth, address="::1")[0], 200)
        for host in self.FOREIGN_HOSTS:
            status, _, body = request(rest, "GET", "/v1/credits", {"Host": host, **auth}, address="::1")
            self.assertEqual((status, json.loads(body)["error"]["code"]), (421, 421), host)
            status, _, body = mcp_call(mcp_port, {"Host": host, **auth}, address="::1")
            self.assertEqual((status, json.loads(body)["error"]["code"]), (421, 421), host)
        self.assertTrue(refuses(rest))  # ::1 is IPv6 alone

    @needs_mcp
    def test_the_ipv6_wildcard_serves_ipv4_and_ipv6_clients(self):
        state = start_gateway(self, "--host", "::", token="t0k")
        auth = {"Authorization": "Bearer t0k", "Host": "credits.internal"}
        for address in ("::1", "127.0.0.1"):
            self.assertEqual(request(state.rest.server_address[1], "GET", "/v1/credits", auth,
                                     address=address)[0], 200, address)
            self.assertEqual(mcp_call(state.mcp.server_address[1], auth, address=address)[0], 200, address)
        self.assertIn("REST listening on http://[::]:%d/v1/credits" % state.rest.server_address[1], sys.stderr.getvalue())


# --- MCP ---------------------------------------------------------------------------

@needs_mcp
class TestMcp(FakeUpstreamTestCase):
    """The get-credit-balance tool, through the SDK's own streamable HTTP client."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        state = start_gateway(cls)
        wait_for_mcp(state)
        cls.url = "http://127.0.0.1:%d/mcp" % state.mcp.server_address[1]

    def session(self, action):
        async def run():
            async with mcp.Client(self.url) as client:
                return await action(client)
        result = asyncio.run(run())
        self.assertNotIn(KEY, repr(result))
        return result

    def test_server_names_itself_with_the_module_version(self):
        async def server_info(client):
            return client.server_info
        info = self.session(server_info)
        self.assertEqual((info.name, info.version), ("openrouter-credits", gateway.__version__))

    def test_tool_is_listed_with_its_contract(self):
        tools = self.session(lambda client: client.list_tools()).tools
        self.assertEqual([tool.name for tool in tools], ["get-credit-balance"])
        tool = tools[0].model_dump(by_alias=True, exclude_none=True)  # as it went over the wire
        self.assertEqual(tool["title"], "Get credit balance")
        for words in ("total_credits", "total_usage", "US dollars"):
            self.assertIn(words, tool["description"])
        self.assertEqual(tool["annotations"], {"readOnlyHint": True, "destructiveHint": False,
                                               "idempotentHint": True, "openWorldHint": True})
        self.assertEqual(tool["inputSchema"].get("properties"), {})
        import jsonschema  # comes with mcp, which checks structured results with it
        jsonschema.validate(EXTRA_CREDITS, tool["outputSchema"])  # more keys are allowed
        for data in ({"total_credits": "50.00", "total_usage": 1}, {"total_usage": 1}):
            with self.assertRaises(jsonschema.ValidationError):  # the two numbers are described
                jsonschema.validate({"data": data}, tool["outputSchema"])

    def test_a_balance_with_more_keys_comes_as_it_came_and_the_sdk_client_accepts_it(self):
        self.fake.mode = EXTRA
        result = self.session(lambda client: client.call_tool("get-credit-balance", {}))
        self.assertFalse(result.is_error)
        self.assertEqual(result.structured_content, EXTRA_CREDITS)
        self.assertIs(type(result.structured_content["data"]["total_credits"]), int)  # 50, not 50.0
        self.assertEqual([json.loads(block.text) for block in result.content], [EXTRA_CREDITS])

    def test_tool_call_returns_the_upstream_object_as_structured_content_and_text(self):
        result = self.session(lambda client: client.call_tool("get-credit-balance", {}))
        self.assertFalse(result.is_error)
        self.assertEqual(result.structured_content, CREDITS)
        self.assertEqual([json.loads(block.text) for block in result.content], [CREDITS])

    def test_tool_failure_is_an_error_result_with_the_rest_message(self):
        self.fake.mode = FORBIDDEN
        result = self.session(lambda client: client.call_tool("get-credit-balance", {}))
        self.assertTrue(result.is_error)
        expected = gateway.http_failure(403, "upstream says 403", None).message
        self.assertEqual(result.content[0].text, expected)
        self.assertNotIn(KEY, result.content[0].text)

    def test_malformed_json_rpc_gets_a_client_error_and_the_server_keeps_serving(self):
        port = int(self.url.split(":")[2].split("/")[0])
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        rng = random.Random(20261127)
        for body in (b"{", b"[]", b"null", b'{"jsonrpc": "2.0"}', b'{"jsonrpc": "2.0", "id": 1, "method": 5}',
                     b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": 7}}',
                     rng.getrandbits(800).to_bytes(100, "little")):
            self.assertLess(request(port, "POST", "/mcp", headers, body)[0], 500, body)
        result = self.session(lambda client: client.call_tool("get-credit-balance", {}))
        self.assertEqual(result.structured_content, CREDITS)

    def test_stdio_serves_the_same_tool_and_opens_no_http_port(self):
        rest = free_port()
        params = mcp.StdioServerParameters(
            command=sys.executable, args=[os.path.join(HERE, "credits_gateway.py"), "--stdio", "--rest-port",
                                          str(rest), "--base-url", self.fake.base_url],
            env=dict(os.environ, OPENROUTER_API_KEY=KEY))

        async def run():
            async with mcp.Client(params) as client:
                tools = await client.list_tools()
                result = await client.call_tool("get-credit-balance", {})
                return tools, result, refuses(rest)
        tools, result, refused = asyncio.run(run())
        self.assertEqual([tool.name for tool in tools.tools], ["get-credit-balance"])
        self.assertEqual(result.structured_content, CREDITS)
        self.assertTrue(refused)

    def test_subscriptions_listen_is_refused_at_once_and_twenty_sessions_leave_the_slots_free(self):
        state = start_gateway(self, "--max-connections", "3", "--idle-timeout", "30")
        url = "http://127.0.0.1:%d/mcp" % state.mcp.server_address[1]

        async def listen_then_call():
            async with mcp.Client(url, mode="auto") as client:  # discovers 2026-07-28
                self.assertEqual(client.protocol_version, "2026-07-28")
                with self.assertRaises(mcp.MCPError) as caught:  # "Method not found", not a stream
                    async with client.listen(tools_list_changed=True):
                        pass
                self.assertEqual(caught.exception.error.code, -32601)
                return await client.call_tool("get-credit-balance", {})
        for session in range(20):
            started = time.monotonic()
            result = asyncio.run(asyncio.wait_for(listen_then_call(), 10))
            self.assertEqual(result.structured_content, CREDITS, session)
            self.assertLess(time.monotonic() - started, 3, session)
        self.assertEqual(mcp_call(state.mcp.server_address[1])[0], 200)  # no slot is left held

    def test_a_cancelled_call_over_stdio_leaves_the_shared_call_and_the_server_serving(self):
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "credits_gateway.py"), "--stdio",
                                 "--base-url", self.fake.base_url], env=dict(os.environ, OPENROUTER_API_KEY=KEY),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(proc.kill)
        answers = queue.Queue()
        threading.Thread(target=lambda: [answers.put(json.loads(line)) for line in proc.stdout], daemon=True).start()

        def send(message):
            proc.stdin.write(json.dumps(dict(message, jsonrpc="2.0")) + "\n")
            proc.stdin.flush()

        def answer_to(request_id):
            while True:
                message = answers.get(timeout=10)
                if message.get("id") == request_id:
                    return message
        send({"id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
        self.assertIn("result", answer_to(1))
        send({"method": "notifications/initialized"})
        self.fake.hold = threading.Event()
        send({"id": 2, "method": "tools/call", "params": {"name": "get-credit-balance", "arguments": {}}})
        deadline = time.monotonic() + 10
        while self.fake.calls < 1:  # the call is in flight, held at the fake
            self.assertLess(time.monotonic(), deadline, "the call never reached the fake")
            time.sleep(0.01)
        send({"method": "notifications/cancelled", "params": {"requestId": 2, "reason": "the user stopped it"}})
        send({"id": 3, "method": "tools/call", "params": {"name": "get-credit-balance", "arguments": {}}})
        self.fake.hold.set()
        self.assertEqual(answer_to(3)["result"]["structuredContent"], CREDITS)
        send({"id": 4, "method": "tools/call", "params": {"name": "get-credit-balance", "arguments": {}}})
        self.assertEqual(answer_to(4)["result"]["structuredContent"], CREDITS)
        proc.stdin.close()
        self.assertEqual(proc.wait(10), 0)
        self.assertNotIn("Traceback", proc.stderr.read())
        proc.stdout.close()
        proc.stderr.close()

    def test_foreign_host_header_is_refused_on_loopback(self):
        port = int(self.url.split(":")[2].split("/")[0])
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        headers = {"Host": "evil.example:%d" % port, "Content-Type": "application/json",
                   "Accept": "application/json, text/event-stream"}
        self.assertEqual(request(port, "POST", "/mcp", headers, body)[0], 421)


# --- Never a false balance ---------------------------------------------------------

class TestTrueBalance(FakeUpstreamTestCase):
    """OpenRouter answers an inference key's /credits with two zeros, not the 403 it documents.
    Two zeros are passed on only when GET /key says the key is a management key (a new account);
    otherwise every surface says what is wrong, and never shows them as a balance."""

    def fresh_gateway(self, *args):
        """A gateway of its own (it remembers what /key said for its life): (REST, MCP port)."""
        server = start_gateway(self, *args)
        return server.rest.server_address[1], server.mcp.server_address[1] if server.mcp_status == "ready" else None

    def test_an_inference_key_is_a_502_on_rest_an_error_on_mcp_and_no_balance_on_metrics(self):
        self.fake.mode = INFERENCE_KEY
        rest, mcp_port = self.fresh_gateway()
        status, _, body = request(rest, "GET", "/v1/credits")
        message = json.loads(body)["error"]["message"]
        self.assertEqual(status, 502)
        for words in ("two zeros for an inference key", "management key", gateway.MANAGEMENT_KEYS_URL):
            self.assertIn(words, message)
        samples, _ = parse_metrics(request(rest, "GET", "/metrics")[2].decode())
        self.assertEqual(samples["openrouter_up"], {"": 0.0})
        self.assertNotIn("openrouter_credits_remaining", samples)
        if mcp_port:
            async def call():
                async with mcp.Client("http://127.0.0.1:%d/mcp" % mcp_port) as client:
                    return await client.call_tool("get-credit-balance", {})
            result = asyncio.run(call())
            self.assertTrue(result.is_error)
            self.assertEqual(result.content[0].text, message)

    @needs_mcp
    def test_an_object_that_is_no_balance_is_the_same_502_on_rest_mcp_and_stdio(self):
        """Valid JSON that REST could pass on but MCP could not (a lone surrogate; arrays 300
        deep), and numbers that are none: every surface answers the same, and nothing crashes."""
        from mcp.client.stdio import stdio_client  # its errlog keeps what the gateway writes
        modes = (SURROGATE, NESTED, STRINGS, BIG_INT)
        rest, mcp_port = self.fresh_gateway()
        errlog = tempfile.TemporaryFile("w+")
        self.addCleanup(errlog.close)
        stdio = mcp.StdioServerParameters(command=sys.executable, args=[
            GATEWAY, "--stdio", "--base-url", self.fake.base_url], env=environment())

        async def call_in_each_mode(transport):
            async with mcp.Client(transport) as client:
                results = {}
                for mode in modes:
                    self.fake.mode = mode
                    results[mode] = await client.call_tool("get-credit-balance", {})
                return results
        over_http = asyncio.run(call_in_each_mode("http://127.0.0.1:%d/mcp" % mcp_port))
        over_stdio = asyncio.run(call_in_each_mode(stdio_client(stdio, errlog=errlog)))
        for mode in modes:
            self.fake.mode = mode
            status, _, body = request(rest, "GET", "/v1/credits")
            message = json.loads(body)["error"]["message"]
            self.assertEqual((status, message), (502, gateway.NOT_A_BALANCE), mode)
            for result in (over_http[mode], over_stdio[mode]):
                self.assertTrue(result.is_error, mode)
                self.assertEqual([block.text for block in result.content], [message], mode)
        errlog.seek(0)
        self.assertNotIn("Traceback", errlog.read())

    def test_a_new_account_with_a_management_key_passes_its_zeros_on(self):
        self.fake.mode = NEW_ACCOUNT
        rest, _ = self.fresh_gateway()
        status, _, body = request(rest, "GET", "/v1/credits")
        self.assertEqual((status, json.loads(body)), (200, ZEROS))
        samples, _ = parse_metrics(request(rest, "GET", "/metrics")[2].decode())
        self.assertEqual((samples["openrouter_up"], samples["openrouter_credits_remaining"]), ({"": 1.0}, {"": 0.0}))

    def test_a_failing_key_lookup_is_said_and_the_zeros_are_not_shown(self):
        self.fake.mode = KEY_LOOKUP_FAILS
        rest, _ = self.fresh_gateway()
        status, _, body = request(rest, "GET", "/v1/credits")
        message = json.loads(body)["error"]["message"]
        self.assertEqual(status, 502)
        self.assertIn("GET /key could not tell", message)
        self.assertIn("key lookup is down", message)
        self.assertNotIn("total_credits", body.decode())

    def test_a_funded_account_costs_no_key_call_and_an_inference_key_one_in_20_polls(self):
        for mode, expected_status, expected_key_calls in ((OK, 200, 0), (INFERENCE_KEY, 502, 1)):
            self.setUp()  # a fresh count
            self.fake.mode = mode
            rest, _ = self.fresh_gateway()
            statuses = {request(rest, "GET", "/v1/credits")[0] for _ in range(20)}
            self.assertEqual(statuses, {expected_status}, mode)
            self.assertEqual((self.fake.calls - self.fake.key_calls, self.fake.key_calls), (20, expected_key_calls), mode)

    def test_both_calls_together_stay_within_the_timeout(self):
        self.fake.mode = SLOW_ZEROS  # 0.6 s for /credits, 0.6 s more for /key: past 1 s together
        rest, _ = self.fresh_gateway("--timeout", "1")
        started = time.monotonic()
        self.assertEqual(request(rest, "GET", "/v1/credits")[0], 504)
        self.assertLess(time.monotonic() - started, 1.15)

    def test_once_and_min_balance_exit_1_for_an_inference_key_and_a_new_account_is_its_zeros(self):
        cases = ((INFERENCE_KEY, [], 1), (INFERENCE_KEY, ["--min-balance", "5"], 1),
                 (KEY_LOOKUP_FAILS, ["--min-balance", "5"], 1), (NEW_ACCOUNT, [], 0),
                 (NEW_ACCOUNT, ["--min-balance", "5"], 3))
        for mode, flags, expected in cases:
            self.fake.mode = mode
            code, out, err = self.finish(self.run_gateway("--once", *flags, "--base-url", self.fake.base_url))
            self.assertEqual(code, expected, (mode, flags, err))
            self.assertEqual(json.loads(out) if out else None, ZEROS if mode == NEW_ACCOUNT else None, mode)
            if expected == 1:
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertIn("/key" if mode == KEY_LOOKUP_FAILS else "inference key", err)

    def test_a_private_ca_given_by_ssl_cert_file_is_trusted_and_none_other(self):
        folder = tempfile.mkdtemp(prefix="credits-ca-")
        self.addCleanup(shutil.rmtree, folder, True)
        ca, cert, key = make_private_ca(folder)
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        fake = start_fake(tls)
        self.addCleanup(stop_fake, fake)
        code, out, _ = self.finish(self.run_gateway("--once", "--base-url", fake.base_url,
                                                    env=dict(os.environ, OPENROUTER_API_KEY=KEY, SSL_CERT_FILE=ca)))
        self.assertEqual((code, json.loads(out)), (0, CREDITS))
        code, _, err = self.finish(self.run_gateway("--once", "--base-url", fake.base_url))
        self.assertEqual(code, 1)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", err)

    def test_the_trust_store_is_read_once_so_a_changed_ca_file_needs_a_restart(self):
        folder = tempfile.mkdtemp(prefix="credits-ca-")
        self.addCleanup(shutil.rmtree, folder, True)
        ca, cert, key = make_private_ca(folder)
        os.mkdir(os.path.join(folder, "other"))
        other_ca = make_private_ca(os.path.join(folder, "other"))[0]
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)
        fake = start_fake(tls)
        self.addCleanup(stop_fake, fake)
        trusted = os.path.join(folder, "trusted.pem")
        shutil.copy(ca, trusted)
        env = dict(os.environ, OPENROUTER_API_KEY=KEY, SSL_CERT_FILE=trusted)
        proc = self.run_gateway("--base-url", fake.base_url, "--rest-port", "0", "--no-mcp", env=env)
        rest = port_of(self.wait_lines(proc, 1)[0])
        self.assertEqual(request(rest, "GET", "/v1/credits")[0], 200)
        shutil.copy(other_ca, trusted)  # a CA that did not sign the fake's certificate
        status, _, body = request(rest, "GET", "/v1/credits")  # no cache: a second upstream call
        self.assertEqual((status, json.loads(body)), (200, CREDITS))
        self.assertEqual(fake.calls, 2)
        code, _, err = self.finish(self.run_gateway("--once", "--base-url", fake.base_url, env=env))
        self.assertEqual(code, 1)  # a new process reads the new file, and refuses the upstream
        self.assertIn("CERTIFICATE_VERIFY_FAILED", err)


class TestMcpClientsUnstuck(FakeUpstreamTestCase):
    """What MCP clients show: the front door's refusals on the MCP port are JSON-RPC errors, OAuth
    probes learn that there is no OAuth, and the server tells what its tool returns."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if mcp is None:
            raise unittest.SkipTest("mcp is not installed")
        state = start_gateway(cls, token="caller-token")
        cls.rest, cls.port = state.rest.server_address[1], state.mcp.server_address[1]
        cls.url = "http://127.0.0.1:%d/mcp" % cls.port

    def client(self, action, token="caller-token", mode="auto"):
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async def run():
            headers = {"Authorization": "Bearer " + token} if token else {}
            async with httpx2.AsyncClient(headers=headers) as http_client:
                async with mcp.Client(streamable_http_client(self.url, http_client=http_client), mode=mode) as client:
                    return await action(client)
        return asyncio.run(asyncio.wait_for(run(), 20))

    def test_a_missing_token_reaches_the_sdk_client_as_the_gateways_message(self):
        with self.assertRaises(Exception) as caught:
            self.client(lambda client: client.list_tools(), token=None)
        status, headers, body = mcp_call(self.port)
        message = json.loads(body)["error"]["message"]
        self.assertIn(message, repr(caught.exception) + str(caught.exception))
        self.assertEqual((status, headers["WWW-Authenticate"]), (401, "Bearer"))
        self.assertTrue(message.startswith("Send Authorization: Bearer <caller token>"), message)
        self.assertEqual(json.loads(body)["jsonrpc"], "2.0")
        status, _, body = request(self.rest, "GET", "/v1/credits")  # REST keeps OpenRouter's shape
        self.assertEqual((status, json.loads(body)["error"]["code"]), (401, 401))

    def test_an_sse_client_is_told_that_only_streamable_http_is_served(self):
        headers = {"Authorization": "Bearer caller-token", "Accept": "text/event-stream"}
        status, response_headers, body = request(self.port, "GET", "/mcp", headers)
        self.assertEqual((status, response_headers["Allow"]), (405, "POST"))
        message = json.loads(body)["error"]["message"]
        for words in ("streamable HTTP only", "POST JSON-RPC to /mcp", "SSE transport", "not served"):
            self.assertIn(words, message)

    def test_every_refusal_on_the_mcp_port_is_a_json_rpc_error_with_its_http_status(self):
        cases = ((421, {"Host": "evil.example"}, "/mcp"), (404, {}, "/nowhere"), (405, {}, "/mcp"))
        for status, headers, path in cases:
            method = "GET" if status == 405 else "POST"
            got, _, body = request(self.port, method, path, {"Authorization": "Bearer caller-token", **headers}, b"{}")
            answer = json.loads(body)
            self.assertEqual((got, answer["jsonrpc"], answer["id"]), (status, "2.0", None), path)
            self.assertTrue(answer["error"]["message"], path)

    def test_oauth_probes_learn_there_is_no_oauth(self):
        for path in OAUTH_PROBES:
            method = "POST" if path == "/register" else "GET"
            status, _, body = request(self.port, method, path, {"Content-Type": "application/json"}, b"{}")
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["error"]["message"], gateway.NO_OAUTH, path)
        self.assertIn("CREDITS_GATEWAY_TOKEN", gateway.NO_OAUTH)

    def test_instructions_and_the_tool_list_cache_hint_in_both_protocol_eras(self):
        async def look(client):
            return client.protocol_version, client.instructions, await client.list_tools()
        for mode, version, ttl in (("auto", "2026-07-28", 24 * 3600 * 1000), ("legacy", None, 0)):
            protocol, instructions, tools = self.client(look, mode=mode)
            if version:
                self.assertEqual(protocol, version)
            else:
                self.assertNotEqual(protocol, "2026-07-28")
            for words in ("get-credit-balance", "no arguments", "total_credits - total_usage", "US dollars"):
                self.assertIn(words, instructions, mode)
            self.assertEqual(tools.ttl_ms, ttl, mode)
            self.assertEqual([tool.name for tool in tools.tools], ["get-credit-balance"])


# --- Proxies, names and addresses: the connect phase -----------------------------------

GATEWAY = os.path.join(HERE, "credits_gateway.py")
LIMIT = 3.5  # --timeout 2, plus what starting Python and answering may take


def environment(**variables):
    """os.environ without any *_proxy variable of the machine's, with the key and `variables`."""
    environ = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    return dict(environ, OPENROUTER_API_KEY=KEY, **variables)


def one_line(test, err):
    """The one line a failed --once writes, without its prefix."""
    lines = err.splitlines()
    test.assertEqual(len(lines), 1, err)
    test.assertTrue(lines[0].startswith("credits-gateway: "), err)
    test.assertNotIn("Traceback", err)
    return lines[0]


def exits_within(test, proc, started, seconds):
    """Wait for `proc` to exit until `seconds` after `started`; fail if it is still running."""
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(max(0.0, started + seconds - time.monotonic()))
    if proc.poll() is None:
        test.fail("still running %g s after it started" % seconds)
    return time.monotonic() - started


def accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class DrippingProxy:
    """A proxy that takes a CONNECT and answers it one byte every 0.1 s, forever: each read
    the gateway makes is quick, the answer never ends. `connected` is set once a CONNECT came.
    With `establish_after`, it answers 200 whole after that many seconds instead, and then
    says nothing more: the TLS handshake through the tunnel stalls."""

    def __init__(self, establish_after=None):
        self.establish_after = establish_after
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connected, self.stopped, self.requests = threading.Event(), threading.Event(), []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed by close()
                return
            threading.Thread(target=self.drip, args=(conn,), daemon=True).start()

    def drip(self, conn):
        with conn:
            conn.settimeout(10)
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
            self.requests.append(head)
            self.connected.set()
            if self.establish_after is not None:
                if not self.stopped.wait(self.establish_after):  # the pace of a slow proxy
                    with contextlib.suppress(OSError):
                        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.stopped.wait(10)  # the tunnel is open; the target never speaks
                return
            answer = b"HTTP/1.1 200 Connection established\r\nX-Pad: "
            sent = 0
            while not self.stopped.wait(0.1):  # the pace of the drip, not a synchronisation
                byte = answer[sent:sent + 1] or b"a"
                sent += 1
                try:
                    conn.sendall(byte)
                except OSError:  # the gateway gave up on it
                    return

    def close(self):
        self.stopped.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self.listener.close()


def get_within(port, seconds):
    """GET /v1/credits: (status, parsed JSON body, seconds taken), or AssertionError if no
    whole answer comes within `seconds`."""
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=seconds)
    try:
        conn.request("GET", "/v1/credits")
        response = conn.getresponse()
        body = response.read()
    except socket.timeout:
        raise AssertionError("no answer within %g s" % seconds) from None
    finally:
        conn.close()
    assert KEY not in body.decode("latin-1"), "the key leaked"
    return response.status, json.loads(body), time.monotonic() - started


# --- The connect phase is bounded by --timeout ----------------------------------------

class TestConnectThroughAStallingProxy(FakeUpstreamTestCase):
    """A proxy that answers CONNECT a byte at a time: the CONNECT exchange counts against
    --timeout like the rest of the call, on --once, on REST, and through a SIGTERM."""

    def setUp(self):
        super().setUp()
        self.proxy = DrippingProxy()
        self.addCleanup(self.proxy.close)
        self.env = environment(HTTPS_PROXY="http://127.0.0.1:%d" % self.proxy.port)
        # Only loopback: the target is never resolved, and would be refused if the proxy were skipped.
        self.url = "https://127.0.0.1:%d/api/v1" % free_port()

    def serving_gateway(self):
        proc = self.run_gateway("--base-url", self.url, "--timeout", "2", "--rest-port", "0", "--mcp-port", "0",
                                "--no-mcp", "--quiet", env=self.env)
        line = self.wait_lines(proc, 1)[0]
        self.assertIn("REST listening on http://127.0.0.1:", line)
        return proc, port_of(line)

    def test_a_tls_handshake_after_a_slow_tunnel_gets_only_what_is_left_of_the_timeout(self):
        proxy = DrippingProxy(establish_after=1.2)  # then the handshake stalls: 0.8 s are left
        self.addCleanup(proxy.close)
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", self.url,
                                env=environment(HTTPS_PROXY="http://127.0.0.1:%d" % proxy.port))
        exits_within(self, proc, started, 2.9)  # not 1.2 s + a whole 2 s for the handshake
        code, _, err = self.finish(proc)
        self.assertEqual(code, 1)
        self.assertIn("did not answer within 2 s", one_line(self, err))

    def test_once_through_a_proxy_dripping_its_connect_answer_exits_1_at_the_timeout(self):
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", self.url, env=self.env)
        exits_within(self, proc, started, LIMIT)
        code, out, err = self.finish(proc)
        self.assertEqual((code, out), (1, ""))
        self.assertIn("did not answer within 2 s", one_line(self, err))
        self.assertTrue(self.proxy.requests[0].startswith(b"CONNECT 127.0.0.1:"), self.proxy.requests)

    def test_rest_through_a_proxy_dripping_its_connect_answer_answers_504_at_the_timeout(self):
        proc, port = self.serving_gateway()
        status, body, took = get_within(port, LIMIT)
        self.assertEqual((status, body["error"]["code"]), (504, 504), body)
        self.assertIn("did not answer within 2 s", body["error"]["message"])
        self.assertTrue(self.proxy.connected.is_set())
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    def test_sigterm_during_a_dripping_connect_exits_0_soon_and_the_request_still_gets_its_504(self):
        proc, port = self.serving_gateway()
        answers = []

        def get():
            try:
                answers.append(get_within(port, 10))
            except Exception as error:  # an answer cut off by the exit, say
                answers.append(error)
        client = threading.Thread(target=get)
        client.start()
        self.assertTrue(self.proxy.connected.wait(5), "the request never reached the proxy")
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        exits_within(self, proc, signalled, 2 + 1.5)  # --timeout + 1.5 s
        client.join(5)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(answers), 1)
        self.assertIsInstance(answers[0], tuple, "the request in flight got no answer: %r" % (answers[0],))
        status, body, _ = answers[0]
        self.assertEqual((status, body["error"]["code"]), (504, 504), body)


# --- Inside a private network namespace ------------------------------------------------
# run_in_namespace() runs namespace_main() as root under `unshare -mn`: the network namespace
# has lo alone, and /etc files are bind-mounted in the private mount namespace only. The
# functions down to run_in_namespace() run there, in a Python of their own.

def silent_resolver():
    """A resolver on 127.0.0.1:53 that takes every query and never answers: the list of the
    names it is asked for, which grows as queries come."""
    asked = []
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind(("127.0.0.1", 53))

    def listen():
        while True:
            query = resolver.recv(4096)[12:]  # the question, after the 12-byte header
            labels = []
            while query and query[0]:
                labels.append(query[1:1 + query[0]].decode("ascii", "replace"))
                query = query[1 + query[0]:]
            asked.append(".".join(labels))
    threading.Thread(target=listen, daemon=True).start()
    return asked


def stalling_listener(addresses, keep):
    """A listener that never accepts, its queue full, so that SYNs to it are dropped: (its port,
    facts: how many connections filled its queue, and whether a connect to each of `addresses`
    stalls). The connections that fill it go into `keep`, to be held open."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(0)
    keep.append(listener)
    port = listener.getsockname()[1]
    filled = 0
    for _ in range(64):  # fill the queue until a connect stalls
        try:
            keep.append(socket.create_connection(("127.0.0.1", port), timeout=0.5))
            filled += 1
        except socket.timeout:
            break
    stalls = {}
    for address in addresses:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            stalls[address] = "connected"
        except socket.timeout:
            stalls[address] = "stalled"
        except OSError as error:
            stalls[address] = repr(error)
    return port, {"queued": filled, "stalls": stalls}


def start_tinyproxy(config, tmp, port):
    """tinyproxy with `config` (a file's text), once it accepts on `port`: its Popen."""
    path = os.path.join(tmp, "tinyproxy.conf")
    with open(path, "w") as file:
        file.write(config)
    with open(os.path.join(tmp, "tinyproxy.out"), "w") as log:
        proxy = subprocess.Popen(["tinyproxy", "-d", "-c", path], stdout=log, stderr=log)
    try:
        wait_until(lambda: accepts(port) or proxy.poll() is not None, 10, "tinyproxy listening")
    except AssertionError:
        proxy.kill()
        raise
    if proxy.poll() is not None:
        with open(os.path.join(tmp, "tinyproxy.out")) as log:
            raise SystemExit("tinyproxy did not start: " + log.read())
    return proxy


def run_to_the_end(command, env, limit):
    """Run the gateway until it exits, or kill it at `limit` seconds (then its code is None)."""
    started = time.monotonic()
    gateway = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = gateway.communicate(timeout=limit)
        code = gateway.returncode
    except subprocess.TimeoutExpired:
        gateway.kill()
        out, err = gateway.communicate()
        code = None
    return {"code": code, "out": out, "err": err, "took": time.monotonic() - started}


def serve_and_call(command, env, limit, client):
    """Start a serving gateway, and once it listens, call client(its pid, its REST port); then
    SIGTERM it, and kill it if it is still running `limit` seconds later (its code is then None).
    What the client returned is "client" in the result."""
    started = time.monotonic()
    gateway = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    err = []

    def drain():  # as the gateway writes it, so that a full pipe never blocks it
        for line in gateway.stderr:
            err.append(line)
            lines.put(line)
        lines.put(None)
    draining = threading.Thread(target=drain, daemon=True)
    draining.start()
    try:
        line = lines.get(timeout=10)
        if not line or "REST listening on" not in line:
            raise SystemExit("the gateway did not listen: %r" % "".join(err))
        answer = client(gateway.pid, port_of(line))
        gateway.send_signal(signal.SIGTERM)
        try:
            code = gateway.wait(limit)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        if gateway.poll() is None:
            gateway.kill()
        gateway.wait()
        draining.join(5)
    return {"code": code, "out": gateway.stdout.read(), "err": "".join(err),
            "took": time.monotonic() - started, "client": answer}


def namespace_main(spec):
    """The namespace's side of run_in_namespace(), which tells what `spec` holds. It prints one
    JSON object: the gateway's exit code (None: killed at the limit), its output, the seconds it
    took, what the client returned (with a client), the names the silent resolver was asked
    for, and what it checked first (facts)."""
    tmp, facts, ports, keep, children = spec["tmp"], {}, {"proxy_port": free_port()}, [], []
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    for name, text in spec["files"].items():  # /etc/resolv.conf, /etc/hosts, /etc/host.conf
        path = os.path.join(tmp, os.path.basename(name))
        with open(path, "w") as file:
            file.write(text)
        subprocess.run(["mount", "--bind", path, name], check=True)
    asked = silent_resolver()

    def fill(text):  # {proxy_port}, {stall_port} and {tmp} in args, env and the config
        for name, value in dict(ports, tmp=tmp).items():
            text = text.replace("{%s}" % name, str(value))
        return text
    try:
        if spec.get("stall"):
            ports["stall_port"], facts = stalling_listener(spec["stall"], keep)
        if spec.get("resolve"):
            infos = socket.getaddrinfo(spec["resolve"], 80, type=socket.SOCK_STREAM)
            facts["addresses"] = [info[4][0] for info in infos]
        if spec.get("tinyproxy"):
            children.append(start_tinyproxy(fill(spec["tinyproxy"]), tmp, ports["proxy_port"]))
        command = [sys.executable, spec["gateway"]] + [fill(arg) for arg in spec["args"]]
        env = {name: fill(value) for name, value in spec["env"].items()}
        if spec.get("client"):
            result = serve_and_call(command, env, spec["limit"], globals()[spec["client"]])
        else:
            result = run_to_the_end(command, env, spec["limit"])
    finally:
        for child in children:
            child.terminate()
            child.wait(5)
        for sock in keep:
            sock.close()
    print(json.dumps(dict(result, asked=asked, facts=facts)))


def run_in_namespace(test, args, env, files, limit=LIMIT, client=None, **spec):
    """Run the gateway with `args` inside `unshare -mn`, /etc `files` bind-mounted, a silent
    resolver on 127.0.0.1:53; args, env and a tinyproxy config may name {proxy_port}, {stall_port}
    and {tmp}. In `spec`: stall (addresses a listener's stalled port is tried from), resolve (a
    name looked up first), tinyproxy (its config). Without a `client`, the gateway runs until it
    exits or `limit` passes; with one, a module-level function, the gateway serves (args must
    make it listen on REST) while client(its pid, its REST port) runs in the namespace, then
    gets a SIGTERM and `limit` seconds to exit. The JSON result of namespace_main(), once the
    test has checked the key never leaked."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        test.skipTest("needs root and unshare(1) for a private network and mount namespace")
    probe = subprocess.run(["unshare", "-mn", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        test.skipTest("unshare -mn is not permitted here: %s" % probe.stderr.strip())
    tmp = tempfile.mkdtemp(prefix="credits-ns-")
    test.addCleanup(shutil.rmtree, tmp, True)
    spec = dict(spec, tmp=tmp, gateway=GATEWAY, args=list(args), env=env, files=files, limit=limit,
                client=client and client.__name__)
    module = os.path.splitext(os.path.basename(__file__))[0]  # not __name__: it may be __main__
    main = ("import json, sys; sys.path.insert(0, %r); import %s as tests; "
            "tests.namespace_main(json.loads(sys.argv[1]))" % (HERE, module))
    done = subprocess.run(["unshare", "-mn", sys.executable, "-c", main, json.dumps(spec)],
                          capture_output=True, text=True, timeout=limit + 60)
    test.assertEqual(done.returncode, 0, done.stderr)
    result = json.loads(done.stdout)
    test.assertNotIn(KEY, result["out"] + result["err"])
    return result


SILENT_RESOLVER = {"/etc/resolv.conf": "nameserver 127.0.0.1\n"}  # glibc's default: 5 s, twice


class TestConnectPhaseInANamespace(unittest.TestCase):
    """Inside a private network namespace: a resolver that never answers, a proxy whose own
    resolver never answers, and a name whose three addresses all stall. --once gives up at
    --timeout in each case, not after the resolver's 10 s or 2 s per address."""

    def test_once_for_a_name_that_does_not_resolve_exits_1_saying_so(self):
        files = {"/etc/nsswitch.conf": "hosts: files\n", "/etc/hosts": "127.0.0.1 localhost\n"}
        result = run_in_namespace(self, ["--once", "--base-url", "https://openrouter.invalid/api/v1"],
                                  environment(), files)
        self.assertEqual((result["code"], result["out"]), (1, ""), result)
        line = one_line(self, result["err"])
        self.assertIn("Could not reach OpenRouter: ", line)
        self.assertIn("Name or service not known", line)

    def test_once_through_a_proxy_whose_resolver_never_answers_exits_1_at_the_timeout(self):
        if not shutil.which("tinyproxy"):
            self.skipTest("tinyproxy is not installed (apt-get install tinyproxy)")
        conf = ("Port {proxy_port}\nListen 127.0.0.1\nAllow 127.0.0.1\nTimeout 30\n"
                "LogFile \"{tmp}/tinyproxy.log\"\nPidFile \"{tmp}/tinyproxy.pid\"\n")
        result = run_in_namespace(self, ["--once", "--timeout", "2", "--base-url", "https://openrouter.test/api/v1"],
                                  environment(HTTPS_PROXY="http://127.0.0.1:{proxy_port}"), SILENT_RESOLVER,
                                  tinyproxy=conf)
        self.assertIn("openrouter.test", result["asked"], "tinyproxy never asked its resolver")
        self.assertIsNotNone(result["code"], "still running after %g s: %r" % (LIMIT, result))
        self.assertEqual((result["code"], result["out"]), (1, ""), result)
        one_line(self, result["err"])
        self.assertLess(result["took"], LIMIT)

    def test_once_with_a_resolver_that_never_answers_exits_1_at_the_timeout(self):
        result = run_in_namespace(self, ["--once", "--timeout", "2", "--base-url", "https://openrouter.test/api/v1"],
                                  environment(), SILENT_RESOLVER)
        self.assertIn("openrouter.test", result["asked"], "the gateway never asked the resolver")
        self.assertIsNotNone(result["code"], "still running after %g s: %r" % (LIMIT, result))
        self.assertEqual((result["code"], result["out"]), (1, ""), result)
        one_line(self, result["err"])
        self.assertLess(result["took"], LIMIT)

    def test_once_to_a_name_whose_three_addresses_all_stall_exits_1_at_the_timeout(self):
        addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
        files = dict(SILENT_RESOLVER, **{
            "/etc/hosts": "127.0.0.1 localhost\n" + "".join("%s stall.test\n" % a for a in addresses),
            "/etc/host.conf": "multi on\n"})  # glibc's files backend returns every line of a name
        args = ["--once", "--timeout", "2", "--base-url", "http://stall.test:{stall_port}/api/v1"]
        result = run_in_namespace(self, args, environment(), files, resolve="stall.test", stall=addresses)
        self.assertEqual(result["facts"]["addresses"], addresses)
        self.assertEqual(result["facts"]["stalls"], dict.fromkeys(addresses, "stalled"))
        self.assertIsNotNone(result["code"], "still running after %g s: %r" % (LIMIT, result))
        self.assertEqual((result["code"], result["out"]), (1, ""), result)
        one_line(self, result["err"])
        self.assertLess(result["took"], LIMIT)


def poll_24_times(pid, port):
    """A client, for run_in_namespace(): GET /v1/credits 24 times in a row, each once the last
    was answered. Each answer's [status, seconds], and the gateway's threads and open
    descriptors after the first answer and after the last."""
    def counts():
        return {"threads": len(os.listdir("/proc/%d/task" % pid)), "fds": len(os.listdir("/proc/%d/fd" % pid))}
    answers, after = [], {}
    for number in range(24):
        started = time.monotonic()
        status = request(port, "GET", "/v1/credits")[0]
        answers.append([status, time.monotonic() - started])
        if number == 0:
            after["first"] = counts()
    after["last"] = counts()
    return {"answers": answers, "after": after}


class TestASilentResolverPolled(unittest.TestCase):
    """A serving gateway whose resolver never answers (it gives up only after 10 s), polled
    again and again: each poll gets its 504 at --timeout, and the lookups it gave up on do not
    pile up threads or descriptors, however many polls come."""

    def test_24_polls_each_get_504_at_the_timeout_and_leave_the_threads_and_descriptors_flat(self):
        args = ["--no-mcp", "--quiet", "--rest-port", "0", "--timeout", "0.25",
                "--base-url", "https://openrouter.test/api/v1"]
        result = run_in_namespace(self, args, environment(), SILENT_RESOLVER, client=poll_24_times)
        self.assertIn("openrouter.test", result["asked"], "the gateway never asked the resolver")
        self.assertEqual(result["code"], 0, result)  # it took its SIGTERM
        answers, after = result["client"]["answers"], result["client"]["after"]
        self.assertEqual([status for status, _ in answers], [504] * 24, result)
        self.assertLess(max(took for _, took in answers), 0.25 + 0.5, answers)
        # Within the resolver's 10 s, every lookup given up on may still be running: with a
        # thread and a socket each, 24 polls would leave some 23 more of each than one did.
        for what in ("threads", "fds"):
            self.assertLessEqual(after["last"][what], after["first"][what] + 3, (what, after))


# --- Proxy failures name the proxy, never its credentials -----------------------------

class TestProxyFailures(FakeUpstreamTestCase):
    """Through HTTPS_PROXY (a real tinyproxy, or nothing at all): when the proxy is what failed,
    the line says so, with its address, the variable it came from and its status, and leaves
    out its credentials; OpenRouter and its key are not blamed."""

    def tinyproxy(self, *lines):
        """A tinyproxy on a free loopback port, with `lines` added to its config: its port."""
        if not shutil.which("tinyproxy"):
            self.skipTest("tinyproxy is not installed (apt-get install tinyproxy)")
        tmp = tempfile.mkdtemp(prefix="credits-tinyproxy-")
        self.addCleanup(shutil.rmtree, tmp, True)
        port = free_port()
        conf = os.path.join(tmp, "tinyproxy.conf")
        with open(conf, "w") as file:
            file.write("\n".join(["Port %d" % port, "Listen 127.0.0.1", "Allow 127.0.0.1", "Timeout 30",
                                  'LogFile "%s/tinyproxy.log"' % tmp, 'PidFile "%s/tinyproxy.pid"' % tmp,
                                  *lines]) + "\n")
        log = open(os.path.join(tmp, "tinyproxy.out"), "w")
        self.addCleanup(log.close)
        proc = subprocess.Popen(["tinyproxy", "-d", "-c", conf], stdout=log, stderr=log)
        self.addCleanup(proc.wait, 5)
        self.addCleanup(proc.terminate)
        wait_until(lambda: accepts(port) or proc.poll() is not None, 10, "tinyproxy listening")
        self.assertIsNone(proc.poll(), "tinyproxy ended: %s" % open(log.name).read())
        return port

    def once_through(self, proxy):
        """--once to the fake through HTTPS_PROXY=`proxy`: the exit code and the line it wrote."""
        url = "https://127.0.0.1:%d/api/v1" % self.fake.server_address[1]
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", url, env=environment(HTTPS_PROXY=proxy))
        exits_within(self, proc, started, LIMIT)
        code, out, err = self.finish(proc)
        self.assertEqual(out, "")
        return code, one_line(self, err)

    def assert_names_the_proxy(self, line, port):
        self.assertRegex(line, r"\b[Pp]roxy\b")
        self.assertIn("127.0.0.1:%d" % port, line)
        self.assertIn("HTTPS_PROXY", line)
        self.assertNotIn("OPENROUTER_API_KEY", line)
        self.assertEqual(self.fake.calls, 0)

    def test_a_proxy_given_without_a_port_is_named_with_the_port_urllib_connects_to(self):
        for scheme, port in (("https", 443), ("http", 80)):  # urllib's default for the upstream's scheme
            try:
                listener = socket.create_server(("127.0.0.1", port))
            except OSError:
                self.skipTest("needs to listen on 127.0.0.1:%d (root, and the port free)" % port)
            self.addCleanup(listener.close)
            listener.settimeout(10)
            proc = self.run_gateway("--once", "--timeout", "1", "--base-url", "%s://openrouter.example/api/v1" % scheme,
                                    env=environment(**{scheme.upper() + "_PROXY": "http://127.0.0.1"}))
            connection, _ = listener.accept()  # where urllib went
            connection.close()
            code, _, err = self.finish(proc)
            self.assertEqual(code, 1)
            self.assertIn("127.0.0.1:%d (%s_PROXY)" % (port, scheme.upper()), one_line(self, err))

    def test_a_proxy_that_is_down_is_named_as_what_failed(self):
        port = free_port()
        code, line = self.once_through("http://127.0.0.1:%d" % port)
        self.assertEqual(code, 1)
        self.assert_names_the_proxy(line, port)

    def test_a_proxy_refusing_the_connect_is_named_with_its_403(self):
        port = self.tinyproxy("ConnectPort 443")  # CONNECT to any other port gets 403
        code, line = self.once_through("http://127.0.0.1:%d" % port)
        self.assertEqual(code, 1)
        self.assert_names_the_proxy(line, port)
        self.assertIn("403", line)

    def test_a_proxy_wanting_credentials_is_named_with_its_407(self):
        port = self.tinyproxy("BasicAuth user pass")
        code, line = self.once_through("http://127.0.0.1:%d" % port)
        self.assertEqual(code, 1)
        self.assert_names_the_proxy(line, port)
        self.assertIn("407", line)

    def test_a_proxy_refusing_wrong_credentials_gives_its_401_without_echoing_them(self):
        port = self.tinyproxy("BasicAuth user pass")
        code, line = self.once_through("http://user:WRONGPASS@127.0.0.1:%d" % port)
        self.assertEqual(code, 1)
        self.assertIn("401", line)
        self.assertNotIn("WRONGPASS", line)
        self.assertNotIn("user:", line)
        self.assertNotIn("OPENROUTER_API_KEY", line)  # the proxy's 401 is not OpenRouter rejecting the key
        self.assert_names_the_proxy(line, port)

    def assert_refused_at_start(self, proxy, says):
        """With `proxy` as HTTPS_PROXY, --once and a serving start each exit 2 at once, with one
        line that names the variable and says `says`, never the proxy's password (s3cret)."""
        url = "https://127.0.0.1:%d/api/v1" % self.fake.server_address[1]
        for flags in (["--once"], ["--rest-port", "0", "--mcp-port", "0", "--no-mcp"]):
            with self.subTest(proxy=proxy, flags=flags):
                started = time.monotonic()
                proc = self.run_gateway(*flags, "--timeout", "2", "--base-url", url,
                                        env=environment(HTTPS_PROXY=proxy))
                exits_within(self, proc, started, 5)
                code, out, err = self.finish(proc)
                self.assertEqual((code, out), (2, ""), err)
                self.assertIn(says, one_line(self, err))
                self.assertIn("HTTPS_PROXY", err)
                self.assertNotIn("s3cret", err)
        self.assertEqual(self.fake.calls, 0)

    def test_a_malformed_proxy_variable_exits_2_at_start_naming_it_without_its_credentials(self):
        for proxy in ("http:/user:s3cret@127.0.0.1:3128", "http://user:s3cret@[::1:3128"):  # one slash; [ left open
            self.assert_refused_at_start(proxy, "must be a proxy URL like http://proxy.example:3128")

    def test_a_socks_proxy_exits_2_at_start_saying_only_http_proxies_are_supported(self):
        for proxy in ("socks5://127.0.0.1:1080", "socks4://127.0.0.1:1080", "socks5h://user:s3cret@127.0.0.1:1080"):
            self.assert_refused_at_start(proxy, "only HTTP(S) proxies are supported")

    def test_an_ipv6_proxy_that_is_down_is_named_in_brackets(self):
        try:
            listener = socket.create_server(("::1", 0), family=socket.AF_INET6)
        except OSError:
            self.skipTest("no IPv6 loopback here")
        with listener:
            port = listener.getsockname()[1]  # closed below: then nothing listens there
        code, line = self.once_through("http://[::1]:%d" % port)
        self.assertEqual(code, 1)
        self.assertRegex(line, r"\b[Pp]roxy\b")
        self.assertIn("[::1]:%d" % port, line)
        self.assertIn("HTTPS_PROXY", line)
        self.assertEqual(self.fake.calls, 0)


class TestTheProxyIsTheOneUrllibTakes(FakeUpstreamTestCase):
    """Whether a call goes through a proxy, and which, is what urllib decides from the
    environment (NO_PROXY with a port, an empty lower-case variable): the gateway follows it,
    and names a proxy in a failure only when the call went through one."""

    def test_no_proxy_naming_the_base_urls_host_and_port_goes_direct_and_the_failure_blames_no_proxy(self):
        port, proxy_port = free_port(), free_port()  # nothing listens on either
        env = environment(HTTP_PROXY="http://127.0.0.1:%d" % proxy_port, NO_PROXY="127.0.0.1:%d" % port)
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", "http://127.0.0.1:%d/api/v1" % port,
                                env=env)
        exits_within(self, proc, started, LIMIT)
        code, out, err = self.finish(proc)
        self.assertEqual((code, out), (1, ""), err)
        line = one_line(self, err)
        self.assertNotIn("proxy", line)  # urllib went direct: the refusal is OpenRouter's address
        self.assertNotIn(str(proxy_port), line)

    def test_an_empty_lower_case_http_proxy_overrides_http_proxy_and_the_call_goes_direct(self):
        env = environment(HTTP_PROXY="http://127.0.0.1:%d" % free_port(), http_proxy="")  # a dead proxy
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", self.fake.base_url, env=env)
        exits_within(self, proc, started, LIMIT)
        code, out, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out), CREDITS)
        self.assertEqual(self.fake.calls, 1)


# --- Recovery, and signals -------------------------------------------------------------

class TestRecoveryAfterADrippingAnswer(FakeUpstreamTestCase):
    """An upstream answer cut at --timeout holds up nothing after it: the next request is a
    new call, answered as soon as OpenRouter answers it."""

    def test_the_request_after_a_504_for_a_dripping_answer_gets_the_balance_at_once(self):
        self.fake.mode = DRIP  # its body takes some 15 s, a byte every 0.25 s
        port = start_gateway(self, "--timeout", "1", "--no-mcp").rest.server_address[1]
        status, body, took = get_within(port, 5)
        self.assertEqual((status, body["error"]["code"]), (504, 504), body)
        self.assertLess(took, 1.5)
        self.fake.mode = OK  # while the fake still drips the first answer into the closed connection
        status, body, took = get_within(port, 5)
        self.assertEqual((status, body), (200, CREDITS))
        self.assertLess(took, 1.0)
        self.assertEqual(self.fake.calls, 2)

    def test_a_dripping_answer_asked_for_again_and_again_leaves_no_thread_behind(self):
        self.fake.mode = DRIP  # each answer's body takes some 15 s
        proc = self.run_gateway("--timeout", "0.5", "--no-mcp", "--quiet", "--rest-port", "0",
                                "--base-url", self.fake.base_url)
        port = port_of(self.wait_lines(proc, 1)[0])
        request(port, "GET", "/health/live")
        before = threads_of(proc.pid)
        for _ in range(8):
            status, body, _ = get_within(port, 5)
            self.assertEqual((status, body["error"]["code"]), (504, 504), body)
        wait_until(lambda: threads_of(proc.pid) <= before + 1, 3,
                   "the threads of the calls stopped at --timeout ended (%d before)" % before)


MAIN_THREAD_MARKER = "credits-test: main thread holds a lock"

# Run before a gateway subprocess (run_gateway's `prelude`): the first time a timed
# threading.Condition.wait() of the main thread returns, with its lock taken again, it writes
# MAIN_THREAD_MARKER to stderr and then holds that lock 1 s longer. Event.wait() is such a wait.
HOLD_A_LOCK_PRELUDE = r'''
import sys, threading, time
_wait, _held = threading.Condition.wait, []
def _wait_and_hold(self, timeout=None):
    woken = _wait(self, timeout)
    if timeout is not None and not _held and threading.current_thread() is threading.main_thread():
        _held.append(True)
        sys.stderr.write("%s\n")
        sys.stderr.flush()
        time.sleep(1)
    return woken
threading.Condition.wait = _wait_and_hold''' % MAIN_THREAD_MARKER


# Run before a gateway subprocess (run_gateway's `prelude`): garbage collection runs after every
# 50 new objects, in whichever thread makes them, and each pass begins with a 1 ms pause that lets
# the other threads run, as a finalizer doing I/O would.
SLOW_GARBAGE_COLLECTION_PRELUDE = r'''
import gc, time
def _pause(phase, info):
    if phase == "start":
        time.sleep(0.001)
gc.set_threshold(50)
gc.callbacks.append(_pause)'''


class TestSlowClientsAreCutWhileOthersArrive(FakeUpstreamTestCase):
    """A client that trickles a request which never ends gets its 408 at --idle-timeout, every
    time, while more and more clients arrive and stay and others come and go, and the gateway
    reports no error. Clients arrive and leave between two of the gateway's steps, and a garbage
    collection can run between any two: SLOW_GARBAGE_COLLECTION_PRELUDE makes collections
    frequent and slow in every thread, which widens that real window, as HOLD_A_LOCK_PRELUDE
    does for signals. (Without it, a gateway that once lost its idle timeouts this way
    passed; with it, it failed within a second.)"""

    def trickle(self, port, proc):
        """A request line, a Host and then a header a byte every 0.2 s, never ending: (the
        status line of the answer, seconds from the request line to the answer's first byte)."""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /v1/credits HTTP/1.1\r\n")
            started = time.monotonic()
            sock.sendall(b"Host: localhost\r\nX-Trickle: ")
            sock.settimeout(0.2)  # paces the trickle, while waiting for the answer
            while True:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        self.fail("closed without an answer")
                    break  # the answer has begun
                except socket.timeout:
                    self.assertLess(time.monotonic() - started, 3, "no answer to a trickling client yet; "
                                    "the gateway wrote: %r" % "".join(proc.stderr_lines)[-3000:])
                    sock.sendall(b"a")
            elapsed = time.monotonic() - started
            sock.settimeout(5)
            return read_answer(sock)[0], elapsed

    def test_a_trickling_client_gets_408_at_the_idle_timeout_while_more_and_more_clients_arrive(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", "--quiet",
                                "--idle-timeout", "1", env=environment(), prelude=SLOW_GARBAGE_COLLECTION_PRELUDE)
        port = port_of(self.wait_lines(proc, 1)[0])
        stop, answers = threading.Event(), []
        live = b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n"

        def stay():  # one connection, a request on it every 0.5 s
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                while not stop.is_set():
                    sock.sendall(live)
                    answers.append(sock.recv(65536)[:12])  # one write: the whole answer
                    stop.wait(0.5)

        def come_and_go():  # a request on a new connection, again and again
            while not stop.is_set():
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(live.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                    answers.append(sock.recv(65536)[:12])  # one write: the whole answer
        clients = [threading.Thread(target=come_and_go, daemon=True) for _ in range(4)]

        def arrive():  # every 0.1 s, 10 more clients that stay, for 3 s
            for _ in range(30):
                clients.extend(threading.Thread(target=stay, daemon=True) for _ in range(10))
                for client in clients[-10:]:
                    client.start()
                if stop.wait(0.1):
                    break
        arrival = threading.Thread(target=arrive, daemon=True)
        for thread in (*clients, arrival):
            thread.start()
        try:
            for _ in range(3):  # each while clients arrive
                status_line, elapsed = self.trickle(port, proc)
                self.assertTrue(status_line.startswith("HTTP/1.1 408 "), status_line)
                self.assertLess(elapsed, 1 + 1)  # --idle-timeout, and a second at most
        finally:
            stop.set()
            arrival.join(10)
            for client in clients:
                client.join(10)
        self.assertIn(b"HTTP/1.1 200", answers)
        status_line, elapsed = self.trickle(port, proc)  # and once they have gone
        self.assertTrue(status_line.startswith("HTTP/1.1 408 "), status_line)
        self.assertLess(elapsed, 1 + 1)
        self.assertNotIn("Traceback", "".join(proc.stderr_lines))


class TestSignalsAlwaysStop(FakeUpstreamTestCase):
    """SIGTERM and SIGINT stop a serving gateway with exit 0 whenever they land, even while its
    main thread holds a lock: a signal handler runs in the main thread, between two of its
    steps, and one that takes a lock that thread holds would wait for itself forever."""

    def stops_while_the_main_thread_holds_a_lock(self, signum):
        """A Condition.wait() (Event.wait() runs one) takes its lock again for a few µs as it
        wakes; a handler that takes the same lock (Event.set() does) and lands in those µs
        deadlocks, about once in 1e5 signals. HOLD_A_LOCK_PRELUDE widens that real window to a
        second, and the signal is sent inside it. A gateway whose main thread never waits that
        way shows no marker, and gets the signal 2 s after it listens."""
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", "--quiet",
                                env=environment(), prelude=HOLD_A_LOCK_PRELUDE)
        deadline, marked, lines = time.monotonic() + 10, False, []  # 10 s: Python's start on a slow host
        while not marked and time.monotonic() < deadline:
            try:
                line = proc.new_lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.fail("the gateway ended: %r" % lines)
            lines.append(line)
            if "REST listening on" in line:
                deadline = min(deadline, time.monotonic() + 2)
            marked = line.startswith(MAIN_THREAD_MARKER)
        self.assertTrue(marked or any("REST listening on" in line for line in lines),
                        "neither listening nor holding a lock: %r" % lines)
        signalled = time.monotonic()
        proc.send_signal(signum)
        exits_within(self, proc, signalled, 3)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        self.assertNotIn("Traceback", err)

    def test_sigterm_stops_the_gateway_even_while_its_main_thread_holds_a_lock(self):
        self.stops_while_the_main_thread_holds_a_lock(signal.SIGTERM)

    def test_sigint_stops_the_gateway_even_while_its_main_thread_holds_a_lock(self):
        self.stops_while_the_main_thread_holds_a_lock(signal.SIGINT)


# --- The command line --------------------------------------------------------------

class TestCommandLine(FakeUpstreamTestCase):
    """python credits_gateway.py as users run it: exit codes, signals, one-line errors."""

    def test_missing_or_blank_key_exits_2_with_one_line(self):
        for env in ({}, {"OPENROUTER_API_KEY": "  "}):
            code, out, err = self.finish(self.run_gateway(env=dict(env, PATH=os.environ.get("PATH", ""))))
            self.assertEqual(code, 2)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn("OPENROUTER_API_KEY is not set", err)

    def test_key_with_spaces_or_control_characters_exits_2_without_echoing_it(self):
        for key in (KEY + " x", KEY + "\x07"):
            code, out, err = self.finish(self.run_gateway(env=dict(os.environ, OPENROUTER_API_KEY=key)))
            self.assertEqual(code, 2)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertNotIn("Traceback", err)

    def test_a_caller_token_of_blanks_exits_2_rather_than_turn_caller_authentication_off(self):
        for token in ("   ", "\t", " \t "):
            proc = self.run_gateway("--rest-port", "0", "--no-mcp", "--base-url", self.fake.base_url,
                                    env=dict(os.environ, OPENROUTER_API_KEY=KEY, CREDITS_GATEWAY_TOKEN=token))
            code, out, err = self.finish(proc)
            self.assertEqual((code, out), (2, ""), err)
            self.assertIn("CREDITS_GATEWAY_TOKEN", one_line(self, err))

    def test_base_url_that_is_not_http_exits_2(self):
        for url in ("ftp://example.com/api/v1", "openrouter.ai/api/v1"):
            code, _, err = self.finish(self.run_gateway("--base-url", url))
            self.assertEqual(code, 2)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn("base URL", err)

    def test_busy_port_exits_1_naming_it_and_its_flag(self):
        with socket.create_server(("127.0.0.1", 0)) as busy:
            port = str(busy.getsockname()[1])
            for flag, flags in (("--rest-port", ["--rest-port", port, "--mcp-port", "0"]),
                                ("--mcp-port", ["--rest-port", "0", "--mcp-port", port])):
                code, _, err = self.finish(self.run_gateway("--base-url", self.fake.base_url, *flags))
                self.assertEqual(code, 1)
                self.assertIn("port %s" % port, err.splitlines()[-1])
                self.assertIn("choose another with %s" % flag, err.splitlines()[-1])
                self.assertNotIn("Traceback", err)

    def test_both_busy_ports_are_named_in_one_line_with_their_flags(self):
        with socket.create_server(("127.0.0.1", 0)) as rest, socket.create_server(("127.0.0.1", 0)) as mcp_port:
            ports = [str(sock.getsockname()[1]) for sock in (rest, mcp_port)]
            code, _, err = self.finish(self.run_gateway("--base-url", self.fake.base_url, "--rest-port", ports[0],
                                                        "--mcp-port", ports[1]))
        self.assertEqual((code, len(err.splitlines())), (1, 1), err)
        for words in ("port %s for REST" % ports[0], "port %s for MCP" % ports[1], "--rest-port", "--mcp-port"):
            self.assertIn(words, err)
        self.assertNotIn("Traceback", err)

    def test_bad_flag_values_exit_2_with_one_line(self):
        for flags in (["--rest-port", "abc"], ["--mcp-port", "70000"], ["--timeout", "0"], ["--cache-ttl", "-1"],
                      ["--idle-timeout", "nan"], ["--max-connections", "0"], ["--bogus"]):
            code, _, err = self.finish(self.run_gateway(*flags))
            self.assertEqual(code, 2, flags)
            self.assertEqual(len(err.splitlines()), 1, err)

    def test_unknown_flags_are_named_without_their_values(self):
        cases = {("--api-key", "sk-or-v1-typed-by-hand"): ["--api-key", "OPENROUTER_API_KEY"],
                 ("--api-key=sk-or-v1-typed-by-hand",): ["--api-key", "OPENROUTER_API_KEY"],
                 ("--port", "8081"): ["--port (did you mean --rest-port?)"],
                 ("--no_mcp",): ["--no_mcp (did you mean --no-mcp?)"],
                 ("serve",): ["arguments other than flags"]}
        for flags, words in cases.items():
            code, _, err = self.finish(self.run_gateway(*flags))
            self.assertEqual((code, len(err.splitlines())), (2, 1), flags)
            for word in words + ["see --help"]:
                self.assertIn(word, err)
            self.assertNotIn("typed-by-hand", err)
            self.assertNotIn("8081", err)

    def test_environment_mistakes_name_the_variable(self):
        for name, value in (("CREDITS_CACHE_TTL", "abc"), ("CREDITS_CACHE_TTL", "-1"), ("OPENROUTER_BASE_URL", "")):
            code, _, err = self.finish(self.run_gateway(env=dict(os.environ, OPENROUTER_API_KEY=KEY, **{name: value})))
            self.assertEqual((code, len(err.splitlines())), (2, 1), name)
            self.assertIn(name, err)
            self.assertNotIn("--", err.replace("--help", ""))  # no flag was given, so none is blamed

    def test_base_urls_that_urllib_cannot_send_exit_2_with_one_line(self):
        for url in ("http://[::1/api", "http://example.com/crédits", "http://example.com:99999/api",
                    "http://exa mple.com/api", "http://example.com/\x7f"):
            code, _, err = self.finish(self.run_gateway("--base-url", url))
            self.assertEqual((code, len(err.splitlines())), (2, 1), url)
            self.assertIn("base URL", err)

    def test_stdio_with_once_or_no_mcp_and_min_balance_without_once_exit_2(self):
        for flags in (["--stdio", "--once"], ["--stdio", "--no-mcp"], ["--min-balance", "5"]):
            code, _, err = self.finish(self.run_gateway("--base-url", self.fake.base_url, *flags))
            self.assertEqual((code, len(err.splitlines())), (2, 1), flags)

    def test_a_broken_stderr_costs_no_answer(self):
        command = [sys.executable, os.path.join(HERE, "credits_gateway.py"), "--base-url", self.fake.base_url,
                   "--rest-port", "0", "--no-mcp"]
        proc = subprocess.Popen(command, env=dict(os.environ, OPENROUTER_API_KEY=KEY), stderr=subprocess.PIPE)
        self.addCleanup(proc.kill)
        port = port_of(proc.stderr.readline().decode())
        proc.stderr.close()  # as when journald restarts: every later write to stderr fails
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.addCleanup(conn.close)
        for _ in range(3):  # on one kept-alive connection
            conn.request("GET", "/v1/credits")
            response = conn.getresponse()
            self.assertEqual((response.status, json.loads(response.read())), (200, CREDITS))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(5), 0)

    def test_sigterm_under_load_answers_requests_in_flight_and_refuses_new_ones(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", "--quiet",
                                "--timeout", "2")
        port = port_of(self.wait_lines(proc, 1)[0])
        clients = self.held_requests(port, [GET_CREDITS] * 8)  # one call held, seven joined to it
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        while not refuses(port):  # within the 3 s grace (--timeout + 1): closed first, not once the grace ran out
            self.assertLess(time.monotonic() - started, 3, "the listener stayed open")
            time.sleep(0.02)
        self.fake.hold.set()
        statuses = [read_responses(client, 1)[0][0] for client in clients]
        code, _, _ = self.finish(proc)
        self.assertEqual((code, statuses), (0, [200] * 8))
        self.assertLess(time.monotonic() - started, 2 + 2)  # --timeout + 2 s

    def test_help_gives_every_default_the_readme_names_endpoints_variables_and_exit_codes(self):
        code, out, _ = self.finish(self.run_gateway("--help"))
        self.assertEqual(code, 0)
        options = re.split(r"\n(?:options|optional arguments):\n", out)[1].split("endpoints:")[0]  # 3.10 renamed it
        entries = ["--" + entry for entry in options.split("\n  --")[1:]]  # one per flag
        self.assertGreater(len(entries), 10)
        for entry in entries:
            if not entry.startswith(("--help", "--version")):
                self.assertIn("default", " ".join(entry.split()), entry)
        for usage in ("--host HOST", "--rest-port N", "--mcp-port N", "--base-url URL", "--timeout SECONDS",
                      "--cache-ttl N", "--idle-timeout SECONDS", "--max-connections N", "--min-balance USD"):
            self.assertIn(usage, out)
        for word in ("/v1/credits", "/metrics", "/health/ready", "/openapi.json", "POST /mcp", "3.10+",
                     "OPENROUTER_API_KEY", "OPENROUTER_BASE_URL", "CREDITS_GATEWAY_TOKEN", "CREDITS_CACHE_TTL"):
            self.assertIn(word, out)
        exit_codes = out.split("exit codes:")[1]
        self.assertEqual([line.split()[0] for line in exit_codes.strip().splitlines()], ["0", "1", "2", "3"])

    @needs_mcp
    def test_sigterm_exits_0_within_2_s_and_closes_both_listeners(self):
        rest, mcp_port = free_port(), free_port()
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", str(rest),
                                "--mcp-port", str(mcp_port))
        lines = self.wait_lines(proc, 2)
        self.assertIn("REST listening on http://127.0.0.1:%d/v1/credits\n" % rest, lines[0])
        self.assertIn("MCP listening on http://127.0.0.1:%d/mcp\n" % mcp_port, lines[1])
        self.assertEqual(request(rest, "GET", "/v1/credits")[0], 200)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0, err)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(refuses(rest) and refuses(mcp_port))

    @needs_mcp
    def test_ready_is_up_as_soon_as_both_listening_lines_are_out(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0")
        rest_line, mcp_line = self.wait_lines(proc, 2)
        self.assertIn("MCP listening", mcp_line)
        status, _, body = request(port_of(rest_line), "GET", "/health/ready")
        self.assertEqual((status, json.loads(body)), (200, {"status": "UP"}))
        self.assertEqual(mcp_call(port_of(mcp_line))[0], 200)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    @needs_mcp
    def test_sigterm_answers_mcp_calls_in_flight_and_closes_the_mcp_port_first(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0",
                                "--quiet", "--timeout", "2")
        port = port_of(self.wait_lines(proc, 2)[1])
        clients = self.held_requests(port, [TOOL_CALL] * 4)  # handed to the MCP loop, the call held
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        while not refuses(port):
            self.assertLess(time.monotonic() - started, 3, "the MCP port stayed open")
            time.sleep(0.02)
        self.fake.hold.set()
        answers = [read_responses(client, 1)[0] for client in clients]
        self.assertEqual(self.finish(proc)[0], 0)
        self.assertEqual([(status, body["result"]["structuredContent"]) for status, body in answers],
                         [(200, CREDITS)] * 4)

    @needs_mcp
    def test_an_mcp_request_on_a_kept_alive_connection_during_the_drain_gets_503(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0",
                                "--quiet", "--timeout", "3")
        port = port_of(self.wait_lines(proc, 2)[1])
        kept = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.addCleanup(kept.close)
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        kept.request("POST", "/mcp", body, headers)
        first = kept.getresponse()
        first.read()
        self.assertEqual(first.status, 200)
        self.fake.hold = threading.Event()  # a call in flight keeps the drain going
        in_flight = []
        thread = threading.Thread(target=lambda: in_flight.append(mcp_call(port)))
        thread.start()
        deadline = time.monotonic() + 10
        while self.fake.calls < 1:  # the call in flight is held upstream
            self.assertLess(time.monotonic(), deadline, "the MCP call never reached the fake")
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        while not refuses(port):  # the drain has begun
            self.assertLess(time.monotonic(), deadline, "the MCP port stayed open")
            time.sleep(0.02)
        kept.request("POST", "/mcp", body, headers)
        response = kept.getresponse()
        self.assertEqual((response.status, json.loads(response.read())["error"]["code"]), (503, 503))
        self.fake.hold.set()
        thread.join(5)
        self.assertEqual(in_flight[0][0], 200)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0)
        self.assertNotIn("Traceback", err)
        self.assertNotIn("never awaited", err)

    @needs_mcp
    def test_an_mcp_client_that_resets_before_its_answer_is_dropped_without_a_traceback(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0",
                                "--quiet")
        port = port_of(self.wait_lines(proc, 2)[1])
        for client in self.held_requests(port, [TOOL_CALL] * 3):  # each waiting for the call held
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()  # with a reset, so that writing the answer fails
        self.fake.hold.set()
        self.assertEqual(mcp_call(port)[0], 200)
        proc.send_signal(signal.SIGTERM)  # the stop waits for every answer being written
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0)
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(err.splitlines()), 2, err)  # the two listening lines alone

    @needs_mcp
    def test_every_mcp_log_line_carries_the_prefix(self):
        # The SDK logs little on a healthy path: a SIGUSR1 here makes one of its loggers speak.
        prelude = ("import logging, signal; signal.signal(signal.SIGUSR1, "
                   "lambda *_: logging.getLogger('mcp.server.streamable_http').warning('probe'))")
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0",
                                prelude=prelude)
        port = port_of(self.wait_lines(proc, 2)[1])
        self.assertEqual(mcp_call(port)[0], 200)
        self.assertRegex(self.wait_lines(proc, 1)[0], r"^credits-gateway: POST /mcp 200 \d+\.\d ms\n$")
        proc.send_signal(signal.SIGUSR1)
        self.assertEqual(self.wait_lines(proc, 1), ["credits-gateway: probe\n"])
        proc.send_signal(signal.SIGTERM)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 0)
        for line in err.splitlines():
            self.assertTrue(line.startswith("credits-gateway: "), line)

    def test_sigint_exits_0_and_closes_the_listener(self):
        rest = free_port()
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", str(rest), "--no-mcp")
        self.wait_lines(proc, 1)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        self.assertEqual(self.finish(proc)[0], 0)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertTrue(refuses(rest))

    def test_once_prints_the_balance_on_one_line_for_a_pipe_and_exits_0(self):
        code, out, err = self.finish(self.run_gateway("--once", "--base-url", self.fake.base_url))
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(out.splitlines(), [json.dumps(CREDITS)])
        self.assertEqual(self.fake.calls, 1)

    def test_once_on_an_upstream_error_prints_the_rest_message_and_exits_1(self):
        self.fake.mode = FORBIDDEN
        code, out, err = self.finish(self.run_gateway("--once", "--base-url", self.fake.base_url))
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "credits-gateway: %s\n" % gateway.http_failure(403, "upstream says 403").message)

    def test_once_on_a_slow_stalled_reset_or_non_json_upstream_exits_1_with_one_line(self):
        for mode, words in ((HEAD_DRIP, "within 1 s"), (ERROR_STALL, "within 1 s"),
                            (ERROR_RESET, "Could not reach"), (NAN, "JSON")):
            self.fake.mode = mode
            started = time.monotonic()
            code, out, err = self.finish(self.run_gateway("--once", "--timeout", "1", "--base-url",
                                                          self.fake.base_url))
            self.assertLess(time.monotonic() - started, 3, mode)
            self.assertEqual((code, out, len(err.splitlines())), (1, "", 1), (mode, err))
            self.assertIn(words, err)

    def test_min_balance_exits_3_below_it_and_0_at_or_above(self):
        for minimum, expected in (("40", 3), ("37.5", 0), ("0", 0)):
            code, out, err = self.finish(self.run_gateway("--once", "--min-balance", minimum, "--base-url",
                                                          self.fake.base_url))
            self.assertEqual((code, json.loads(out)), (expected, CREDITS), minimum)
            if expected == 3:
                self.assertEqual(err, "credits-gateway: 37.65 USD left, below --min-balance 40.\n")
            else:
                self.assertEqual(err, "")

    def test_min_balance_exits_1_on_an_upstream_error_or_an_answer_without_numbers(self):
        for mode in (SERVER_ERROR, STRINGS):
            self.fake.mode = mode
            code, _, err = self.finish(self.run_gateway("--once", "--min-balance", "5", "--base-url",
                                                        self.fake.base_url))
            self.assertEqual((code, len(err.splitlines())), (1, 1), mode)

    def test_min_balance_exits_1_when_the_numbers_are_beyond_a_float(self):
        self.fake.mode = BIG_INT
        code, _, err = self.finish(self.run_gateway("--once", "--min-balance", "5", "--base-url",
                                                    self.fake.base_url))
        self.assertEqual((code, len(err.splitlines())), (1, 1), err)
        self.assertNotIn("Traceback", err)

    def test_once_says_in_one_line_when_stdout_fails_and_the_threshold_still_decides(self):
        def closed_stdout():
            os.close(1)
        reader, writer = os.pipe()
        os.close(reader)  # a pipe nobody reads
        self.addCleanup(os.close, writer)
        full = open("/dev/full", "w")
        self.addCleanup(full.close)
        outputs = {"closed": dict(stdout=None, preexec_fn=closed_stdout),
                   "full": dict(stdout=full), "broken pipe": dict(stdout=writer)}
        for name, output in outputs.items():
            for flags, expected in (([], 1), (["--min-balance", "100"], 3), (["--min-balance", "5"], 0)):
                proc = self.run_gateway("--once", *flags, "--base-url", self.fake.base_url, **output)
                code, _, err = self.finish(proc)
                lines = [line for line in err.splitlines() if "stdout" in line]
                self.assertEqual(code, expected, (name, flags, err))
                self.assertEqual(len(lines), 1, (name, flags, err))
                self.assertIn("could not write the balance to stdout", lines[0])
                self.assertNotIn("Traceback", err)
                self.assertNotIn("Exception ignored", err)

    def test_once_into_a_pipe_nobody_reads_ends_within_the_timeout_with_one_line(self):
        self.fake.mode = LONG  # more than the pipe holds: a plain write would wait for ever
        reader, writer = os.pipe()  # held open, never read
        self.addCleanup(os.close, reader)
        started = time.monotonic()
        proc = self.run_gateway("--once", "--timeout", "2", "--base-url", self.fake.base_url,
                                stdout=writer)
        os.close(writer)
        exits_within(self, proc, started, LIMIT)
        code, _, err = self.finish(proc)
        self.assertEqual(code, 1)
        self.assertIn("could not write the balance to stdout", one_line(self, err))

    def test_a_host_that_is_no_address_of_this_machine_exits_2_naming_host(self):
        for host in ("192.0.2.1", "a..b", "a" * 64):  # TEST-NET-1: no one's; names IDNA refuses
            code, _, err = self.finish(self.run_gateway("--host", host, "--rest-port", "0",
                                                        "--mcp-port", "0"))
            self.assertEqual(code, 2, host)
            self.assertIn("--host %s is no address of this machine" % host, one_line(self, err))

    def test_a_host_that_does_not_resolve_exits_2_naming_host(self):
        files = {"/etc/nsswitch.conf": "hosts: files\n", "/etc/hosts": "127.0.0.1 localhost\n"}
        for host, named in (("no-such-host.invalid", "no-such-host.invalid"),
                            ("local\nhost", "'local\\nhost'")):  # a string literal: one line
            result = run_in_namespace(self, ["--host", host, "--rest-port", "0", "--mcp-port", "0"],
                                      environment(), files)
            self.assertEqual(result["code"], 2, result)
            self.assertIn("--host %s is no address" % named, one_line(self, result["err"]))

    def test_stdio_with_stdin_closed_exits_1_with_one_line(self):
        if mcp is None:
            self.skipTest("mcp is not installed")
        code, _, err = self.finish(self.run_gateway("--stdio", preexec_fn=lambda: os.close(0)))
        self.assertEqual((code, len(err.splitlines())), (1, 1), err)
        self.assertIn("stdin", err)

    def test_a_bad_value_for_a_known_flag_is_not_echoed(self):
        for flag in ("--timeout", "--rest-port", "--max-connections", "--min-balance"):
            code, _, err = self.finish(self.run_gateway("--once", flag, "sk-or-v1-typed-by-hand"))
            self.assertEqual((code, len(err.splitlines())), (2, 1), err)
            self.assertIn(flag, err)
            self.assertNotIn("typed-by-hand", err)

    def test_min_balance_mistakes_exit_2_with_one_line(self):
        for flags in (["--min-balance", "5"], ["--once", "--min-balance", "-1"], ["--once", "--min-balance", "nan"],
                      ["--once", "--min-balance", "five"]):
            code, out, err = self.finish(self.run_gateway("--base-url", self.fake.base_url, *flags))
            self.assertEqual((code, out, len(err.splitlines())), (2, "", 1), flags)
            self.assertIn("--min-balance", err)

    def test_once_on_429_gives_the_retry_after_seconds(self):
        self.fake.mode = RATE_LIMITED
        code, _, err = self.finish(self.run_gateway("--once", "--base-url", self.fake.base_url))
        self.assertEqual(code, 1)
        self.assertIn("retry in 7 s", err)

    def test_version_prints_the_module_version(self):
        code, out, _ = self.finish(self.run_gateway("--version"))
        self.assertEqual((code, out.split()[-1]), (0, gateway.__version__))

    def test_access_log_has_one_line_per_request_without_query_or_headers(self):
        env = dict(os.environ, OPENROUTER_API_KEY=KEY, CREDITS_GATEWAY_TOKEN="caller-secret")
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", env=env)
        port = port_of(self.wait_lines(proc, 1)[0])
        request(port, "GET", "/v1/credits?password=query-secret", {"Authorization": "Bearer caller-secret"})
        for raw, status in ((b"DELETE /nope\x01 HTTP/1.1", 404),  # http.client refuses \x01
                            (b"FAKE\x1b]0;pwned\x07 /v1/credits HTTP/1.1", 501)):  # a terminal's title
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(raw + b"\r\nHost: localhost\r\n\r\n")
                self.assertEqual(read_responses(sock, 1)[0][0], status)
        lines = sorted(self.wait_lines(proc, 3))  # each is logged after its answer, so in any order
        self.assertRegex(lines[0], r"^credits-gateway: DELETE /nope%01 404 \d+\.\d ms\n$")
        self.assertRegex(lines[1], r"^credits-gateway: FAKE%1B%5D0%3Bpwned%07 /v1/credits 501 \d+\.\d ms\n$")
        self.assertRegex(lines[2], r"^credits-gateway: GET /v1/credits 200 \d+\.\d ms\n$")
        proc.send_signal(signal.SIGTERM)
        _, _, err = self.finish(proc)
        self.assertNotIn("secret", err)

    def test_quiet_turns_the_access_log_off(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp", "--quiet")
        port = port_of(self.wait_lines(proc, 1)[0])
        self.assertEqual(request(port, "GET", "/v1/credits")[0], 200)
        proc.send_signal(signal.SIGTERM)
        code, _, err = self.finish(proc)
        self.assertEqual((code, len(err.splitlines())), (0, 1))  # the listening line alone

    def test_without_mcp_installed_rest_still_serves(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--mcp-port", "0",
                                prelude="import sys; sys.modules['mcp'] = None")
        lines = self.wait_lines(proc, 2)
        self.assertIn("MCP is off", lines[1])
        if sys.version_info < (3, 10):  # pip cannot help there: mcp needs a newer Python
            self.assertIn("mcp needs Python 3.10+, and this is %d.%d" % sys.version_info[:2], lines[1])
        else:
            self.assertIn('pip install "mcp>=2.3,<3"', lines[1])
        port = port_of(lines[0])
        self.assertEqual(request(port, "GET", "/v1/credits")[2], json.dumps(CREDITS).encode())
        self.assertEqual(request(port, "GET", "/health/ready")[0], 200)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.finish(proc)[0], 0)

    def test_upstream_failures_never_put_the_key_in_output(self):
        proc = self.run_gateway("--base-url", self.fake.base_url, "--rest-port", "0", "--no-mcp")
        port = port_of(self.wait_lines(proc, 1)[0])
        for mode in (OK, FORBIDDEN, RATE_LIMITED, SERVER_ERROR, ECHO, PADDED_ECHO, REDIRECT, CLOSE, NON_JSON):
            self.fake.mode = mode
            status, headers, body = request(port, "GET", "/v1/credits")  # request() fails on the whole key
            self.assertNotIn(KEY, body.decode() + str(headers), mode)
            self.assertEqual(pieces_of_the_key(body.decode("latin-1") + str(headers)), [], mode)  # or a part
        proc.send_signal(signal.SIGTERM)
        code, out, err = self.finish(proc)  # finish() asserts the key is absent
        self.assertEqual(code, 0)
        self.assertNotIn("Traceback", err)
        self.assertEqual(pieces_of_the_key(out + err), [])  # the access log on stderr, say


def _reap(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    proc.drain.join(5)
    if proc.stdout:
        proc.stdout.close()
    proc.stderr.close()


if __name__ == "__main__":
    unittest.main()
