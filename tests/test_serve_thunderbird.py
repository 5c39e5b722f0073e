"""The real Thunderbird fetches its autoconfig from the running `mailprofile serve` over HTTP, through its own
FetchConfig.fromISP() (the account wizard's code path: the four autoconfig URLs in parallel, with
?emailaddress=), and its own parser yields the spec's servers.

Thunderbird is pointed at the server as its HTTP proxy (tests/thunderbird/serve_proxy.js), so the request
keeps the real URL http://autoconfig.<domain>/mail/config-v1.1.xml and Host header without any DNS change;
https attempts end at the same loopback server and fail, so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from tests.serve_process import SERVE_PROXY_JS, Server
from tests.test_serve import PASSWORD
from tests.test_thunderbird_real import SOCKET, XML_AUTH, make_install, run_thunderbird

pytestmark = pytest.mark.thunderbird

HARNESS = Path(__file__).parent / "thunderbird" / "harness_fetch.js"


def fetch(tmp_path: Path, mode: str) -> tuple[dict[str, Any], str]:
    """Run Thunderbird's own discovery (`mode` isp or exchange) for zoe.unal@staff.school.example against the
    real server; return what Thunderbird read and the server's log."""
    server = Server(EXAMPLES / "school.yaml", tmp_path / "server.log")
    try:
        server.wait_ready()
        values = {"HARNESS_PROXY_PORT": str(server.port), "HARNESS_DOMAIN": json.dumps("staff.school.example"),
                  "HARNESS_EMAIL": json.dumps("zoe.unal@staff.school.example"), "HARNESS_MODE": json.dumps(mode),
                  "HARNESS_PASSWORD": json.dumps(PASSWORD)}
        cfg = SERVE_PROXY_JS.read_text(encoding="utf-8") + HARNESS.read_text(encoding="utf-8")
        for name, value in values.items():
            cfg = cfg.replace(name, value)
        install = make_install(tmp_path, "// serve harness\n" + cfg)
        home, profile = tmp_path / "home", tmp_path / "profile"
        home.mkdir()
        profile.mkdir()
        dump = run_thunderbird(install, profile, home)
    finally:
        server.stop()
    return dump, server.output()


def test_thunderbird_fetches_autoconfig_from_the_running_server(tmp_path: Path) -> None:
    dump, log = fetch(tmp_path, "isp")
    assert dump["id"] == "school.example" and dump["displayName"] == "Scuola Esempio"
    assert dump["domains"] == ["school.example", "staff.school.example"]
    assert dump["incoming"] == [{"hostname": "mail.school.example", "port": 995, "socketType": SOCKET["ssl"],
                                 "auth": XML_AUTH["password"], "username": "%EMAILADDRESS%", "type": "pop3"}]
    assert dump["outgoing"] == [{"hostname": "mail.school.example", "port": 587, "socketType": SOCKET["starttls"],
                                 "auth": XML_AUTH["password"], "username": "%EMAILADDRESS%", "type": "smtp"}]
    # Thunderbird asked us over http with the address, which the access log shows hashed.
    assert '"GET /mail/config-v1.1.xml?emailaddress=<' in log and "@staff.school.example\" 200" in log
    assert "zoe.unal@" not in log


def test_thunderbird_reads_the_autodiscover_answer_from_the_running_server(tmp_path: Path) -> None:
    """Thunderbird's Exchange leg POSTs its own request body (ExchangeAutoDiscover.sys.mjs) to
    http://autodiscover.<domain>/autodiscover/autodiscover.xml and reads our answer with readAutoDiscoverXML:
    the port decides SSL (995) or STARTTLS (587) there, and LoginName is the account's user name."""
    dump, log = fetch(tmp_path, "exchange")
    assert dump["subSource"] == "exchange-from-url3"
    assert dump["incoming"] == [{"hostname": "mail.school.example", "port": 995, "socketType": SOCKET["ssl"],
                                 "auth": XML_AUTH["password"], "username": "zunal", "type": "pop3"}]
    assert dump["outgoing"] == [{"hostname": "mail.school.example", "port": 587, "socketType": SOCKET["starttls"],
                                 "auth": XML_AUTH["password"], "username": "zunal", "type": "smtp"}]
    assert '"POST /autodiscover/autodiscover.xml" 200' in log
    assert PASSWORD not in log and "zoe.unal@" not in log
