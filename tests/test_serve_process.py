"""The real `mailprofile serve` (uvicorn) on a free loopback port: requests over a socket, SIGHUP reloads,
SIGTERM stops it; started and stopped by PID, also when a test fails."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator.targets.thunderbird import parse_autoconfig
from tests.conftest import EXAMPLES, ROOT
from tests.serve_process import Server as Server  # re-exported: tests written against its old home import it here
from tests.serve_process import free_port
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

    spec.write_text(spec.read_text().replace("port: 99999", "port: 993").replace("imaps.aruba.it", "imap.esempio.it"))
    os.kill(srv.proc.pid, signal.SIGHUP)
    # Every worker reloads: several answers in a row all carry the new host.
    assert wait_for(lambda: all(hostname(srv) == "imap.esempio.it" for _ in range(8))), srv.output()

    # uvicorn re-raises SIGTERM after its graceful shutdown (so one worker ends "killed by SIGTERM", which
    # systemd counts as a clean stop); the supervisor exits 0 once its workers have finished.
    assert srv.stop() in (0, -signal.SIGTERM)
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
