"""The outermost ASGI layer: case-insensitive well-known paths, the Host check, `nosniff` on every answer,
the access log, and a last guard.

Pure ASGI (no BaseHTTPMiddleware): it adds one function call per request, which matters at 10k req/s.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("mailprofile.serve.access")
error_log = logging.getLogger("mailprofile.serve")

# Clients spell these paths in any case: Windows 10 Mail posts /AutoDiscover/AutoDiscover.xml (mailcow PR
# #360), Microsoft's servers /Autodiscover/Autodiscover.xml (automx2#7), and MS-OXDISCO says the strings
# "are not case sensitive". Only the fixed part is folded; an address after it keeps its case.
CASELESS_PREFIXES = ("/autodiscover/autodiscover.xml", "/autodiscover/autodiscover.json",
                     "/.well-known/autoconfig/mail/config-v1.1.xml", "/mail/config-v1.1.xml", "/apple", "/healthz")

_DOMAIN_RE = re.compile(r"[\w.-]*")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_PROFILE_SUFFIX = ".mobileconfig"
# RFC 9110 §7.2 / RFC 3986: a reg-name or an IP literal, then an optional port. The comma RFC 3986 would allow
# is left out: no DNS name has one, and "a.example, b.example" is two Host lines a proxy joined.
_HOST_RE = re.compile(rb"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+;=-]*)(:[0-9]*)?")
BAD_HOST = b"bad Host header: send exactly one Host with the server's name\n"


def fold_path(path: str) -> str:
    lower = path.lower()
    for prefix in CASELESS_PREFIXES:
        if lower.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] in "/."):
            return prefix + path[len(prefix):]
    return path


def pseudonym(value: str) -> str:
    """E-mail addresses are personal data: a value (a path segment, a query name or value) with an @ in it
    is logged as `<first 12 hex of sha256(value)>@domain` (the same address gives the same hash, so one
    client's requests can still be followed). The whole value goes: a local part may hold ' = & and
    spaces, and a form may get 'Mario Rossi <mario@…>', so no part of it is left beside the hash."""
    if "@" not in value:
        return value
    suffix = ""
    if value.lower().endswith(_PROFILE_SUFFIX):  # /apple/<address>.mobileconfig: hash the address alone
        value, suffix = value[: -len(_PROFILE_SUFFIX)], value[-len(_PROFILE_SUFFIX):]
    match = _DOMAIN_RE.match(value.rsplit("@", 1)[1])
    domain = match.group(0) if match else ""
    digest = hashlib.sha256(value.strip().lower().encode("utf-8")).hexdigest()[:12]
    return f"<{digest}>@{domain}{suffix}"


def host_is_valid(scope: Scope) -> bool:
    """RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host, to any request with more
    than one, and to an invalid one. The service picks the mail domain from Host, and a proxy or cache in
    front may read the other of two (and key the answer under a domain it was not made for). h11 enforces
    this, httptools (uvicorn's default parser) does not: checked here, so every server behaves the same.
    HTTP/2 carries :authority instead, so only HTTP/1.1 must have a Host line."""
    hosts = [value for name, value in scope.get("headers", []) if name.lower() == b"host"]
    if len(hosts) > 1 or (not hosts and scope.get("http_version") == "1.1"):
        return False
    return not hosts or _HOST_RE.fullmatch(hosts[0]) is not None


def request_line(scope: Scope, path: str) -> str:
    """Method, path and query as a log may show them: decoded, each path segment and each query name and
    value with an @ replaced by its pseudonym, control characters gone."""
    segments = "/".join(pseudonym(segment) for segment in unquote(path).split("/"))
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        pairs = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace")
        segments += "?" + "&".join(f"{pseudonym(k)}={pseudonym(v)}" for k, v in pairs)
    return f"{scope.get('method', '-')} {_CONTROL_RE.sub('?', segments)[:300]}"


class Edge:
    """Folds the case of well-known paths, logs one line per request (never headers or bodies: Thunderbird
    sends the user's password as HTTP Basic auth with its Autodiscover POST), and turns any exception that
    escapes into a 500 without a traceback page; the worker keeps serving."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]  # logged as the client spelled it
        scope["path"] = fold_path(path)
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                # Every answer is taken for its declared type: no browser may guess HTML in a JSON error that
                # echoes the protocol asked for, or in a plain-text 404.
                headers = [*message.get("headers", []), (b"x-content-type-options", b"nosniff")]
                # An error is kept by no cache (404 is cacheable by default, RFC 9111 §4.2.2): a domain added by
                # a reload, or a client's request put right, must not meet a stored 404 or 400.
                if message["status"] >= 400 and not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        try:
            if host_is_valid(scope):
                await self.app(scope, receive, send_status)
            else:
                await send_status({"type": "http.response.start", "status": 400, "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(BAD_HOST)).encode()),
                    (b"connection", b"close")]})
                await send_status({"type": "http.response.body", "body": BAD_HOST})
        except Exception as exc:  # the last guard: log the kind of failure, never the request
            error_log.error("internal error in %s: %s", request_line(scope, path), type(exc).__name__)
            if not state["status"]:
                state["status"] = 500
                await send({"type": "http.response.start", "status": 500,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store")]})
                await send({"type": "http.response.body", "body": b"internal error\n"})
        if access_log.isEnabledFor(logging.INFO):
            client = scope.get("client") or ("-", 0)
            access_log.info('%s "%s" %d %.1fms', client[0], request_line(scope, path), state["status"],
                            (time.perf_counter() - started) * 1000)
