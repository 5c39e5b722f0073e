"""The real Thunderbird fetches its autoconfig from the running `mailprofile serve` over HTTP, through its own
FetchConfig.fromISP() (the account wizard's code path: the four autoconfig URLs in parallel, with
?emailaddress=), and its own parser yields the spec's servers.

Thunderbird is pointed at the server as its HTTP proxy (tests/thunderbird/harness_fetch.js), so the request
keeps the real URL http://autoconfig.<domain>/mail/config-v1.1.xml and Host header without any DNS change;
https attempts end at the same loopback server and fail, so nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.test_serve_process import Server
from tests.test_thunderbird_real import SOCKET, XML_AUTH, make_install, run_thunderbird

pytestmark = pytest.mark.thunderbird

HARNESS = Path(__file__).parent / "thunderbird" / "harness_fetch.js"


def test_thunderbird_fetches_autoconfig_from_the_running_server(tmp_path: Path) -> None:
    server = Server(EXAMPLES / "school.yaml", tmp_path / "server.log")
    try:
        server.wait_ready()
        cfg = (HARNESS.read_text(encoding="utf-8").replace("HARNESS_PROXY_PORT", str(server.port))
               .replace("HARNESS_DOMAIN", json.dumps("staff.school.example"))
               .replace("HARNESS_EMAIL", json.dumps("zoe.unal@staff.school.example")))
        install = make_install(tmp_path, "// serve harness\n" + cfg)
        home, profile = tmp_path / "home", tmp_path / "profile"
        home.mkdir()
        profile.mkdir()
        dump = run_thunderbird(install, profile, home)
    finally:
        server.stop()
    assert dump["id"] == "school.example" and dump["displayName"] == "Scuola Esempio"
    assert dump["domains"] == ["school.example", "staff.school.example"]
    assert dump["incoming"] == [{"hostname": "mail.school.example", "port": 995, "socketType": SOCKET["ssl"],
                                 "auth": XML_AUTH["password"], "username": "%EMAILADDRESS%", "type": "pop3"}]
    assert dump["outgoing"] == [{"hostname": "mail.school.example", "port": 587, "socketType": SOCKET["starttls"],
                                 "auth": XML_AUTH["password"], "username": "%EMAILADDRESS%", "type": "smtp"}]
    log = server.output()
    # Thunderbird asked us over http with the address, which the access log shows hashed.
    assert '"GET /mail/config-v1.1.xml?emailaddress=<' in log and "@staff.school.example\" 200" in log
    assert "zoe.unal@" not in log
