"""credits_gateway: your OpenRouter credit balance over REST and MCP, from one file.

Run it:   pip install "mcp>=2.3,<3" && OPENROUTER_API_KEY=... python credits_gateway.py
Test it:  python -m unittest -v test_credits_gateway

What it serves (the Naftiko capability "OpenRouter API — Credits"):
    REST  GET http://127.0.0.1:8080/v1/credits   the upstream JSON object, unchanged
          GET /health/live, /health/ready        {"status": "UP"} (ready: 503 until all listeners serve)
    MCP   http://127.0.0.1:9090/mcp              tool "get-credit-balance" (streamable HTTP, stateless)
          --stdio                                the same tool over stdin/stdout
    CLI   --once                                 print the balance once and exit

Configuration: OPENROUTER_API_KEY (required, from the environment only: it spends money),
OPENROUTER_BASE_URL, CREDITS_GATEWAY_TOKEN, CREDITS_CACHE_TTL, and the flags in --help.

How it works: fetch_credits() makes the one upstream call with urllib, never following a
redirect, and maps every failure to an UpstreamError(status, message) in one place.
share_upstream() lets concurrent callers share the call in flight. CreditsHandler serves
REST on http.server's ThreadingHTTPServer; the MCP server (the optional `mcp` package)
runs under uvicorn in a second thread, and both call the same shared function. main()
binds both ports, serves until SIGINT or SIGTERM, then lets requests in flight finish.
"""
import argparse
import hmac
import http.client
import http.server
import ipaddress
import json
import math
import os
import signal
import socket
import struct
import sys
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request

__version__ = "1.0.0"

# --- Configuration -----------------------------------------------------------------

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
MANAGEMENT_KEYS_URL = "https://openrouter.ai/settings/management-keys"
MAX_UPSTREAM_BODY = 1024 * 1024  # a credit balance is a few hundred bytes
MAX_REQUEST_BODY = 64 * 1024  # a GET's body is read and ignored, up to this
TOKEN_NEEDED = "Send Authorization: Bearer <CREDITS_GATEWAY_TOKEN>."  # the 401 of REST and MCP alike
ENVIRONMENT_HELP = """environment:
  OPENROUTER_API_KEY     OpenRouter management key (required; never a flag)
  OPENROUTER_BASE_URL    upstream base URL (default %s)
  CREDITS_GATEWAY_TOKEN  if set, /v1/credits and MCP callers must send it as a Bearer token
  CREDITS_CACHE_TTL      default for --cache-ttl""" % DEFAULT_BASE_URL


def log(message):
    sys.stderr.write("credits-gateway: %s\n" % message)  # one write, so threads' lines never mix
    sys.stderr.flush()


def fail(code, message):
    """Stop with one line on stderr, no traceback: a line is what a person can act on."""
    log(message)
    raise SystemExit(code)


def parse_config(argv=None, environ=os.environ):
    """Turn the command line and the environment into a checked config, or exit 2."""
    parser = argparse.ArgumentParser(
        prog="credits_gateway.py", description="Serve the OpenRouter credit balance over REST and MCP.",
        epilog=ENVIRONMENT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 opens it)")
    add("--rest-port", type=int, default=8080, help="REST port (default 8080; 0: any)")
    add("--mcp-port", type=int, default=9090, help="MCP port (default 9090; 0: any)")
    add("--no-mcp", action="store_true", help="serve REST only")
    add("--stdio", action="store_true", help="serve the MCP tool over stdin/stdout instead of HTTP")
    add("--once", action="store_true", help="print the balance as JSON and exit (1 on an upstream error)")
    add("--base-url", default=environ.get("OPENROUTER_BASE_URL", DEFAULT_BASE_URL), help="upstream base URL")
    add("--timeout", type=float, default=10.0, help="upstream timeout (default 10 s)")
    add("--cache-ttl", type=float, default=environ.get("CREDITS_CACHE_TTL", "0"),
        help="reuse a balance for this many seconds (default 0: ask OpenRouter every time)")
    add("--idle-timeout", type=float, default=15.0,
        help="close a connection that sends no whole request for this long (default 15 s)")
    add("--max-connections", type=int, default=1024,
        help="REST connections served at once; more get 503 (default 1024)")
    add("--quiet", action="store_true", help="no access log line per REST request")
    add("--version", action="version", version="%(prog)s " + __version__)
    parser.error = lambda message: fail(2, message)  # one line, not argparse's usage block
    config = parser.parse_args(argv)
    for flag, low, high in (("rest_port", 0, 65535), ("mcp_port", 0, 65535), ("timeout", 0.001, 1e6),
                            ("cache_ttl", 0, 1e9), ("idle_timeout", 0.001, 1e6), ("max_connections", 1, 1e6)):
        if not low <= getattr(config, flag) <= high:  # also refuses nan
            fail(2, "--%s must be from %g to %g." % (flag.replace("_", "-"), low, high))
    config.key = environ.get("OPENROUTER_API_KEY", "").strip()
    config.token = environ.get("CREDITS_GATEWAY_TOKEN", "").strip()
    if not config.key:
        fail(2, "OPENROUTER_API_KEY is not set; export a management key (%s)." % MANAGEMENT_KEYS_URL)
    for name, secret in (("OPENROUTER_API_KEY", config.key), ("CREDITS_GATEWAY_TOKEN", config.token)):
        if not all(c.isascii() and c.isprintable() and not c.isspace() for c in secret):
            fail(2, "%s has spaces or control characters inside; copy it again." % name)
    parts = urllib.parse.urlsplit(config.base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        fail(2, "the base URL must start with http:// or https://, like %s." % DEFAULT_BASE_URL)
    config.base_url = config.base_url.rstrip("/")
    return config


def is_loopback(host):
    """Whether a host, or a Host header (a port and [IPv6] brackets allowed), names loopback."""
    try:
        name = urllib.parse.urlsplit("//" + host).hostname or ""  # lower case, no port or brackets
        return name == "localhost" or ipaddress.ip_address(name).is_loopback
    except ValueError:  # not an address, or a malformed one
        return False


def authorized(header, token):
    """Whether an Authorization header (bytes) carries the caller token, when one is set.
    compare_digest takes as long wherever the first difference is: no timing hints."""
    return not token or hmac.compare_digest(header, b"Bearer " + token.encode())


# --- The upstream call -------------------------------------------------------------

class UpstreamError(Exception):
    """The upstream call failed. `status` and `message` are what both surfaces answer."""

    def __init__(self, status, message, upstream_status=None, retry_after=""):
        super().__init__(message)
        self.status, self.message, self.upstream_status, self.retry_after = status, message, upstream_status, retry_after


def build_opener():
    """urllib's default opener minus its redirect handler, which would carry the key to
    whatever host a Location names. A 3xx then surfaces as an HTTPError like a 4xx."""
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(), urllib.request.HTTPSHandler(),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


OPENER = build_opener()


def upstream_message(body, key):
    """The upstream's own error message, on one short line, with the key cut out."""
    try:
        message = json.loads(body)["error"]["message"]
    except (ValueError, KeyError, TypeError, RecursionError):
        message = body.decode("utf-8", "replace")
    return " ".join(str(message).replace(key, "[redacted]").split())[:200] or "no message"


def http_failure(status, message, retry_after=""):
    """The one place where an upstream HTTP status becomes the gateway's answer."""
    if status == 401:
        text = "OpenRouter rejected OPENROUTER_API_KEY (%s); check the key." % message
    elif status == 403:
        text = ("OpenRouter refused the key (%s): /credits answers only for a management key; "
                "create one at %s." % (message, MANAGEMENT_KEYS_URL))
    elif status == 429:
        return UpstreamError(429, "OpenRouter is rate-limiting this key; retry later.", 429, retry_after)
    elif 300 <= status < 400:
        text = "OpenRouter answered a redirect (%d); it was not followed, so the key went nowhere else." % status
    else:
        text = "OpenRouter answered %d: %s" % (status, message)
    return UpstreamError(502, text, status)


def fetch_credits(config):
    """GET {base_url}/credits with the key; return the JSON object or raise UpstreamError."""
    request = urllib.request.Request(config.base_url + "/credits", headers={
        "Authorization": "Bearer " + config.key, "Accept": "application/json",
        "User-Agent": "credits-gateway/" + __version__})
    try:
        with OPENER.open(request, timeout=config.timeout) as response:
            body = response.read(MAX_UPSTREAM_BODY + 1)  # stop reading at the limit
    except urllib.error.HTTPError as error:
        with error:
            message = upstream_message(error.read(64 * 1024), config.key)
        raise http_failure(error.code, message, error.headers.get("Retry-After", "")) from None
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError too
        reason = getattr(error, "reason", error)  # urllib wraps connect errors, not read errors
        if isinstance(reason, socket.timeout):
            raise UpstreamError(504, "OpenRouter did not answer within %g s." % config.timeout) from None
        raise UpstreamError(502, "Could not reach OpenRouter: %s." % (str(reason) or type(reason).__name__)) from None
    if len(body) > MAX_UPSTREAM_BODY:
        raise UpstreamError(502, "OpenRouter answered more than 1 MiB; a credit balance is far smaller.", 200)
    try:
        credits = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's stack
        credits = None
    if not isinstance(credits, dict):
        raise UpstreamError(502, "OpenRouter answered 200 but not with a JSON object.", 200)
    return credits


def share_upstream(config):
    """Wrap fetch_credits() for both surfaces: callers that arrive while a call is in flight
    share its outcome (single flight), and with --cache-ttl a success (never an error) is reused.
    No lock is held over the network. Returns get_credits() -> (credits, monotonic fetch time)."""
    lock = threading.Lock()
    shared = types.SimpleNamespace(flight=None, result=(None, -math.inf))

    def get_credits():
        with lock:
            if time.monotonic() - shared.result[1] < config.cache_ttl:
                return shared.result
            flight, leading = shared.flight, shared.flight is None
            if leading:
                flight = shared.flight = types.SimpleNamespace(done=threading.Event(), result=None, error=None)
        if leading:
            try:
                flight.result = (fetch_credits(config), time.monotonic())
            except UpstreamError as error:
                flight.error = error
            finally:
                with lock:
                    shared.flight = None
                    shared.result = flight.result or shared.result
                flight.done.set()
        flight.done.wait()
        if flight.error:
            raise flight.error
        return flight.result

    return get_credits


# --- REST --------------------------------------------------------------------------

def error_body(status, message, upstream_status=None):
    """An error in OpenRouter's own shape, so that clients parse the gateway like OpenRouter."""
    error = {"code": status, "message": message}
    if upstream_status is not None:
        error["metadata"] = {"upstream_status": upstream_status}
    return {"error": error}


class CreditsHandler(http.server.BaseHTTPRequestHandler):
    """One REST connection. Every answer, errors included, is JSON and leaves in one write."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = "credits-gateway/" + __version__
    disable_nagle_algorithm = True  # with the single write: no 40 ms delayed-ACK stall

    def dispatch(self):
        self.server.reading.pop(self.connection, None)  # the head is in: see close_slow_clients()
        path = urllib.parse.urlsplit(self.path).path
        routes = {"/v1/credits": self.get_credits, "/health/ready": self.get_ready,
                  "/health/live": lambda: self.send_json(200, {"status": "UP"})}
        refusal = self.refusal(path)
        if refusal:
            status, message, headers = refusal
            self.send_json(status, error_body(status, message), headers)
        elif path not in routes:
            self.send_json(404, error_body(404, "No such path; the balance is at GET /v1/credits."))
        elif self.command not in ("GET", "HEAD"):
            self.send_json(405, error_body(405, "Use GET or HEAD on %s." % path), {"Allow": "GET, HEAD"})
        else:
            self.server.busy.add(self)  # shutdown waits for these answers
            try:
                routes[path]()
            finally:
                self.server.busy.discard(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_TRACE = do_QUERY = dispatch

    def refusal(self, path):
        """Every protective check, in order: (status, message, headers) to refuse, or None."""
        close = {"Connection": "close"}
        if not self.admitted:
            return 503, "The gateway is serving --max-connections clients; retry shortly.", close
        length = self.headers.get("Content-Length", "0")
        if "Transfer-Encoding" in self.headers or not (length.isascii() and length.isdigit()):
            return 400, "Send a request body, if any, with a plain Content-Length.", close
        if int(length) > MAX_REQUEST_BODY:
            return 413, "A request body over 64 KiB is refused; GET needs none.", close
        self.rfile.read(int(length))  # ignored, but read: the next request starts after it
        if self.server.loopback_only and not is_loopback(self.headers.get("Host", "localhost")):  # DNS rebinding
            return 421, "This gateway answers only to a loopback Host such as localhost.", {}
        if path == "/v1/credits" and not authorized(self.headers.get("Authorization", "").encode("latin-1"),
                                                    self.server.config.token):
            return 401, TOKEN_NEEDED, {"WWW-Authenticate": "Bearer"}
        return None

    def get_credits(self):
        try:
            credits, fetched_at = self.server.get_credits()
        except UpstreamError as error:
            headers = {"Cache-Control": "no-store", "Retry-After": error.retry_after}
            body = error_body(error.status, error.message, error.upstream_status)
            return self.send_json(error.status, body, headers)
        ttl, age = self.server.config.cache_ttl, time.monotonic() - fetched_at
        # RFC 9111: a client may reuse the answer for max-age minus its Age
        headers = {"Cache-Control": "max-age=%d" % ttl, "Age": "%d" % age} if ttl else {"Cache-Control": "no-store"}
        self.send_json(200, credits, headers)

    def get_ready(self):
        ready = self.server.is_ready()
        self.send_json(200 if ready else 503, {"status": "UP" if ready else "DOWN"})

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (400, 414, 431, 501, 505) in JSON. It calls this when
        a request could not be read whole, so the connection closes after the answer."""
        message = message or self.responses[code][0]
        self.send_json(code, error_body(code, message + "."), {"Connection": "close"})

    def send_json(self, status, value, headers=None):
        """The one way out: head and body in one write (send_response would cost a second write
        and date_time_string() three times this strftime), then one access-log line."""
        body = json.dumps(value).encode()
        head = ["HTTP/1.1 %d %s" % (status, self.responses[status][0]), "Server: " + self.server_version,
                time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT", time.gmtime()), "Content-Type: application/json",
                "Content-Length: %d" % len(body)]
        head += ["%s: %s" % (name, text) for name, text in (headers or {}).items()
                 if text and text.isprintable()]  # an empty value, or one with CR or LF, is left out
        self.close_connection = self.close_connection or "Connection: close" in head
        if self.command == "HEAD":
            body = b""
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        if not self.server.config.quiet:  # the path only: a query or a header may hold a secret
            path = urllib.parse.quote(urllib.parse.urlsplit(self.path).path, safe="/%")
            log("%s %s %d %.1f ms" % (self.command or "-", path or "-", status,
                                      (time.monotonic() - self.started) * 1000))

    def setup(self):
        super().setup()
        # Kernel timeouts bound each read and write: settimeout() would add a poll() to each (-15% req/s).
        for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
            self.connection.setsockopt(socket.SOL_SOCKET, option, self.server.timeval)

    def handle(self):
        self.admitted = self.server.slots.acquire(blocking=False)
        try:
            if self.admitted:
                super().handle()
            else:  # read one request, so that the 503 is not lost to a reset, then close
                self.connection.settimeout(1)
                self.handle_one_request()
        except (ConnectionError, BlockingIOError, socket.timeout):
            pass  # the client went away or timed out: nothing to answer, nothing to report
        finally:
            self.server.reading.pop(self.connection, None)
            if self.admitted:
                self.server.slots.release()

    def handle_one_request(self):
        self.path, self.started = "", time.monotonic()  # path: a 414 is answered before it is read
        self.server.reading[self.connection] = self.started  # see close_slow_clients()
        super().handle_one_request()

    def log_message(self, format, *args):
        pass  # http.server would log each idle timeout; send_json logs each answer


class RestServer(http.server.ThreadingHTTPServer):
    request_queue_size = 1024  # socketserver's 5 drops connections under a burst of clients


def serve_rest(config, get_credits, is_ready):
    """Bind the REST port (OSError if busy) and serve it in a thread."""
    server = RestServer((config.host, config.rest_port), CreditsHandler)
    server.config, server.get_credits, server.is_ready = config, get_credits, is_ready
    server.loopback_only = is_loopback(config.host)
    server.timeval = struct.pack("ll", int(config.idle_timeout), int(config.idle_timeout % 1 * 1e6))
    server.slots = threading.BoundedSemaphore(config.max_connections)
    server.busy = set()  # handlers answering a request; set.add and discard are atomic
    server.reading = {}  # connection -> when it began to send its request's head
    threading.Thread(target=server.serve_forever, args=(0.1,), name="rest", daemon=True).start()
    threading.Thread(target=close_slow_clients, args=(server,), name="reaper", daemon=True).start()
    return server


def close_slow_clients(server):
    """Give each request's line and headers --idle-timeout in all: the socket timeout
    restarts with every byte, so a client dribbling bytes could hold a thread forever."""
    while server.socket.fileno() != -1:
        time.sleep(min(1.0, server.config.idle_timeout / 4))
        too_old = time.monotonic() - server.config.idle_timeout
        for connection, since in server.reading.copy().items():
            if since < too_old:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass  # already closed


# --- MCP ---------------------------------------------------------------------------

TOOL_DESCRIPTION = (
    "Get the OpenRouter credit balance of the account behind the gateway's key. Returns {\"data\": "
    "{\"total_credits\": X, \"total_usage\": Y}}: total_credits is what was purchased and total_usage "
    "what has been spent, both in US dollars; the balance left is their difference.")


def build_mcp_server(get_credits):
    """The MCP server and its one tool. mcp is imported here, not at the top: it is
    optional (REST works without it) and takes about half a second to import."""
    from typing import Any
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult, TextContent, ToolAnnotations

    server = MCPServer("openrouter-credits", version=__version__, log_level="WARNING")
    hints = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)

    @server.tool(name="get-credit-balance", title="Get credit balance", description=TOOL_DESCRIPTION, annotations=hints)
    def get_credit_balance() -> dict[str, Any]:  # the SDK runs sync tools in a worker thread
        try:
            return get_credits()[0]
        except UpstreamError as error:  # a ToolError would prefix "Error executing tool ..."
            return CallToolResult(is_error=True, content=[TextContent(type="text", text=error.message)])

    return server


def require_token(app, token):
    """ASGI middleware: with a caller token set, every MCP request must carry it."""
    refusal = json.dumps(error_body(401, TOKEN_NEEDED)).encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http" and not authorized(dict(scope["headers"]).get(b"authorization", b""), token):
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]})
            await send({"type": "http.response.body", "body": refusal})
            return
        await app(scope, receive, send)
    return guarded


def listen(host, port):
    """The MCP socket, bound before anything serves. IPPROTO_TCP is spelled out because asyncio
    sets TCP_NODELAY only on sockets that say so; without it each answer stalls 40 ms."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def run_mcp(config, get_credits, sock, state):
    """The MCP thread: serve on the bound socket until stop(). No mcp: MCP is off, REST goes on."""
    try:
        import uvicorn
        server = build_mcp_server(get_credits)
        # The SDK turns its Host/Origin check (DNS rebinding) on only for 127.0.0.1, localhost, ::1.
        host = "127.0.0.1" if is_loopback(config.host) else config.host
        app = server.streamable_http_app(streamable_http_path="/mcp", host=host,
                                         stateless_http=True, json_response=True)
        state.mcp = uvicorn.Server(uvicorn.Config(
            require_token(app, config.token), log_level="warning", lifespan="on",
            limit_concurrency=config.max_connections, timeout_keep_alive=config.idle_timeout,
            timeout_graceful_shutdown=config.timeout + 1))
        if not state.stopped.is_set():  # else stop() came while mcp was importing, before state.mcp
            log("MCP listening on http://%s:%d/mcp" % (config.host, sock.getsockname()[1]))
            state.mcp.run(sockets=[sock])
    except ImportError as error:
        state.mcp_off = True  # first: whoever reads the line below finds /health/ready UP
        log('MCP is off: %s (pip install "mcp>=2.3,<3"); REST still serves.' % error)
    finally:
        sock.close()  # uvicorn closes it when it stops, but not if it never ran
        if not (state.stopped.is_set() or state.mcp_off):  # MCP ended on its own: stop everything
            state.mcp_failed = True
            state.stopped.set()


def serve_stdio(config):
    """MCP over stdin and stdout, for clients that spawn their servers; logs go to stderr."""
    try:
        build_mcp_server(share_upstream(config)).run("stdio")
    except ImportError as error:
        fail(1, '--stdio needs mcp: %s (pip install "mcp>=2.3,<3").' % error)
    except KeyboardInterrupt:
        pass  # the client went away; nothing to report
    return 0


# --- main --------------------------------------------------------------------------

def start(config, stopped=None):
    """Bind both ports (a busy one exits 1 before anything serves), then serve each in a thread."""
    state = types.SimpleNamespace(stopped=stopped or threading.Event(), mcp=None, mcp_thread=None,
                                  mcp_off=config.no_mcp, mcp_failed=False)
    try:
        sock = None if config.no_mcp else listen(config.host, config.mcp_port)
    except OSError as error:
        fail(1, "cannot listen on %s:%d for MCP: %s" % (config.host, config.mcp_port, error.strerror or error))
    get_credits = share_upstream(config)
    try:
        state.rest = serve_rest(config, get_credits, lambda: state.mcp_off or bool(state.mcp and state.mcp.started))
    except OSError as error:
        if sock:
            sock.close()
        fail(1, "cannot listen on %s:%d for REST: %s" % (config.host, config.rest_port, error.strerror or error))
    log("REST listening on http://%s:%d/v1/credits" % (config.host, state.rest.server_address[1]))
    if not is_loopback(config.host) and not config.token:
        log("warning: listening on %s with no CREDITS_GATEWAY_TOKEN: anyone who can reach it "
            "can read the balance." % config.host)
    if sock:
        state.mcp_port = sock.getsockname()[1]
        state.mcp_thread = threading.Thread(target=run_mcp, args=(config, get_credits, sock, state),
                                            name="mcp", daemon=True)
        state.mcp_thread.start()
    return state


def stop(state, grace=2.0):
    """Close both listeners, then give requests in flight `grace` seconds; idle ones just go."""
    state.stopped.set()  # before reading state.mcp: see run_mcp()
    state.rest.shutdown()
    state.rest.server_close()
    if state.mcp is not None:
        state.mcp.should_exit = True
    deadline = time.monotonic() + grace
    while state.rest.busy and time.monotonic() < deadline:
        time.sleep(0.02)
    if state.mcp_thread:
        state.mcp_thread.join(max(0.0, deadline - time.monotonic()))


def main(argv=None):
    config = parse_config(argv)
    if config.once:  # for cron and scripts: indented for a person, one line for a pipe
        try:
            credits = fetch_credits(config)
        except UpstreamError as error:
            fail(1, error.message)
        print(json.dumps(credits, indent=2 if sys.stdout.isatty() else None))
        return 0
    if config.stdio:
        return serve_stdio(config)
    stopped = threading.Event()  # handlers first: a signal sent once a port is announced must count
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    state = start(config, stopped)
    while not stopped.wait(0.5):  # a signal taken by another thread is handled only once this one wakes
        pass
    stop(state, grace=config.timeout + 1)
    if state.mcp_failed:
        fail(1, "the MCP server stopped unexpectedly; see the lines above.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
