"""The ASGI application: Mozilla autoconfig, Outlook Autodiscover (POX and the v1 JSON), Apple profiles,
the self-service page and /healthz, all answered from one `Service` (see service.py).

`create_app()` is the factory for any ASGI server:
    uvicorn --factory generator.serve:create_app        (MAILPROFILE_SPEC=spec.yaml in the environment)
    gunicorn -k uvicorn_worker.UvicornWorker 'generator.serve:create_app()'   (pip install uvicorn-worker)
    granian --interface asgi --factory generator.serve:create_app
`mailprofile serve` (cli.py) runs it under uvicorn itself. Facts behind each contract: SERVICE-AND-DELIVERY
part A, cited per handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mmap
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from generator.build import SignRequest
from generator.errors import MailprofileError, SpecError
from generator.model import base_url_value
from generator.serve import pox
from generator.serve.edge import Edge
from generator.serve.limits import REQUEST_TIMEOUT
from generator.serve.page import render_page
from generator.serve.service import Answer, BadAddress, Service, UnknownDomain, load_service

log = logging.getLogger("mailprofile.serve")
FAILURE_BYTES = 64  # when the last reload failed (UTC, ISO 8601), shared with the workers

XML = "text/xml; charset=utf-8"  # Thunderbird needs text/xml or application/xml (FetchHTTP.sys.mjs)
APPLE = "application/x-apple-aspen-config"  # what iOS/macOS recognise as a profile (Mailu#3684)
STATIC_CACHE = "public, max-age=3600"  # per-domain answers: no personal data, change only with the spec
PRIVATE_CACHE = "no-store"  # per-address answers carry a name and user name


class Holder:
    """The current Service. A reload builds a new one off the event loop and swaps the reference: a request
    reads `current` once and uses that spec throughout.

    Reloads run one at a time. Two at once (systemctl reload twice, a spec then its CSV) would race: a big
    spec read first and loaded second would be swapped in after the small one read after it, and the service
    would answer, for good, with a file that is no longer on disk."""

    def __init__(self, service: Service, spec_path: str | Path, sign: SignRequest | None) -> None:
        self.current = service
        self.spec_path = spec_path
        self.sign = sign
        self._running = threading.Lock()  # held for a whole reload: read, validate, swap
        self._queue = threading.Lock()  # guards _waiting
        self._waiting = False  # a reload is queued and has not read the spec yet
        self.reload_on_hup = True  # False in the workers of `mailprofile serve --workers N`: they are replaced
        self.early_hups: list[int] = []  # SIGHUPs received before the server answered: reload once it does
        # When the last reload failed (empty after a good one), in memory shared with the workers forked later:
        # with --workers N the supervisor reloads, and on a failure keeps the old workers, which must say so.
        self._failure = mmap.mmap(-1, FAILURE_BYTES)

    def reload(self) -> bool:
        """Load and validate the spec again; keep the old one (and say why, in one line) if it fails. A call
        made while another reload waits to start returns False at once: that one reads the spec as it is now."""
        with self._queue:
            if self._waiting:
                return False
            self._waiting = True
        with self._running:
            with self._queue:
                self._waiting = False
            return self._reload()

    def reload_failure(self) -> str:
        """When the last reload failed, as /healthz says it ("" if it did not): the service answers with an
        older spec. Not why: /healthz answers anyone, and a reason quotes the spec (its path, a CSV row with a
        user's address); the log says why."""
        when = self._failure[:].partition(b"\0")[0].decode("ascii")
        return f"reload failed at {when}: still serving the spec loaded before (the log says why)" if when else ""

    def _failed(self, why: str, *, exc_info: bool = False) -> bool:
        log.error("reload failed, keeping the previous spec: %s", why, exc_info=exc_info)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()).encode("ascii")
        self._failure[:] = when.ljust(FAILURE_BYTES, b"\0")
        return False

    def _reload(self) -> bool:
        try:
            fresh = load_service(self.spec_path, self.sign)
        except SpecError as exc:
            first = exc.problems[0] if exc.problems else "invalid spec"
            count = len(exc.problems)
            return self._failed(f"{first} ({count} problem{'s' if count != 1 else ''})")
        except MailprofileError as exc:
            return self._failed(str(exc))
        except Exception as exc:  # a bug of ours must not take down a service that answers with the old spec
            return self._failed(f"internal error ({type(exc).__name__}: {exc}); please report it with the spec",
                                exc_info=os.environ.get("MAILPROFILE_DEBUG") == "1")
        self.current = fresh
        self._failure[:] = bytes(FAILURE_BYTES)
        log.info("reloaded %s: %d domain%s", self.spec_path, len(fresh.domains), "s" if len(fresh.domains) != 1
                 else "")
        return True


def _holder(request: Request) -> Holder:
    holder: Holder = request.app.state.holder
    return holder


def _answer(request: Request, answer: Answer, media_type: str, cache: str,
            extra: dict[str, str] | None = None) -> Response:
    headers = {"ETag": answer.etag, "Cache-Control": cache, **(extra or {})}
    if _none_match(request.headers.get("if-none-match"), answer.etag):
        return Response(status_code=304, headers=headers)
    return Response(answer.data, media_type=media_type, headers=headers)


def _none_match(header: str | None, etag: str) -> bool:
    """If-None-Match (RFC 9110 §13.1.2) says the client's copy is current: "*", or a comma-separated list of
    entity tags one of which matches ours by weak comparison (W/ ignored), as caches and browsers send it."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def _host_domain(request: Request) -> str | None:
    """The mail domain a Host header names: autoconfig.<d> or <d> itself (the .well-known URL)."""
    host = request.headers.get("host", "").strip().lower()
    if host.startswith("["):
        return None  # an IPv6 literal names no mail domain
    host = host.rsplit(":", 1)[0].rstrip(".")
    for prefix in ("autoconfig.", "autodiscover."):
        host = host.removeprefix(prefix)
    if "." not in host or host.replace(".", "").isdigit():
        return None  # localhost or an IPv4 literal
    return host


# --- Mozilla autoconfig --------------------------------------------------------------------------------
async def autoconfig(request: Request) -> Response:
    """Same bytes as the build's domains/<d>/config-v1.1.xml. `emailaddress` is optional: Thunderbird for
    Android never sends it (RealAutoDiscoveryRegistry.kt), so the Host header names the domain then."""
    service = _holder(request).current
    if not service.serves("thunderbird"):
        return PlainTextResponse("this server does not serve Mozilla autoconfig (thunderbird target)\n", 404)
    candidates: list[str] = []
    address = request.query_params.get("emailaddress", "")
    if address:
        with contextlib.suppress(BadAddress):  # Evolution and KMail send odd values: fall back on the Host
            candidates.append(service.domain_of(address))
    host = _host_domain(request)
    if host is not None:
        candidates.append(host)
    if not candidates:
        return PlainTextResponse("no mail domain: add ?emailaddress=you@example.org or ask autoconfig.<domain>\n",
                                 400)
    for domain in candidates:
        if domain in service.autoconfig:
            return _answer(request, service.autoconfig[domain], XML, STATIC_CACHE)
    return PlainTextResponse("this server does not serve that mail domain\n", 404)


# --- Outlook Autodiscover (POX) ---------------------------------------------------------------------------
def _pox_error(status: int, code: int, mobilesync: bool = False) -> Response:
    return Response(pox.error_body(code, mobilesync), status_code=status, media_type=XML,
                    headers={"Cache-Control": PRIVATE_CACHE})


async def _read_body(request: Request) -> bytes:
    """At most pox.MAX_BODY bytes, refused from Content-Length before reading, or as soon as a chunked body
    passes the cap (Samsung's stock client posts chunked: sys4/automx#34); all of it within the request
    deadline, else 408: a client that sends a byte now and then would hold its connection for ever."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > pox.MAX_BODY):
        raise pox.BadRequest(413, 600, "request body too large")
    body = bytearray()
    try:
        async with asyncio.timeout(request.app.state.request_timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > pox.MAX_BODY:
                    raise pox.BadRequest(413, 600, "request body too large")
    except TimeoutError:
        raise pox.BadRequest(408, 600, "request body too slow") from None
    except ClientDisconnect:  # the client gave up: nobody reads the answer, and it is no server error
        raise pox.BadRequest(400, 600, "client disconnected") from None
    return bytes(body)


async def autodiscover(request: Request) -> Response:
    """The account's autodiscover.xml: the build's bytes for a listed account, the same answer with the
    user names filled for any other address of a served domain. The Authorization header Thunderbird sends
    (with the user's password) is never read."""
    service = _holder(request).current
    try:
        pox.check_content_type(request.headers.get("content-type"))
        parsed = pox.parse_request(await _read_body(request))
    except pox.BadRequest as exc:
        response = _pox_error(exc.status, exc.code)
        if exc.status in (408, 413):  # the rest of the body is not read: the connection cannot be reused
            response.headers["Connection"] = "close"
        return response
    if parsed.schema is not None and parsed.schema != pox.OUTLOOK_SCHEMA:
        return _pox_error(200, 601, mobilesync=parsed.schema == pox.MOBILESYNC_SCHEMA)
    if not service.serves("outlook"):
        return _pox_error(404, 601)
    try:
        answer = service.autodiscover(parsed.address)
    except BadAddress:
        return _pox_error(400, 600)
    except UnknownDomain:
        return _pox_error(404, 500)
    return Response(answer.data, media_type=XML, headers={"Cache-Control": PRIVATE_CACHE})


# --- Autodiscover v1 JSON ---------------------------------------------------------------------------------
def _json_error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"ErrorCode": code, "ErrorMessage": message}, status_code=status)


async def autodiscover_json(request: Request) -> Response:
    """GET ...autodiscover.json?Email=..&Protocol=AutodiscoverV1 (or .../v1.0/<address>?Protocol=...): the
    build's domains/<d>/autodiscover.json. Other protocols (Microsoft's cloud asks for ActiveSync) get
    Exchange's InvalidProtocol error (mailcow autodiscover-json.php); the value is matched without case."""
    service = _holder(request).current
    params = {k.lower(): v for k, v in request.query_params.items()}
    protocol = params.get("protocol", "")
    if protocol.lower() != "autodiscoverv1":
        return _json_error(400, "InvalidProtocol", f"The given protocol value '{protocol[:64]}' is invalid. "
                                                   "Supported values are 'AutodiscoverV1'")
    address = request.path_params.get("address") or params.get("email", "")
    if not service.serves("outlook"):
        return _json_error(404, "InvalidUser", "this server does not serve Outlook")
    try:
        domain = service.domain_of(address)
    except BadAddress:
        return _json_error(400, "InvalidUser", "give the address as ?Email=you@example.org")
    answer = service.autodiscover_json.get(domain)
    if answer is None:
        return _json_error(404, "InvalidUser", "this server does not serve that mail domain")
    return _answer(request, answer, "application/json", STATIC_CACHE)


# --- Apple profiles ---------------------------------------------------------------------------------------
def profile_response(request: Request, address: str) -> Response:
    service = _holder(request).current
    if not service.serves("apple"):
        return PlainTextResponse("this server does not serve Apple profiles\n", 404)
    try:
        answer = service.profile(address)
        name = service.profile_name(address)
    except BadAddress:
        return PlainTextResponse("not an e-mail address\n", 400)
    except UnknownDomain:
        return PlainTextResponse("this server does not serve that mail domain\n", 404)
    return _answer(request, answer, APPLE, PRIVATE_CACHE, {"Content-Disposition": _attachment(name)})


def _attachment(name: str) -> str:
    ascii_name = name if name.isascii() else "profile.mobileconfig"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='@')}"


async def apple_file(request: Request) -> Response:
    file = request.path_params["file"]
    if not file.lower().endswith(".mobileconfig"):
        return PlainTextResponse("Not Found", 404)
    return profile_response(request, file[: -len(".mobileconfig")])


async def apple_query(request: Request) -> Response:
    """The form-friendly spelling: /apple?email=you@example.org."""
    return profile_response(request, request.query_params.get("email", ""))


async def healthz(request: Request) -> Response:
    """200 while the service answers, also after a failed reload (a load balancer must not take every replica
    out because a new spec was wrong: they still answer with the previous one); the second line says that the
    spec on disk is not the one served, for a monitor to alert on."""
    holder = _holder(request)
    failure = holder.reload_failure()
    body = f"ok {len(holder.current.domains)} domains\n" + (f"{failure}\n" if failure else "")
    return PlainTextResponse(body, headers={"Cache-Control": "no-store"})


async def page(request: Request) -> Response:
    return render_page(request, _holder(request).current)


# --- the application ---------------------------------------------------------------------------------------
def build_app(holder: Holder, base_url: str | None = None, request_timeout: float = REQUEST_TIMEOUT) -> ASGIApp:
    routes = [
        Route("/", page, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/mail/config-v1.1.xml", autoconfig, methods=["GET"]),
        Route("/.well-known/autoconfig/mail/config-v1.1.xml", autoconfig, methods=["GET"]),
        Route("/autodiscover/autodiscover.xml", autodiscover, methods=["POST"]),
        Route("/autodiscover/autodiscover.json", autodiscover_json, methods=["GET"]),
        Route("/autodiscover/autodiscover.json/v1.0/{address}", autodiscover_json, methods=["GET"]),
        Route("/apple", apple_query, methods=["GET"]),
        Route("/apple/{file}", apple_file, methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()

        def on_hup() -> None:
            # Load off the loop (a big CSV takes a moment), then swap on it.
            loop.run_in_executor(None, holder.reload)

        installed = False
        if holder.reload_on_hup:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
                loop.add_signal_handler(signal.SIGHUP, on_hup)
                installed = True
            if installed and holder.early_hups:
                holder.early_hups.clear()
                on_hup()
        yield
        if installed:
            loop.remove_signal_handler(signal.SIGHUP)

    app = Starlette(routes=routes, lifespan=lifespan)
    # Starlette answers /healthz/ with a 307 to a URL it builds from the Host header: any client can choose
    # that address (http://evil.example/...), and it says http:// behind a TLS proxy. No client asks with a
    # trailing slash, so such a path is what any other path is: 404.
    app.router.redirect_slashes = False
    app.state.holder = holder
    app.state.base_url = base_url.rstrip("/") if base_url else None
    app.state.request_timeout = request_timeout
    return Edge(app)


def create_app(spec: str | Path | None = None, sign: SignRequest | None = None,
               base_url: str | None = None, request_timeout: float = REQUEST_TIMEOUT) -> ASGIApp:
    """ASGI factory. Without arguments it reads MAILPROFILE_SPEC, MAILPROFILE_SIGN_CERT / _KEY / _CHAIN and
    MAILPROFILE_BASE_URL from the environment (uvicorn --factory, gunicorn, granian). An invalid spec stops
    the process with the problems and exit status 2, as `mailprofile check` reports them."""
    env = os.environ
    spec = spec or env.get("MAILPROFILE_SPEC")
    if not spec:
        raise SystemExit("error: no spec: set MAILPROFILE_SPEC=path/to/spec.yaml (or run mailprofile serve SPEC)")
    if sign is None and env.get("MAILPROFILE_SIGN_CERT") and env.get("MAILPROFILE_SIGN_KEY"):
        chain = env.get("MAILPROFILE_SIGN_CHAIN")
        sign = SignRequest(Path(env["MAILPROFILE_SIGN_CERT"]), Path(env["MAILPROFILE_SIGN_KEY"]),
                           Path(chain) if chain else None)
    base_url = base_url or env.get("MAILPROFILE_BASE_URL")
    if base_url:
        try:
            base_url = base_url_value(base_url)
        except ValueError as exc:
            _exit([f"error: MAILPROFILE_BASE_URL / base_url: {exc}"], 2)
    service = start_service(spec, sign, _exit)
    return build_app(Holder(service, spec, sign), base_url, request_timeout)


def _exit(lines: list[str], status: int) -> None:
    for line in lines:
        print(line, file=sys.stderr)
    raise SystemExit(status)


def start_service(spec: str | Path, sign: SignRequest | None, fail: Callable[[list[str], int], Any]) -> Service:
    """load_service with the CLI's messages and exit codes (2 invalid spec, 1 templates/signing)."""
    try:
        return load_service(spec, sign)
    except SpecError as exc:
        n = len(exc.problems)
        fail([f"{p.severity}: {p}" for p in exc.problems] + [f"{n} error{'s' if n != 1 else ''}: not serving"], 2)
    except MailprofileError as exc:
        fail([f"error: {exc}", "not serving"], 1)
    raise AssertionError("unreachable")
