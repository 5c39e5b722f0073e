"""Catalogs: every message of the guides and e-mails is in every catalog, translated, with the same
placeholders, and the committed .mo files say what their .po files say. Plus language negotiation."""

from __future__ import annotations

import gettext
import itertools
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from generator.build import BuildOptions, build, prepare
from generator.i18n import DOMAIN, LANGUAGES, LOCALE_DIR, MissingCatalogError, negotiate, placeholders, translations
from generator.spec import load_spec
from tests.conftest import EXAMPLES, ROOT


def _extract(tmp_path: Path) -> set[str | tuple[str, str]]:
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
    untranslated = sorted(str(i) for i in wanted if have[i].fuzzy or not all(_forms(have[i].string)))
    assert untranslated == [], f"untranslated or fuzzy in {language}"
    for msgid in wanted:
        forms = _forms(have[msgid].string)
        if isinstance(msgid, tuple):  # a plural message has one msgstr per form of the language's Plural-Forms
            assert len(forms) == catalog.num_plurals, msgid
        for form, source in itertools.product(forms, _forms(msgid)):
            # every conversion, named or not, and no lone '%' (the loader drops such a msgstr)
            assert placeholders(form) == placeholders(source), (msgid, form)
    assert translations(language).rejected == ()
    # The compiled catalog the package loads says the same, plural forms and header included (a stale .mo).
    with po.with_suffix(".mo").open("rb") as handle:
        compiled = read_mo(handle)
    assert compiled.plural_forms == catalog.plural_forms, f"{language} .mo is older than its .po: run make i18n"
    stale = sorted(str(i) for i in wanted
                   if compiled.get(i) is None or _forms(compiled[i].string) != _forms(have[i].string))
    assert stale == [], f"{language} .mo is older than its .po: run make i18n"
    mo = translations(language)
    assert [mo.gettext(i) for i in wanted if isinstance(i, str)] == [have[i].string for i in wanted
                                                                      if isinstance(i, str)]


def _forms(value: str | tuple[str, ...] | list[str]) -> list[str]:
    """A message's id or string as a list: one item, or one per plural form."""
    return [value] if isinstance(value, str) else list(value)


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


# --- a translator's mistakes: edited catalogs, compiled here, used by a real build ----------------------------

@pytest.fixture
def edit_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """Replace msgstrs of one language's .po, compile all catalogs into a temporary locale folder and point the
    package at it (what a translator's edit plus `make i18n` produces)."""
    locale = tmp_path / "locale"
    shutil.copytree(LOCALE_DIR, locale)

    def edit(language: str, strings: dict[str, Any]) -> None:  # msgid (a plural's singular) -> msgstr(s)
        po = locale / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        for msgid, msgstr in strings.items():
            assert catalog[msgid] is not None, msgid  # an edit of a message that exists
            catalog[msgid].string = msgstr
        with (po.with_suffix(".mo")).open("wb") as handle:
            write_mo(handle, catalog)
        translations.cache_clear()

    monkeypatch.setattr("generator.i18n.LOCALE_DIR", locale)
    translations.cache_clear()
    yield edit
    translations.cache_clear()


def _build_delivery(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    build(prepare(load_spec(EXAMPLES / "delivery.yaml"), ["apple", "guide", "message"]), BuildOptions(out=out, jobs=1))
    return out


MARIO = "mario.rossi@esempio.it"


@pytest.mark.parametrize("broken", [
    "Sì, eliminare dopo %(giorni)s giorni",  # renamed: KeyError in Python code
    "Sì, eliminare dopo alcuni giorni",  # dropped: the spec's 30 would be lost
    "Sì, eliminare dopo %(days)d giorni e 100% sicuro",  # retyped and a lone '%'
])
def test_translation_with_wrong_placeholders_falls_back_to_english(tmp_path: Path, edit_catalog: Any,
                                                                   broken: str) -> None:
    # One bad plural form (30 takes the last) drops the message's every form: no language mix by count.
    keep = "Yes, remove from the server after %(days)s day"
    edit_catalog("it", {keep: ("Sì, rimuovi dal server dopo %(days)s giorno",
                               "Sì, rimuovi dal server dopo %(days)s giorni", broken),
                        "Set up your mailbox %(address)s": "Configura %(indirizzo)s",  # in a template
                        "Your password": "La tua password (100%)",  # templates apply % to every message
                        "Port": "Porta"})
    out = _build_delivery(tmp_path)
    text = (out / MARIO / "guide" / f"{MARIO}.txt").read_text(encoding="utf-8")
    assert "Lascia una copia dei messaggi sul server: Yes, remove from the server after 30 days\n" in text
    assert text.startswith(f"Set up your mailbox {MARIO}\n")
    assert "== Your password\n" in text and "Porta: 995\n" in text
    assert "%(" not in text
    assert set(translations("it").rejected) == {keep, "Set up your mailbox %(address)s", "Your password"}


def test_translated_text_is_escaped_in_html(tmp_path: Path, edit_catalog: Any) -> None:
    edit_catalog("it", {"Help": "Aiuto <script>alert(1)</script> & co",
                        "Your password": 'La tua "password"',
                        "QR code that sets up %(address)s in Thunderbird for Android": 'QR" onerror="x %(address)s',
                        "Set up your mailbox %(address)s": "Configura <b>%(address)s</b>"})
    out = _build_delivery(tmp_path)
    page = (out / MARIO / "guide" / f"{MARIO}.html").read_text(encoding="utf-8")
    assert "<h2>Aiuto &lt;script&gt;alert(1)&lt;/script&gt; &amp; co</h2>" in page
    assert "<h2>La tua &#34;password&#34;</h2>" in page
    assert f"<h1>Configura &lt;b&gt;{MARIO}&lt;/b&gt;</h1>" in page
    assert "<script>" not in page and "<b>" not in page
    # The text guide and the message's text part carry the translation as written.
    text = (out / MARIO / "guide" / f"{MARIO}.txt").read_text(encoding="utf-8")
    assert "== Aiuto <script>alert(1)</script> & co\n" in text
    message = BytesParser(policy=policy.default).parsebytes((out / MARIO / "message" / f"{MARIO}.eml").read_bytes())
    html_part = message.get_body(("html",))
    assert html_part is not None and "<script>" not in html_part.get_content()


@pytest.mark.parametrize(("text", "expected"), [
    ("Port", frozenset()),
    ("100%% sure", frozenset()),
    ("Port %(n)s of %(m)d", frozenset({("n", "s"), ("m", "d")})),
    ("%(a)s and %(a)s again", frozenset({("a", "s")})),
    ("%s", frozenset({(None, "s")})),
    ("100% sure", frozenset({(None, "s")})),  # '% s' is a conversion (space flag): not the msgid's, so dropped
    ("100%, sure", None),
    ("ends with %", None),
    ("%(name)", None),
])
def test_placeholders(text: str, expected: frozenset[tuple[str | None, str]] | None) -> None:
    assert placeholders(text) == expected
    if expected is None:  # what the loader guards against is what the % operator refuses
        with pytest.raises((ValueError, TypeError)):
            text % {"name": "x"}
