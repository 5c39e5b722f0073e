"""The comparison that proves every output: type-strict at every depth, fast path equal to the full walk."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from generator.render import differences, same, xml_escape

SCALARS = st.one_of(st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True, allow_infinity=False, width=16),
                    st.sampled_from(["", "a", "1", "True"]), st.none())
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from("abc"), inner, max_size=3)),
                      max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(expected=VALUES, actual=VALUES)
def test_fast_path_agrees_with_the_full_walk(expected: Any, actual: Any) -> None:
    assert same(expected, actual) == (differences(expected, actual, "root") == [])
    assert same(expected, expected)


def test_types_matter_where_python_equality_does_not_care() -> None:
    # Python says 1 == True and 1.0 == 1; a plist, prefs file or INI file does not.
    assert differences({"port": 995, "ssl": True}, {"port": 995.0, "ssl": 1}) == [
        "port: expected int 995, found float 995.0", "ssl: expected bool True, found int 1"]


def test_xml_escape_covers_both_quote_kinds() -> None:
    assert xml_escape("<a href=\"x\" title='y'>&</a>") == (
        "&lt;a href=&quot;x&quot; title=&apos;y&apos;&gt;&amp;&lt;/a&gt;")
