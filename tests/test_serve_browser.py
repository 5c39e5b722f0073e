"""The self-service page in a real browser: Debian's chromium driven by its chromedriver through selenium,
JavaScript switched off (the page must not need it), against the real `mailprofile serve` process.
Submit an address, read the table, switch the language, download the profile and compare its bytes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from generator.build import build, prepare
from generator.spec import load_spec
from tests.browser import start_chromium
from tests.conftest import EXAMPLES
from tests.serve_process import Server

SPEC = EXAMPLES / "school.yaml"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[webdriver.Chrome, Path]]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_chromium(tmp_path / "profile", prefs={
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False, "profile.managed_default_content_settings.javascript": 2})
    try:
        yield driver, downloads
    finally:
        driver.quit()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(SPEC, tmp_path / "server.log")
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def table(driver: webdriver.Chrome) -> dict[str, tuple[str, str]]:
    rows = driver.find_elements(By.CSS_SELECTOR, "table#settings tr[data-key]")
    return {r.get_attribute("data-key") or "": (r.find_element(By.TAG_NAME, "th").text,
                                                r.find_element(By.TAG_NAME, "td").text) for r in rows}


def test_page_in_chromium(browser: tuple[webdriver.Chrome, Path], server: Server, tmp_path: Path) -> None:
    driver, downloads = browser
    base = f"http://127.0.0.1:{server.port}"
    driver.get(base + "/?lang=en")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Set up your Scuola Esempio mailbox"
    field = driver.find_element(By.ID, "email")
    field.send_keys("jose@staff.school.example")
    driver.find_element(By.ID, "show").click()
    # click() may return before the form's navigation under load: wait for the answer's table.
    WebDriverWait(driver, 30).until(expected_conditions.presence_of_element_located((By.ID, "settings")))

    cells = table(driver)
    assert cells["incoming.host"] == ("Incoming server (POP3)", "mail.school.example")
    assert cells["incoming.port"][1] == "995" and cells["incoming.security"][1] == "SSL/TLS"
    assert cells["incoming.username"][1] == "jose@staff.school.example"
    assert cells["outgoing.host"][1] == "mail.school.example" and cells["outgoing.port"][1] == "587"
    assert cells["outgoing.security"][1] == "STARTTLS"
    assert len(driver.find_elements(By.CSS_SELECTOR, "#qr svg")) == 1

    driver.find_element(By.ID, "lang-it").click()
    assert driver.find_element(By.TAG_NAME, "h1").text == "Configura la tua casella Scuola Esempio"
    assert table(driver)["incoming.port"] == ("Porta", "995")
    assert driver.find_element(By.ID, "email").get_attribute("value") == "jose@staff.school.example"

    link = driver.find_element(By.ID, "profile-link")
    assert link.get_attribute("href") == f"{base}/apple/jose@staff.school.example.mobileconfig"
    link.click()
    target = downloads / "jose@staff.school.example.mobileconfig"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.exists(), sorted(p.name for p in downloads.iterdir())

    out = tmp_path / "out"
    build(prepare(load_spec(SPEC)), out)
    assert target.read_bytes() == (out / "jose@staff.school.example" / "apple" /
                                   "jose@staff.school.example.mobileconfig").read_bytes()
    shutil.rmtree(out)


def test_the_page_keeps_its_style_and_cannot_be_framed(browser: tuple[webdriver.Chrome, Path], server: Server,
                                                       tmp_path: Path) -> None:
    """The page's Content-Security-Policy as Chromium applies it: the inline stylesheet still styles the
    profile button, and a page of another origin that frames the service gets nothing (frame-ancestors)."""
    driver, _ = browser
    base = f"http://127.0.0.1:{server.port}"
    driver.get(base + "/?lang=en&email=jose%40staff.school.example")
    button = driver.find_element(By.ID, "profile-link")
    assert button.value_of_css_property("background-color") == "rgba(10, 88, 202, 1)"  # #0a58ca from <style>

    framing = tmp_path / "framing.html"
    framing.write_text(f'<!DOCTYPE html><iframe id="f" src="{base}/?lang=en"></iframe>', encoding="utf-8")
    driver.get(framing.as_uri())
    time.sleep(1)  # the frame's load or refusal; what is asserted is its content, not the time it took
    driver.switch_to.frame(driver.find_element(By.ID, "f"))
    # Chromium shows its own error document in the frame (an empty <h1>): none of the page is there.
    assert driver.find_elements(By.ID, "email") == []
    assert "Set up your" not in driver.find_element(By.TAG_NAME, "body").text
