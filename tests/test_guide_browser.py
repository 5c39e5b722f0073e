"""The HTML guide in a real browser: headless Chromium (Debian's, driven by its chromedriver through
Selenium) renders the file, and the settings table and the QR code are read from the rendered page."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from generator.build import BuildOptions, build, prepare
from generator.spec import load_spec
from tests.browser import start_chromium
from tests.conftest import EXAMPLES, require_binary
from tests.test_guide import MARIO_TABLE

LINK = "http://127.0.0.1:8080/apple/mario.rossi@esempio.it.mobileconfig"


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(tmp_path / "chromium-profile", "--window-size=1000,3000")
    try:
        yield driver
    finally:
        driver.quit()


def test_rendered_settings_table_and_qr_code(tmp_path: Path, chromium: webdriver.Chrome) -> None:
    out = tmp_path / "out"
    build(prepare(load_spec(EXAMPLES / "delivery.yaml"), ["apple", "guide"], base_url="http://127.0.0.1:8080"),
          BuildOptions(out=out, jobs=1))
    page = out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html"
    chromium.get(page.as_uri())
    assert chromium.title == "Configura la casella mario.rossi@esempio.it"
    rows = {row.get_attribute("data-key"): row.find_element(By.TAG_NAME, "td").text
            for row in chromium.find_elements(By.CSS_SELECTOR, "table#settings tr[data-key]")}
    assert rows == MARIO_TABLE
    labels = [th.text for th in chromium.find_elements(By.CSS_SELECTOR, "table#settings th")]
    assert labels[2:4] == ["Server di posta in arrivo (POP3)", "Porta"]
    legacy = chromium.find_element(By.CSS_SELECTOR, "table#legacy")
    assert legacy.is_displayed() and "Nessuna" in legacy.text
    assert chromium.find_element(By.ID, "profile-link").get_attribute("href") == LINK
    # The QR code as the browser drew it, decoded by a real reader.
    zbarimg = require_binary("zbarimg", "zbar-tools")
    qr = chromium.find_element(By.CSS_SELECTOR, "svg.qr")
    assert qr.size["width"] > 100 and qr.size["height"] > 100
    png = tmp_path / "qr-rendered.png"
    png.write_bytes(qr.screenshot_as_png)
    decoded = subprocess.run([zbarimg, "--raw", "-q", str(png)], capture_output=True, text=True, check=True)
    assert decoded.stdout.strip() == LINK
    assert os.path.getsize(png) > 0


# Where each of some strings sits on screen in an element: the line (y) and the x of its first and last character.
EDGES = """
const [selector, words] = arguments;
const out = [];
for (const word of words) {
  const walker = document.createTreeWalker(document.querySelector(selector), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(word);
    if (at < 0) continue;
    const box = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                         return r.getBoundingClientRect(); };
    out.push([Math.round(box(at).top), box(at).left, box(at + word.length - 1).left]);
    break;
  }
}
return out;
"""


@pytest.mark.parametrize("name", [
    "\u202eMario Rossi",  # RIGHT-TO-LEFT OVERRIDE, never closed: reverses everything after it
    "\u202bמריו רוסי",  # RIGHT-TO-LEFT EMBEDDING, never closed
    "\u2067מריו רוסי",  # RIGHT-TO-LEFT ISOLATE, never closed: the rest of the line becomes right-to-left
])
def test_a_right_to_left_name_does_not_reorder_the_address(tmp_path: Path, chromium: webdriver.Chrome,
                                                          name: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "delivery.yaml").read_text(encoding="utf-8").replace(
        "{name: Mario Rossi,", '{name: "' + name + '",'), encoding="utf-8")
    out = tmp_path / "out"
    build(prepare(load_spec(spec), ["apple", "guide"]), BuildOptions(out=out, jobs=1))
    page = out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.html"
    chromium.get(page.as_uri())
    greeting = chromium.find_element(By.CSS_SELECTOR, "h1 + p").text
    assert greeting.startswith("Gentile ") and name.lstrip("\u202e\u202b\u2067") in greeting
    words = ["Gentile", "questa guida", "mario.rossi@esempio.it", "dispositivi"]
    edges = chromium.execute_script(EDGES, "h1 + p", words)
    assert len(edges) == len(words)
    assert all(first < last for _y, first, last in edges)  # each reads left to right, the address as it is typed
    starts = [(y, first) for y, first, _last in edges]
    assert starts == sorted(starts)  # in the sentence's order, line by line
    # The text guide isolates the name the same way (FSI ... PDI), for mail apps that lay out plain text.
    text = (out / "mario.rossi@esempio.it/guide/mario.rossi@esempio.it.txt").read_text(encoding="utf-8")
    assert f"Gentile \u2068{name}\u2069, " in text
