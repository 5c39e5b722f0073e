"""Catalogs: every message of the guides and e-mails is in every catalog, translated, with the same
placeholders, and the committed .mo files say what their .po files say. Plus language negotiation."""

from __future__ import annotations

import gettext
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from generator.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, MissingCatalogError, negotiate, translations
from tests.conftest import ROOT

PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def _extract(tmp_path: Path) -> set[str]:
    """What `make i18n` would extract from the code and templates now."""
    pot = tmp_path / "now.pot"
    pybabel = Path(sys.executable).with_name("pybabel")
    subprocess.run([str(pybabel), "extract", "-F", "babel.cfg", "-k", "N_", "--no-location", "-o", str(pot), "."],
                   cwd=ROOT, check=True, capture_output=True)
    with pot.open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_has_every_message_translated(tmp_path: Path, language: str) -> None:
    wanted = _extract(tmp_path)
    assert len(wanted) > 40  # the guide alone has more; an empty extraction would make this test vacuous
    po = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    have = {m.id: m for m in catalog if m.id}
    assert sorted(wanted - set(have)) == [], f"missing in {po.name} ({language}): run make i18n and translate"
    untranslated = sorted(i for i in wanted if not have[i].string or have[i].fuzzy)
    assert untranslated == [], f"untranslated or fuzzy in {language}"
    for msgid in wanted:
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(str(have[msgid].string))), msgid
    # The compiled catalog the package loads says the same (a stale .mo is caught here).
    mo = translations(language)
    stale = sorted(i for i in wanted if mo.gettext(i) != have[i].string)
    assert stale == [], f"{language} .mo is older than its .po: run make i18n"


def test_italian_is_italian() -> None:
    _ = translations("it").gettext
    assert _("Port") == "Porta" and _("None") == "Nessuna" and _("User name") == "Nome utente"
    assert translations("en").gettext("Port") == "Port"


def test_unknown_language_is_a_typed_error() -> None:
    with pytest.raises(MissingCatalogError, match="no catalog for language 'de'"):
        translations("de")


def test_catalog_loads_through_stdlib_gettext() -> None:
    # What the wheel ships is an ordinary gettext domain: no Babel needed at run time.
    assert gettext.find(DOMAIN, LOCALE_DIR, ["it"]) is not None


@pytest.mark.parametrize(("header", "expected"), [
    ("it-IT,it;q=0.9,en;q=0.8", "it"),
    ("en-GB,en;q=0.9,it;q=0.8", "en"),
    ("de-DE,de;q=0.9,it;q=0.5,en;q=0.4", "it"),
    ("fr, de", "en"),
    ("it;q=0, en;q=0.1", "en"),
    ("*", "en"),
    ("", "en"),
    (None, "en"),
    ("it;q=abc, en", "en"),
    ("EN;q=0.5, IT;q=0.6", "it"),
    ("garbage;;;, it", "it"),
])
def test_negotiate_accept_language(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_negotiate_uses_given_default() -> None:
    assert negotiate("fr", default="it") == "it"
    assert negotiate(None, default="it") == "it"
