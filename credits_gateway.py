# /// script
# requires-python = ">=3.10"
# dependencies = ["mcp>=2.3,<3"]
# ///
"""credits_gateway: your OpenRouter credit balance over REST and MCP, from one file.

Set up:   python3 -m venv .venv && .venv/bin/pip install "mcp>=2.3,<3"
Run it:   export OPENROUTER_API_KEY=...; .venv/bin/python credits_gateway.py   (or: uv run ...)
Test it:  .venv/bin/python -m unittest -v test_credits_gateway

It serves the Naftiko capability "OpenRouter API — Credits": GET /v1/credits (the upstream
JSON object, unchanged) and /metrics on port 8080, the MCP tool "get-credit-balance" on port
9090 or --stdio, and --once for scripts; HELP_EPILOG below tells the rest.

How it works, in the order the file reads: parse_config() checks flags and environment.
UpstreamError is what any upstream failure becomes. A Flight is one call to OpenRouter, on a
thread of its own, that its callers wait for until its deadline and no longer; in it, an
UpstreamConnection (http.client's, which the flight can stop at any step, a proxy's tunnel and
TLS included) carries each request that fetch_credits() makes. SharedCall lets callers share a
Flight and hands out a Balance. A Route answers a path; a RequestReader holds a client's request
to its idle deadline; GatewayHandler is the front door of both ports (the same guards for each
request, then the port's routes), and GatewayServer one port. REST_ROUTES serve REST (and
/openapi.json, made from that table); call_app() hands POST /mcp to the mcp SDK's ASGI app, as
MCP_ROUTES say. Gateway holds both ports and the MCP thread; main() runs it until a signal.
"""
import argparse
import collections
import concurrent.futures
import contextlib
import difflib
import errno
import functools
import hmac
import http.client
import http.server
import io
import ipaddress
import json
import math
import os
import resource
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

__version__ = "1.2.0"
USER_AGENT = "credits-gateway/" + __version__  # upstream, and as the Server header

# --- Configuration -----------------------------------------------------------------

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
MANAGEMENT_KEYS_URL = "https://openrouter.ai/settings/management-keys"
MAX_UPSTREAM_BODY = 1024 * 1024  # a credit balance is a few hundred bytes
MAX_REQUEST_BODY = 64 * 1024  # an MCP request is a few hundred bytes; GET needs none
EXAMPLE = '{"data": {"total_credits": X, "total_usage": Y}}'  # OpenRouter's answer today
# A balance REST could pass on but MCP could not (pydantic refuses a lone surrogate, and more than
# 255 levels) is none: REST and MCP must say the same. OpenRouter's nests 2 levels deep.
MAX_NESTING = 16
NOT_A_BALANCE = ("OpenRouter answered 200, but not with a balance: %s with numbers X and Y, nested "
                 "at most %d levels deep, its text in UTF-8." % (EXAMPLE, MAX_NESTING))
BUSY = "The gateway is busy; retry in a second."  # past --max-connections, with Retry-After
LINGER = 2.0  # seconds a refused client gets to finish sending (nginx's lingering_time is 30)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "QUERY")  # or 501
NO_OAUTH = ("This gateway has no OAuth: send its caller token as Authorization: Bearer <token> "
            "(CREDITS_GATEWAY_TOKEN); a missing or wrong one gets 401.")
NO_SSE = ("This gateway serves MCP over streamable HTTP only: POST JSON-RPC to /mcp. The SSE "
          "transport (GET /mcp) is not served.")
HELP_EPILOG = """endpoints: GET /v1/credits, /metrics, /health/live, /health/ready, /openapi.json;
  POST /mcp: the MCP tool get-credit-balance (MCP needs the mcp package, on Python 3.10+)
environment:
  OPENROUTER_API_KEY     OpenRouter management key (required; never a flag)
  OPENROUTER_BASE_URL    default for --base-url
  CREDITS_GATEWAY_TOKEN  if set, callers of /v1/credits, /metrics and MCP send it as Bearer
  CREDITS_CACHE_TTL      default for --cache-ttl
exit codes:
  0  stopped by SIGINT or SIGTERM; --once printed the balance
  1  a port is busy; --once met an upstream error or a stdout it cannot write; --stdio lacks mcp
  2  a configuration mistake
  3  --once --min-balance USD: less than USD is left (the threshold decides, printed or not)"""
FLAG_RANGES = (("rest_port", 0, 65535), ("mcp_port", 0, 65535), ("timeout", 0.001, 1e6),
               ("cache_ttl", 0, 1e9), ("idle_timeout", 0.001, 1e6), ("max_connections", 1, 1e6),
               ("min_balance", 0, 1e9))
ENVIRONMENT_DEFAULTS = (("base_url", "OPENROUTER_BASE_URL", DEFAULT_BASE_URL),
                        ("cache_ttl", "CREDITS_CACHE_TTL", "0"))


def log(message):
    """One stderr line, in one write: threads' lines never mix, and a broken stderr is ignored."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: stderr was closed
        sys.stderr.write("credits-gateway: %s\n" % message)
        sys.stderr.flush()


def fail(code, message):
    """Stop with one line on stderr, no traceback: a line is what a person can act on."""
    log(message)
    raise SystemExit(code)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="credits_gateway.py", epilog=HELP_EPILOG, allow_abbrev=False,
        description="Serve the OpenRouter credit balance over REST and MCP.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="listen address (default 127.0.0.1; 0.0.0.0: all)")
    add("--rest-port", metavar="N", type=int, default=8080, help="REST port (default 8080; 0: any)")
    add("--mcp-port", metavar="N", type=int, default=9090, help="MCP port (default 9090; 0: any)")
    add("--no-mcp", action="store_true", help="serve REST only (default: REST and MCP)")
    add("--stdio", action="store_true", help="serve MCP on stdin/stdout, not ports (default: off)")
    add("--once", action="store_true", help="print the balance as JSON, then exit (default: off)")
    add("--min-balance", metavar="USD", type=float,
        help="with --once: exit 3 if less than USD is left (default: no check)")
    add("--base-url", metavar="URL",
        help="upstream base URL (default: $OPENROUTER_BASE_URL, else %s)" % DEFAULT_BASE_URL)
    add("--timeout", metavar="SECONDS", type=float, default=10.0,
        help="time for a whole upstream call, connect to last byte (default 10)")
    add("--cache-ttl", metavar="N",
        help="reuse a balance for N seconds (default: $CREDITS_CACHE_TTL, else 0: never)")
    add("--idle-timeout", metavar="SECONDS", type=float, default=15.0,
        help="close a connection that sends no whole request for this long (default 15)")
    add("--max-connections", metavar="N", type=int, default=1024,
        help="connections served at once on each port; more get 503 (default 1024)")
    add("--quiet", action="store_true", help="no access log (default: a line per request)")
    add("--version", action="version", version="%(prog)s " + __version__)
    # One line, not a usage block, and without the value argparse quotes: it may be the key.
    parser.error = lambda message: fail(2, message.partition(": '")[0] + "; see --help.")
    return parser


def parse_config(argv=None, environ=os.environ):
    """The checked config from `argv` and `environ`, or exit 2; proxies come from os.environ."""
    config, unknown = build_parser().parse_known_args(argv)
    name = {flag: "--" + flag.replace("_", "-") for flag in vars(config)}
    if unknown:
        fail(2, unknown_arguments(unknown, list(name.values())))
    for flag, variable, default in ENVIRONMENT_DEFAULTS:
        if getattr(config, flag) is None:  # a flag wins over its variable
            setattr(config, flag, environ.get(variable, default))
            name[flag] = variable  # a mistake is blamed on where the value came from
    check_values(config, name)
    config.base_url = config.base_url.rstrip("/")
    proxies = urllib.request.getproxies_environment()  # what urllib's ProxyHandler() would use
    config.proxy = find_proxy(config.base_url, proxies)
    config.opener = urllib.request.build_opener(urllib.request.ProxyHandler(proxies),
                                                UpstreamHandler)
    config.key = environ.get("OPENROUTER_API_KEY", "").strip()
    config.token = environ.get("CREDITS_GATEWAY_TOKEN", "").strip()
    if environ.get("CREDITS_GATEWAY_TOKEN") and not config.token:  # caller auth never fails open
        fail(2, "CREDITS_GATEWAY_TOKEN is only blanks; set a token, or unset it for none.")
    if not config.key:
        fail(2, "OPENROUTER_API_KEY is not set; export a management key: %s" % MANAGEMENT_KEYS_URL)
    for variable, secret in (("OPENROUTER_API_KEY", config.key),
                             ("CREDITS_GATEWAY_TOKEN", config.token)):
        if not all(c.isascii() and c.isprintable() and not c.isspace() for c in secret):
            fail(2, "%s has spaces or control characters inside; copy it again." % variable)
    return config


def check_values(config, name):
    """Exit 2 on a bad value, naming its flag or variable (`name`); cache_ttl becomes a float."""
    try:
        config.cache_ttl = float(config.cache_ttl)
    except ValueError:
        fail(2, "%s must be a number of seconds." % name["cache_ttl"])
    for flag, low, high in FLAG_RANGES:
        value = getattr(config, flag)
        if value is not None and not low <= value <= high:  # also refuses nan
            fail(2, "%s must be from %g to %g." % (name[flag], low, high))
    if config.min_balance is not None and not config.once:
        fail(2, "--min-balance goes with --once: credits_gateway.py --once --min-balance USD.")
    if config.stdio and (config.once or config.no_mcp):
        fail(2, "--stdio serves MCP on stdin/stdout; it goes with neither --once nor --no-mcp.")
    if not is_http_url(config.base_url):
        fail(2, "the base URL in %s must be an http:// or https:// URL in ASCII, like %s."
             % (name["base_url"], DEFAULT_BASE_URL))


def unknown_arguments(words, flags):
    """The line for arguments argparse does not know: flags, never values (one may be the key)."""
    named = []
    for flag in [word.partition("=")[0] for word in words if word.startswith("-")]:
        near = ["--rest-port"] if flag == "--port" else difflib.get_close_matches(
            flag.replace("_", "-"), flags, n=1)  # --port: the port most people mean
        named.append(flag + (" (did you mean %s?)" % near[0] if near else ""))
        if "key" in flag.lower():
            named.append("the key is read from OPENROUTER_API_KEY, never from a flag")
    return "unknown: %s; see --help." % ("; ".join(named) or "arguments other than flags")


def is_http_url(url):
    """Whether urllib can send to `url` as it is: http(s), a host, ASCII, nothing unprintable."""
    try:
        parts = urllib.parse.urlsplit(url)
        return (parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
                and url.isascii() and url.isprintable() and " " not in url)
    except ValueError:  # a malformed [IPv6] host, or a port that is not a number up to 65535
        return False


Proxy = collections.namedtuple("Proxy", "variable address")  # address: host:port, no secret


def find_proxy(url, proxies):
    """The Proxy urllib takes for `url` from `proxies` by its own rules (NO_PROXY), or None. Exit 2
    on one it cannot use, naming its variable, never its value (it may hold a password)."""
    scheme = urllib.parse.urlsplit(url).scheme  # lower case, as urllib looks it up
    value = proxies.get(scheme)
    if not value or urllib.request.proxy_bypass_environment(urllib.request.Request(url).host,
                                                            proxies):
        return None
    lower = scheme + "_proxy"  # urllib prefers it to the upper-case one
    variable = lower if os.environ.get(lower) == value else lower.upper()
    with contextlib.suppress(ValueError):  # a malformed [IPv6] host, or port
        parts = urllib.parse.urlsplit(value if "://" in value else "//" + value)  # or host:port
        if parts.scheme not in ("", "http", "https"):  # urllib would speak HTTP to SOCKS
            fail(2, "%s is a %s:// proxy; only HTTP(S) proxies are supported, such as "
                 "http://proxy.example:3128." % (variable, parts.scheme))
        if parts.hostname and value.isprintable() and ("://" in value or "/" not in value):
            default = 443 if scheme == "https" else 80  # urllib's, here
            port = default if parts.port is None else parts.port
            host = "[%s]" % parts.hostname if ":" in parts.hostname else parts.hostname
            return Proxy(variable, "%s:%d" % (host, port))
    fail(2, "%s must be a proxy URL like http://proxy.example:3128 (user:password@ before the "
         "host, if it asks for them): urllib cannot read it." % variable)


# --- The upstream call -------------------------------------------------------------

class UpstreamError(Exception):
    """The upstream call failed: `status` and `message` are what every surface answers, with
    OpenRouter's `upstream_status` and `retry_after` if it sent them; `label` is for /metrics."""

    def __init__(self, status, message, upstream_status=None, retry_after=""):
        super().__init__(message)
        self.status = status
        self.message = message
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.label = str(upstream_status or ("timeout" if status == 504 else "error"))


class Flight:
    """One call for the balance (GET /credits, and GET /key if needed), on a thread of its own,
    that callers share. Each waits for `outcome` until `deadline`; the first whose wait runs out
    stops the call, shutting its socket down, so that an answer dripping in holds it no longer."""

    def __init__(self, deadline):
        self.outcome = concurrent.futures.Future()  # a Balance, or UpstreamError
        # Running, so that no caller cancels it for all: asyncio.wait_for() cancels the wrapper
        # it waits on when its time is up, and the wrapper would cancel this Future.
        self.outcome.set_running_or_notify_cancel()
        self.deadline = deadline  # the time.monotonic() by which the whole answer is in
        self.lock = threading.Lock()  # for the two below
        self.connection = None  # the UpstreamConnection of the call, once it has one
        self.stopped = False  # whether a caller stopped it at its deadline

    def time_left(self):
        """For each step of the call: seconds left, or socket.timeout if none are."""
        left = self.deadline - time.monotonic()
        if self.stopped or left <= 0:
            raise socket.timeout("timed out")
        return left

    def hold(self, connection):
        """Make `connection` the one whose socket stop() shuts down."""
        with self.lock:
            self.connection = connection

    def stop(self):
        """End the call: a read blocked in the flight's thread returns at once (see shutdown())."""
        with self.lock, contextlib.suppress(OSError):  # OSError: already closed
            self.stopped = True
            if self.connection:
                self.connection.shutdown()


# getaddrinfo() cannot be interrupted, and a resolver that never answers holds it 10 s (glibc's
# 5 s, twice). So one connect (its lookup first) at a time, which others wait for only as long as
# their deadline allows: a stalled resolver holds one thread, not one per call.
LOOKUP = threading.Lock()


class UpstreamRequest(urllib.request.Request):
    """A GET to OpenRouter with the key, for `flight`, whose deadline its connection keeps."""

    def __init__(self, url, key, flight):
        super().__init__(url, headers={"Authorization": "Bearer " + key, "Accept":
                                       "application/json", "User-Agent": USER_AGENT})
        self.flight = flight  # the Flight this request is part of


class UpstreamConnection(http.client.HTTPConnection):
    """http.client's connection, that its flight can stop at any step: connect() hands the flight
    this connection first, for its shutdown(). Each step gets what is left of the time."""

    def __init__(self, host, flight, **options):  # options: urllib's timeout, TLS's context
        super().__init__(host, **options)
        self.flight = flight  # whose deadline each step keeps
        self.connected = None  # the socket, once connected: urllib drops self.sock before it reads

    def connect(self):
        self.flight.hold(self)
        if not LOOKUP.acquire(timeout=self.flight.time_left()):
            raise socket.timeout("the name %s was not resolved in time" % self.host)
        try:  # the steps after the lookup too: a flight starts only once the last is done or late
            self.timeout = self.flight.time_left()  # what http.client gives each step
            super().connect()  # the lookup and connect, a proxy's CONNECT, for HTTPS the handshake
        finally:
            LOOKUP.release()
        self.sock.settimeout(self.flight.time_left())  # each read and write, until stopped
        self.connected = self.sock

    def shutdown(self):
        """From another thread: a read blocked on this connection returns at once, as at the end of
        the stream, in a proxy's CONNECT, a TLS handshake or the answer (shutdown() does that, TLS
        or not; close() would not)."""
        sock = self.sock or self.connected
        if sock:
            sock.shutdown(socket.SHUT_RDWR)


class UpstreamTLSConnection(UpstreamConnection, http.client.HTTPSConnection):
    """The same for HTTPS: http.client's TLS, with tls_context()."""


class UpstreamHandler(urllib.request.HTTPHandler, urllib.request.HTTPSHandler,
                      urllib.request.HTTPRedirectHandler):
    """urllib's, with UpstreamConnection and no redirects (urllib would send the key to any
    Location): a 3xx comes as an HTTPError. build_opener() drops the defaults it subclasses."""

    def http_open(self, request):
        return self.do_open(UpstreamConnection, request, flight=request.flight)

    def https_open(self, request):
        return self.do_open(UpstreamTLSConnection, request, flight=request.flight,
                            context=tls_context())

    def redirect_request(self, *args):
        return None


@functools.lru_cache(maxsize=None)
def tls_context():
    """The SSLContext of every HTTPS call, made once, not per connection as http.client would: a CA
    bundle takes 20-35 ms to read. It verifies as http.client's does, and offers ALPN http/1.1."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


def upstream_message(body, key):
    """The upstream's own error message, on one short line, with the key cut out."""
    try:
        message = str(json.loads(body)["error"]["message"])
    except (ValueError, KeyError, TypeError, RecursionError):
        message = body.decode("utf-8", "replace")
    message = message.replace(key, "[redacted]")  # before any cut, which could split the key
    return " ".join(message.split())[:200] or "no message"


def http_failure(status, message, retry_after="", url=""):
    """The UpstreamError (returned, not raised) for an upstream HTTP status: the one place."""
    if status == 401:
        text = "OpenRouter rejected OPENROUTER_API_KEY (%s); check the key." % message
    elif status == 403:
        text = ("OpenRouter refused the key (%s): /credits answers only for a management key; "
                "create one at %s." % (message, MANAGEMENT_KEYS_URL))
    elif status == 429:
        retry_after = retry_after if retry_after.isdigit() else ""  # seconds: never the key
        wait = "in %s s" % retry_after if retry_after else "later"
        return UpstreamError(429, "OpenRouter is rate-limiting this key; retry %s." % wait,
                             429, retry_after)
    elif 300 <= status < 400:
        text = "OpenRouter answered a redirect (%d), not followed: the key went nowhere." % status
    else:  # the URL tells a wrong --base-url (a 404, say) from an outage
        text = "OpenRouter answered %d for %s: %s" % (status, url, message)
    return UpstreamError(502, text, status)


def unreachable(reason, proxy):
    """The UpstreamError (returned) when no status came back, naming a proxy, never its password."""
    if proxy and reason.startswith("Tunnel connection failed: "):  # what the proxy answered
        return UpstreamError(502, "The proxy %s (%s) refused the tunnel to OpenRouter: %s." % (
            proxy.address, proxy.variable, reason.partition(": ")[2]))
    via = " through the proxy %s (%s)" % (proxy.address, proxy.variable) if proxy else ""
    return UpstreamError(502, "Could not reach OpenRouter%s: %s." % (via, reason))


def too_slow(timeout):
    """The UpstreamError (returned) when no whole answer came within --timeout."""
    return UpstreamError(504, "OpenRouter did not answer within %g s." % timeout)


def finite_number(text):
    """json.loads would take NaN, Infinity and 1e400, which are not JSON (RFC 8259)."""
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("not a finite number: " + text)
    return number


def fetch_credits(config, path, flight):
    """Every upstream call: GET {base_url}{path} by the deadline: a JSON object or UpstreamError."""
    url = config.base_url + path
    body = None  # stays None if no whole answer came
    try:
        try:
            response = config.opener.open(UpstreamRequest(url, config.key, flight))
        except urllib.error.HTTPError as error:  # an error status: the error is the response
            response = error
        with response:
            body = response.read(MAX_UPSTREAM_BODY + 1)
    except (OSError, http.client.HTTPException) as error:  # URLError is an OSError too
        reason = getattr(error, "reason", error)  # urllib wraps connect errors, not read errors
        if not (isinstance(reason, socket.timeout) or flight.stopped):
            raise unreachable(str(reason) or type(reason).__name__, config.proxy) from None
    except Exception as error:  # a bug's, or urllib's: an answer all the same, and no secret
        raise unreachable("%s in the upstream call" % type(error).__name__, config.proxy) from None
    if body is None or flight.stopped:  # what came back before the stop is not the whole
        raise too_slow(config.timeout)
    status = response.getcode()
    if status != 200:
        retry_after = response.headers.get("Retry-After", "")
        raise http_failure(status, upstream_message(body, config.key), retry_after, url)
    if len(body) > MAX_UPSTREAM_BODY:
        text = "OpenRouter answered more than 1 MiB; a credit balance is far smaller."
        raise UpstreamError(502, text, 200)
    try:
        credits = json.loads(body, parse_float=finite_number, parse_constant=finite_number)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python's stack
        credits = None
    if not isinstance(credits, dict):
        raise UpstreamError(502, "OpenRouter answered 200 but not with a JSON object.", 200)
    return credits


def balance_of(credits):
    """(total_credits, total_usage) as floats, or None if either is no number a float holds."""
    data = credits.get("data") if isinstance(credits.get("data"), dict) else {}
    numbers = data.get("total_credits"), data.get("total_usage")
    if all(type(number) in (int, float) for number in numbers):
        with contextlib.suppress(OverflowError):
            return float(numbers[0]), float(numbers[1])
    return None


def deeper_than(levels, value):
    """Whether arrays and objects nest more than `levels` deep in `value`, parsed JSON."""
    if not isinstance(value, (dict, list)):
        return False
    items = value.values() if isinstance(value, dict) else value
    return levels == 0 or any(deeper_than(levels - 1, item) for item in items)


def is_management_key(config, flight):
    """Whether OpenRouter's GET /key says the key is a management key, or UpstreamError."""
    try:
        record = fetch_credits(config, "/key", flight).get("data")
        if isinstance(record, dict) and isinstance(record.get("is_management_key"), bool):
            return record["is_management_key"]
        raise UpstreamError(502, "it answered without data.is_management_key.", 200)
    except UpstreamError as error:
        raise UpstreamError(error.status, "OpenRouter answered two zeros, as it does for an "
                            "inference key, and GET /key could not tell whether this is one: "
                            + error.message, error.upstream_status, error.retry_after) from None


# --- Sharing the call ----------------------------------------------------------------

# credits: OpenRouter's object; total_credits, total_usage: its two numbers, as floats; body: the
# object as JSON bytes; fetched_at: when (time.monotonic()).
Balance = collections.namedtuple("Balance", "credits total_credits total_usage body fetched_at")


class SharedCall:
    """The balance as every surface asks for it. Callers that arrive while a Flight is in progress
    share it (single flight), each answering 504 on time whatever the upstream does; a flight
    past its deadline gives way to the next caller's. --cache-ttl reuses a success, not an error."""

    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()  # for the three below
        self.flight = None  # the Flight in progress
        self.last = None  # the Flight of the last success, done
        self.calls = collections.Counter()  # calls made, by status
        self.management_key = None  # once /key was asked: whether the key is one (it stays so)

    def join(self):
        """The Flight to wait on: a fresh success's, the one in progress, or a new one."""
        with self.lock:
            now = time.monotonic()
            if self.last and self.last.outcome.result().fetched_at > now - self.config.cache_ttl:
                return self.last
            if self.flight is None or self.flight.deadline <= now:
                if self.flight:  # past its deadline: stopped, so its thread ends
                    self.flight.stop()
                self.flight = Flight(now + self.config.timeout)
                threading.Thread(target=self.fly, args=(self.flight,), name="upstream",
                                 daemon=True).start()  # daemon: never holds the exit
            return self.flight

    def fly(self, flight):
        """Make the call, count it (first: a scrape waiting on it sees it), answer every caller."""
        error = None
        try:
            balance = self.fetch(flight)
        except BaseException as failure:  # even a bug's exception must reach every waiter
            error = failure
        with self.lock:
            self.calls[getattr(error, "label", "error") if error else "200"] += 1
        if error:
            flight.outcome.set_exception(error)
        else:
            flight.outcome.set_result(balance)
        with self.lock:
            if self.flight is flight:
                self.flight = None
            self.last = self.last if error else flight

    def fetch(self, flight):
        """A new Balance, or UpstreamError: 502 for an object that is no balance (see MAX_NESTING).
        For two zeros, which OpenRouter has been seen to answer an inference key with (not its
        documented 403), GET /key, asked once, tells its kind."""
        credits = fetch_credits(self.config, "/credits", flight)
        numbers = balance_of(credits)
        try:  # encoded once, here: every caller sharing this call, or reusing it, sends these bytes
            body = json.dumps(credits, ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate, as "\ud800" in the JSON: no UTF-8 text
            body = None
        if numbers is None or body is None or deeper_than(MAX_NESTING, credits):
            raise UpstreamError(502, NOT_A_BALANCE, 200)
        zeros = numbers == (0, 0)
        if zeros and self.management_key is None:
            self.management_key = is_management_key(self.config, flight)
        if zeros and not self.management_key:
            raise UpstreamError(502, "OpenRouter answered two zeros for an inference key, not a "
                                "balance: /credits answers only for a management key; create one"
                                " at %s." % MANAGEMENT_KEYS_URL, 200)
        return Balance(credits, *numbers, body, time.monotonic())

    def get(self):
        """For a thread: a Balance, or UpstreamError."""
        flight = self.join()
        try:
            return flight.outcome.result(flight.deadline - time.monotonic())
        except concurrent.futures.TimeoutError:
            raise self.late(flight) from None

    async def get_async(self):
        """For the MCP loop: the same, but no thread waits."""
        import asyncio  # here, not at the top: REST alone starts sooner and smaller
        flight = self.join()
        try:
            return await asyncio.wait_for(asyncio.wrap_future(flight.outcome),
                                          flight.deadline - time.monotonic())
        except asyncio.TimeoutError:
            raise self.late(flight) from None

    def calls_by_status(self):
        """[(status, calls made)], sorted: a copy made under the lock, as fly() adds to them."""
        with self.lock:
            return sorted(self.calls.items())

    def late(self, flight):
        """The error for a caller whose wait ran out; the call is stopped, as it is too late."""
        flight.stop()
        return too_slow(self.config.timeout)


# --- The front door: one handler for both ports -------------------------------------

def loopback(address):
    """Whether an IP address is loopback, ::ffff:127.0.0.1 too (ipaddress: only from 3.13 on)."""
    address = ipaddress.ip_address(address)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


@functools.lru_cache(maxsize=256)  # a client sends the same Host every time: 3 µs saved each
def is_loopback(host):
    """Whether a Host header, or an Origin's host, names loopback (a port and [IPv6] allowed)."""
    try:
        name = urllib.parse.urlsplit("//" + host).hostname or ""  # lower case, no port or []
        return name == "localhost" or loopback(name)
    except ValueError:  # not an address, or a malformed one
        return False


def bearer_token(header):
    """The token an Authorization header (bytes) carries in the Bearer scheme, in any case, the
    spaces around it dropped (RFC 9110 11.1, 11.4); None for another scheme, or no header."""
    scheme, _, value = header.strip(b" \t").partition(b" ")
    return value.strip(b" \t") if scheme.lower() == b"bearer" else None


Target = collections.namedtuple("Target", "authority path")  # see split_target()


def split_target(target):
    """A request's target as a Target: its path without the query, and, for the absolute form that
    proxies are sent (http://localhost/v1/credits: RFC 9112 3.2.2), the authority, which then
    stands for Host; "" for the origin form (/v1/credits)."""
    target = target.partition("?")[0]
    if not target.lower().startswith(("http://", "https://")):
        return Target("", target)
    authority, _, path = target.partition("://")[2].partition("/")
    return Target(authority, "/" + path)


# What answers a path: respond(gateway, handler), for `methods`; `guarded`: it reveals the
# balance, so the caller token guards it; `operation`: its OpenAPI Operation (None: not REST).
Route = collections.namedtuple("Route", "respond methods guarded operation")
Refusal = collections.namedtuple("Refusal", "status message headers")  # see refusal()
CLOSE = {"Connection": "close"}  # for a refusal after which the connection cannot go on
BEARER = {"WWW-Authenticate": "Bearer"}  # for a 401: the scheme the caller token goes in


def timeval(seconds):
    """`seconds` as the struct timeval of SO_RCVTIMEO and SO_SNDTIMEO (0 would mean never)."""
    microseconds = max(1, int(seconds * 1e6))
    return struct.pack("ll", microseconds // 1000000, microseconds % 1000000)


class RequestReader(io.RawIOBase):
    """A client connection's bytes (under the handler's rfile), each read waiting only until the
    request's deadline, so a request trickling in byte by byte ends there too: TimeoutError."""

    def __init__(self, connection):
        super().__init__()
        self.connection = connection  # the client's socket
        self.deadline = 0.0  # the time.monotonic() by which the request must be in whole (begin())

    def readable(self):
        return True

    def readinto(self, buffer):
        """Read what has come, up to len(buffer) bytes; b"" at the end; TimeoutError."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        # The kernel's own timeout for this read (socket(7)) ends it with EAGAIN. With settimeout(),
        # each read or write is a poll() then the call, each giving up the GIL: a third slower.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(left))
        try:
            return self.connection.recv_into(buffer)
        except BlockingIOError:  # EAGAIN: the time is up
            raise TimeoutError() from None


class GatewayHandler(http.server.BaseHTTPRequestHandler):
    """One connection to either port. Of http.server's hooks it overrides setup() (a RequestReader
    as rfile), handle() (503 past --max-connections), handle_one_request() (408 past
    --idle-timeout), handle_expect_100(), send_error() and log_message(). dispatch() refuses a
    request (refusal()) or has its Route answer; every answer leaves in one write. State:

    - reader: the RequestReader under rfile, which keeps the request's deadline;
    - started: the time.monotonic() when the request began (the access log's clock);
    - body: the request's body, once read."""

    protocol_version = "HTTP/1.1"  # keep-alive
    server_version = USER_AGENT
    disable_nagle_algorithm = True  # with the single write: no 40 ms delayed-ACK stall

    def setup(self):
        super().setup()
        idle_timeout = self.server.gateway.config.idle_timeout  # also each send()'s, at most
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval(idle_timeout))
        self.rfile.close()  # http.server's reader, which knows no deadline, for this one
        self.reader = RequestReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)

    def handle(self):
        # A client that has just closed may not have freed its slot yet: wait a moment for it.
        admitted = self.server.slots.acquire(timeout=0.1)  # one of --max-connections
        try:
            if admitted:
                super().handle()  # handle_one_request(), until the connection is to close
            else:
                self.begin()
                self.server.warn_busy()
                self.refuse(503, BUSY, {"Retry-After": "1", **CLOSE})
        except (ConnectionError, BlockingIOError):  # BlockingIOError: SO_SNDTIMEO
            pass  # the client went away, or stopped reading: nothing to answer or report
        finally:
            if admitted:
                self.server.slots.release()

    def begin(self):
        """A request begins: nothing of it known yet; its clock and its deadline start."""
        self.command = None
        self.path = ""
        self.started = time.monotonic()
        self.reader.deadline = self.started + self.server.gateway.config.idle_timeout

    def handle_one_request(self):
        """Read a request, answer it: 408 if not whole by its deadline, none if it never began."""
        self.begin()
        arrived = b""  # the first bytes of the request, once any came
        try:
            arrived = self.rfile.peek(1)  # b"": the client closed
            self.raw_requestline = self.rfile.readline(65537)
            if not arrived:
                self.close_connection = True
            elif len(self.raw_requestline) > 65536:
                self.send_error(414)
            elif self.parse_request():  # http.server's: else it called send_error()
                self.dispatch()
        except TimeoutError:  # RequestReader's: the request's deadline passed
            self.close_connection = True
            if arrived:
                self.refuse(408, "The request did not arrive whole within --idle-timeout.", CLOSE)

    def handle_expect_100(self):
        """100 Continue only if the request will not be refused; else the refusal, then close."""
        refusal = self.refusal(self.content_length())
        if refusal is None:
            return super().handle_expect_100()
        self.refuse(refusal.status, refusal.message, {**refusal.headers, **CLOSE})
        return False  # then http.server does not call dispatch()

    def send_error(self, code, message=None, explain=None):
        """http.server's own errors (400, 414, 431, 505): a request it cannot read, then close."""
        self.refuse(code, (message or self.responses[code][0]) + ".", CLOSE)

    @property
    def request_path(self):
        """The path without its query, nor any scheme and host: what routes, and what the access
        log shows."""
        return split_target(self.path).path

    def dispatch(self):
        self.started = time.monotonic()  # the access log times the answer, not the client's pause
        length = self.content_length()
        refusal = self.refusal(length)
        if refusal is None or refusal.headers != CLOSE:  # the next request follows the body
            self.body = self.rfile.read(length)
            if len(self.body) < length:  # the client closed its side early
                refusal = Refusal(400, "The request body ended before its Content-Length.", CLOSE)
        if refusal:
            return self.refuse(*refusal)
        self.server.busy.add(self)  # a stop waits for these answers
        try:
            self.server.routes[self.request_path].respond(self.server.gateway, self)
        finally:
            self.server.busy.discard(self)

    def content_length(self):
        """The body's declared length, or None if it is not one plain Content-Length (RFC 9112
        6.3; the spaces and tabs around a field's value are not part of it, RFC 9110 5.5)."""
        lengths = {value.strip(" \t") for value in self.headers.get_all("Content-Length", ["0"])}
        length = lengths.pop() if len(lengths) == 1 else ""
        plain = length.isascii() and length.isdigit() and len(length) <= 9
        return int(length) if plain and "Transfer-Encoding" not in self.headers else None

    def refusal(self, length):
        """What the head refuses the request for, in order: a Refusal, or None. `length` is the
        body's (see content_length()); the first six close the connection, the body unread."""
        target = split_target(self.path)
        route = self.server.routes.get(target.path)
        unnamed = [] if self.request_version == "HTTP/1.1" else ["localhost"]  # 1.0 needs no Host
        hosts = self.headers.get_all("Host", unnamed)
        origin = self.headers.get("Origin")
        if self.command == "CONNECT":  # HTTP's, but a proxy's: this port's paths take others
            allow = sorted({method for served in self.server.routes.values()
                            for method in served.methods})
            return Refusal(405, "This is no proxy: CONNECT is not served.",
                           {"Allow": ", ".join(allow), **CLOSE})
        if self.command not in METHODS:
            return Refusal(501, "Unsupported method (%s)." % self.command, CLOSE)
        if self.headers.defects:  # a line that is no field: http.server dropped it and all after
            return Refusal(400, "Each header line must be a name, a colon, then its value.", CLOSE)
        if length is None:
            return Refusal(400, "Send a request body, if any, with one plain Content-Length.",
                           CLOSE)
        if length > MAX_REQUEST_BODY:
            return Refusal(413, "A request body over 64 KiB is refused.", CLOSE)
        if len(hosts) != 1:  # which one would the Host check trust? RFC 9112 3.2: 400
            return Refusal(400, "Send one Host header, not %d." % len(hosts), CLOSE)
        host = target.authority or hosts[0].strip(" \t")
        if self.server.loopback_only and not is_loopback(host):  # against DNS rebinding
            return Refusal(421, "On loopback, only a loopback Host like localhost is served.", {})
        if self.server.loopback_only and origin and not is_loopback(origin.partition("//")[2]):
            return Refusal(403, "On loopback, only a page from a loopback address may call.", {})
        token = self.server.gateway.config.token
        if route and route.guarded and token:  # a token never sent told from a wrong one
            sent = bearer_token(self.headers.get("Authorization", "").encode("latin-1"))
            if sent is None:
                return Refusal(401, "Send Authorization: Bearer <caller token> (the gateway's "
                               "CREDITS_GATEWAY_TOKEN).", BEARER)
            if not hmac.compare_digest(sent, token.encode()):  # constant time: no timing hints
                return Refusal(401, "The caller token is wrong: send the gateway's "
                               "CREDITS_GATEWAY_TOKEN.", BEARER)
        if route is None:
            if target.path == "/register" or "/.well-known/" in target.path:
                return Refusal(404, NO_OAUTH, {})  # OAuth discovery
            paths = ", ".join(self.server.routes)
            return Refusal(404, "No such path; this port serves %s." % paths, {})
        if self.command not in route.methods:
            text = "Use %s on %s." % (" or ".join(route.methods), target.path)
            return Refusal(405, NO_SSE if self.server.surface == "MCP" else text,
                           {"Allow": ", ".join(route.methods)})
        return None

    def refuse(self, status, message, headers=None, upstream_status=None):
        """An error in OpenRouter's shape, which clients parse, and on the MCP port a JSON-RPC one,
        the only error body MCP clients show; its code is the HTTP status (JSON-RPC leaves codes
        outside -32768..-32000 to applications). Then linger() if the connection is to close."""
        body = {"error": {"code": status, "message": message}}
        if upstream_status is not None:
            body["error"]["metadata"] = {"upstream_status": upstream_status}
        if self.server.surface == "MCP":
            body.update(jsonrpc="2.0", id=None)
        self.send_json(status, body, headers)
        if self.close_connection:
            self.linger()

    def linger(self):
        """Close as nginx's lingering close does (RFC 9112 9.6): our side first, then drop what the
        client still sends, LINGER s at most: a close on unread input resets, losing the answer."""
        with contextlib.suppress(OSError):  # socket.timeout included: LINGER is up
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER
            while time.monotonic() < deadline:
                self.connection.settimeout(max(0.001, deadline - time.monotonic()))
                if not self.connection.recv(65536):  # the client has closed its side too
                    break

    def send_json(self, status, value, headers=None):
        body = value if isinstance(value, bytes) else json.dumps(value).encode()  # already JSON
        self.write_answer(status, body, {"Content-Type": "application/json", **(headers or {})})

    def write_answer(self, status, body, headers):
        """The one way out: head and body in one write (send_response() would cost a second, and
        date_time_string() three times this strftime), then one log line: the method and path
        only, as a query or a header may hold a secret, unprintables escaped."""
        head = ["HTTP/1.1 %d %s" % (status, self.responses[status][0]),
                "Server: " + self.server_version,
                time.strftime("Date: %a, %d %b %Y %H:%M:%S GMT", time.gmtime()),
                "Content-Length: %d" % len(body)]
        head += ["%s: %s" % (name, text) for name, text in headers.items()
                 if text and text.isprintable()]  # an empty value, or one with CR or LF: left out
        if headers.get("Connection") == "close":  # as http.server's send_header() does
            self.close_connection = True
        head = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + body)
        if not self.server.gateway.config.quiet:
            method = urllib.parse.quote(self.command or "-", safe="")
            path = urllib.parse.quote(self.request_path, safe="/%") or "-"
            log("%s %s %d %.1f ms" % (method, path, status,
                                      (time.monotonic() - self.started) * 1000))

    def log_message(self, format, *args):
        pass  # http.server would log each idle timeout; write_answer() logs each answer


class GatewayServer(http.server.ThreadingHTTPServer):
    """One listening port, REST or MCP, and what its front door needs to guard it."""

    request_queue_size = 1024  # socketserver's 5 drops connections under a burst of clients

    def __init__(self, gateway, surface, port, routes, cap):
        """Listen on the first address --host names, or OSError ("::" takes IPv4 too, unless the
        OS makes IPv6 sockets IPv6-only: Linux's net.ipv6.bindv6only)."""
        family, _, _, _, address = socket.getaddrinfo(
            gateway.config.host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        self.address_family = family  # socketserver makes its socket with this: set it first
        super().__init__(address, GatewayHandler)
        self.gateway = gateway  # whose config it serves, and whose routes answer
        self.surface = surface  # "REST" or "MCP"
        self.routes = routes  # {path: Route}
        self.loopback_only = loopback(self.server_address[0])  # then Host and Origin are checked
        self.cap = cap  # --max-connections, or fewer (see connection_cap())
        self.slots = threading.BoundedSemaphore(cap)  # the connections served at once
        self.handlers = threading.BoundedSemaphore(2 * cap)  # those and the ones being refused
        self.busy = set()  # the handlers answering, which close() waits for (add() is atomic)
        self.warned = -math.inf  # when warn_busy() last wrote its line

    def get_request(self):
        """accept() once fewer than 2 x cap connections are open (a refused one lingers a second
        or two): more wait in the listen queue. Out of descriptors, wait, or accept() would spin."""
        self.handlers.acquire()
        try:
            return super().get_request()
        except OSError as error:
            self.handlers.release()
            if error.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.1)
            raise  # socketserver drops the error and polls again

    def shutdown_request(self, request):
        """socketserver's end of every connection that get_request() accepted."""
        super().shutdown_request(request)
        self.handlers.release()

    def warn_busy(self):
        """The operator's hint, at most once a minute: a refused client is told only to retry."""
        if time.monotonic() - self.warned >= 60:
            self.warned = time.monotonic()
            log("warning: %s clients on the %s port, all it serves at once; more get 503 (raise "
                "--max-connections, or LimitNOFILE if the open-file limit lowered it)."
                % (self.cap, self.surface))

    def serve(self, path):
        """Serve, then log where `path` is, as a client writes it: http://[::1]:8080/v1/credits."""
        threading.Thread(target=self.serve_forever, args=(0.1,), daemon=True).start()
        host, port = self.server_address[:2]
        host = "[%s]" % host if ":" in host else host
        log("%s listening on http://%s:%d%s" % (self.surface, host, port, path))

    def close(self, grace):
        """Stop accepting, then give requests in flight `grace` seconds; idle connections just go.
        Call it from another thread than the port's serve_forever(), which it waits for."""
        self.shutdown()
        self.server_close()
        deadline = time.monotonic() + grace
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.02)


def connection_cap(config, ports):
    """--max-connections, or fewer if the open-file limit cannot hold a descriptor for each
    connection served and each refused, plus 32. The soft limit is first raised to the hard one,
    as Go's runtime does (systemd's soft 1,024 is too few for two ports of 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):  # the hard limit may be unlimited
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    room = max(1, (soft - 32) // (2 * ports))
    if soft == resource.RLIM_INFINITY or config.max_connections <= room:  # unlimited, or room
        return config.max_connections
    log("warning: the open-file limit is %d, too few for --max-connections %d on %d port(s); "
        "serving %d at once on each (raise LimitNOFILE or ulimit -n)."
        % (soft, config.max_connections, ports, room))
    return room


# --- REST ----------------------------------------------------------------------------

def get_credits(gateway, handler):
    """GET /v1/credits: the upstream object unchanged, or the UpstreamError as JSON."""
    try:
        balance = gateway.upstream.get()
    except UpstreamError as error:
        headers = {"Cache-Control": "no-store", "Retry-After": error.retry_after}
        return handler.refuse(error.status, error.message, headers, error.upstream_status)
    ttl = gateway.config.cache_ttl
    age = time.monotonic() - balance.fetched_at  # RFC 9111: reusable for max-age minus Age
    cached = {"Cache-Control": "max-age=%d" % ttl, "Age": "%d" % age}
    handler.send_json(200, balance.body, cached if ttl else {"Cache-Control": "no-store"})


def get_metrics(gateway, handler):
    """GET /metrics in Prometheus' text format 0.0.4. Each scrape reads the balance through the
    shared call, as Prometheus' guide advises; without one, the balance is left out, not stale."""
    lines = []
    try:
        balance = gateway.upstream.get()
    except UpstreamError:
        balance = None

    def metric(name, kind, text, *samples):  # each sample: (labels, value)
        lines.extend(["# HELP %s %s" % (name, text), "# TYPE %s %s" % (name, kind)])
        lines.extend("%s%s %r" % (name, labels, value) for labels, value in samples)
    if balance:
        credits, usage = balance.total_credits, balance.total_usage
        metric("openrouter_total_credits", "gauge", "Credits purchased, in USD.", ("", credits))
        metric("openrouter_total_usage", "gauge", "Credits spent, in USD.", ("", usage))
        metric("openrouter_credits_remaining", "gauge", "Credits left to spend, in USD.",
               ("", credits - usage))
    metric("openrouter_up", "gauge",
           "1 if this scrape has a balance (fresh, or reused within --cache-ttl), else 0.",
           ("", int(balance is not None)))
    calls = gateway.upstream.calls_by_status()
    metric("credits_gateway_upstream_calls_total", "counter",
           "Calls made to OpenRouter, by HTTP status (timeout, error: none came back).",
           *[('{status="%s"}' % status, count) for status, count in calls])
    metric("credits_gateway_build_info", "gauge", "Always 1; the gateway's version is its label.",
           ('{version="%s"}' % __version__, 1))
    handler.write_answer(200, ("\n".join(lines) + "\n").encode(), {
        "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store"})


def get_ready(gateway, handler):
    ready = gateway.mcp_status in ("off", "ready")
    handler.send_json(200 if ready else 503, {"status": "UP" if ready else "DOWN"})


def described(text, schema):
    """An OpenAPI response: `text`, and a JSON body of one of SCHEMAS."""
    return {"description": text, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/" + schema}}}}


def required(**properties):
    return {"type": "object", "required": list(properties), "properties": properties}


SCHEMAS = {  # the bodies REST answers, in OpenAPI
    "Credits": {**required(data=required(total_credits={"type": "number"},
                                         total_usage={"type": "number"})),
                "description": "OpenRouter's answer as it came, other keys kept: " + EXAMPLE},
    "Status": required(status={"enum": ["UP", "DOWN"]}),
    "Error": required(error=required(code={"type": "integer"}, message={"type": "string"})),
    "StatusOrError": {"anyOf": [{"$ref": "#/components/schemas/Status"},
                                {"$ref": "#/components/schemas/Error"}]},
    "Object": {"type": "object"}}
# What the front door may refuse on any path (see GatewayHandler), beside a path's own errors.
REFUSALS = ("400", "403", "408", "413", "414", "421", "431", "503", "505")
# An OpenAPI operation: its name and text, its answers ({status: response}), its own errors.
Operation = collections.namedtuple("Operation", "name text answers errors")
GET = ("GET", "HEAD")
UP = {"200": described("UP.", "Status")}
REST_ROUTES = {
    "/v1/credits": Route(get_credits, GET, True, Operation(
        "getCredits", "The balance, as OpenRouter answers it: total_credits bought and "
        "total_usage spent, in US dollars.", {"200": described("The balance.", "Credits")},
        ("429", "502", "504"))),
    "/metrics": Route(get_metrics, GET, True, Operation(
        "getMetrics", "The balance and the calls made for it, for Prometheus.",
        {"200": {"description": "Prometheus text format 0.0.4.",
                 "content": {"text/plain": {"schema": {"type": "string"}}}}}, ())),
    "/health/live": Route(lambda gateway, handler: handler.send_json(200, {"status": "UP"}),
                          GET, False, Operation("getLive", "UP while the process serves.", UP, ())),
    "/health/ready": Route(get_ready, GET, False, Operation(
        "getReady", "UP once every port serves (REST alone with MCP off).",
        {**UP, "503": described("DOWN, or an error.", "StatusOrError")}, ())),
    "/openapi.json": Route(lambda gateway, handler: handler.send_json(200, describe(
        REST_ROUTES, bool(gateway.config.token))), GET, False, Operation(
            "getOpenApi", "This description.", {"200": described("OpenAPI 3.1.", "Object")}, ())),
}


def describe(routes, with_token):
    """The REST API in OpenAPI 3.1: every status each path can answer (401 where a token guards)."""
    error = described("An error in OpenRouter's shape; its message says what went wrong.", "Error")
    paths = {}
    for path, (_, _, guarded, operation) in routes.items():
        guarded = guarded and with_token
        statuses = REFUSALS + operation.errors + (("401",) if guarded else ())
        paths[path] = {"get": {
            "operationId": operation.name, "description": operation.text, "tags": ["gateway"],
            "security": [{"bearer": []}] if guarded else [],
            "responses": {**dict.fromkeys(statuses, error), **operation.answers}}}
    bearer = {"bearer": {"type": "http", "scheme": "bearer"}}
    return {"openapi": "3.1.0",
            "info": {"title": "OpenRouter credits gateway", "version": __version__,
                     "description": "The OpenRouter credit balance, without the OpenRouter key.",
                     "contact": {"name": "credits_gateway"}},
            "servers": [{"url": "/"}],  # wherever this description was served from
            "tags": [{"name": "gateway", "description": "The balance, and the gateway's health."}],
            "paths": paths,
            "components": {"securitySchemes": bearer if with_token else {}, "schemas": SCHEMAS}}


# --- MCP -----------------------------------------------------------------------------

TOOL_DESCRIPTION = ("Get the OpenRouter credit balance of the account behind this gateway: "
                    "%s, what was purchased and what has been spent, in US dollars; the "
                    "balance left is total_credits - total_usage." % EXAMPLE)
INSTRUCTIONS = ("One tool, get-credit-balance, takes no arguments. %s On a failure the result is "
                "an error whose text says what to do." % TOOL_DESCRIPTION)


def build_mcp_server(upstream):
    """The MCP server and its one tool; mcp (optional, half a second to import) is imported here."""
    import logging
    from pydantic import BaseModel, ConfigDict  # pydantic comes with mcp
    from mcp.server.caching import CacheHint
    from mcp.server.mcpserver import MCPServer
    from mcp.types import CallToolResult, TextContent, ToolAnnotations
    # The SDK's log lines get the gateway's prefix (MCPServer's own basicConfig is then a no-op).
    logging.basicConfig(format="credits-gateway: %(message)s", level=logging.WARNING)
    # The tool list never changes: a day's cache hint for every caller, and no subscriptions/listen
    # (a stream that never ends, with nothing to hear: a listener gets "Method not found").
    hints = {"tools/list": CacheHint(ttl_ms=24 * 3600 * 1000, scope="public")}
    server = MCPServer("openrouter-credits", version=__version__, instructions=INSTRUCTIONS,
                       log_level="WARNING", cache_hints=hints, subscriptions=False)
    annotations = ToolAnnotations(read_only_hint=True, destructive_hint=False,
                                  idempotent_hint=True, open_world_hint=True)

    class CreditsData(BaseModel):
        model_config = ConfigDict(extra="allow")  # keys OpenRouter may add are kept
        total_credits: float  # in the outputSchema: {"type": "number"}
        total_usage: float

    class Credits(BaseModel):  # the tool's outputSchema, which the SDK makes from its annotation
        model_config = ConfigDict(extra="allow")
        data: CreditsData

    @server.tool(name="get-credit-balance", title="Get credit balance",
                 description=TOOL_DESCRIPTION, annotations=annotations)
    async def get_credit_balance() -> Credits:
        # Async, so that waiting parks no thread (the SDK runs a sync tool in a pool of 40).
        try:
            balance = await upstream.get_async()
        except UpstreamError as error:  # a ToolError would prefix "Error executing tool ..."
            return CallToolResult(is_error=True,
                                  content=[TextContent(type="text", text=error.message)])
        # The object as it came, which the SDK checks against Credits: a Credits returned would
        # come out as the model dumps it (50 as 50.0).
        return CallToolResult(structured_content=balance.credits,
                              content=[TextContent(type="text", text=balance.body.decode())])

    return server


async def call_app(app, handler):
    """Run one request through the ASGI app, on the MCP loop: (status, body, headers). The
    handler's thread writes them: a client that does not read must never hold up the loop."""
    import asyncio  # here and below, not at the top, as in SharedCall.get_async()
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": handler.request_version[5:], "method": handler.command,
             "path": handler.request_path, "query_string": b"",  # /mcp takes no query
             "headers": [(name.lower().encode("latin-1"), value.encode("latin-1"))
                         for name, value in handler.headers.items()]}
    requests = [{"type": "http.request", "body": handler.body}]  # the body, given once
    answered = asyncio.Event()
    messages = []  # what the app sends: http.response.start, then the body in parts

    async def receive():
        if requests:
            return requests.pop()
        await answered.wait()  # the body comes once; returning it again would spin the loop
        return {"type": "http.disconnect"}

    async def send(message):
        messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(scope, receive, send)
    start, *parts = messages
    headers = {name.decode("latin-1").title(): value.decode("latin-1")
               for name, value in start["headers"] if name != b"content-length"}
    return start["status"], b"".join(part.get("body", b"") for part in parts), headers


def post_mcp(gateway, handler):
    """POST /mcp, in the handler's thread: hand the request to the MCP loop, and wait."""
    import asyncio
    if gateway.stopped.is_set():  # the loop may close before it could answer
        return handler.refuse(503, "The gateway is stopping; retry on a new connection.", CLOSE)
    call = asyncio.run_coroutine_threadsafe(call_app(gateway.mcp_app, handler), gateway.mcp_loop)
    handler.write_answer(*call.result())


MCP_ROUTES = {"/mcp": Route(post_mcp, ("POST",), True, None)}


def missing_mcp(error):
    """What to do without mcp: install it, or, before Python 3.10, run a newer Python."""
    if sys.version_info < (3, 10):
        return "mcp needs Python 3.10+, and this is %d.%d" % sys.version_info[:2]
    return '%s (pip install "mcp>=2.3,<3" in this Python\'s environment)' % error


def serve_stdio(config):
    """MCP over stdin and stdout, for clients that spawn their servers; logs go to stderr."""
    if sys.stdin is None or sys.stdout is None:  # started with <&- or >&-
        fail(1, "--stdio serves MCP on stdin and stdout, and one of them is closed.")
    try:
        build_mcp_server(SharedCall(config)).run("stdio")
    except ImportError as error:
        fail(1, "--stdio needs mcp: %s." % missing_mcp(error))
    except KeyboardInterrupt:
        pass  # the client went away; nothing to report
    return 0


# --- The gateway, and main ------------------------------------------------------------

class Gateway:
    """Both ports, the MCP thread that serves one of them, and the call they share."""

    def __init__(self, config):
        self.config = config  # from parse_config()
        self.upstream = SharedCall(config)  # the call both ports share
        self.stopped = threading.Event()  # set by stop(), or by MCP ending on its own
        self.rest = None  # the GatewayServers, once open_ports() bound them
        self.mcp = None  # (None with --no-mcp)
        self.mcp_status = "off" if config.no_mcp else "starting"  # then "ready" or "failed"
        self.mcp_thread = None  # the thread that serves MCP, and sets mcp_status
        self.mcp_loop = None  # while MCP serves: its asyncio loop
        self.mcp_app = None  # and the SDK's ASGI app on it

    def start(self):
        """Bind both ports (exit 1 before anything serves if one is busy), then serve them."""
        self.open_ports()
        self.rest.serve("/v1/credits")
        if not self.rest.loopback_only and not self.config.token:
            log("warning: listening on %s with no CREDITS_GATEWAY_TOKEN: anyone who can reach "
                "it can read the balance." % self.config.host)
        if self.mcp:
            self.mcp_thread = threading.Thread(target=self.run_mcp, name="mcp", daemon=True)
            self.mcp_thread.start()

    def open_ports(self):
        """Bind each port, or exit 1 with one line that names every busy one and its flag."""
        ports = {"REST": (self.config.rest_port, REST_ROUTES)}
        if not self.config.no_mcp:
            ports["MCP"] = (self.config.mcp_port, MCP_ROUTES)
        cap = connection_cap(self.config, len(ports))
        servers = {}
        taken = {}  # for each port that could not be bound: {its flag: "port N for X (why)"}
        for surface, (port, routes) in ports.items():
            try:
                servers[surface] = GatewayServer(self, surface, port, routes, cap)
            except UnicodeError:  # the name has an empty label, or one over 63 characters
                self.no_such_host("not a host name")
            except OSError as error:
                if isinstance(error, socket.gaierror) or error.errno in (errno.EADDRNOTAVAIL,
                                                                         errno.EINVAL):
                    self.no_such_host(error.strerror or error)
                flag = "--%s-port" % surface.lower()
                taken[flag] = "port %d for %s (%s)" % (port, surface, error.strerror or error)
        if taken:
            for server in servers.values():
                server.server_close()
            fail(1, "cannot listen on %s %s; choose %s with %s." % (self.config.host, " and ".join(
                taken.values()), "others" if len(taken) > 1 else "another", " and ".join(taken)))
        self.rest = servers["REST"]
        self.mcp = servers.get("MCP")

    def no_such_host(self, reason):
        """Exit 2: --host names no address of this machine (printed as a string literal if it
        holds an unprintable character, so the line stays one)."""
        host = self.config.host if self.config.host.isprintable() else ascii(self.config.host)
        fail(2, "--host %s is no address of this machine (%s); use one that is, or 0.0.0.0 for "
             "all." % (host, reason))

    def run_mcp(self):
        """The MCP thread. Without mcp, MCP is off and REST goes on; if MCP fails, all stops."""
        import asyncio
        try:
            from mcp.server.transport_security import TransportSecuritySettings
            # Stateless, JSON answers. The SDK's Host and Origin check is off: it matches names as
            # strings (127.0.0.2 or LOCALHOST would fail); the front door checked both.
            app = build_mcp_server(self.upstream).streamable_http_app(
                streamable_http_path="/mcp", stateless_http=True, json_response=True,
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
            asyncio.run(self.serve_mcp(app))
        except ImportError as error:
            self.mcp_status = "off"  # first: whoever reads the line below finds /health/ready UP
            log("MCP is off: %s; REST still serves." % missing_mcp(error))
        finally:
            self.mcp.server_close()  # if it never served
            if not self.stopped.is_set() and self.mcp_status != "off":  # MCP ended on its own
                self.mcp_status = "failed"
                self.stopped.set()

    async def serve_mcp(self, app):
        """While the app's lifespan runs (it starts the SDK's session manager), answer on the MCP
        port. On stop, close the port and let calls in flight finish on this loop."""
        import asyncio
        self.mcp_loop = asyncio.get_running_loop()
        self.mcp_app = app
        async with app.router.lifespan_context(app):
            if self.stopped.is_set():  # stopped while mcp was importing
                return
            self.mcp_status = "ready"  # first: whoever reads serve()'s line finds it UP
            self.mcp.serve("/mcp")
            await self.mcp_loop.run_in_executor(None, self.stopped.wait)
            await self.mcp_loop.run_in_executor(None, self.mcp.close, self.config.timeout + 1)

    def stop(self, grace=2.0):
        """Close both ports, then give requests in flight `grace` seconds to be answered."""
        self.stopped.set()  # the MCP thread closes its own port: see serve_mcp()
        self.rest.close(grace)
        if self.mcp_thread:
            self.mcp_thread.join(grace)


def print_by(text, deadline):
    """Write `text` to stdout by `deadline` (a time.monotonic()), or OSError. A plain write into
    a pipe nobody reads blocks for ever once the pipe is full; select() waits only until then."""
    if sys.stdout is None:  # started with >&-: descriptor 1 may be another file by now
        raise OSError(errno.EBADF, "it is closed")
    data = text.encode()
    while data:
        if not select.select([], [1], [], max(0, deadline - time.monotonic()))[1]:
            raise OSError(errno.ETIMEDOUT, "nobody read it within --timeout")
        # Once select() finds room, a pipe takes PIPE_BUF bytes without blocking.
        data = data[os.write(1, data[:select.PIPE_BUF]):]


def run_once(config):
    """--once: print the balance (indented for a person, one line for a pipe), or exit 1, or 3
    below --min-balance; all within about --timeout. A stdout that cannot take it costs one line
    (and exit 1 without --min-balance), not a traceback."""
    deadline = time.monotonic() + config.timeout
    try:
        balance = SharedCall(config).get()  # an inference key's zeros are checked too
    except UpstreamError as error:
        fail(1, error.message)
    try:
        print_by(json.dumps(balance.credits, indent=2 if os.isatty(1) else None) + "\n", deadline)
    except OSError as error:
        log("could not write the balance to stdout: %s." % (error.strerror or error))
        if config.min_balance is None:
            return 1
    left = balance.total_credits - balance.total_usage  # the threshold decides, printed or not
    if config.min_balance is not None and left < config.min_balance:
        fail(3, "%.2f USD left, below --min-balance %g." % (left, config.min_balance))
    return 0


def main(argv=None):
    config = parse_config(argv)
    if config.once:
        return run_once(config)
    if config.stdio:
        return serve_stdio(config)
    # A signal handler runs in this thread between two bytecodes, even while it holds a lock: one
    # that took a lock (Event.set() does) could wait for ever on its own thread. So the handlers,
    # set first (a signal once a port is announced counts), only append to a list this thread reads.
    signals = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: signals.append(signum))
    gateway = Gateway(config)
    gateway.start()
    while not signals and not gateway.stopped.is_set():  # is_set() takes no lock
        time.sleep(0.1)
    gateway.stop(grace=config.timeout + 1)
    if gateway.mcp_status == "failed":
        fail(1, "the MCP server stopped unexpectedly; see the lines above.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
