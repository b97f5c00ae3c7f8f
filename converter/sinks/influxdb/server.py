"""The server at the other end: which write API it speaks, how to sign in, what its answers mean.

InfluxDB 2 (and 3, Cloud, Telegraf's influxdb_v2_listener) take `/api/v2/write?org=&bucket=
&precision=ns|us|ms|s` with `Authorization: Token T`. InfluxDB 1.x takes `/write?db=&rp=
&precision=n|u|ms|s` with a user and password (HTTP basic auth), or nothing when auth is
off; 1.6 and 1.7 have no `/api/v2/write` at all. Which one a server is comes from the
`X-Influxdb-Version` header of its `/ping` answer: `1.6.7~rc0` or `1.8.10` for 1.x,
`v2.8.0` for 2.x, `Telegraf 1.39.3` for the listener (seen on the real servers). Header
names are matched in any case (HTTP says they are case-insensitive; a proxy, or HTTP/2,
sends `x-influxdb-version`).

Secrets never come from the command line (other users can read the process list):
`$INFLUX_TOKEN` or `--token-file` for a token, `$INFLUX_USERNAME`/`$INFLUX_PASSWORD` or a
token file holding `user:password` (the form InfluxDB 1.8's compatibility API takes as a
token) for 1.x. Both may be set at once (one shell for both kinds of server): a 2.x server
gets the token, a 1.x one the user and password. They are kept out of every repr and
masked in every message built here.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import re
import socket
import ssl
import urllib.parse
from dataclasses import dataclass, field
from enum import Enum
from typing import Mapping

from ...errors import ConverterError
from ...mapping import Precision, read_settings_text

TOKEN_ENV = "INFLUX_TOKEN"
USERNAME_ENV = "INFLUX_USERNAME"
PASSWORD_ENV = "INFLUX_PASSWORD"
USER_AGENT = "csv2lp"
MASK_MIN_CHARS = 4
_V1_VERSION = re.compile(r"v?1\.")
# /write in 1.x names precisions n, u, ms, s (1.6.7's httpd handler); /api/v2/write ns, us, ms, s.
_V1_PRECISION = {Precision.NS: "n", Precision.US: "u", Precision.MS: "ms", Precision.S: "s"}


class InfluxWriteError(ConverterError):
    """The server refused lines, or could not be reached within the retries; or the target is wrong."""


class Api(str, Enum):
    V1 = "v1"  # /write?db=&rp=
    V2 = "v2"  # /api/v2/write?org=&bucket=


@dataclass(frozen=True)
class Credentials:
    """A token (InfluxDB 2), or a user and password (1.x); all empty when none was given."""

    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    origin: str = ""  # where they came from, for messages: "$INFLUX_TOKEN", "--token-file", ...

    @property
    def given(self) -> bool:
        return bool(self.token or self.username)

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.token, self.password) if s)


def read_credentials(token_file: str | None, environ: Mapping[str, str] | None = None) -> Credentials:
    """From `token_file` (first line), else $INFLUX_TOKEN and $INFLUX_USERNAME + $INFLUX_PASSWORD.

    The user from the environment wins over a token of the form `user:password` for a 1.x
    server; the token is kept for a 2.x one. Nothing given is not an error here: an InfluxDB
    1.x with auth off needs nothing (`require_token` says when it does).
    """
    environ = os.environ if environ is None else environ
    if token_file:
        try:
            text = read_settings_text(token_file)
        except OSError as exc:
            raise InfluxWriteError(f"--token-file {token_file}: cannot read it ({exc.strerror}).") from None
        lines = text.strip().splitlines()
        token = lines[0].strip() if lines else ""
        if not token:
            raise InfluxWriteError(f"--token-file {token_file} is empty; put the API token on its first line.")
        return _with_user(Credentials(token=token, origin="--token-file"))
    username = environ.get(USERNAME_ENV, "").strip()
    token = environ.get(TOKEN_ENV, "").strip()
    if username:
        both = f" and ${TOKEN_ENV}" if token else ""
        return Credentials(token=token, username=username, password=environ.get(PASSWORD_ENV, ""),
                           origin=f"${USERNAME_ENV}/${PASSWORD_ENV}{both}")
    return _with_user(Credentials(token=token, origin=f"${TOKEN_ENV}")) if token else Credentials()


def _with_user(credentials: Credentials) -> Credentials:
    user, colon, password = credentials.token.partition(":")
    if colon and user:
        return Credentials(token=credentials.token, username=user, password=password, origin=credentials.origin)
    return credentials


def read_token(token_file: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The InfluxDB 2 token from `token_file`, else $INFLUX_TOKEN; an error when there is none."""
    environ = os.environ if environ is None else environ
    credentials = read_credentials(token_file, {TOKEN_ENV: environ.get(TOKEN_ENV, "")})
    require_token(credentials)
    return credentials.token


def require_token(credentials: Credentials) -> None:
    if not credentials.token:
        user = (f" ${USERNAME_ENV}/${PASSWORD_ENV} sign in to InfluxDB 1.x only." if credentials.username else "")
        raise InfluxWriteError(
            f"no API token: set {TOKEN_ENV}, or give --token-file FILE (a file holding the token).{user} "
            "csv2lp takes no token on the command line, where other users could see it in the process list."
        )


@dataclass(frozen=True)
class InfluxTarget:
    """Where the lines go. `bucket` is a 1.x server's `database` or `database/retention-policy`
    (the form 1.8's compatibility API takes); `org` is needed by InfluxDB 2 only."""

    url: str
    bucket: str
    org: str | None = None
    token: str = field(default="", repr=False)
    api: Api = Api.V2
    version: str = ""  # the server's X-Influxdb-Version, when it said
    username: str = ""
    password: str = field(default="", repr=False)

    @property
    def database(self) -> str:
        return self.bucket.partition("/")[0]

    @property
    def retention_policy(self) -> str:
        return self.bucket.partition("/")[2]

    @property
    def where(self) -> str:
        """The target as messages name it: `URL (bucket B)` or `URL (database D)`."""
        if self.api is Api.V1:
            rp = f", retention policy {self.retention_policy}" if self.retention_policy else ""
            return f"{self.url} (database {self.database}{rp})"
        return f"{self.url} (bucket {self.bucket})"

    def write_path(self, precision: Precision) -> str:
        """The path and query of a write request (the URL's own path prefix included)."""
        if self.api is Api.V1:
            query = {"db": self.database, "precision": _V1_PRECISION[precision]}
            if self.retention_policy:
                query["rp"] = self.retention_policy
            return f"{self.base_path}/write?{urllib.parse.urlencode(query)}"
        query = {"bucket": self.bucket, "precision": precision.value}
        if self.org:
            query = {"org": self.org, **query}
        return f"{self.base_path}/api/v2/write?{urllib.parse.urlencode(query)}"

    @property
    def base_path(self) -> str:
        return urllib.parse.urlsplit(self.url).path.rstrip("/")

    def auth_headers(self) -> dict[str, str]:
        if self.api is Api.V1 and self.username:
            pair = f"{self.username}:{self.password}".encode("utf-8")
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        return {}

    def mask(self, text: str) -> str:
        # A secret of a few characters could stand for any word of a message; no server
        # echoes credentials, so such a one is left alone rather than garbling the text.
        for secret in (self.token, self.password):
            if len(secret) >= MASK_MIN_CHARS:
                text = text.replace(secret, "***")
        return text

    def connect(self, timeout_s: float) -> http.client.HTTPConnection:
        """A new (lazy) connection to the server; http.client opens it at the first request."""
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname or "", parts.port, timeout=timeout_s,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout_s)


def is_loopback(url: str) -> bool:
    """Whether the URL names this machine by a loopback address (or `localhost`); no lookup is made."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The base URL without its trailing slash; an error for anything but http(s)://host[:port][/path]."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL": a bracket that does not close
        raise InfluxWriteError(f"--influx-url {url!r}: not a URL ({exc}); give the server's base URL, e.g. "
                               f"http://localhost:8086 or http://[::1]:8086.") from None
    if parts.username is not None or parts.password is not None:
        # Never echo it: the point is that the URL holds a secret.
        raise InfluxWriteError(
            f"--influx-url: the URL holds a user name or password, which other users can read in the process "
            f"list; give the URL without it and put the secret in ${USERNAME_ENV}/${PASSWORD_ENV}, "
            f"${TOKEN_ENV} or --token-file."
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InfluxWriteError(f"--influx-url {url!r}: give the server's base URL, e.g. http://localhost:8086.")
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise InfluxWriteError(f"--influx-url {url!r}: a URL holds no spaces or control characters; give the "
                               f"server's base URL, e.g. http://localhost:8086.")
    port = parts.netloc.rpartition("]")[2].rpartition("@")[2].partition(":")[2]
    if port and not port.isdigit():
        raise InfluxWriteError(f"--influx-url {url!r}: the port is not a number.")
    if port and not 0 < int(port) <= 65535:
        raise InfluxWriteError(f"--influx-url {url!r}: port {int(port)} is out of range; ports are 1 to 65535 "
                               f"(InfluxDB listens on 8086).")
    if parts.query or parts.fragment:
        raise InfluxWriteError(f"--influx-url {url!r}: give the base URL without ?query or #fragment; --bucket and "
                               f"--org say where the lines go.")
    return url.rstrip("/")


# -- one request, and what its answer means ------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    body: bytes
    headers: Mapping[str, str]  # names in lower case: look them up as `retry-after`

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def no_route(self) -> bool:
        """A 404 that is not the server's JSON error (a missing bucket or database) but a missing path."""
        return self.status == 404 and not self.body.lstrip().startswith(b"{")

    @property
    def retryable(self) -> bool:
        """429 (busy) and 5xx (down, restarting, overloaded) pass; any other refusal is final."""
        return self.status == 429 or self.status >= 500

    def message(self) -> str:
        """The server's own words: InfluxDB 2's JSON `message`, 1.x's `error`, else the text."""
        text = self.body.decode("utf-8", "replace").strip()
        try:
            document = json.loads(text) if text.startswith("{") else None
        except ValueError:
            document = None
        if isinstance(document, dict):
            text = str(document.get("message") or document.get("error") or "").strip()
        text = text or self.headers.get("x-influxdb-error", "")
        return text.splitlines()[0][:500] if text else ""

    def describe(self) -> str:
        """`HTTP 404 Not Found: database not found: "x"` (the words left out when they repeat the reason)."""
        said = self.message()
        text = f"HTTP {self.status} {self.reason}".strip()
        return f"{text}: {said}" if said and said.lower() != self.reason.lower() else text


def request(connection: http.client.HTTPConnection, method: str, path: str, *,
            body: bytes | list | None = None, headers: Mapping[str, str] | None = None) -> Answer:
    """One HTTP exchange on `connection`; the connection is closed when the server says so.

    A list body is sent piece by piece with its total as Content-Length (http.client sends an
    iterable as it is when the length is given), so lines go out of Arrow's buffers uncopied.
    """
    headers = {"User-Agent": USER_AGENT, **(headers or {})}
    if isinstance(body, list):
        headers["Content-Length"] = str(sum(len(piece) for piece in body))
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    if response.will_close:
        connection.close()
    return Answer(response.status, response.reason or "", data,
                  {name.lower(): value for name, value in response.headers.items()})


def describe_failure(exc: BaseException) -> str:
    """A lost or refused connection as a person says it."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "no answer within the timeout"
    if isinstance(exc, http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(exc, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    text = getattr(exc, "strerror", None) or str(exc).strip() or type(exc).__name__
    return text


CONNECTION_ERRORS = (OSError, http.client.HTTPException)


# -- which API the server speaks --------------------------------------------------------------


def detect_api(url: str, *, timeout_s: float) -> tuple[Api, str]:
    """(API, version) from `GET /ping`: 1.x says `X-Influxdb-Version: 1.x`; anything else
    (2.x, 3.x, Telegraf's listener, a server without /ping) is written through /api/v2/write."""
    probe = InfluxTarget(url=url, bucket="")
    connection = probe.connect(timeout_s)
    try:
        answer = request(connection, "GET", f"{probe.base_path}/ping")
    except CONNECTION_ERRORS as exc:
        raise InfluxWriteError(
            f"cannot reach {url}: {describe_failure(exc)} (GET /ping). Is the server at {url} running and "
            "reachable? Nothing was read yet."
        ) from None
    finally:
        connection.close()
    version = answer.headers.get("x-influxdb-version", "").strip()
    return (Api.V1 if _V1_VERSION.match(version) else Api.V2), version


def hint(status: int | None, target: InfluxTarget, *, no_route: bool = False) -> str:
    """What to check for a refusal, as a sentence starting with a space (or nothing). `no_route`: a
    404 without the server's JSON error, i.e. no such API path at all."""
    if no_route and target.api is Api.V2:
        return (f" {target.url} has no /api/v2/write: an InfluxDB 1.6/1.7 whose /ping did not say its version "
                "(a proxy in between?) takes /write; check the URL.")
    if target.api is Api.V1:
        if status == 401:
            return (f" The user name or password was refused (or none was given): set ${USERNAME_ENV} and "
                    f"${PASSWORD_ENV}, or give --token-file FILE holding user:password.")
        if status == 403:
            return f" The user may not write to database {target.database!r}."
        if status == 404:
            return (" Create the database first (CREATE DATABASE, or add --create-bucket), or check --bucket "
                    "(DATABASE or DATABASE/RETENTION_POLICY).")
    else:
        if status == 401:
            return f" The token was refused: check ${TOKEN_ENV} or --token-file."
        if status == 403:
            return f" The token may not write to bucket {target.bucket!r}."
        if status == 404:
            return " Check --bucket and --org (or add --create-bucket on InfluxDB 2)."
    if status == 413:
        return " The request was too large: lower --batch-lines."
    if status is None:
        return f" Is the server at {target.url} running and reachable?"
    return ""
