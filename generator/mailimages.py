"""The guide's QR codes as images a mail app shows: PNG parts of a multipart/related, named by Content-ID.

A guide file shows its QR codes as inline SVG (the profile link) and as an <img> whose src is a data: URI of
an SVG document (Thunderbird for Android). Browsers show both; mail apps do not: Gmail removes <svg> and
data: images, Outlook for Windows draws neither. Inside a message each code becomes a PNG part that the
HTML names with cid: (RFC 2392), which Gmail, Outlook, Apple Mail and Thunderbird show in place. Each PNG is
drawn from the very modules of the code it replaces (the SVG's runs read back by generator.qrdecode), so
it shows the very modules of the guide file's code; `codes` reads both sides independently for the
message's proof.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from generator import pngwriter
from generator.qrdecode import Matrix, QRDecodeError, matrix_from_paths, matrix_from_png, matrix_from_svg
from generator.targets.thunderbird_android import SVG_DATA_URI, svg_from_data_uri

SCALE, BORDER = 4, 4  # pixels a module (as the guide's SVGs draw them), modules of quiet zone (the standard's)
_SVG = re.compile(r"<svg\b([^>]*)>(.*?)</svg\s*>", re.S | re.I)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_ATTR = re.compile(r"""\s([A-Za-z_:][-\w:.]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_PATH_D = re.compile(r"""<path\b[^>]*?\sd\s*=\s*["']([^"']*)["']""", re.I)


@dataclass(frozen=True)
class InlineImage:
    cid: str  # without the angle brackets
    png: bytes
    name: str  # the part's file name, for apps that list inline parts


def _attrs(tag: str) -> dict[str, str]:
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(tag)}


def _svg_document_matrix(uri: str) -> Matrix:
    """The modules of a QR SVG document in a data: URI, as the build writes the android-qr file."""
    try:
        svg = svg_from_data_uri(uri).decode("utf-8")
    except ValueError as exc:  # UnicodeDecodeError is one
        raise QRDecodeError(str(exc)) from None
    return matrix_from_svg(svg, background=False)


def png_of(matrix: Matrix) -> bytes:
    return pngwriter.qr_png(matrix, scale=SCALE, border=BORDER)


def to_cid(page: str, key: str, domain: str) -> tuple[str, list[InlineImage]]:
    """`page` with every QR code (an <svg class="qr"> or an <img> of a QR SVG data: URI) turned into an
    <img src="cid:..."> of a PNG of the same modules, and those PNGs in document order. Anything that is not
    a QR code this module can read stays as it is (the guide's own proof has read every code it shows)."""
    images: list[InlineImage] = []
    pieces: list[str] = []
    pos = 0
    # Comments are not shown (nor read by `codes`, an HTML parser): a code inside one is left alone.
    comments = [(m.start(), m.end()) for m in _COMMENT.finditer(page)]
    for match in sorted([*_SVG.finditer(page), *_IMG.finditer(page)], key=lambda m: m.start()):
        if match.start() < pos or any(a <= match.start() < b for a, b in comments):  # replaced, or a comment
            continue
        replaced = _replace(match, key, domain, len(images))
        if replaced is None:
            continue
        tag, image = replaced
        pieces += [page[pos:match.start()], tag]
        images.append(image)
        pos = match.end()
    return "".join([*pieces, page[pos:]]), images


def _replace(match: re.Match[str], key: str, domain: str, index: int) -> tuple[str, InlineImage] | None:
    cid = f"qr{index + 1}.{key[:24]}@{domain}"
    name = f"qr-code-{index + 1}.png"
    text = match.group(0)
    try:
        if text[:4].lower() == "<svg":
            attrs = _attrs(f" {match.group(1)}")
            if "qr" not in attrs.get("class", "").split():
                return None
            matrix = matrix_from_paths(_PATH_D.findall(match.group(2)))
            png = png_of(matrix)
            size = (len(matrix) + 2 * BORDER) * SCALE
            # The name as the page wrote it, quoted again for a double-quoted attribute (a --templates guide may
            # single-quote a label that holds a '"').
            alt = html.escape(html.unescape(attrs.get("aria-label", "")), quote=True)
            return (f'<img src="cid:{cid}" alt="{alt}" width="{size}" height="{size}">',
                    InlineImage(cid, png, name))
        src = _attrs(text).get("src", "")
        if not src.startswith(SVG_DATA_URI):
            return None
        matrix = _svg_document_matrix(src)
        start = text.index(src)
        return text[:start] + f"cid:{cid}" + text[start + len(src):], InlineImage(cid, png_of(matrix), name)
    except QRDecodeError:
        return None


class _Codes(HTMLParser):
    """In document order: the `d` of the paths of each inline <svg class="qr"> (a list), and the src of every
    <img> (a string)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[list[str] | str] = []
        self._paths: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "svg" and "qr" in (a.get("class") or "").split():
            self._paths = []
            self.found.append(self._paths)
        elif tag == "path" and self._paths is not None:
            self._paths.append(a.get("d") or "")
        elif tag == "img":
            self.found.append(a.get("src") or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._paths = None


def codes(page: str, parts: dict[str, bytes] | None = None) -> list[str]:
    """Each QR code of `page` in document order, read with an HTML parser (not the rewrite's regular
    expressions), as 'QR <n>x<n> <digest of its modules>': inline QR <svg>s and <img>s of QR SVG data: URIs;
    with `parts` (Content-ID -> PNG bytes), also <img src="cid:..."> from those PNGs. Two codes with the same
    modules say the same thing (the guide's own proof decoded its codes), and comparing modules costs a
    fraction of decoding them. An image that is none of these is 'other: <src>'; one that does not read is
    'unreadable: <why>'."""
    parser = _Codes()
    parser.feed(page)
    parser.close()
    out: list[str] = []
    for value in parser.found:
        try:
            if isinstance(value, list):
                out.append(_describe(matrix_from_paths(value)))
            elif value.startswith(SVG_DATA_URI):
                out.append(_describe(_svg_document_matrix(value)))
            elif value.lower().startswith("cid:") and parts is not None:
                png = parts.get(value[4:])
                out.append(_describe(matrix_from_png(png)) if png is not None else f"missing part: {value}")
            else:
                out.append(f"other: {value}")
        except QRDecodeError as exc:
            out.append(f"unreadable: {exc}")
    return out


def _describe(matrix: Matrix) -> str:
    bits = "/".join("".join("1" if dark else "0" for dark in row) for row in matrix)
    return f"QR {len(matrix)}x{len(matrix[0]) if matrix else 0} {hashlib.sha256(bits.encode()).hexdigest()[:24]}"
