"""Contract tests of `mailprofile serve` with Starlette's test client: every endpoint, every refusal.

Request bodies are the ones real clients send (copied with attribution, not read from ../shared):
- Outlook: MicrosoftDocs office-developer-exchange-docs "POX Autodiscover request for Exchange".
- Thunderbird: comm-central mail/components/accountcreation/modules/ExchangeAutoDiscover.sys.mjs (POSTs the
  same body with Content-Type "text/xml; charset=utf-8" and HTTP Basic auth carrying the user's password).
- New Outlook for Windows: the mobilesync AcceptableResponseSchema (Mailu#3961).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from generator.cli import main
from generator.serve import create_app
from generator.serve.app import Holder
from generator.targets.outlook import read_autodiscover
from generator.targets.thunderbird import parse_autoconfig
from tests.conftest import EXAMPLES
from tests.test_spec_errors import BASE

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
OUTLOOK_SCHEMA = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
MOBILESYNC = "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
PASSWORD = "S3cret-Pa55w0rd!"


def pox(address: str, schema: str = OUTLOOK_SCHEMA) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="{REQUEST_NS}">\n  <Request>\n'
            f"    <EMailAddress>{address}</EMailAddress>\n"
            f"    <AcceptableResponseSchema>{schema}</AcceptableResponseSchema>\n"
            "  </Request>\n</Autodiscover>\n").encode()


XML_HEADERS = {"content-type": "text/xml; charset=utf-8"}
THUNDERBIRD_HEADERS = {**XML_HEADERS, "authorization": "Basic " + base64.b64encode(
    f"anna.verdi@school.example:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def school() -> Iterator[TestClient]:
    with TestClient(create_app(EXAMPLES / "school.yaml"), raise_server_exceptions=False) as client:
        yield client


def error_code(data: bytes) -> tuple[str, str]:
    """(ErrorCode, namespace of Response) of an Autodiscover error answer."""
    root = SafeET.fromstring(data)
    assert root.tag == f"{{{RESPONSE_NS}}}Autodiscover"
    response = root[0]
    ns = response.tag[1:].split("}")[0]
    code = response.find(f"{{{ns}}}Error/{{{ns}}}ErrorCode")
    assert code is not None and code.text is not None
    return code.text, ns


# --- Mozilla autoconfig ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/mail/config-v1.1.xml", "/.well-known/autoconfig/mail/config-v1.1.xml",
                                  "/Mail/Config-v1.1.xml"])
def test_autoconfig_by_address(school: TestClient, path: str) -> None:
    r = school.get(path, params={"emailaddress": "someone@staff.school.example"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    parsed = parse_autoconfig(r.content)
    assert parsed["incoming"][0]["hostname"] == "mail.school.example" and parsed["incoming"][0]["port"] == 995
    assert "staff.school.example" in parsed["domains"]


def test_autoconfig_without_address_takes_the_domain_from_the_host(school: TestClient) -> None:
    # Thunderbird for Android never sends ?emailaddress= (RealAutoDiscoveryRegistry.kt).
    a = school.get("/mail/config-v1.1.xml", headers={"host": "autoconfig.staff.school.example"})
    b = school.get("/.well-known/autoconfig/mail/config-v1.1.xml", headers={"host": "staff.school.example:443"})
    assert a.status_code == b.status_code == 200 and a.content == b.content
    assert parse_autoconfig(a.content)["incoming"][0]["username"] == "%EMAILADDRESS%"


def test_autoconfig_junk_address_falls_back_on_the_host(school: TestClient) -> None:
    r = school.get("/mail/config-v1.1.xml?emailaddress=EVOLUTIONUSER", headers={"host": "autoconfig.school.example"})
    assert r.status_code == 200


def test_autoconfig_without_address_or_domain_is_a_clear_400(school: TestClient) -> None:
    r = school.get("/mail/config-v1.1.xml", headers={"host": "127.0.0.1:8080"})
    assert r.status_code == 400 and "emailaddress" in r.text


@pytest.mark.parametrize("query,host", [("?emailaddress=a@other.example", "127.0.0.1"),
                                        ("", "autoconfig.other.example")])
def test_autoconfig_unknown_domain_is_404(school: TestClient, query: str, host: str) -> None:
    assert school.get("/mail/config-v1.1.xml" + query, headers={"host": host}).status_code == 404


def test_autoconfig_etag_cache_control_304_and_head(school: TestClient) -> None:
    url = "/mail/config-v1.1.xml?emailaddress=x@school.example"
    r = school.get(url)
    import hashlib
    assert r.headers["etag"] == '"' + hashlib.sha256(r.content).hexdigest() + '"'
    assert r.headers["cache-control"] == "public, max-age=3600"
    again = school.get(url, headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # RFC 9110 §13.1.2: a list, weak tags and "*" match too; another tag does not.
    etag = r.headers["etag"]
    for header in (f'"old", {etag}', f"W/{etag}", " * "):
        assert school.get(url, headers={"if-none-match": header}).status_code == 304, header
    for header in ('"old"', etag[:-2] + '"', "", "W/"):
        assert school.get(url, headers={"if-none-match": header}).status_code == 200, header
    head = school.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == r.headers["etag"] and head.headers["content-length"] == str(len(r.content))


# --- Outlook Autodiscover (POX) ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/autodiscover/autodiscover.xml", "/Autodiscover/Autodiscover.xml",
                                  "/AutoDiscover/AutoDiscover.xml", "/AUTODISCOVER/AUTODISCOVER.XML"])
def test_pox_every_casing_of_the_path(school: TestClient, path: str) -> None:
    r = school.post(path, content=pox("bob@school.example"), headers=XML_HEADERS)
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml; charset=utf-8"
    assert r.headers["cache-control"] == "no-store"
    answer = read_autodiscover(r.content)
    assert answer["DisplayName"] == 'Bob "The Builder" \\ O\'Neil'
    assert [p["Type"] for p in answer["Protocol"]] == ["POP3", "SMTP"]


def test_pox_unlisted_address_gets_its_user_names_filled(school: TestClient) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=pox("New.Pupil@Staff.School.Example"),
                    headers=XML_HEADERS)
    assert r.status_code == 200
    answer = read_autodiscover(r.content)
    assert {p["LoginName"] for p in answer["Protocol"]} == {"New.Pupil@staff.school.example"}
    assert answer["Protocol"][1] == {"Type": "SMTP", "Server": "mail.school.example", "Port": 587,
                                     "LoginName": "New.Pupil@staff.school.example", "DomainRequired": "off",
                                     "SPA": "off", "SSL": "on", "Encryption": "TLS", "AuthRequired": "on",
                                     "UsePOPAuth": "on"}


def test_a_spec_without_accounts_serves_every_address_of_its_domains(tmp_path: Path) -> None:
    spec = tmp_path / "service.yaml"
    spec.write_text("provider: {id: esempio.it, display_name: Esempio, domains: [esempio.it]}\n"
                    "incoming: {protocol: imap, host: imap.esempio.it, port: 993, security: ssl}\n"
                    "outgoing: {host: smtp.esempio.it, port: 465, security: ssl}\n", encoding="utf-8")
    with TestClient(create_app(spec), raise_server_exceptions=False) as client:
        r = client.post("/autodiscover/autodiscover.xml", content=pox("chiunque@esempio.it"), headers=XML_HEADERS)
        assert r.status_code == 200
        assert {p["LoginName"] for p in read_autodiscover(r.content)["Protocol"]} == {"chiunque@esempio.it"}
        r = client.get("/mail/config-v1.1.xml", params={"emailaddress": "chiunque@esempio.it"})
        assert r.status_code == 200 and parse_autoconfig(r.content)["incoming"][0]["hostname"] == "imap.esempio.it"


def test_pox_thunderbird_basic_auth_is_ignored_and_never_logged(school: TestClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        r = school.post("/autodiscover/autodiscover.xml", content=pox("anna.verdi@school.example"),
                        headers=THUNDERBIRD_HEADERS)
        bad = school.post("/autodiscover/autodiscover.xml", content=b"<x>" + PASSWORD.encode(),
                          headers=THUNDERBIRD_HEADERS)
    assert r.status_code == 200 and bad.status_code == 400
    encoded = THUNDERBIRD_HEADERS["authorization"].split()[1]
    assert caplog.records, "the access log wrote nothing"
    for record in caplog.records:
        line = record.getMessage()
        assert PASSWORD not in line and encoded not in line and "anna.verdi@school.example" not in line


def test_access_log_hashes_addresses(school: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mailprofile.serve.access"):
        school.get("/apple/mario.rossi%40school.example.mobileconfig")
        school.get("/mail/config-v1.1.xml?emailaddress=mario.rossi%40school.example")
    lines = [r.getMessage() for r in caplog.records if r.name == "mailprofile.serve.access"]
    assert len(lines) == 2
    for line in lines:
        assert "mario.rossi" not in line and "@school.example" in line and "<" in line


def test_access_log_keeps_no_part_of_an_address(school: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    # ' = & are legal in a local part (and & = also separate query parameters); people type their name too.
    with caplog.at_level(logging.INFO, logger="mailprofile.serve.access"):
        school.get("/apple/o'neil=x@school.example.mobileconfig")
        school.get("/", params={"email": "o'neil=x@school.example", "lang": "en"})
        school.get("/", params={"email": "rossi&figli@school.example"})
        school.get("/", params={"email": "Mario Rossi <mario.rossi@school.example>"})
        school.get("/mail/config-v1.1.xml?emailaddress=o'neil=x%40school.example")
    lines = [r.getMessage() for r in caplog.records if r.name == "mailprofile.serve.access"]
    assert len(lines) == 5
    for line in lines:
        for secret in ("o'", "neil", "rossi", "figli", "Mario"):
            assert secret not in line, line
    digest = hashlib.sha256(b"o'neil=x@school.example").hexdigest()[:12]
    assert f"/apple/<{digest}>@school.example.mobileconfig" in lines[0]  # the same pseudonym everywhere
    assert f"email=<{digest}>@school.example&lang=en" in lines[1] and f"=<{digest}>@school.example" in lines[4]


def test_pox_mobilesync_schema_gets_error_601_in_the_mobilesync_namespace(school: TestClient) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=pox("bob@school.example", MOBILESYNC),
                    headers=XML_HEADERS)
    assert r.status_code == 200
    assert error_code(r.content) == ("601", MOBILESYNC)
    assert b"DisplayName" not in r.content


def test_pox_unknown_domain_is_404_with_error_500(school: TestClient) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=pox("x@other.example"), headers=XML_HEADERS)
    assert r.status_code == 404 and error_code(r.content) == ("500", RESPONSE_NS)


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + b"".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">'
                             .encode() for i in range(1, 10))
                  + b']><Autodiscover><Request><EMailAddress>&lol9;</EMailAddress></Request></Autodiscover>')
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "' + b"x" * 3000 + b'">]><Autodiscover><Request>'
             b"<EMailAddress>" + b"&x;" * 1000 + b"</EMailAddress></Request></Autodiscover>")
XXE = (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
       b"<Autodiscover><Request><EMailAddress>&xxe;</EMailAddress></Request></Autodiscover>")
DTD_ONLY = (b'<?xml version="1.0"?><!DOCTYPE Autodiscover SYSTEM "http://127.0.0.1:9/x.dtd">'
            + pox("bob@school.example")[39:])
NOT_UTF8 = pox("bob@school.example").replace(b"bob", b"b\xff\xfeb")


@pytest.mark.parametrize("body", [BILLION_LAUGHS, QUADRATIC, XXE, DTD_ONLY, NOT_UTF8, b"", b"   ", b"<unclosed",
                                  b"<Autodiscover/>", b"<Other/>",
                                  pox("").replace(b"<EMailAddress></EMailAddress>", b""), pox("not-an-address")],
                         ids=["billion-laughs", "quadratic", "xxe", "dtd", "not-utf8", "empty", "blank", "broken",
                              "no-request", "wrong-root", "no-address", "bad-address"])
def test_pox_bad_bodies_are_400_error_600(school: TestClient, body: bytes) -> None:
    # No timing assertion (tests never assert timings): entities are refused, never expanded, which the
    # answer shows (no "lollol", no file contents), and the server keeps serving.
    r = school.post("/autodiscover/autodiscover.xml", content=body, headers=XML_HEADERS)
    assert r.status_code == 400 and error_code(r.content) == ("600", RESPONSE_NS)
    assert b"root:" not in r.content and b"lollol" not in r.content
    assert school.get("/healthz").status_code == 200  # and the server keeps serving


def test_pox_oversize_body_refused_before_parsing(school: TestClient) -> None:
    big = pox("bob@school.example") + b"<!--" + b"x" * 20_000 + b"-->"
    r = school.post("/autodiscover/autodiscover.xml", content=big, headers=XML_HEADERS)
    assert r.status_code == 413 and error_code(r.content) == ("600", RESPONSE_NS)

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked, as Samsung's client posts
        yield pox("bob@school.example")
        for _ in range(100):
            yield b"<!--" + b"y" * 1000 + b"-->"
    r = school.post("/autodiscover/autodiscover.xml", content=chunks(), headers=XML_HEADERS)
    assert r.status_code == 413


def test_pox_chunked_small_body_is_answered(school: TestClient) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=iter([pox("bob@school.example")]), headers=XML_HEADERS)
    assert r.status_code == 200


@pytest.mark.parametrize("headers", [{}, {"content-type": "application/json"}, {"content-type": "multipart/form-data"},
                                     {"content-type": "text/xml; charset=iso-8859-1"}],
                         ids=["missing", "json", "form", "latin1"])
def test_pox_wrong_content_type_is_415(school: TestClient, headers: dict[str, str]) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=pox("bob@school.example"), headers=headers)
    assert r.status_code == 415 and error_code(r.content) == ("600", RESPONSE_NS)


@pytest.mark.parametrize("media", ["application/xml", "text/xml", "application/soap+xml; charset=UTF-8"])
def test_pox_accepts_xml_media_types(school: TestClient, media: str) -> None:
    r = school.post("/autodiscover/autodiscover.xml", content=pox("bob@school.example"),
                    headers={"content-type": media})
    assert r.status_code == 200


def test_pox_utf16_body_is_read(school: TestClient) -> None:
    body = pox("bob@school.example").decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16")
    r = school.post("/autodiscover/autodiscover.xml", content=body, headers={"content-type": "text/xml"})
    assert r.status_code == 200 and read_autodiscover(r.content)["Protocol"][0]["LoginName"] == "bob@school.example"


def test_pox_get_is_405(school: TestClient) -> None:
    r = school.get("/autodiscover/autodiscover.xml")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


# --- Autodiscover v1 JSON ---------------------------------------------------------------------------------
@pytest.mark.parametrize("url", ["/autodiscover/autodiscover.json?Email=x%40school.example&Protocol=AutodiscoverV1",
                                 "/Autodiscover/Autodiscover.json?email=x@school.example&protocol=autodiscoverv1"
                                 "&RedirectCount=1",
                                 "/autodiscover/autodiscover.json/v1.0/x@school.example?Protocol=AutodiscoverV1"])
def test_json_v1(school: TestClient, url: str) -> None:
    r = school.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json() == {"Protocol": "AutodiscoverV1",
                        "Url": "https://autodiscover.school.example/autodiscover/autodiscover.xml"}


@pytest.mark.parametrize("protocol", ["ActiveSync", "", "Rest"])
def test_json_other_protocols_get_microsofts_error(school: TestClient, protocol: str) -> None:
    r = school.get("/autodiscover/autodiscover.json", params={"Email": "x@school.example", "Protocol": protocol})
    assert r.status_code == 400
    assert r.json() == {"ErrorCode": "InvalidProtocol", "ErrorMessage": f"The given protocol value '{protocol}' is "
                        "invalid. Supported values are 'AutodiscoverV1'"}


def test_json_missing_or_unknown_address(school: TestClient) -> None:
    assert school.get("/autodiscover/autodiscover.json?Protocol=AutodiscoverV1").status_code == 400
    r = school.get("/autodiscover/autodiscover.json?Email=a@other.example&Protocol=AutodiscoverV1")
    assert r.status_code == 404 and r.json()["ErrorCode"] == "InvalidUser"


# --- Apple profiles ---------------------------------------------------------------------------------------
def test_apple_profile_headers(school: TestClient) -> None:
    r = school.get("/apple/bob@school.example.mobileconfig")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-apple-aspen-config"
    assert r.headers["content-disposition"].startswith('attachment; filename="bob@school.example.mobileconfig"')
    assert r.headers["cache-control"] == "no-store"
    form = school.get("/apple", params={"email": "Bob@School.Example"})
    assert form.content == r.content
    head = school.head("/Apple/bob@school.example.mobileconfig")
    assert head.status_code == 200 and head.content == b""


def test_a_long_address_downloads_under_the_name_the_build_and_guides_give(tmp_path: Path) -> None:
    # An address longer than a file name may be is cut and given a hash on disk, in the message's attachment
    # and in the guide that names it; the download was named with the whole address.
    domain = ".".join(c * 63 for c in "abc") + ".example"
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "school.yaml").read_text(encoding="utf-8").replace("staff.school.example", domain),
                    encoding="utf-8")
    address = "l" * 64 + "@" + domain
    (tmp_path / "school-accounts.csv").write_text(f"name,email,username\nLong Name,{address},\n", encoding="utf-8")
    out = tmp_path / "out"
    assert CliRunner().invoke(main, ["build", str(spec), "--out", str(out), "--only", "apple", "-q"]).exit_code == 0
    with TestClient(create_app(spec)) as c:
        r = c.get(f"/apple/{address}.mobileconfig")
    assert r.status_code == 200
    from generator.accounts import file_name
    built = out / file_name(address) / "apple" / f"{file_name(address)}.mobileconfig"
    assert len(address) > 215 and built.read_bytes() == r.content
    assert r.headers["content-disposition"] == f'attachment; filename="{built.name}"; filename*=UTF-8\'\'{built.name}'


@pytest.mark.parametrize("path,status", [("/apple/x@other.example.mobileconfig", 404),
                                         ("/apple/not-an-address.mobileconfig", 400),
                                         ("/apple/bob@school.example.txt", 404), ("/apple?email=", 400)])
def test_apple_refusals(school: TestClient, path: str, status: int) -> None:
    assert school.get(path).status_code == status


# --- everything else ---------------------------------------------------------------------------------------
def test_healthz_404_405(school: TestClient) -> None:
    h = school.get("/healthz")
    assert h.status_code == 200 and h.text == "ok 2 domains\n" and school.head("/healthz").status_code == 200
    assert school.get("/wp-login.php").status_code == 404
    assert school.put("/mail/config-v1.1.xml").status_code == 405
    assert school.delete("/apple/bob@school.example.mobileconfig").status_code == 405


def test_a_crash_in_one_request_is_a_500_and_the_next_request_is_served(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(EXAMPLES / "provider-imap.yaml")
    with TestClient(app, raise_server_exceptions=False) as client:
        holder: Holder = app.app.state.holder  # type: ignore[attr-defined]
        outlook = holder.current.targets["outlook"]
        holder.current.targets["outlook"] = None  # type: ignore[assignment]  # broken: rendering raises
        with caplog.at_level(logging.ERROR, logger="mailprofile.serve"):
            r = client.post("/autodiscover/autodiscover.xml", content=pox("giulia.bianchi@esempio.it"),
                            headers=XML_HEADERS)
        assert r.status_code == 500 and "Traceback" not in r.text
        assert any("AttributeError" in rec.getMessage() and "giulia" not in rec.getMessage() for rec in caplog.records)
        holder.current.targets["outlook"] = outlook
        assert client.get("/mail/config-v1.1.xml?emailaddress=a@esempio.it").status_code == 200


def test_targets_the_spec_does_not_build_are_not_served(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE, encoding="utf-8")  # targets.build: [apple]
    with TestClient(create_app(tmp_path / "spec.yaml")) as client:
        assert client.get("/mail/config-v1.1.xml?emailaddress=a@esempio.it").status_code == 404
        r = client.post("/autodiscover/autodiscover.xml", content=pox("a@esempio.it"), headers=XML_HEADERS)
        assert r.status_code == 404
        assert client.get("/apple/a@esempio.it.mobileconfig").status_code == 200


# --- start and reload --------------------------------------------------------------------------------------
def test_a_spec_with_passwords_is_refused(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE + "passwords: {include: true, from_env: MP_PW}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (f"error: {tmp_path / 'spec.yaml'}:19:22: passwords.include is true, but "
                                             "a web service never hands out a password — serve a copy of the spec "
                                             "without the passwords section")


def test_spec_errors_at_start_are_the_ones_check_prints(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE.replace("port: 995", "port: \"995\"").replace("aruba.it\n  display",
                                                                                           "aruba.it\n  displai"),
                                        encoding="utf-8")
    spec = str(tmp_path / "spec.yaml")
    served = CliRunner().invoke(main, ["serve", spec])
    checked = CliRunner().invoke(main, ["check", spec])
    assert served.exit_code == checked.exit_code == 2
    assert served.output.splitlines()[:-1] == checked.output.splitlines()[:-1]
    assert len(served.output.splitlines()) >= 3
    assert served.output.splitlines()[-1] == "3 errors: not serving"


def test_reload_swaps_a_valid_spec_and_keeps_the_old_one_when_invalid(tmp_path: Path,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    spec = tmp_path / "spec.yaml"
    shutil.copy(EXAMPLES / "provider-imap.yaml", spec)
    app = create_app(spec)
    holder: Holder = app.app.state.holder  # type: ignore[attr-defined]
    with TestClient(app) as client:
        url = "/mail/config-v1.1.xml?emailaddress=a@esempio.it"
        assert parse_autoconfig(client.get(url).content)["incoming"][0]["hostname"] == "imaps.aruba.it"
        spec.write_text(spec.read_text().replace("host: imaps.aruba.it", "host: imap.esempio.it"))
        assert holder.reload()
        assert parse_autoconfig(client.get(url).content)["incoming"][0]["hostname"] == "imap.esempio.it"
        spec.write_text(spec.read_text().replace("port: 993", "port: 99999"))
        with caplog.at_level(logging.ERROR, logger="mailprofile.serve"):
            assert not holder.reload()
        assert [r.getMessage() for r in caplog.records] == [
            f"reload failed, keeping the previous spec: {spec}:12:9: incoming.port: input should be less than or "
            "equal to 65535, got 99999 — change the value (1 problem)"]
        assert parse_autoconfig(client.get(url).content)["incoming"][0]["hostname"] == "imap.esempio.it"
        health = client.get("/healthz")
        assert health.status_code == 200 and health.text.startswith("ok 1 domains\nreload failed at ")
        assert health.text.endswith(": still serving the spec loaded before (the log says why)\n")
        # /healthz answers anyone: nothing of the spec (its path, a value, a CSV row with an address) is in it.
        assert str(tmp_path) not in health.text and "99999" not in health.text and "port" not in health.text
        spec.write_text(spec.read_text().replace("port: 99999", "port: 993"))
        assert holder.reload()
        assert client.get("/healthz").text == "ok 1 domains\n"


def test_an_unforeseen_error_in_a_reload_keeps_the_old_spec(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the tool's own errors were caught: anything else raised by a reload (a bug) ended the supervisor of
    a multi-worker service. Injected here, since no known input raises one."""
    import generator.serve.app as app_module

    spec = tmp_path / "spec.yaml"
    shutil.copy(EXAMPLES / "provider-imap.yaml", spec)
    app = create_app(spec)
    holder: Holder = app.app.state.holder  # type: ignore[attr-defined]

    def broken(*_args: object) -> None:
        raise KeyError("incoming")

    monkeypatch.setattr(app_module, "load_service", broken)
    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="mailprofile.serve"):
        assert not holder.reload()
        assert client.get("/mail/config-v1.1.xml?emailaddress=a@esempio.it").status_code == 200
    assert [r.getMessage() for r in caplog.records] == [
        "reload failed, keeping the previous spec: internal error (KeyError: 'incoming'); please report it with the "
        "spec"]


# --- the self-service page ---------------------------------------------------------------------------------
def settings_cells(html: str) -> dict[str, str]:
    from generator.targets.guide import _GuideParser
    parser = _GuideParser()
    parser.feed(html)
    return parser.parsed.tables["settings"]


def test_page_without_address_is_the_form(school: TestClient) -> None:
    r = school.get("/", headers={"accept-language": "en-GB,en;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert '<form method="get" action="/">' in r.text and 'name="email"' in r.text
    assert "<script" not in r.text and 'id="settings"' not in r.text
    assert r.headers["content-language"] == "en" and r.headers["vary"] == "Accept-Language"


@pytest.mark.parametrize("accept,query,lang,heading", [
    ("it-IT,it;q=0.9,en;q=0.5", "", "it", "Configura la tua casella Scuola Esempio"),
    ("en-US", "", "en", "Set up your Scuola Esempio mailbox"),
    ("en-US", "&lang=it", "it", "Configura la tua casella Scuola Esempio"),
    ("de-DE", "", "en", "Set up your Scuola Esempio mailbox")])
def test_page_language(school: TestClient, accept: str, query: str, lang: str, heading: str) -> None:
    r = school.get("/?email=zoe.unal%40staff.school.example" + query, headers={"accept-language": accept})
    assert r.status_code == 200 and f'<html lang="{lang}">' in r.text and f"<h1>{heading}</h1>" in r.text
    other = "en" if lang == "it" else "it"
    assert f'href="/?lang={other}&amp;email=zoe.unal%40staff.school.example"' in r.text  # the switcher keeps it


def test_page_settings_table_profile_button_and_qr(school: TestClient) -> None:
    r = school.get("/?email=zoe.unal@staff.school.example&lang=en")
    assert r.headers["cache-control"] == "no-store"
    cells = settings_cells(r.text)
    assert cells["incoming.host"] == "mail.school.example" and cells["incoming.port"] == "995"
    assert cells["incoming.security"] == "SSL/TLS" and cells["incoming.username"] == "zunal"
    assert cells["outgoing.port"] == "587" and cells["outgoing.security"] == "STARTTLS"
    assert cells["outgoing.authentication"] == "Authentication required, same user name and password"
    link = "http://testserver/apple/zoe.unal@staff.school.example.mobileconfig"
    assert f'id="profile-link" href="{link}"' in r.text
    assert r.text.count('<svg') == 1 and 'class="qr"' in r.text
    assert "Thunderbird" in r.text and "Outlook" in r.text


def test_page_uses_the_base_url_for_the_profile_link() -> None:
    with TestClient(create_app(EXAMPLES / "provider-imap.yaml", base_url="https://autoconfig.esempio.it/")) as c:
        r = c.get("/?email=a@esempio.it")
    assert 'href="https://autoconfig.esempio.it/apple/a@esempio.it.mobileconfig"' in r.text


def test_page_takes_the_spec_base_url_before_the_host_header(tmp_path: Path) -> None:
    # delivery.base_url is "the URL of the mailprofile service": the page links there (as the guides do) rather
    # than to whatever Host the request named; --base-url still overrides it.
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8")
                    + "delivery:\n  base_url: HTTPS://mail.esempio.it/profiles/\n", encoding="utf-8")
    with TestClient(create_app(spec)) as c:
        r = c.get("/?email=a@esempio.it", headers={"Host": "evil.example"})
    assert 'href="https://mail.esempio.it/profiles/apple/a@esempio.it.mobileconfig"' in r.text
    assert "evil.example" not in r.text
    with TestClient(create_app(spec, base_url="https://autoconfig.esempio.it")) as c:
        r = c.get("/?email=a@esempio.it")
    assert 'href="https://autoconfig.esempio.it/apple/a@esempio.it.mobileconfig"' in r.text


def test_page_shows_a_link_too_long_for_a_qr_code_without_the_code() -> None:
    # segno's DataOverflowError was a 500 for every page: a long --base-url, or any client's long Host header.
    long_base = "https://x.example/" + "p" * 2400
    with TestClient(create_app(EXAMPLES / "provider-imap.yaml", base_url=long_base)) as c:
        r = c.get("/?email=a@esempio.it&lang=en")
    assert r.status_code == 200
    assert f'href="{long_base}/apple/a@esempio.it.mobileconfig"' in r.text and "<svg" not in r.text
    assert "Scan the code" not in r.text and 'id="settings"' in r.text
    with TestClient(create_app(EXAMPLES / "provider-imap.yaml")) as c:
        r = c.get("/?email=a@esempio.it&lang=en", headers={"host": "h" * 2400 + ".example"})
        assert r.status_code == 200 and "<svg" not in r.text
        r = c.get("/?email=a@esempio.it&lang=en")  # a short one still gets its code
        assert r.status_code == 200 and r.text.count("<svg") == 1


@pytest.mark.parametrize("email,status,message", [
    ('"><script>alert(1)</script>', 400, "That is not an e-mail address."),
    ("x@<img src=x onerror=alert(1)>.example", 400, "That is not an e-mail address."),
    ("someone@other.example", 404, "This service does not provide settings for other.example.")])
def test_page_refusals_are_escaped(school: TestClient, email: str, status: int, message: str) -> None:
    r = school.get("/", params={"email": email, "lang": "en"})
    assert r.status_code == status and message in r.text
    assert "<script>" not in r.text and "<img" not in r.text and 'id="settings"' not in r.text


def test_page_escapes_values_from_the_spec(tmp_path: Path) -> None:
    spec = (BASE.replace("display_name: Aruba Mail", 'display_name: "<script>alert(1)</script> & Co"')
            .replace("  security: ssl\noutgoing:", '  security: ssl\n  username: "<b>%EMAILLOCALPART%</b>"\noutgoing:')
            .replace("build: [apple]", "build: [apple, thunderbird]"))
    (tmp_path / "spec.yaml").write_text(spec, encoding="utf-8")
    with TestClient(create_app(tmp_path / "spec.yaml")) as client:
        r = client.get("/?email=mario.rossi@esempio.it&lang=en")
    assert r.status_code == 200
    assert "<script>alert" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in r.text
    assert "<b>" not in r.text and settings_cells(r.text)["incoming.username"] == "<b>mario.rossi</b>"


@pytest.mark.parametrize("example,change,note", [
    # POP3 primary with an IMAP imap_alternative, plain fallbacks left out of the XML: Android reads it.
    ("provider-pop3.yaml", None, None),
    ("provider-imap.yaml", None, None),
    ("school.yaml", None, "Thunderbird for Android and K-9 Mail will reject the autoconfig answer (it lists no "
                          "IMAP server (POP3 servers are skipped)); their users need the settings table of the "
                          "page at /"),
    ("provider-pop3.yaml", ("android_qr: true", "android_qr: true\n    autoconfig_plain_fallbacks: true"),
     "Thunderbird for Android and K-9 Mail will reject the autoconfig answer (SMTP server smtp.%EMAILDOMAIN%:25 "
     "has socketType plain); their users need the settings table of the page at / or the QR import it shows"),
])
def test_start_notes_what_thunderbird_for_android_cannot_take(tmp_path: Path, example: str,
                                                              change: tuple[str, str] | None,
                                                              note: str | None) -> None:
    """The note judges the autoconfig file the service answers with, as the build's lint does."""
    from generator.serve.cli import client_notes
    from generator.serve.service import load_service
    spec = tmp_path / example
    text = (EXAMPLES / example).read_text(encoding="utf-8")
    spec.write_text(text.replace(*change) if change else text, encoding="utf-8")
    for name in ("school-accounts.csv",):
        (tmp_path / name).write_bytes((EXAMPLES / name).read_bytes())
    assert client_notes(load_service(spec)) == ([note] if note else [])


def test_base_url_must_be_an_http_url(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", str(EXAMPLES / "school.yaml"), "--base-url", "javascript:alert(1)"])
    assert result.exit_code == 2
    assert "'javascript:alert(1)' is not an http(s) URL such as https://mail.example.com" in result.output
    with pytest.raises(SystemExit) as stop:
        create_app(EXAMPLES / "school.yaml", base_url="autoconfig.example.org")  # the scheme forgotten
    assert stop.value.code == 2


@pytest.mark.parametrize("url,message", [
    ("https://admin:s3cret@autoconfig.example.org", "carries a user name or password (before the @), which every "
                                                    "guide and QR code would show; give the URL without them"),
    ("https://autoconfig.example.org@evil.example", "carries a user name or password"),
    ("https://autoconfig.example.org:99999", "the port must be a number from 1 to 65535, not '99999'"),
    ("https://autoconfig.example.org:", "the port must be a number from 1 to 65535, not ''"),
    ("https://autoconfig..example.org", "'autoconfig..example.org' is not a host name"),
    ("https://[fe80::zz]/", "[fe80::zz] is not an IPv6 address"),
    ("https://[::1", "is not an http(s) URL such as https://mail.example.com"),
    ('https://autoconfig.example.org/"><b>', "'\"' cannot stand in a URL path as it is; percent-encode it"),
    ("https://autoconfig.example.org/100%", "a % in a URL starts an escape of two hex digits; write a % itself "
                                            "as %25"),
])
def test_base_url_must_be_a_url_every_client_opens(url: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The link goes into the page, every guide and message and every QR code: refused at start, with why."""
    with pytest.raises(SystemExit) as stop:
        create_app(EXAMPLES / "school.yaml", base_url=url)
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: MAILPROFILE_BASE_URL / base_url: '{url}'") and message in error


@pytest.mark.parametrize("url", ["https://autoconfig.example.org", "http://127.0.0.1:8080/svc", "https://[::1]:8443",
                                 "https://posta.città.it/profili", "https://web_1.example.org/a%20b/p;x=1"])
def test_base_urls_that_are_fine(url: str) -> None:
    from generator.model import base_url_value
    assert base_url_value(url + "/") == url


def test_a_bad_base_url_in_the_spec_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "delivery: {base_url: 'https://autoconfig.example.org:0/p'}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["serve", str(spec)])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (f"error: {spec}:19:22: delivery.base_url: "
                                             "'https://autoconfig.example.org:0/p': the port must be a number "
                                             "from 1 to 65535, not '0'")
