"""The Thunderbird for Android QR import where people look for it: the per-account guide and the self-service
page show the build's android-qr code (the same bytes) with one step, when the spec turns it on.

The codes are read back twice: by the pipeline's own reader (generator.qrdecode, through the guide's proof)
and, independently, by librsvg + zbar (tests/test_thunderbird_android.decode_svg), whose JSON is compared
with the values derived in tests/test_thunderbird_android.expected_qr from the format's tables.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import segno
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from starlette.testclient import TestClient

from generator.accounts import load_accounts
from generator.build import BuildOptions, build, prepare
from generator.errors import VerificationError
from generator.qrdecode import QRDecodeError, decode_svg
from generator.serve import create_app
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.guide import GuideTarget, parse_html_guide, read_android_qr
from tests.conftest import EXAMPLES, zbar
from tests.test_serve_browser import browser  # noqa: F401  (the Chromium fixture)
from tests.test_serve_process import Server
from tests.test_thunderbird_android import _variant, expected_qr
from tests.test_thunderbird_android import decode_svg as zbar_decode

POP3 = EXAMPLES / "provider-pop3.yaml"  # targets.thunderbird.android_qr: true
IMAP = EXAMPLES / "provider-imap.yaml"  # the switch off
MARIO = "mario.rossi@esempio.it"
PREFIX = "data:image/svg+xml;base64,"
# The step as the catalogs say it (English source; Italian with the app's own Italian labels).
STEP = {"en": "In Thunderbird for Android, scan this code: when you add an account, tap “Scan QR code” (shown while "
              "the e-mail address field is empty), or on the first screen tap “Import settings” under “Already "
              "using Thunderbird on desktop?”.",
        "it": "In Thunderbird per Android, inquadra questo codice: quando aggiungi un account, tocca “Scan QR code” "
              "(compare finché il campo dell'indirizzo e-mail è vuoto), oppure nella prima schermata tocca “Importa "
              "impostazioni” sotto “Usi Thunderbird sul pc?”."}
HEADING = {"en": "<h2>Thunderbird for Android</h2>", "it": "<h2>Thunderbird per Android</h2>"}


def _build(spec: Path, out: Path, only: list[str]) -> Path:
    build(prepare(load_spec(spec), only), BuildOptions(out=out, jobs=1))
    return out


def _embedded(html: str) -> bytes:
    """The bytes of the page's Android QR <img> (a data: URI of the SVG file)."""
    [src] = re.findall(r'<img id="android-qr" src="([^"]*)"', html)
    assert src.startswith(PREFIX)
    return base64.b64decode(src[len(PREFIX):], validate=True)


def _step(html: str, heading: str) -> str:
    """The paragraph that follows the Thunderbird for Android heading."""
    match = re.search(re.escape(heading) + r"\n<p>(.*?)</p>", html, re.S)
    assert match, heading
    return match.group(1)


def _italian(tmp_path: Path, spec: Path = POP3) -> Path:
    return _variant(tmp_path, {"accounts": [{"name": "Mario Rossi", "email": MARIO, "language": "it"}]}, spec)


# --- the guide ---------------------------------------------------------------------------------------------------

def test_guide_shows_the_builds_android_qr_and_its_step(tmp_path: Path) -> None:
    out = _build(POP3, tmp_path / "out", ["thunderbird", "guide"])
    html = (out / MARIO / "guide" / f"{MARIO}.html").read_text(encoding="utf-8")
    built_svg = (out / MARIO / "thunderbird" / "thunderbird-android-qr.svg").read_bytes()
    assert _embedded(html) == built_svg  # the very file the build writes
    assert STEP["en"] in _step(html, HEADING["en"])
    assert f'alt="QR code that sets up {MARIO} in Thunderbird for Android"' in html
    # zbar reads the code in the guide; its JSON is the account, derived independently from the format.
    target = GuideTarget(RenderContext(load_spec(POP3)))
    mailbox = load_accounts(target.ctx.loaded)[0]
    payload = zbar_decode(_embedded(html), tmp_path)
    assert json.loads(payload) == expected_qr(target, mailbox)
    assert payload == zbar_decode(built_svg, tmp_path)
    # The pipeline's reader agrees.
    assert read_android_qr(PREFIX + base64.b64encode(built_svg).decode()) == json.loads(payload)
    text = (out / MARIO / "guide" / f"{MARIO}.txt").read_text(encoding="utf-8")
    assert "== Thunderbird for Android\n" in text
    assert f"The HTML version of this guide ({MARIO}.html) shows a QR code" in text


def test_guide_in_italian_has_the_translated_step(tmp_path: Path) -> None:
    out = _build(_italian(tmp_path), tmp_path / "out", ["guide"])
    html = (out / MARIO / "guide" / f"{MARIO}.html").read_text(encoding="utf-8")
    assert '<html lang="it">' in html and STEP["it"] in _step(html, HEADING["it"])
    assert json.loads(zbar_decode(_embedded(html), tmp_path))[3][0][1] == [MARIO, "Mario Rossi"]
    text = (out / MARIO / "guide" / f"{MARIO}.txt").read_text(encoding="utf-8")
    assert f"La versione HTML di questa guida ({MARIO}.html) mostra un codice QR" in text


def test_guide_without_the_switch_has_no_android_qr(tmp_path: Path) -> None:
    out = _build(IMAP, tmp_path / "out", ["guide"])
    [html_path] = out.glob("*/guide/*.html")
    html = html_path.read_text(encoding="utf-8")
    assert 'id="android-qr"' not in html and "Thunderbird for Android" not in html
    assert "Thunderbird for Android" not in html_path.with_suffix(".txt").read_text(encoding="utf-8")
    # The per-domain guides never carry one (no address to put in it), even with the switch on.
    out = _build(POP3, tmp_path / "pop3", ["guide"])
    for path in out.glob("domains/*/guide/*"):
        assert "Thunderbird for Android" not in path.read_text(encoding="utf-8"), path


def test_guide_proof_catches_a_wrong_or_unexpected_android_qr(tmp_path: Path) -> None:
    target = GuideTarget(RenderContext(load_spec(POP3)))
    mailbox = load_accounts(target.ctx.loaded)[0]
    [html] = [f.data for f in target.render_account(mailbox) if f.kind == "guide-html"]
    other = _build(_variant(tmp_path, {"outgoing.port": 587, "outgoing.security": "starttls"}), tmp_path / "o",
                   ["guide"])
    wrong = _embedded((other / MARIO / "guide" / f"{MARIO}.html").read_text(encoding="utf-8"))
    tampered = re.sub(rb'(id="android-qr" src=")[^"]*', lambda m: m.group(1) + PREFIX.encode()
                      + base64.b64encode(wrong), html)
    assert tampered != html
    with pytest.raises(VerificationError, match="android-qr"):
        target.verify_html("g.html", tampered, mailbox, "en", None, android=True)
    with pytest.raises(VerificationError, match="android-qr"):  # a code the spec did not ask for
        target.verify_html("g.html", html, mailbox, "en", None, android=False)
    blank = re.sub(rb'(id="android-qr" src=")[^"]*', lambda m: m.group(1) + PREFIX.encode()
                   + base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg"/>'), html)
    with pytest.raises(VerificationError, match="QR code unreadable"):
        target.verify_html("g.html", blank, mailbox, "en", None, android=True)
    assert parse_html_guide(html).images["android-qr"].startswith(PREFIX)


# --- the self-service page ---------------------------------------------------------------------------------------

def test_page_shows_the_same_qr_and_step_as_the_build_and_the_guide(tmp_path: Path) -> None:
    out = _build(POP3, tmp_path / "out", ["thunderbird", "guide"])
    built_svg = (out / MARIO / "thunderbird" / "thunderbird-android-qr.svg").read_bytes()
    guide = (out / MARIO / "guide" / f"{MARIO}.html").read_text(encoding="utf-8")
    with TestClient(create_app(POP3)) as client:
        page = client.get("/", params={"email": "Mario.Rossi@Esempio.IT", "lang": "en"}).text
        italian = client.get("/", params={"email": MARIO, "lang": "it"}).text
        unlisted = client.get("/", params={"email": "anna@esempio.it", "lang": "en"}).text
    assert _embedded(page) == built_svg and _embedded(italian) == built_svg
    assert _step(page, HEADING["en"]) == _step(guide, HEADING["en"])
    assert STEP["it"] in _step(italian, HEADING["it"])
    assert json.loads(zbar_decode(_embedded(page), tmp_path)) == json.loads(zbar_decode(built_svg, tmp_path))
    # An address the spec does not list gets its own code, made by the same function.
    doc = read_android_qr(PREFIX + base64.b64encode(_embedded(unlisted)).decode())
    assert doc[3][0][1][0] == "anna@esempio.it" and doc[2][5] == "anna@esempio.it"


def test_page_without_the_switch_or_for_a_non_ascii_address_has_no_android_qr() -> None:
    with TestClient(create_app(IMAP)) as client:
        r = client.get("/", params={"email": "a@esempio.it", "lang": "en"})
    assert r.status_code == 200 and 'id="settings"' in r.text
    assert 'id="android-qr"' not in r.text and "Thunderbird for Android" not in r.text
    with TestClient(create_app(POP3)) as client:
        r = client.get("/", params={"email": "zoë@esempio.it", "lang": "en"})
    # The QR format carries only ASCII addresses: the page still shows the settings, without the code.
    assert r.status_code == 200 and 'id="settings"' in r.text
    assert 'id="android-qr"' not in r.text and "Thunderbird for Android" not in r.text


# --- the reader for segno's background-less SVG ------------------------------------------------------------------

@pytest.mark.parametrize("text", ["[1,[1,1]]", "x" * 300, '[1,"Zoë Ñandú 山田"]'])
@pytest.mark.parametrize("scale", [1, 4])
def test_qrdecode_reads_the_svg_segno_saves_without_a_background(text: str, scale: int) -> None:
    import io
    code = segno.make_qr(text.encode(), error="m", mode="byte")
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", scale=scale, border=4, xmldecl=True)
    svg = buffer.getvalue().decode()
    assert decode_svg(svg, background=False) == text.encode()
    with pytest.raises(QRDecodeError, match="expected a background"):
        decode_svg(svg)


# --- in a real browser -------------------------------------------------------------------------------------------

def test_chromium_shows_a_scannable_android_qr_on_the_page_and_in_the_guide(
        browser: tuple[webdriver.Chrome, Path], tmp_path: Path) -> None:  # noqa: F811
    """The real `mailprofile serve` process, Chromium without JavaScript: the code as drawn on screen, read by
    zbar, is the build's android-qr payload; the same for the guide opened as a file."""
    driver, _downloads = browser
    out = _build(POP3, tmp_path / "out", ["thunderbird", "guide"])
    built = json.loads(zbar_decode((out / MARIO / "thunderbird" / "thunderbird-android-qr.svg").read_bytes(),
                                   tmp_path))
    srv = Server(POP3, tmp_path / "server.log")
    try:
        srv.wait_ready()
        driver.get(f"http://127.0.0.1:{srv.port}/?lang=en")
        driver.find_element(By.ID, "email").send_keys(MARIO)
        driver.find_element(By.ID, "show").click()
        # click() does not always wait for the form's navigation under load: wait for the answer page.
        qr = WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "android-qr")))
        assert qr.size["width"] > 100 and qr.size["height"] > 100  # drawn, not a broken image
        assert json.loads(zbar(qr.screenshot_as_png, tmp_path, "Chromium's rendering")) == built
    finally:
        srv.stop()
    driver.get((out / MARIO / "guide" / f"{MARIO}.html").as_uri())
    qr = driver.find_element(By.ID, "android-qr")
    assert qr.size["width"] > 100 and json.loads(zbar(qr.screenshot_as_png, tmp_path, "Chromium's rendering")) == built
