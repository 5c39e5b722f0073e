"""What a real client, proxy or cache sees from the real `mailprofile serve` (uvicorn) process: paths with a
trailing slash, the Host header, security and caching headers. Requests go over a socket with http.client or
as raw bytes, as clients and proxies send them; the server is started once for the module and stopped by PID."""

from __future__ import annotations

import http.client
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.serve_process import Server, serving
from tests.test_serve import XML_HEADERS, pox


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("serve-http")
    spec = folder / "spec.yaml"
    shutil.copy(EXAMPLES / "provider-imap.yaml", spec)
    with serving(spec, folder / "server.log") as server:
        yield server


def get(srv: Server, method: str, path: str, body: bytes | None = None,
        headers: dict[str, str] | None = None) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh connection: the response (status, headers) and its body."""
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def raw(srv: Server, data: bytes) -> bytes:
    """Send bytes as they are (duplicate headers, pipelined requests) and read until the server closes."""
    with socket.create_connection((srv.host, srv.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --- paths ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path,body", [
    ("GET", "/healthz/", None),
    ("GET", "/mail/config-v1.1.xml/?emailaddress=a%40esempio.it", None),
    ("GET", "/apple/giulia.bianchi@esempio.it.mobileconfig/", None),
    ("GET", "/autodiscover/autodiscover.json/v1.0/a@esempio.it/?Protocol=AutodiscoverV1", None),
    ("POST", "/autodiscover/autodiscover.xml/", pox("giulia.bianchi@esempio.it")),
])
def test_a_trailing_slash_is_404_not_a_redirect_to_the_host_header(srv: Server, method: str, path: str,
                                                                    body: bytes | None) -> None:
    # Starlette's default answered 307 with Location built from the Host header (http://evil.example/...):
    # an address anyone can choose, over http:// even behind a TLS proxy. The docs say: any other path, 404.
    r, _ = get(srv, method, path, body, {**XML_HEADERS, "Host": "evil.example"})
    assert (r.status, r.getheader("location")) == (404, None)
