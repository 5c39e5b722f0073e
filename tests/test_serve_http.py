"""What a real client, proxy or cache sees from the real `mailprofile serve` (uvicorn) process: paths with a
trailing slash, the Host header, security and caching headers. Requests go over a socket with http.client or
as raw bytes, as clients and proxies send them; the server is started once for the module and stopped by PID."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
from collections.abc import Iterator

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


# --- the Host header ---------------------------------------------------------------------------------------
def status_line(response: bytes) -> bytes:
    return response.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("head", [
    # Two Host lines: a proxy or cache in front may key on the last one while the answer followed the first
    # (autoconfig for one domain cached under the other's name). RFC 9112 §3.2: 400.
    b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.esempio.it\r\nHost: autoconfig.other.example\r\n",
    b"GET /healthz HTTP/1.0\r\nHost: a.example\r\nHost: b.example\r\n",
    # HTTP/1.1 without Host (RFC 9112 §3.2: 400; h11 refused it, httptools let it through).
    b"GET /healthz HTTP/1.1\r\n",
    # Not a host: two names joined by a proxy, a path, spaces.
    b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.esempio.it, autoconfig.other.example\r\n",
    b"GET /?email=giulia.bianchi%40esempio.it HTTP/1.1\r\nHost: evil.example/x?\r\n",
])
def test_a_missing_repeated_or_invalid_host_is_400(srv: Server, head: bytes) -> None:
    answer = raw(srv, head + b"Connection: close\r\n\r\n")
    assert status_line(answer) == b"HTTP/1.1 400 Bad Request"
    assert answer.endswith(b"\r\n\r\nbad Host header: send exactly one Host with the server's name\n")


@pytest.mark.parametrize("head,status", [
    (b"GET /healthz HTTP/1.0\r\n", b"200 OK"),  # HTTP/1.0 needs no Host
    (b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: AUTOCONFIG.Esempio.IT.:8080\r\n", b"200 OK"),
    (b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: autoconfig.xn--espmpio-dya.it\r\n", b"404 Not Found"),
    (b"GET /mail/config-v1.1.xml HTTP/1.1\r\nHost: [::1]:8080\r\n", b"400 Bad Request"),  # no mail domain
])
def test_a_valid_host_is_served(srv: Server, head: bytes, status: bytes) -> None:
    answer = raw(srv, head + b"Connection: close\r\n\r\n")
    assert status_line(answer) == b"HTTP/1.1 " + status
    assert b"bad Host header" not in answer


# --- security headers ----------------------------------------------------------------------------------------
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'")


@pytest.mark.parametrize("query,status", [("", 200), ("?email=giulia.bianchi%40esempio.it", 200),
                                          ("?email=nobody%40other.example", 404), ("?email=junk", 400)])
def test_the_page_carries_its_security_headers(srv: Server, query: str, status: int) -> None:
    # Without them any site could frame the page (clickjacking the profile button), and a browser would
    # follow its default Referer policy with the address in the URL.
    r, body = get(srv, "GET", "/" + query, headers={"Host": "autoconfig.esempio.it"})
    assert r.status == status and body.startswith(b"<!DOCTYPE html>")
    assert r.getheader("content-security-policy") == PAGE_CSP
    assert r.getheader("x-frame-options") == "DENY"
    assert r.getheader("referrer-policy") == "no-referrer"
    assert r.getheader("x-content-type-options") == "nosniff"


@pytest.mark.parametrize("method,path,body,status", [
    ("GET", "/mail/config-v1.1.xml?emailaddress=a%40esempio.it", None, 200),
    ("GET", "/autodiscover/autodiscover.json?Email=a%40esempio.it&Protocol=%3Cscript%3E", None, 400),
    ("GET", "/apple/giulia.bianchi@esempio.it.mobileconfig", None, 200),
    ("POST", "/autodiscover/autodiscover.xml", pox("giulia.bianchi@esempio.it"), 200),
    ("POST", "/autodiscover/autodiscover.xml", b"<junk", 400),
    ("GET", "/healthz", None, 200),
    ("GET", "/no/such/path", None, 404),
    ("DELETE", "/healthz", None, 405),
])
def test_every_answer_says_nosniff(srv: Server, method: str, path: str, body: bytes | None, status: int) -> None:
    # A browser must take each answer for its declared type: the JSON error echoes the Protocol asked for,
    # and a sniffing browser could render text it guessed to be HTML.
    r, _ = get(srv, method, path, body, {**XML_HEADERS, "Host": "autoconfig.esempio.it"})
    assert (r.status, r.getheader("x-content-type-options")) == (status, "nosniff")


@pytest.mark.parametrize("method,path,body,host,status", [
    ("GET", "/mail/config-v1.1.xml?emailaddress=a%40other.example", None, "autoconfig.other.example", 404),
    ("GET", "/autodiscover/autodiscover.json?Email=a%40other.example&Protocol=AutodiscoverV1", None,
     "autoconfig.esempio.it", 404),
    ("GET", "/autodiscover/autodiscover.json?Email=a%40esempio.it&Protocol=ActiveSync", None,
     "autoconfig.esempio.it", 400),
    ("GET", "/apple/nobody@other.example.mobileconfig", None, "autoconfig.esempio.it", 404),
    ("POST", "/autodiscover/autodiscover.xml", b"<junk", "autoconfig.esempio.it", 400),
    ("GET", "/no/such/path", None, "autoconfig.esempio.it", 404),
    ("DELETE", "/healthz", None, "autoconfig.esempio.it", 405),
    ("GET", "/mail/config-v1.1.xml", None, "a b", 400),
])
def test_no_error_is_stored_by_a_cache(srv: Server, method: str, path: str, body: bytes | None, host: str,
                                       status: int) -> None:
    # A 404 is cacheable by default (RFC 9111 §4.2.2): a domain a reload adds must not meet a stored 404.
    r, _ = get(srv, method, path, body, {**XML_HEADERS, "Host": host})
    assert (r.status, r.getheader("cache-control")) == (status, "no-store")


def test_answers_keep_their_own_cache_control(srv: Server) -> None:
    r, _ = get(srv, "GET", "/mail/config-v1.1.xml?emailaddress=a%40esempio.it", None,
               {"Host": "autoconfig.esempio.it"})
    assert r.status == 200 and r.getheader("cache-control") != "no-store" and r.getheader("etag")


# --- per-domain answers need only the domain ----------------------------------------------------------------
@pytest.mark.parametrize("path", [
    # A client that does not percent-encode '+': query decoding makes 'a b@esempio.it' of it.
    "/mail/config-v1.1.xml?emailaddress=giulia+work@esempio.it",
    "/mail/config-v1.1.xml?emailaddress=%22giulia%20bianchi%22@esempio.it",  # a quoted local part
    "/mail/config-v1.1.xml?emailaddress=a@ESEMPIO.IT.",
])
def test_autoconfig_needs_only_the_domain_of_the_address(srv: Server, path: str) -> None:
    # The answer is the domain's file either way; on a Host that names no mail domain (the service reached
    # by its IP, a proxy that rewrites Host) refusing the local part left the client with a 400.
    r, body = get(srv, "GET", path, headers={"Host": "127.0.0.1"})
    assert r.status == 200 and r.getheader("content-type") == "text/xml; charset=utf-8"
    assert b"<domain>esempio.it</domain>" in body


@pytest.mark.parametrize("query", ["Email=giulia+work@esempio.it&Protocol=AutodiscoverV1",
                                   "Email=%22giulia%20bianchi%22%40esempio.it&Protocol=AutodiscoverV1"])
def test_autodiscover_json_needs_only_the_domain_of_the_address(srv: Server, query: str) -> None:
    r, body = get(srv, "GET", "/autodiscover/autodiscover.json?" + query, headers={"Host": "127.0.0.1"})
    assert (r.status, json.loads(body)) == (200, {
        "Protocol": "AutodiscoverV1", "Url": "https://autodiscover.esempio.it/autodiscover/autodiscover.xml"})


@pytest.mark.parametrize("address,status", [("junk", 400), ("@esempio.it", 400), ("a@", 400),
                                            ("a@exa_mple..org", 400), ("a@other.example", 404)])
def test_autodiscover_json_still_refuses_what_names_no_served_domain(srv: Server, address: str,
                                                                      status: int) -> None:
    r, body = get(srv, "GET", f"/autodiscover/autodiscover.json/v1.0/{address}?Protocol=AutodiscoverV1",
                  headers={"Host": "127.0.0.1"})
    assert (r.status, json.loads(body)["ErrorCode"]) == (status, "InvalidUser")


# --- Autodiscover POX: one request, one address ----------------------------------------------------------------
REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"


def pox_with(request_children: str, requests: int = 1) -> bytes:
    return (f'<Autodiscover xmlns="{REQUEST_NS}">' + f"<Request>{request_children}</Request>" * requests
            + "</Autodiscover>").encode()


OUTLOOK = "<AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a" \
          "</AcceptableResponseSchema>"


@pytest.mark.parametrize("body", [
    # MS-OXDSCLI's request schema has one Request with one EMailAddress. With two, the answer followed the
    # last while a proxy, a WAF or a log reading the first saw another mailbox (or another domain).
    pox_with("<EMailAddress>x@other.example</EMailAddress><EMailAddress>giulia.bianchi@esempio.it</EMailAddress>"
             + OUTLOOK),
    pox_with("<EMailAddress>giulia.bianchi@esempio.it</EMailAddress>" + OUTLOOK
             + "<AcceptableResponseSchema>urn:other</AcceptableResponseSchema>"),
    pox_with("<EMailAddress>giulia.bianchi@esempio.it</EMailAddress>" + OUTLOOK, requests=2),
], ids=["two-addresses", "two-schemas", "two-requests"])
def test_pox_with_two_of_what_the_schema_has_once_is_400_error_600(srv: Server, body: bytes) -> None:
    r, answer = get(srv, "POST", "/autodiscover/autodiscover.xml", body, XML_HEADERS)
    assert r.status == 400
    assert b"<ErrorCode>600</ErrorCode>" in answer and b"giulia" not in answer


def test_pox_with_one_of_each_is_answered(srv: Server) -> None:
    r, answer = get(srv, "POST", "/autodiscover/autodiscover.xml",
                    pox_with("<EMailAddress>giulia.bianchi@esempio.it</EMailAddress>" + OUTLOOK), XML_HEADERS)
    assert r.status == 200 and b"<DisplayName>Giulia Bianchi</DisplayName>" in answer
