"""Every HTML page users see, built from every example: the per-account and per-domain guides, the HTML part
of each message and the self-service page of `serve` (the real process), drawn by Chromium at a phone's
320 CSS pixels, where nothing may need a horizontal scroll."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generator.build import BuildOptions, build, prepare
from generator.spec import load_spec
from tests.browser import start_chromium
from tests.conftest import EXAMPLES
from tests.serve_process import serving

BASE_URL = "https://mail.example.net/profiles"
NS = "{http://www.w3.org/1999/xhtml}"
# (spec, address) whose self-service page is fetched: one with the Thunderbird for Android QR image.
SERVED = [("school.yaml", "zoe.unal@staff.school.example"), ("provider-pop3.yaml", "mario.rossi@esempio.it")]


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """name -> HTML of every page: guides of every example (with a base URL: the QR codes), messages where the
    example can send them, and the served page with and without an address."""
    root = tmp_path_factory.mktemp("html")
    found: dict[str, str] = {}
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        loaded = load_spec(spec)
        only = ["apple", "guide", "message"] if loaded.spec.delivery.sender else ["apple", "guide"]
        out = root / spec.stem
        build(prepare(loaded, only, base_url=BASE_URL), BuildOptions(out=out, jobs=1))
        for path in sorted(out.rglob("*.html")):
            found[str(path.relative_to(root))] = path.read_text(encoding="utf-8")
        for path in sorted(out.rglob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            html = next(part for part in message.walk() if part.get_content_type() == "text/html")
            found[f"{path.relative_to(root)} text/html"] = html.get_content()  # type: ignore[attr-defined]
    assert any(name.endswith(" text/html") for name in found) and any("/domains/" in name for name in found)
    for spec_name, address in SERVED:
        with serving(EXAMPLES / spec_name, root / f"{spec_name}.log") as server:
            for query in ("/?lang=en", f"/?lang=it&email={address}", f"/?lang=en&email={address}",
                          "/?lang=en&email=someone@a-very-long-domain-name-nobody-serves.example"):
                status, body = server.request("GET", query)
                assert status in (200, 404), (query, status)
                found[f"serve {spec_name} {query}"] = body.decode("utf-8")
    return found


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium") / "profile")
    try:
        # A 320 CSS pixel wide phone (iPhone SE 1st generation, the narrowest still common): mobile metrics, so
        # the page's viewport meta is honoured as on the device.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 320, "height": 640, "deviceScaleFactor": 2, "mobile": True})
        yield driver
    finally:
        driver.quit()


def test_no_page_scrolls_sideways_on_a_320_pixel_phone(pages: dict[str, str], phone: Any,
                                                        tmp_path: Path) -> None:
    widths = {}
    for index, (name, page) in enumerate(pages.items()):
        # Served pages too, from files: the same bytes; their CSP only forbids what they do not load anyway.
        path = tmp_path / f"{index}.html"
        path.write_text(page, encoding="utf-8")
        phone.get(path.as_uri())
        widths[name] = phone.execute_script("return [document.documentElement.clientWidth,"
                                            " document.documentElement.scrollWidth]")
    assert {name: w for name, w in widths.items() if w != [320, 320]} == {}
