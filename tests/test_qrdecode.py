"""The QR reader the pipeline proves guides with: every code segno writes reads back to its bytes (SVG and
PNG), at every error level, version and mask; a changed code is caught."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import segno
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.build import BuildOptions, build, prepare
from generator.errors import VerificationError
from generator.qrdecode import QRDecodeError, decode_png, decode_svg
from generator.spec import load_spec
from tests.conftest import EXAMPLES

URL_CHARS = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789@.-_/:%+~")


@settings(max_examples=150, deadline=None)
@given(text=st.text(URL_CHARS, min_size=1, max_size=400), level=st.sampled_from("lmqh"),
       mask=st.sampled_from([None, *range(8)]), scale=st.integers(1, 5), border=st.integers(0, 5))
def test_reads_back_what_segno_writes(text: str, level: str, mask: int | None, scale: int, border: int) -> None:
    code = segno.make(text, error=level, micro=False, mask=mask, mode="byte")
    svg = code.svg_inline(scale=scale, border=border, svgclass="qr", lineclass=None, dark="#000", light="#fff")
    assert decode_svg(svg) == text.encode()
    png = io.BytesIO()
    code.save(png, kind="png", scale=scale, border=border)
    assert decode_png(png.getvalue()) == text.encode()


def test_a_damaged_format_area_is_an_error() -> None:
    code = segno.make("https://h.example/apple/a@b.it.mobileconfig", error="m", micro=False, mask=0, mode="byte")
    svg = code.svg_inline(scale=1, border=0, svgclass="qr", lineclass=None, dark="#000", light="#fff")
    assert decode_svg(svg) == b"https://h.example/apple/a@b.it.mobileconfig"
    with pytest.raises(QRDecodeError, match="expected a background and one module path"):
        decode_svg(svg.replace('d="M0 0', 'x="'))
    with pytest.raises(QRDecodeError, match="not a PNG"):
        decode_png(b"GIF89a")


def test_a_template_showing_another_code_stops_the_build(tmp_path: Path) -> None:
    override = tmp_path / "tpl" / "guide"
    override.mkdir(parents=True)
    packaged = Path(__file__).resolve().parent.parent / "templates" / "guide" / "guide.html.j2"
    other = segno.make("https://evil.example/x.mobileconfig", error="m", micro=False, mask=0, mode="byte")
    svg = other.svg_inline(scale=4, svgclass="qr", lineclass=None, dark="#000", light="#fff")
    (override / "guide.html.j2").write_text(
        packaged.read_text(encoding="utf-8").replace("{{ qr_svg | safe }}", svg), encoding="utf-8")
    with pytest.raises(VerificationError) as info:
        build(prepare(load_spec(EXAMPLES / "delivery.yaml"), ["apple", "guide"], templates=tmp_path / "tpl"),
              BuildOptions(out=tmp_path / "out", jobs=1))
    assert any(m.startswith("qr: expected 'https://mail.esempio.it/profiles/apple/") and
               "found 'https://evil.example/x.mobileconfig'" in m for m in info.value.mismatches)
