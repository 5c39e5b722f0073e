"""The real `mailprofile serve` (uvicorn) on a free loopback port: requests over a socket, SIGHUP reloads,
SIGTERM stops it; started and stopped by PID, also when a test fails."""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.targets.thunderbird import parse_autoconfig
from tests.conftest import EXAMPLES, ROOT
from tests.serve_process import Server as Server  # re-exported: tests written against its old home import it here
from tests.serve_process import free_port, serving
from tests.test_serve import PASSWORD, THUNDERBIRD_HEADERS, pox


def wait_for(predicate: object, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Path]]:
    spec = tmp_path / "spec.yaml"
    shutil.copy(EXAMPLES / "provider-imap.yaml", spec)
    srv = Server(spec, tmp_path / "server.log", "--workers", str(request.param))
    try:
        srv.wait_ready()
        yield srv, spec
    finally:
        srv.stop()


def hostname(srv: Server) -> str:
    status, body = srv.request("GET", "/mail/config-v1.1.xml?emailaddress=x%40esempio.it")
    assert status == 200
    return str(parse_autoconfig(body)["incoming"][0]["hostname"])


def test_real_server_answers_reloads_and_stops(server: tuple[Server, Path]) -> None:
    srv, spec = server
    status, body = srv.request("POST", "/Autodiscover/Autodiscover.xml", pox("giulia.bianchi@esempio.it"),
                               THUNDERBIRD_HEADERS)
    assert status == 200 and b"<LoginName>giulia.bianchi@esempio.it</LoginName>" in body
    assert srv.request("POST", "/autodiscover/autodiscover.xml", b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>",
                       {"content-type": "text/xml"})[0] == 400
    assert srv.request("GET", "/nowhere")[0] == 404
    assert hostname(srv) == "imaps.aruba.it"

    spec.write_text(spec.read_text().replace("port: 993", "port: 99999"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    assert wait_for(lambda: "reload failed, keeping the previous spec" in srv.output()), srv.output()
    assert hostname(srv) == "imaps.aruba.it" and srv.proc.poll() is None
    # /healthz stays 200 (the old spec is served) and says that the spec on disk is not, from every worker.
    for _ in range(8):
        status, health = srv.request("GET", "/healthz")
        first, second = health.decode().splitlines()
        assert status == 200 and first == "ok 1 domains", health
        assert re.fullmatch(r"reload failed at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: still serving the spec loaded "
                            r"before \(the log says why\)", second), health

    spec.write_text(spec.read_text().replace("port: 99999", "port: 993").replace("imaps.aruba.it", "imap.esempio.it"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    # Every worker reloads: several answers in a row all carry the new host.
    assert wait_for(lambda: all(hostname(srv) == "imap.esempio.it" for _ in range(8))), srv.output()
    assert all(srv.request("GET", "/healthz") == (200, b"ok 1 domains\n") for _ in range(8))

    # A graceful stop exits 0, with one worker as with the supervisor of several.
    assert srv.stop() == 0
    log = srv.output()
    assert "Finished server process" in log
    assert log.count("reload failed") == 1  # reported once, by the supervisor or the single worker
    assert "/Autodiscover/Autodiscover.xml" in log  # the access log ran...
    assert PASSWORD not in log and THUNDERBIRD_HEADERS["authorization"].split()[1] not in log
    assert "giulia.bianchi@esempio.it" not in log and "x@esempio.it" not in log  # ...without addresses
    assert "Traceback" not in log


def test_the_asgi_factory_runs_under_plain_uvicorn(tmp_path: Path) -> None:
    """`uvicorn --factory generator.serve:create_app` with the spec named in the environment."""
    port = free_port()
    env = {**os.environ, "MAILPROFILE_SPEC": str(EXAMPLES / "provider-imap.yaml")}
    with (tmp_path / "uvicorn.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "generator.serve:create_app",
                                 "--port", str(port), "--no-access-log"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            status = 0
            while time.monotonic() < deadline and status != 200:
                assert proc.poll() is None, (tmp_path / "uvicorn.log").read_text()
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/mail/config-v1.1.xml", headers={"Host": "autoconfig.esempio.it"})
                    response = conn.getresponse()
                    status, body = response.status, response.read()
                    conn.close()
                except OSError:
                    time.sleep(0.1)
            assert status == 200 and b"imaps.aruba.it" in body
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


def test_the_factory_without_a_spec_says_what_to_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAILPROFILE_SPEC"}
    result = subprocess.run([sys.executable, "-c", "from generator.serve import create_app; create_app()"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "error: no spec: set MAILPROFILE_SPEC=path/to/spec.yaml" in result.stderr


# --- slow clients (slowloris) -------------------------------------------------------------------------------
def answer_or_close(sock: socket.socket) -> bytes:
    """What the server sends before it closes the connection; b"" when it closes without a word. A server
    that does neither within 60 s fails the test (socket.timeout), as the service did before the deadline."""
    sock.settimeout(60)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def slow_client_checks(host: str, port: int) -> None:
    def connect() -> socket.socket:
        return socket.create_connection((host, port), timeout=60)

    with connect() as idle:  # connects and sends nothing
        assert answer_or_close(idle) == b""
    with connect() as slow_headers:  # half a request line, never finished
        slow_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: autoconfig.esempio.it\r\n")
        assert answer_or_close(slow_headers) == b""
    with connect() as slow_body:  # headers in time, the body never completes
        slow_body.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.esempio.it\r\n"
                          b"Content-Type: text/xml\r\nContent-Length: 400\r\n\r\n" + pox("a@esempio.it")[:100])
        head, _, body = answer_or_close(slow_body).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and b"<ErrorCode>600</ErrorCode>" in body
    with connect() as chunked:  # chunked, the last chunk never comes
        chunked.sendall(b"POST /autodiscover/autodiscover.xml HTTP/1.1\r\nHost: autodiscover.esempio.it\r\n"
                        b"Content-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<Auto\r\n")
        assert answer_or_close(chunked).startswith(b"HTTP/1.1 408 ")
    with connect() as keep_alive:  # one request answered, the next one's headers late
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        response = http.client.HTTPResponse(keep_alive)  # reads exactly one answer off the socket
        response.begin()
        assert response.status == 200 and response.read() == b"ok 1 domains\n"
        keep_alive.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert answer_or_close(keep_alive) == b""
    conn = http.client.HTTPConnection(host, port, timeout=10)  # and everyone else is still served
    conn.request("GET", "/mail/config-v1.1.xml", headers={"Host": "autoconfig.esempio.it"})
    assert conn.getresponse().status == 200
    conn.close()


@pytest.mark.parametrize("workers", ["1", "2"])
def test_slow_clients_are_cut_off_at_the_request_deadline(tmp_path: Path, workers: str) -> None:
    with serving(EXAMPLES / "provider-imap.yaml", tmp_path / "server.log", "--request-timeout", "1",
                 "--workers", workers) as srv:
        slow_client_checks(srv.host, srv.port)
        assert "Traceback" not in srv.output()


def healthy(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def test_the_deadline_holds_with_the_h11_parser_too(tmp_path: Path) -> None:
    """Without httptools uvicorn parses with h11: the same deadline on that protocol."""
    port = free_port()
    code = ("import sys, uvicorn; from generator.serve import create_app; "
            "from generator.serve.limits import H11WithDeadline; "
            "P = type('P', (H11WithDeadline,), {'request_timeout': 1.0}); "
            "uvicorn.run(create_app(sys.argv[1], request_timeout=1.0), port=int(sys.argv[2]), http=P, "
            "log_level='warning')")
    with (tmp_path / "h11.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-c", code, str(EXAMPLES / "provider-imap.yaml"), str(port)],
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: proc.poll() is None and healthy(port), 30), (tmp_path / "h11.log").read_text()
            slow_client_checks("127.0.0.1", port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    assert "Traceback" not in (tmp_path / "h11.log").read_text()


# --- where to listen ------------------------------------------------------------------------------------
def serve_until_exit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "generator", "serve", str(EXAMPLES / "provider-imap.yaml"), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_clear_error(workers: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve_until_exit("--port", str(port), "--workers", workers)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (f"error: cannot listen on 127.0.0.1:{port}: address already in use — "
                                              "another program listens there: stop it, or choose another --port")
    assert "serving" not in result.stderr and "startup" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("host,message", [
    ("192.0.2.1", "error: cannot listen on 192.0.2.1:{port}: cannot assign requested address — this machine has "
                  "no such address: use one of its own, 127.0.0.1 or 0.0.0.0"),
    ("no-such-host.invalid", "error: cannot listen on no-such-host.invalid:{port}: "),
])
def test_a_host_this_machine_cannot_listen_on_is_one_clear_error(host: str, message: str) -> None:
    port = free_port()
    result = serve_until_exit("--host", host, "--port", str(port))
    assert result.returncode == 1 and result.stderr.splitlines()[-1].startswith(message.format(port=port))
    assert "Traceback" not in result.stderr


def test_port_0_says_which_port_it_took(tmp_path: Path) -> None:
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "generator", "serve", str(EXAMPLES / "provider-imap.yaml"),
                                 "--port", "0"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            assert wait_for(lambda: " on http://127.0.0.1:" in (tmp_path / "server.log").read_text(), 30)
            line = next(x for x in (tmp_path / "server.log").read_text().splitlines() if x.startswith("serving"))
            port = int(line.split(" on http://127.0.0.1:")[1].split()[0])
            assert port != 0 and wait_for(lambda: healthy(port), 30)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


# --- huge request heads --------------------------------------------------------------------------------------
def peak_mb(pid: int) -> float:
    """The process's peak resident memory (VmHWM: this process's own, reset at exec)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_a_request_head_past_32_kib_is_431(tmp_path: Path) -> None:
    with serving(EXAMPLES / "provider-imap.yaml", tmp_path / "server.log") as srv:
        fits = "a" * 30_000
        assert srv.request("GET", "/healthz", headers={"X-Fits": fits})[0] == 200
        with socket.create_connection((srv.host, srv.port), timeout=60) as sock:  # 40 KB and still no end
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000)
            assert answer_or_close(sock).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        # A body is not a head, also when it is not read: 405, then the next request on the same connection.
        conn = http.client.HTTPConnection(srv.host, srv.port, timeout=60)
        try:
            conn.request("POST", "/", body=b"b" * 200_000, headers={"content-type": "text/plain"})
            response = conn.getresponse()
            assert response.status == 405 and response.read() == b"Method Not Allowed"
            conn.request("GET", "/healthz")
            assert conn.getresponse().read() == b"ok 1 domains\n"
        finally:
            conn.close()


def test_a_huge_header_does_not_take_the_servers_memory(tmp_path: Path) -> None:
    """httptools keeps a header whole, however long: a 100 MB one took 340 MB and was answered."""
    with serving(EXAMPLES / "provider-imap.yaml", tmp_path / "server.log") as srv:
        before = peak_mb(srv.proc.pid)
        with socket.create_connection((srv.host, srv.port), timeout=60) as sock:
            sent = 0
            with contextlib.suppress(OSError):  # the server closes the connection once the head is too long
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
                while sent < 64 << 20:
                    sock.sendall(b"a" * (1 << 20))
                    sent += 1 << 20
                sock.sendall(b"\r\n\r\n")
        assert sent < 64 << 20, "the server read a 64 MB header"
        assert peak_mb(srv.proc.pid) - before < 32
        assert srv.request("GET", "/healthz")[0] == 200


def test_host_all_ipv6_also_answers_ipv4(tmp_path: Path) -> None:
    """`--host ::` is every address, IPv4 included (dual stack), with one worker as with several."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip(reason="this machine has no IPv6 loopback")
    for workers in ("1", "2"):
        # The port is picked free on 127.0.0.1; the last --host given is the one the command takes.
        server = Server(EXAMPLES / "provider-imap.yaml", tmp_path / f"server{workers}.log", "--workers", workers,
                        "--host", "::")
        try:
            assert wait_for(functools.partial(healthy, server.port), 30), server.output()  # asks 127.0.0.1
        finally:
            server.stop()
