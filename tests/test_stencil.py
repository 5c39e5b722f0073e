"""Stencils (generator/stencil.py, docs/verification.md): the fast path writes the very bytes the full path
(render, parse back, compare) writes, or refuses exactly as it does; shapes it cannot prove get no stencil."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.accounts import AccountSource, Mailbox
from generator.build import KIND_TARGET
from generator.cli import main
from generator.prefs import as_dict, prefs_string, read_prefs
from generator.render import differences, xml_escape
from generator.spec import LoadedSpec, load_spec
from generator.stencil import (
    JS_SPECIALS,
    LINE_COMMENT,
    MISS,
    XML_SPECIALS,
    Context,
    Family,
    Fixed,
    Format,
    Stencil,
    Stencils,
    compile_family,
    compile_filler,
    learn,
    origins,
    record,
    shape,
    text_carriable,
    xml_carriable,
)
from generator.targets import Target, target_classes
from generator.targets.base import RenderContext
from tests.conftest import EXAMPLES

STENCILLED = ("apple", "thunderbird", "outlook")
# Every kind those targets make but the QR code (a picture, not a stencilled text; 10 ms each).
KINDS = frozenset(k for k, t in KIND_TARGET.items() if t in STENCILLED and k != "android-qr")

# Anything a YAML or CSV file can hold (surrogates cannot be UTF-8), weighted towards what escapes differ on.
TRICKY = st.sampled_from(['"', "'", "\\", "&", "<", ">", "]]>", "-->", "\n", "\r", "\t", " ", "\x00", "\x01",
                          "\u2028", "\u2029", "\x85", "\ufffe", "=", ";", "[", "%", "é", "😀", "*/", "//"])
TEXT = st.lists(st.one_of(TRICKY, st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)),
                max_size=6).map("".join)


@cache
def _loaded(name: str) -> LoadedSpec:
    return load_spec(EXAMPLES / name)


def _outcome(target: Target, mailbox: Mailbox) -> Any:
    """The files' bytes, or the error the build would report (type and text)."""
    try:
        return [(f.path, f.data, f.secret) for f in target.render_account(mailbox)]
    except Exception as exc:
        return (type(exc).__name__, str(exc))


@settings(max_examples=150, deadline=None)
@given(example=st.sampled_from(sorted(p.name for p in EXAMPLES.glob("*.yaml"))), name=TEXT, local=TEXT,
       user=TEXT, smtp_user=TEXT, password=st.one_of(st.none(), TEXT), description=st.one_of(st.none(), TEXT))
def test_fast_path_writes_the_full_paths_bytes(example: str, name: str, local: str, user: str, smtp_user: str,
                                               password: str | None, description: str | None) -> None:
    loaded = _loaded(example)
    base = next(iter(AccountSource(loaded)))
    email = f"{local}@{base.domain}"
    mailbox = dataclasses.replace(base, name=name, email=email, local=local, username=user,
                                  smtp_username=smtp_user, password=password, description=description)
    for target_name in STENCILLED:
        cls = target_classes()[target_name]
        fast = cls(RenderContext(loaded, kinds=KINDS))
        full = cls(RenderContext(loaded, kinds=KINDS, verify="full"))
        assert _outcome(fast, mailbox) == _outcome(full, mailbox), target_name


@pytest.mark.parametrize("spec", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_example_builds_the_same_both_ways(spec: Path, tmp_path: Path) -> None:
    """What CI checks on every run: `--verify fast` (the default) and `--verify full` write the same tree."""
    trees = []
    for mode in ("fast", "full"):
        out = tmp_path / mode
        result = CliRunner().invoke(main, ["build", str(spec), "--out", str(out), "--quiet", "--verify", mode,
                                           "--jobs", "1"])
        assert result.exit_code == 0, result.output
        trees.append({str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()})
    assert trees[0] == trees[1]
    assert len(trees[0]) > 5


def test_every_packaged_shape_of_the_examples_is_proven() -> None:
    """The fast path is really taken for the examples (not silently the full path everywhere)."""
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        loaded = load_spec(spec)
        for target_name in STENCILLED:
            target = target_classes()[target_name](RenderContext(loaded, kinds=KINDS))
            for mailbox in AccountSource(loaded):
                target.render_account(mailbox)
            stencils = target._stencils  # type: ignore[attr-defined]
            found = stencils.values() if isinstance(stencils, dict) else [stencils]
            for one in found:
                assert one._known, (spec.name, target_name)
                assert all(s is not None for s in one._known.values()), (spec.name, target_name, one.fmt.name)
            family = getattr(target, "_family", None)  # Thunderbird's and Outlook's: one shape check for three
            assert (family is not None) == (target_name != "apple"), (spec.name, target_name)
            if family is not None:
                assert family._known and all(f is not None for f in family._known.values()), spec.name


def test_admin_templates_always_take_the_full_path(tmp_path: Path) -> None:
    ctx = RenderContext(_loaded("school.yaml"), templates=tmp_path)
    assert not ctx.stencils_allowed
    assert not RenderContext(_loaded("school.yaml"), verify="full").stencils_allowed


def test_shape_keeps_types_presence_and_emptiness_apart() -> None:
    assert shape({"a": False})[0] != shape({"a": 0})[0]
    assert shape({"a": ""})[0] != shape({"a": "x"})[0]
    assert shape({"a": "x"})[0] == shape({"a": "y"})[0]
    assert shape({"a": "x", "b": None})[0] != shape({"a": "x"})[0]
    assert shape({"a": Fixed("lockPref")})[0] != shape({"a": Fixed("defaultPref")})[0]
    assert shape([{"a": "x"}, "y"])[1] == ["x", "y"]


@record
class Item(NamedTuple):
    """A record like a family's source."""

    label: str
    value: Any


def test_a_records_shape_is_its_class_and_its_fields() -> None:
    assert shape(Item("a", "x"))[0] == shape(Item("b", "y"))[0]
    assert shape(Item("a", "x"))[1] == ["a", "x"]
    assert shape(Item("a", "x"))[0] != shape(Item(Fixed("a"), "x"))[0]
    assert shape(Item("a", "x"))[0] != shape(Item("a", ""))[0]
    assert shape(Item("a", "x"))[0] != shape(("a", "x"))[0]
    assert shape(Item("a", 1))[0] != shape(Item("a", True))[0]


# Nests like the values targets lay out: dicts, lists, tuples and records of strings (often empty: emptiness is
# part of the shape), Fixed words, numbers, booleans, None and dates; keys that are plain or Fixed strings.
WORDS = st.sampled_from(["", "a", "b", "ab", "!", "a!"])
SCALARS = st.one_of(WORDS, WORDS.map(Fixed), st.integers(-2, 2), st.booleans(), st.none(),
                    st.sampled_from([0.0, 1.5, -1.0]), st.just(datetime(2026, 1, 1)), st.just(datetime(2027, 1, 1)))
NESTS = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple), st.builds(Item, WORDS, inner),
    st.dictionaries(st.one_of(WORDS, WORDS.map(Fixed)), inner, max_size=3)), max_leaves=12)


def _synthetic_stencil(value: Any) -> Stencil:
    """A stencil for value's shape with every string in one gap, the last one twice; escapes and checks
    that differ per string ('!' is not carriable by every other string)."""
    count = len(shape(value)[1])
    slots = (*range(count), count - 1) if count else ()
    escapes = tuple((str.upper if i % 2 else (lambda t: t.replace("a", "<A>"))) for i in range(len(slots)))
    checks = tuple(((lambda t: "!" not in t),) if i % 2 else ((lambda t: True), (lambda t: len(t) < 3))
                   for i in range(count))
    return Stencil(tuple(f"[{i}]" for i in range(len(slots) + 1)), slots, escapes, checks)


@settings(max_examples=400, deadline=None)
@given(first=NESTS, other=NESTS, same=st.booleans(), texts=st.lists(WORDS, min_size=40, max_size=40))
def test_a_compiled_filler_matches_exactly_the_shape_it_was_made_for(first: Any, other: Any, same: bool,
                                                                     texts: list[str]) -> None:
    """The compiled filler is only a faster route to what shape() + the stencil give: MISS for a value of
    any other shape, and for one of the same shape the checked, filled text (or None)."""
    from generator.stencil import substitute

    stencil = _synthetic_stencil(first)
    filler = compile_filler(first, stencil)
    # Same nest with other strings (their emptiness may change, and with it the shape), or another nest.
    candidate = substitute(first, iter(texts)) if same else other
    key, strings = shape(candidate)
    if key != shape(first)[0]:
        assert filler(candidate) is MISS
    else:
        assert filler(candidate) == (stencil.fill(strings) if stencil.carries(strings) else None)
    assert filler(first) == (stencil.fill(shape(first)[1]) if stencil.carries(shape(first)[1]) else None)


def test_a_compiled_filler_tells_apart_what_python_finds_equal() -> None:
    stencil = _synthetic_stencil({"a": False, "b": ["x"]})
    filler = compile_filler({"a": False, "b": ["x"]}, stencil)
    assert filler({"a": False, "b": ["y"]}) == "[0]y[1]Y[2]"
    for other in ({"a": 0, "b": ["y"]}, {"a": False, "b": ("y",)}, {"b": ["y"], "a": False},
                  {"a": False, "b": [Fixed("y")]}, {"a": False, "b": [""]}, {"a": False, "b": ["y"], "c": 1}):
        assert filler(other) is MISS, other


def test_a_compiled_filler_checks_a_records_class() -> None:
    first = [Item("n", "x"), ("g", 1)]
    filler = compile_filler(first, _synthetic_stencil(first))
    assert filler([Item("ab", "y"), ("g", 1)]) == "[0]<A>b[1]Y[2]g[3]G[4]"
    for other in ([("n", "y"), ("g", 1)], [Item(Fixed("n"), "y"), ("g", 1)], [Item("n", "y"), Item("g", 1)],
                  [Item("n", ""), ("g", 1)], [Item("n", "y"), ("g", True)]):
        assert filler(other) is MISS, other


def _moves(v: Any) -> tuple[Any, ...]:
    """Files laid out from one value the way Thunderbird's are from an account's prefs: its strings moved,
    copied and mixed with constants, one file without strings of its own."""
    return ({"all": v, "note": "made here"}, [v, v, Fixed("x")], ("",), shape(v)[1][::-1])


@settings(max_examples=300, deadline=None)
@given(first=NESTS, other=NESTS, same=st.booleans(), texts=st.lists(WORDS, min_size=40, max_size=40))
def test_a_family_fills_each_file_as_its_own_filler_would(first: Any, other: Any, same: bool,
                                                          texts: list[str]) -> None:
    """One shape check of the source, then each file: exactly what each file's own compiled filler gives for
    what `derive` makes of the candidate (MISS for a source of another shape)."""
    from generator.stencil import substitute

    stencils = [_synthetic_stencil(v) for v in _moves(first)]
    family = compile_family(first, _moves, stencils)
    assert family is not None
    own = [compile_filler(v, s) for v, s in zip(_moves(first), stencils, strict=True)]
    candidate = substitute(first, iter(texts)) if same else other
    if shape(candidate)[0] != shape(first)[0]:
        assert family(candidate) is MISS
    else:
        assert family(candidate) == tuple(f(v) for f, v in zip(own, _moves(candidate), strict=True))


def test_a_family_needs_a_derive_that_only_moves_strings() -> None:
    source = {"a": "x!", "b": ["y", ""]}
    assert origins(source, _moves) is not None
    assert origins(source, lambda v: ({"a": v["a"].upper()},)) is None  # a string changed
    assert origins(source, lambda v: ({"a": v["a"] + v["b"][0]},)) is None  # two strings joined
    assert origins(source, lambda v: ({"a": "bang" if "!" in v["a"] else "none"},)) is None  # text looked at
    assert origins(source, lambda v: ({"a": Fixed(v["a"])},)) is None  # a string made part of the shape
    assert origins(source, lambda v: ([v["a"]] * len(v["a"]),)) is None  # the shape follows the text
    # A measure or a class of the text, even where the real string and one token set agree on it.
    twelve = {"a": "abcdefghijk!", "b": ["y", ""]}  # as long as the first set's tokens
    assert origins(twelve, lambda v: ({"n": len(v["a"])},)) is None
    assert origins(twelve, lambda v: ({"a": v["a"], "ascii": v["a"].isascii()},)) is None
    assert origins(twelve, lambda v: ({"a": v["a"].lower()},)) is None
    assert compile_family(source, lambda v: ({"a": v["a"].upper()},), [None]) is None


def test_a_family_whose_derive_cannot_be_followed_fills_each_file_by_itself() -> None:
    stencils = Stencils(XML, lambda v: f"<r><a>{xml_escape(v['a'])}</a></r>", _xml_check)
    family = Family(lambda v: ({"a": v["a"].upper()},), (stencils,))
    assert family.fill({"a": "x&y"}) == ("<r><a>X&amp;Y</a></r>",)
    assert list(family._known.values()) == [None]
    assert family.fill({"a": "carriage\rreturn"}) == (None,)


XML = Format("xml", (Context("XML text", xml_escape, xml_carriable),), XML_SPECIALS)


def _xml_check(value: dict[str, str], text: str) -> list[str]:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        return [str(exc)]
    return differences(value, {child.tag: child.text or "" for child in root})


def test_a_template_that_forgets_to_escape_gets_no_stencil() -> None:
    assert learn({"a": "x"}, lambda v: f"<r><a>{v['a']}</a></r>", _xml_check, XML) is None
    stencil = learn({"a": "x"}, lambda v: f"<r><a>{xml_escape(v['a'])}</a></r>", _xml_check, XML)
    assert stencil is not None
    assert stencil.fill(['A & "B" <c>']) == "<r><a>A &amp; &quot;B&quot; &lt;c&gt;</a></r>"


def test_an_unescaped_copy_where_the_check_does_not_look_gets_no_stencil() -> None:
    # The second copy sits, unescaped, in an attribute the check never reads: the hostile render breaks it.
    def attribute(v: dict[str, str]) -> str:
        return f"<r note='{v['a']}'><a>{xml_escape(v['a'])}</a></r>"

    assert learn({"a": "x"}, attribute, _xml_check, XML) is None


def test_a_shape_with_an_empty_string_is_learnt_on_the_branch_it_takes() -> None:
    """Emptiness is in the shape key; the probes keep an empty string empty, so a template that leaves out
    what is empty gets the stencil of that branch (the fill is the template's rendering, not <a></a>)."""
    def render(v: dict[str, str]) -> str:
        a = f"<a>{xml_escape(v['a'])}</a>" if v["a"] else ""
        return f"<r>{a}<b>{xml_escape(v['b'])}</b></r>"

    def check(v: dict[str, str], text: str) -> list[str]:
        return _xml_check({k: s for k, s in v.items() if s}, text)

    stencils = Stencils(XML, render, check)
    assert stencils.fill({"a": "", "b": "x&y"}) == "<r><b>x&amp;y</b></r>"
    assert stencils.fill({"a": "1", "b": "2"}) == "<r><a>1</a><b>2</b></r>"
    assert stencils.fill({"a": "", "b": "z"}) == "<r><b>z</b></r>"


def test_values_the_context_cannot_carry_take_the_full_path() -> None:
    stencils = Stencils(XML, lambda v: f"<r><a>{xml_escape(v['a'])}</a></r>", _xml_check)
    assert stencils.fill({"a": "plain"}) == "<r><a>plain</a></r>"
    assert stencils.fill({"a": "carriage\rreturn"}) is None  # a parser reads CR as LF
    assert stencils.fill({"a": "nul\x00"}) is None


PREFS = Format("prefs", (Context("prefs string", lambda s: prefs_string(s)[1:-1], text_carriable), LINE_COMMENT),
               JS_SPECIALS)


def _prefs_render(v: dict[str, str]) -> str:
    return f"// for {v['email']}\nuser_pref(\"a\", {prefs_string(v['email'])});\n"


def _prefs_check(v: dict[str, str], text: str) -> list[str]:
    return differences({"a": v["email"]}, as_dict(read_prefs(text, ("user_pref",))))


def test_a_value_in_a_comment_too_must_fit_the_comment() -> None:
    stencils = Stencils(PREFS, _prefs_render, _prefs_check)
    assert stencils.fill({"email": 'a"b@x'}) == _prefs_render({"email": 'a"b@x'})
    # A string literal carries a line break, the comment naming the account does not: full path.
    assert stencils.fill({"email": "a\nuser_pref('evil', 1);//@x"}) is None
