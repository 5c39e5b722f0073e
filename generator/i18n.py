"""Translations of guides and messages: gettext catalogs compiled with Babel, used through Jinja's i18n extension.

The API other parts (and the web service) use:

- `LANGUAGES`: the languages we ship a catalog for; `DEFAULT_LANGUAGE`.
- `translations(lang)`: the compiled catalog of one language (`gettext.GNUTranslations`, cached).
- `gettext_for(lang)`: a `_()`-style function for Python code.
- `install(env, lang)`: add Jinja's i18n extension to an environment and bind it to one language
  (`{{ _("Incoming server") }}` and `{% trans %}` in templates). One environment per language.
- `negotiate(accept_language, default)`: the best of `LANGUAGES` for an HTTP Accept-Language header.

Catalogs: generator/locale/<lang>/LC_MESSAGES/mailprofile.po (sources, edited by translators) and the .mo
files compiled from them with `make i18n` (pybabel extract/update/compile). The .mo files are committed:
the wheel then carries them without Babel at build or install time, and tests/test_i18n.py fails when a
.mo is older than its .po or a message is missing or untranslated.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

import jinja2

DOMAIN = "mailprofile"
LANGUAGES: tuple[str, ...] = ("en", "it")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# Accept-Language (RFC 9110 §12.5.4): language-range [";q=" qvalue], comma-separated.
_RANGE_RE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


class MissingCatalogError(RuntimeError):
    """A language has no compiled catalog in the package (a broken install or a missing `make i18n`)."""


@cache
def translations(language: str) -> gettext.GNUTranslations:
    if language not in LANGUAGES:
        raise MissingCatalogError(f"no catalog for language '{language}' (have {', '.join(LANGUAGES)})")
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, [language])
    except OSError as exc:
        raise MissingCatalogError(f"compiled catalog for '{language}' missing in {LOCALE_DIR}: {exc}") from None


def gettext_for(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def install(env: jinja2.Environment, language: str) -> jinja2.Environment:
    """Bind `env` to one language (new-style gettext: `_("Port %(n)s", n=1)`, values escaped in HTML)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def negotiate(accept_language: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """The supported language the client prefers most; `default` when none matches (or the header is bad).

    'it-IT,it;q=0.9,en;q=0.8' -> 'it'. Ranges are matched by their primary subtag; q=0 means "not this";
    '*' matches the default."""
    if not accept_language:
        return default
    choices: list[tuple[float, int, str]] = []
    for order, part in enumerate(accept_language.split(",")):
        match = _RANGE_RE.match(part)
        if not match:
            continue
        tag, q = match.group(1).lower(), match.group(2)
        try:
            weight = float(q) if q is not None else 1.0
        except ValueError:
            continue
        if weight <= 0:
            continue
        primary = default if tag == "*" else tag.split("-")[0]
        if primary in LANGUAGES:
            choices.append((-weight, order, primary))
    return min(choices)[2] if choices else default
