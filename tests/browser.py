"""Headless Debian Chromium driven by selenium, as every browser test starts it.

The flags are the ones this machine needs (closed network: no background networking, component updates
or sync; root: no sandbox); Selenium Manager is kept offline so it never looks for drivers on the network.
`driver.quit()` stops chromedriver by its PID and the browser with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import require_binary

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


def start_chromium(profile: Path, *extra: str, prefs: dict[str, Any] | None = None) -> webdriver.Chrome:
    binary = require_binary("chromium", "chromium")
    driver_path = require_binary("chromedriver", "chromium-driver")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, *extra, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if prefs:
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    return driver
