"""The regex fast path of the prefs reader agrees with the exact scanner wherever it answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.prefs import _fast_read, _NotSimple, _scan, prefs_string, read_prefs

VALUES = st.one_of(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30),
                   st.integers(min_value=-(2**31), max_value=2**31 - 1), st.booleans())


@settings(max_examples=200, deadline=None)
@given(prefs=st.lists(st.tuples(st.text("abcdefgh.", min_size=1, max_size=12), VALUES), max_size=8),
       comment=st.sampled_from(["", "// note\n", "# hash\n", "/* block\n */\n"]))
def test_fast_reader_equals_scanner_on_written_files(prefs: list[tuple[str, object]], comment: str) -> None:
    lines = []
    for name, value in prefs:
        literal = ("true" if value else "false") if isinstance(value, bool) else (
            str(value) if isinstance(value, int) else prefs_string(str(value)))
        lines.append(f"{comment}user_pref({prefs_string(name)}, {literal});\n")
    text = "".join(lines)
    assert _fast_read(text, ("user_pref",)) == _scan(text, ("user_pref",))


@pytest.mark.parametrize("text", [
    'user_pref("a", "\\t");', 'user_pref("a", 1)', 'user_pref("a", 99999999999);', 'user_pref("a" "b");',
    "/* open", 'pref("a", 1, locked);', 'user_pref("a", "\\u00e9");', 'user_pref("a", "\\x41");',
    'user_pref("a", nope);', "lockPref(\"a\", 1);"])
def test_unusual_input_goes_to_the_scanner(text: str) -> None:
    with pytest.raises(_NotSimple):
        _fast_read(text, ("user_pref",))
    try:
        expected = _scan(text, ("user_pref", "pref"))
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).split(":")[0]):
            read_prefs(text, ("user_pref", "pref"))
    else:
        assert read_prefs(text, ("user_pref", "pref")) == expected
