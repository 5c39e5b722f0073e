"""`mailprofile serve`: the service under uvicorn, one process or a small supervisor with N workers.

With one worker the server runs in this process and SIGHUP reloads the spec in it. With more, this process
binds the socket, forks the workers (they inherit the validated spec: nothing is loaded twice) and
supervises them: SIGHUP loads the new spec here and, if it is valid, forks new workers with it and stops the
old ones gracefully, so an invalid spec is reported once and the workers keep the old one; SIGTERM/SIGINT
stop them gracefully.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import NoReturn

import click
import uvicorn

from generator.build import SignRequest
from generator.cpus import worker_count
from generator.model import base_url_value
from generator.serve.app import Holder, build_app, start_service
from generator.serve.limits import REQUEST_TIMEOUT, http_protocol
from generator.serve.service import Service
from generator.targets.thunderbird import ThunderbirdTarget
from generator.targets.thunderbird_android import ANDROID_CLIENTS, android_autoconfig_problems

log = logging.getLogger("mailprofile.serve")

# How long a stopping worker has to finish its requests (uvicorn gives them 5 s) before it is killed.
GRACE = 10.0


def _fail(lines: list[str], status: int) -> NoReturn:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(status)


def _logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("mailprofile.serve", "mailprofile.serve.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.INFO)
        logger.propagate = False
    if not access_log:
        logging.getLogger("mailprofile.serve.access").setLevel(logging.WARNING)


def _base_url(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return base_url_value(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(name="serve")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (each answers on the same socket); at most twice the CPUs this process "
                   "may use.")
@click.option("--sign-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="Sign Apple profiles on the fly with this certificate (PEM/DER; may include the chain).")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The signing key; its passphrase from MAILPROFILE_SIGN_PASSPHRASE.")
@click.option("--sign-chain", type=click.Path(dir_okay=False, path_type=Path),
              help="Intermediate certificates (PEM) to include in each signature.")
@click.option("--base-url", metavar="URL", callback=lambda _c, _p, v: _base_url(v),
              help="Public URL of the service (https://autoconfig.example.org), used in the page's profile "
                   "link and QR code; default: from the request's Host header.")
@click.option("--forwarded-allow-ips", default="127.0.0.1", show_default=True,
              help="Proxies whose X-Forwarded-For/-Proto headers are trusted (comma-separated, or '*').")
@click.option("--request-timeout", type=click.FloatRange(min=1, max=300), default=REQUEST_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Time a client has to send a request's headers, and again its body; "
                                      "slower connections are closed (slowloris).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One line per request (addresses hashed, never headers or bodies).")
def serve_command(spec: str, host: str, port: int, workers: int, sign_cert: Path | None, sign_key: Path | None,
                  sign_chain: Path | None, base_url: str | None, forwarded_allow_ips: str, request_timeout: float,
                  access_log: bool) -> None:
    """Answer Thunderbird, Outlook and Apple devices from SPEC over HTTP (put a TLS proxy in front).

    \b
    GET  /mail/config-v1.1.xml, /.well-known/autoconfig/mail/config-v1.1.xml   Mozilla autoconfig
    POST /autodiscover/autodiscover.xml                                         Outlook Autodiscover
    GET  /autodiscover/autodiscover.json?Email=..&Protocol=AutodiscoverV1       Autodiscover v1 JSON
    GET  /apple/<address>.mobileconfig                                          Apple profile
    GET  /   self-service page          GET /healthz   load balancers
    SIGHUP reloads SPEC (an invalid one is reported and the old one kept).
    """
    if (sign_cert is None) != (sign_key is None) or (sign_chain is not None and sign_cert is None):
        raise click.UsageError("--sign-cert and --sign-key go together (--sign-chain needs both)")
    sign = SignRequest(sign_cert, sign_key, sign_chain) if sign_cert and sign_key else None
    # SIGHUP's default action ends the process, and loading a big spec takes seconds: a `systemctl reload`
    # then (systemd takes a Type=simple service as started at once) stopped the service, and systemd, which
    # counts death by SIGHUP as a clean exit, did not restart it. A reload asked for now is done once the
    # service answers: the spec being loaded may already be older than the file.
    early_hups: list[int] = []
    signal.signal(signal.SIGHUP, lambda number, _frame: early_hups.append(number))
    service = start_service(spec, sign, _fail)
    for warning in service.plan.warnings:
        click.echo(f"{warning.severity}: {warning}", err=True)
    for note in client_notes(service):
        click.echo(f"note: {note}", err=True)
    _logging(access_log)
    holder = Holder(service, spec, sign)
    holder.early_hups = early_hups
    config = uvicorn.Config(build_app(holder, base_url, request_timeout), host=host, port=port, access_log=False,
                            http=http_protocol(request_timeout),
                            server_header=False, proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                            lifespan="on", timeout_graceful_shutdown=5, log_level="info")
    workers, reduced = worker_count(workers, "--workers")
    if reduced is not None:
        click.echo(f"note: {reduced}", err=True)
    try:
        sockets = listen(host, port)
    except ListenError as exc:
        _fail([f"error: {exc}"], 1)
    where = ", ".join(_url(sock) for sock in sockets)
    targets = ", ".join(service.targets)
    click.echo(f"serving {spec}: {len(service.domains)} domain(s), targets {targets}, "
               f"{'signed' if service.signed else 'unsigned'} profiles, on {where} with {workers} "
               f"worker{'s' if workers != 1 else ''}", err=True)
    if workers == 1:
        # uvicorn stops gracefully on SIGTERM/SIGINT, then raises the signal again under the handler it found:
        # Python's for SIGINT, whose KeyboardInterrupt click turned into "Aborted!" and exit 1 (a failed
        # unit). Finding a handler that does nothing, the process exits 0 after a graceful stop, as the
        # supervisor of --workers N does.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda _number, _frame: None)
        uvicorn.Server(config).run(sockets=sockets)
        return
    supervise(config, holder, workers, sockets)


class ListenError(OSError):
    """The service cannot listen where it was told to; the message says why and what to do."""


# Why a bind fails, and what the admin does about it (errno -> hint).
_BIND_HINTS = {errno.EADDRINUSE: "another program listens there: stop it, or choose another --port",
               errno.EACCES: "ports below 1024 need root: use a port above 1023 and let the TLS proxy face "
                             "the clients",
               errno.EADDRNOTAVAIL: "this machine has no such address: use one of its own, 127.0.0.1 or 0.0.0.0"}


def listen(host: str, port: int) -> list[socket.socket]:
    """Bound sockets for every address HOST names (as asyncio's create_server binds them), made here so a
    port in use or a wrong --host is one clear line before anything starts, not uvicorn's log after the
    application's startup (it exited 3 with "[Errno 98] error while attempting to bind")."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror} — give --host an IP address of "
                          "this machine (127.0.0.1, 0.0.0.0, ::) or a name it resolves") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in infos:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and len(infos) > 1:  # the IPv4 socket takes the IPv4 side
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as exc:
                hint = _BIND_HINTS.get(exc.errno or 0, "check --host and --port")
                shown = f"[{address[0]}]" if family == socket.AF_INET6 else address[0]
                raise ListenError(f"cannot listen on {shown}:{port}: {(exc.strerror or str(exc)).lower()} — "
                                  f"{hint}") from None
            sock.set_inheritable(True)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _url(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return f"http://[{address}]:{port}" if sock.family == socket.AF_INET6 else f"http://{address}:{port}"


def client_notes(service: Service) -> list[str]:
    """What some clients will not take from this spec: the verdict on the config-v1.1.xml this service answers
    with, by the same rules as the build's lint (thunderbird-android RealAutoconfigParser.kt: POP3 servers are
    skipped and a file without IMAP is rejected; any socketType plain rejects the whole file). Judged on the
    served document, so an imap_alternative and the plain fallbacks it leaves out count as they should."""
    target = service.targets.get("thunderbird")
    if not isinstance(target, ThunderbirdTarget):
        return []
    problems = android_autoconfig_problems(target.autoconfig_values())
    if not problems:
        return []
    qr = " or the QR import it shows" if service.spec.targets.thunderbird.android_qr else ""
    return [f"{ANDROID_CLIENTS} will reject the autoconfig answer ({'; '.join(problems)}); their users need the "
            f"settings table of the page at /{qr}"]


def supervise(config: uvicorn.Config, holder: Holder, workers: int, sockets: list[socket.socket]) -> None:
    """Run `workers` forked workers on `sockets` until SIGTERM/SIGINT. SIGHUP loads the spec here, once, and
    replaces the workers with new ones forked from it: every worker answers the spec validated here, and the
    old ones finish their requests. Workers that reloaded themselves each read the file again, a moment
    later: one that read it mid-write, or after the next edit, answered with another spec than its siblings
    (or kept the old one), and a 100,000-account CSV was parsed N+1 times at once."""
    children: dict[int, float] = {}  # serving workers: pid -> when it started
    retiring: dict[int, float] = {}  # workers told to stop: pid -> when they are killed if still running
    pending: list[int] = []
    stopping = False
    holder.reload_on_hup = False  # the workers ignore SIGHUP: they are replaced instead

    supervisor = os.getpid()

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker: uvicorn installs its own TERM/INT handlers
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            _stop_with(supervisor)
            status = 0
            try:
                uvicorn.Server(config).run(sockets=sockets)
            except BaseException:  # a worker must never return into the supervisor's loop
                status = 1
            os._exit(status)
        children[pid] = time.monotonic()

    def retire(pids: list[int], grace: float) -> None:
        for pid in pids:
            children.pop(pid, None)
            retiring[pid] = time.monotonic() + grace
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: pending.append(number))
    if holder.early_hups:  # asked for while the spec was loading at start
        pending.append(signal.SIGHUP)
    for _ in range(workers):
        spawn()
    while children or retiring:
        time.sleep(0.2)
        while pending:
            number = pending.pop(0)
            if number == signal.SIGHUP and not stopping:
                if holder.reload():  # validated here: the new workers are forked with it
                    old = list(children)
                    for _ in range(workers):
                        spawn()
                    retire(old, GRACE)
            elif number in (signal.SIGTERM, signal.SIGINT) and not stopping:
                stopping = True
                retire(list(children), GRACE)
        while children or retiring:
            pid, _status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            if retiring.pop(pid, None) is not None:
                continue
            started = children.pop(pid, 0.0)
            if not stopping:
                log.error("worker %d exited; starting another", pid)
                if time.monotonic() - started < 1:
                    time.sleep(1)  # a worker that dies at once would otherwise be restarted in a tight loop
                spawn()
        now = time.monotonic()
        for pid, deadline in list(retiring.items()):
            if now > deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                retiring[pid] = now + 3600
    for sock in sockets:
        sock.close()


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with(supervisor: int) -> None:
    """Have the kernel send this worker SIGTERM (a graceful stop) when the supervisor dies. A supervisor
    killed with SIGKILL (by hand, by the OOM killer: after a reload it is the biggest process) left its
    workers serving on the port with a spec nobody could reload, and a new `mailprofile serve` could not
    listen there. Linux only; elsewhere the workers outlive it as before."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:  # it died before the line above
        os._exit(0)
