"""Translations of guides and messages: gettext catalogs compiled with Babel, used through Jinja's i18n extension.

The API other parts (and the web service) use:

- `LANGUAGES`: the languages we ship a catalog for; `DEFAULT_LANGUAGE`.
- `translations(lang)`: the compiled catalog of one language (`gettext.GNUTranslations`, cached).
- `gettext_for(lang)`, `ngettext_for(lang)`: `_()`- and `ngettext()`-style functions for Python code.
- `install(env, lang)`: add Jinja's i18n extension to an environment and bind it to one language
  (`{{ _("Incoming server") }}` and `{% trans %}` in templates). One environment per language.
- `negotiate(accept_language, default)`: the best of `LANGUAGES` for an HTTP Accept-Language header.

Catalogs: generator/locale/<lang>/LC_MESSAGES/mailprofile.po (sources, edited by translators) and the .mo
files compiled from them with `make i18n` (pybabel extract/update/compile). The .mo files are committed:
the wheel then carries them without Babel at build or install time, and tests/test_i18n.py fails when a
.mo is older than its .po or a message is missing or untranslated.

A translation is text, never code: a msgstr whose %-placeholders differ from its msgid's (one dropped,
renamed or retyped, or a lone '%') is left out when the catalog loads, so that message shows in English
instead of raising KeyError/ValueError mid-build or losing a value (`CheckedTranslations.rejected` lists
them; tests/test_i18n.py fails on any). In HTML templates a translation is escaped like any other text: a
'<' or '&' in a msgstr is shown, not parsed as markup.
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

DOMAIN = "mailprofile"
LANGUAGES: tuple[str, ...] = ("en", "it")
DEFAULT_LANGUAGE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# Accept-Language (RFC 9110 §12.5.4): language-range [";q=" qvalue], comma-separated.
_RANGE_RE = re.compile(r"^\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+))?\s*$")


# A printf-style conversion as Python's % operator reads it: '%(name)s', '%s', '%5.2f', '%%'.
_CONVERSION_RE = re.compile(r"%(?:\(([^()]*)\))?[#0 +-]*\d*(?:\.\d+)?([diouxXeEfFgGcrsa%])")


def placeholders(text: str) -> frozenset[tuple[str | None, str]] | None:
    """The conversions `text % values` fills, as (name, type) pairs; None when a '%' starts none (the %
    operator raises on it: "incomplete format", "unsupported format character")."""
    found: set[tuple[str | None, str]] = set()
    at = text.find("%")
    while at >= 0:
        match = _CONVERSION_RE.match(text, at)
        if match is None:
            return None
        if match[2] != "%":
            found.add((match[1], match[2]))
        at = text.find("%", match.end())
    return frozenset(found)


class MissingCatalogError(RuntimeError):
    """A language has no compiled catalog in the package (a broken install or a missing `make i18n`)."""


class CheckedTranslations(gettext.GNUTranslations):
    """A compiled catalog without the translations that would break formatting: each msgstr (each plural
    form) must fill exactly the placeholders of its msgid. Templates (new-style gettext) apply `%` to every
    message, so a lone '%' in any msgstr would stop the build; a dropped '%(days)s' would silently lose the
    value, a renamed one raise KeyError. A rejected message falls back to the msgid (English), as gettext
    does for an untranslated one."""

    rejected: tuple[str, ...]

    def _parse(self, fp: Any) -> None:
        super()._parse(fp)
        catalog: dict[Any, str] = self._catalog  # type: ignore[attr-defined]
        bad: set[str] = set()
        for key, string in catalog.items():
            msgid = key[0] if isinstance(key, tuple) else key  # plural forms: (msgid, index)
            if msgid and placeholders(string) != placeholders(msgid):
                bad.add(msgid)
        for key in [k for k in catalog if (k[0] if isinstance(k, tuple) else k) in bad]:
            del catalog[key]
        self.rejected = tuple(sorted(bad))


@cache
def translations(language: str) -> CheckedTranslations:
    if language not in LANGUAGES:
        raise MissingCatalogError(f"no catalog for language '{language}' (have {', '.join(LANGUAGES)})")
    try:
        return gettext.translation(DOMAIN, LOCALE_DIR, [language], class_=CheckedTranslations)
    except OSError as exc:
        raise MissingCatalogError(f"compiled catalog for '{language}' missing in {LOCALE_DIR}: {exc}") from None


def gettext_for(language: str) -> Callable[[str], str]:
    return translations(language).gettext


def ngettext_for(language: str) -> Callable[[str, str, int], str]:
    """`ngettext(singular, plural, n)` of one language: the form its Plural-Forms header picks for n (Italian
    has three in CLDR; name the local `ngettext` so pybabel extracts the call)."""
    return translations(language).ngettext


def _as_text(message: str) -> Markup:
    # Escapes what would end text or a double-quoted attribute (the templates quote attributes with ");
    # apostrophes stay as they are, readable in the Italian source of a guide.
    return Markup(message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;"))


def install(env: jinja2.Environment, language: str) -> jinja2.Environment:
    """Bind `env` to one language (new-style gettext: `_("Port %(n)s", n=1)`). Where the template autoescapes
    (HTML), the translated text is escaped too: Jinja would mark a msgstr safe as it is (only the values are
    escaped), so a translator's '<' or '&' would be markup."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    catalog = translations(language)

    @jinja2.pass_eval_context
    def gettext_(eval_ctx: jinja2.nodes.EvalContext, message: str) -> str:
        text = catalog.gettext(message)
        return _as_text(text) if eval_ctx.autoescape else text

    @jinja2.pass_eval_context
    def ngettext_(eval_ctx: jinja2.nodes.EvalContext, singular: str, plural: str, n: int) -> str:
        text = catalog.ngettext(singular, plural, n)
        return _as_text(text) if eval_ctx.autoescape else text

    env.install_gettext_callables(gettext_, ngettext_, newstyle=True)  # type: ignore[attr-defined]
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
