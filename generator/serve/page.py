"""The self-service page: type an address, get the settings table, the Apple profile button, a QR code of
the profile link, the Thunderbird for Android QR import when the spec turns it on, and short steps for
Thunderbird and Outlook. Plain HTML (no JavaScript), Italian and English by Accept-Language or ?lang=, every
value escaped by Jinja's autoescape.

It shares the guides' pieces (generator.targets.guide): the translated settings table, the profile link and
the QR code, and the gettext catalogs of generator.i18n (its strings are extracted by `make i18n`).
"""

from __future__ import annotations

from functools import cache
from urllib.parse import urlencode

import jinja2
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from generator.i18n import LANGUAGES, gettext_for, install, negotiate
from generator.render import packaged_templates
from generator.serve.service import BadAddress, Service, UnknownDomain
from generator.targets.guide import QR_LABEL, QR_LINK_MAX, isolate, manual_settings, profile_link, qr_svg
from generator.targets.thunderbird_android import svg_data_uri

# The page is static HTML: an inline <style>, the QR codes as inline SVG and a data: image, one GET form to
# itself, no script. Nothing else may load, and no other site may frame it (a click on the profile button
# under someone else's overlay). X-Frame-Options says the same to browsers without frame-ancestors.
# no-referrer: a filled-in page's URL holds the address, which no link target needs to see.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

# Each language names itself in the switcher, whatever the page's language.
LANGUAGE_NAMES = {"en": "English", "it": "Italiano"}


def N_(message: str) -> str:
    """Mark a message for extraction (pybabel -k N_); translated where it is shown."""
    return message


NOT_AN_ADDRESS = N_("That is not an e-mail address. Check it and try again.")
NOT_SERVED = N_("This service does not provide settings for %(domain)s. Ask your mail provider.")


@cache
def environment(language: str) -> jinja2.Environment:
    """One environment per language (the catalogs bind per environment), autoescape always on."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(packaged_templates())), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["isolate"] = isolate  # the provider's name inside a sentence, as the guides set it
    return install(env, language)


def choose_language(request: Request) -> str:
    asked = request.query_params.get("lang", "")
    return asked if asked in LANGUAGES else negotiate(request.headers.get("accept-language"))


def render_page(request: Request, service: Service) -> Response:
    language = choose_language(request)
    env = environment(language)
    _ = gettext_for(language)
    address = request.query_params.get("email", "").strip()[:320]
    context: dict[str, object] = {"lang": language, "provider": service.spec.provider, "email": address,
                                  "error": None, "settings": None, "profile_link": None, "qr_svg": None,
                                  "android_qr": None,
                                  "serves_apple": service.serves("apple"),
                                  "switch": [(code, LANGUAGE_NAMES.get(code, code),
                                              "/?" + urlencode({"lang": code, **({"email": address} if address
                                                                                  else {})}))
                                             for code in LANGUAGES]}
    status = 200
    if address:
        try:
            mailbox = service.mailbox(address)
        except BadAddress:
            context["error"], status = _(NOT_AN_ADDRESS), 400
        except UnknownDomain as exc:
            context["error"], status = _(NOT_SERVED) % {"domain": str(exc)}, 404
        else:
            context["settings"] = manual_settings(service.spec, mailbox, language)
            android = service.android_qr(mailbox.email)
            context["android_qr"] = svg_data_uri(android) if android is not None else None
            if service.serves("apple"):
                # --base-url, else the spec's delivery.base_url (the service's URL, as in the guides), and only
                # then the URL this request came in on (its Host header).
                base = (request.app.state.base_url or service.spec.delivery.base_url
                        or str(request.base_url).rstrip("/"))
                link = profile_link(base, mailbox.email)
                context["profile_link"] = link
                # segno's own SVG for our own link: safe as markup. A link longer than a QR code holds (a long
                # base URL, or a long Host header without --base-url) is shown without the code.
                if len(link.encode("utf-8")) <= QR_LINK_MAX:
                    context["qr_svg"] = Markup(qr_svg(link, _(QR_LABEL) % {"link": link}))
    html = env.get_template("web/page.html.j2").render(context)
    # Vary: the language follows Accept-Language; no-store: a filled-in page shows one person's settings.
    return HTMLResponse(html, status_code=status,
                        headers={"Vary": "Accept-Language", "Cache-Control": "no-store" if address else
                                 "public, max-age=300", "Content-Language": language, **SECURITY_HEADERS})
