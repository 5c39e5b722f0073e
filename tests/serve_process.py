"""The real `mailprofile serve` process for tests: started on a free port of a loopback address, waited for
(/healthz), stopped by PID with SIGTERM (SIGKILL after 20 s). Shared by the service's own process tests and
by every test that lets a real client (Thunderbird, Chromium) talk to it."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import ROOT


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, spec: Path, log: Path, *args: str, host: str = "127.0.0.1",
                 preexec: Callable[[], None] | None = None) -> None:
        self.host = host
        self.port = free_port(host)
        self.log = log
        self.handle = log.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "generator", "serve", str(spec), "--host", host,
                                      "--port", str(self.port), *args], cwd=ROOT, stdout=self.handle,
                                     stderr=subprocess.STDOUT, preexec_fn=preexec)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"not ready in 30 s: {self.output()}")

    def output(self) -> str:
        if not self.handle.closed:
            self.handle.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.handle.close()
        return self.proc.returncode


@contextmanager
def serving(spec: Path, log: Path, *args: str, host: str = "127.0.0.1") -> Iterator[Server]:
    """A ready server for the `with` block; stopped by PID afterwards, also when the block fails."""
    server = Server(spec, log, *args, host=host)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# harnessViaServe(): the JavaScript that points Thunderbird's own account-setup code at a running server.
SERVE_PROXY_JS = Path(__file__).parent / "thunderbird" / "serve_proxy.js"
