"""Every HTML page users see, built from every example: the per-account and per-domain guides, the HTML part
of each message and the self-service page of `serve` (the real process). Parsed by html5lib, the HTML5
parsing algorithm browsers run, for the structure assistive technology reads; drawn by Chromium at a phone's
320 CSS pixels, where nothing may need a horizontal scroll."""

from __future__ import annotations

import email
import email.policy
import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import html5lib
import pytest

from generator.build import BuildOptions, build, prepare
from generator.spec import load_spec
from tests.browser import start_chromium
from tests.conftest import EXAMPLES
from tests.serve_process import serving
from tests.test_guide_browser import EDGES

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


def _text(element: Any) -> str:
    return "".join(element.itertext()).strip()


def test_every_page_is_well_formed_html5_with_accessible_structure(pages: dict[str, str]) -> None:
    problems: list[str] = []
    for name, page in pages.items():
        parser = html5lib.HTMLParser(strict=False, namespaceHTMLElements=True)
        doc = parser.parse(page)
        problems += [f"{name}: parse error {error}" for error in parser.errors]
        lang = doc.get("lang")
        if lang not in ("en", "it"):
            problems.append(f"{name}: <html lang={lang!r}>")
        headings = [int(e.tag[-1]) for e in doc.iter() if e.tag in {f"{NS}h{n}" for n in range(1, 7)}]
        if headings[:1] != [1] or headings.count(1) != 1:
            problems.append(f"{name}: headings {headings} (one h1, first)")
        problems += [f"{name}: heading h{b} after h{a}" for a, b in itertools.pairwise(headings)
                     if b > a + 1]
        for img in doc.iter(f"{NS}img"):
            if not (img.get("alt") or "").strip():
                problems.append(f"{name}: <img id={img.get('id')}> without alt text")
        # An inline QR code is an image too: it needs role="img" and a name that says what it opens.
        for svg in doc.iter("{http://www.w3.org/2000/svg}svg"):
            label = svg.get("aria-label") or ""
            if svg.get("role") != "img" or "/apple/" not in label or ".mobileconfig" not in label:
                problems.append(f"{name}: inline <svg> role={svg.get('role')!r} aria-label={label!r}")
        for th in doc.iter(f"{NS}th"):
            if th.get("scope") not in ("row", "col"):
                problems.append(f"{name}: <th>{_text(th)}</th> without scope")
        for link in doc.iter(f"{NS}a"):
            if not _text(link):
                problems.append(f"{name}: <a href={link.get('href')}> without text")
    assert problems == []
    # Each QR code named in the page's language, with the link it encodes.
    it_page = pages["serve school.yaml /?lang=it&email=zoe.unal@staff.school.example"]
    label = it_page.split('aria-label="', 1)[1].split('"', 1)[0]
    assert label.startswith("Codice QR del link al profilo Apple http://127.0.0.1:")
    assert label.endswith("/apple/zoe.unal@staff.school.example.mobileconfig")
    guide = pages["delivery/jane.doe@esempio.it/guide/jane.doe@esempio.it.html"]
    assert (f'aria-label="QR code of the Apple profile link {BASE_URL}/apple/jane.doe@esempio.it.mobileconfig"'
            in guide)


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


# WCAG 2.2 contrast, computed on the styles Chromium applies: text at least 4.5:1 against the first opaque
# background behind it (1.4.3), and the settings tables' cell borders, which alone show which value belongs to
# which label, at least 3:1 against the cell and the page (1.4.11 non-text contrast).
_CONTRAST = """
const rgb = s => s.match(/[\\d.]+/g).map(Number);
const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; }); return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
const ratio = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
const background = e => { for (; e; e = e.parentElement) { const c = rgb(getComputedStyle(e).backgroundColor);
  if (c.length < 4 || c[3] > 0) return c; } return [255, 255, 255]; };
const out = [];
for (const e of document.querySelectorAll('body *')) {
  const style = getComputedStyle(e);
  const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
  if (own && style.visibility !== 'hidden') {
    const r = ratio(rgb(style.color), background(e));
    if (r < 4.5) out.push(`text of <${e.localName}> ${style.color} on ${background(e)}: ${r.toFixed(2)}`);
  }
  if (e.matches('table.settings th, table.settings td')) {
    for (const bg of [background(e), background(e.closest('table').parentElement)]) {
      const r = ratio(rgb(style.borderTopColor), bg);
      if (r < 3) out.push(`border of <${e.localName}> ${style.borderTopColor} on ${bg}: ${r.toFixed(2)}`);
    }
  }
}
return [...new Set(out)];
"""


def test_text_and_table_borders_have_enough_contrast(pages: dict[str, str], phone: Any, tmp_path: Path) -> None:
    failures = {}
    for index, (name, page) in enumerate(pages.items()):
        path = tmp_path / f"{index}.html"
        path.write_text(page, encoding="utf-8")
        phone.get(path.as_uri())
        found = phone.execute_script(_CONTRAST)
        if found:
            failures[name] = found
    assert failures == {}


def test_served_page_isolates_a_right_to_left_provider_name(phone: Any, tmp_path: Path) -> None:
    """As the guides do: an unclosed RIGHT-TO-LEFT OVERRIDE in the provider's name must not reverse the rest
    of the heading, nor of the title (where a <bdi> would show as text: FSI ... PDI there)."""
    name = "\u202eScuola Esempio"
    shutil.copy(EXAMPLES / "school-accounts.csv", tmp_path)
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "school.yaml").read_text(encoding="utf-8").replace(
        "display_name: Scuola Esempio", f'display_name: "{name}"'), encoding="utf-8")
    with serving(spec, tmp_path / "serve.log") as server:
        status, body = server.request("GET", "/?lang=en&email=zoe.unal@staff.school.example")
    assert status == 200
    page = body.decode("utf-8")
    assert f"<title>Set up your \u2068{name}\u2069 mailbox</title>" in page
    assert f"<h1>Set up your <bdi>{name}</bdi> mailbox</h1>" in page
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    phone.get(path.as_uri())
    edges = phone.execute_script(EDGES, "h1", ["Set up your", "mailbox"])
    assert len(edges) == 2
    assert all(first < last for _y, first, last in edges)  # each reads left to right
    assert [(y, first) for y, first, _last in edges] == sorted((y, first) for y, first, _last in edges)
