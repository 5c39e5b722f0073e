"""Model details: internationalised names, placeholders, YAML loading edge cases, progress output."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.accounts import load_accounts, split_address
from generator.cli import Progress
from generator.errors import SpecError
from generator.spec import load_spec
from generator.yamlload import load_yaml
from tests.test_spec_errors import BASE


def test_internationalised_names_become_a_labels(tmp_path: Path) -> None:
    text = BASE.replace("host: pop3s.aruba.it", "host: posta.bücher.example").replace(
        "domains: [esempio.it]", "domains: [Bücher.Example]").replace("mario.rossi@esempio.it", "mario@bücher.example")
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    loaded = load_spec(tmp_path / "spec.yaml")
    assert loaded.spec.incoming.host == "posta.xn--bcher-kva.example"
    assert loaded.spec.provider.domains == ["xn--bcher-kva.example"]
    [mailbox] = load_accounts(loaded)
    assert (mailbox.email, mailbox.domain) == ("mario@xn--bcher-kva.example", "xn--bcher-kva.example")


def test_placeholder_host_keeps_the_placeholder_and_encodes_the_rest(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE.replace("host: pop3s.aruba.it", "host: pöp.%EMAILDOMAIN%"))
    loaded = load_spec(tmp_path / "spec.yaml")
    assert loaded.spec.incoming.host == "xn--pp-fka.%EMAILDOMAIN%"
    [mailbox] = load_accounts(loaded)
    assert mailbox.host(loaded.spec.incoming) == "xn--pp-fka.esempio.it"


@pytest.mark.parametrize("address", ["a@b@c", "@esempio.it", "a..b@esempio.it", ".a@esempio.it", "a/b@esempio.it",
                                     "a b@esempio.it", "a@-bad-.example"])
def test_invalid_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        split_address(address)


def test_yaml_12_scalars_are_read_as_written() -> None:
    doc = load_yaml("a: 995\nb: true\nc: ~\nd: '0110'\ne: 2027-01-01\nf: 1.5\ng: -3\n", "x.yaml")
    assert doc.data == {"a": 995, "b": True, "c": None, "d": "0110", "e": "2027-01-01", "f": 1.5, "g": -3}
    assert str(doc.where(("d",))) == "x.yaml:4:4" and str(doc.where(("d",), key=True)) == "x.yaml:4:1"


@pytest.mark.parametrize(("text", "problem"), [
    # YAML 1.2 numbers that PyYAML (YAML 1.1) reads as text: `port: 0995` was "got the string '0995' — write
    # the number without quotes", which has no quotes to remove.
    ("0995", "'0995' is text in YAML 1.1 but the number 995 in YAML 1.2 — write 995 for the number, or quote it "
             "(\"0995\") for text"),
    ("-007", "'-007' is read as the number -7 by YAML 1.1 — write the number in plain decimal (e.g. -7), or quote "
             "it (\"-007\") if it is text"),
    ("1e3", "'1e3' is text in YAML 1.1 but the number 1000.0 in YAML 1.2 — write 1000.0 for the number, or quote "
            "it (\"1e3\") for text"),
    ("0o17", "'0o17' is text in YAML 1.1 but the number 15 in YAML 1.2 — write 15 for the number, or quote it "
             "(\"0o17\") for text"),
    # Hints that named no number: 'e.g. x1F', 'e.g. 1_000', 'e.g. 12:30'.
    ("0x1F", "'0x1F' is read as the number 31 by YAML 1.1 — write the number in plain decimal (e.g. 31), or quote "
             "it (\"0x1F\") if it is text"),
    ("1_000", "'1_000' is read as the number 1000 by YAML 1.1 — write the number in plain decimal (e.g. 1000), or "
              "quote it (\"1_000\") if it is text"),
    ("12:30", "'12:30' is read as the number 750 by YAML 1.1 (base 60) — quote it (\"12:30\")"),
    ("1_000.5", "'1_000.5' is read as the number 1000.5 by YAML 1.1 — write the number in plain decimal (e.g. "
                "1000.5), or quote it (\"1_000.5\") if it is text"),
    ("1:30.5", "'1:30.5' is read as the number 90.5 by YAML 1.1 (base 60) — quote it (\"1:30.5\")"),
])
def test_numbers_yaml_11_and_12_read_differently_say_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml(f"a: {text}\n", "x.yaml")
    assert [str(p) for p in info.value.problems] == [f"x.yaml:1:4: {problem}"]


@pytest.mark.parametrize("text", ["'0995'", '"1e3"', "0995 x", "1.5.3", "+", "0", "-12", "1.5", "1e-3x"])
def test_text_and_plain_numbers_load_without_a_problem(text: str) -> None:
    load_yaml(f"a: {text}\n", "x.yaml")


def test_yaml_infinity_and_nan_are_read_as_floats() -> None:
    # YAML spells them .inf and .nan; Python's float() does not read those spellings.
    doc = load_yaml("a: .inf\nb: -.Inf\nc: +.INF\nd: .NaN\n", "x.yaml")
    assert doc.data["a"] == float("inf") and doc.data["b"] == float("-inf") and doc.data["c"] == float("inf")
    assert doc.data["d"] != doc.data["d"]  # NaN


@pytest.mark.parametrize(("value", "read"), [(".inf", "inf"), (".nan", "nan"), ("1.0e+400", "inf")])
def test_a_duration_must_be_a_finite_number(tmp_path: Path, value: str, read: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + f"  apple: {{duration_until_removal: {value}}}\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(spec)
    assert [str(p) for p in info.value.problems] == [
        f"{spec}:19:35: targets.apple.duration_until_removal: must be a finite number of seconds, got {read} — "
        "write the number of seconds, such as 2592000 for 30 days"]


@pytest.mark.parametrize(("text", "message"), [
    ("a: 0x1F\n", "'0x1F' is read as the number 31 by YAML 1.1"),
    ("a: 1_000\n", "'1_000' is read as the number 1000 by YAML 1.1"),
    ("a: 1:30\n", "'1:30' is read as the number 90 by YAML 1.1 (base 60)"),
    ("a: NO\n", "'NO' is a boolean in YAML 1.1 but a string in YAML 1.2"),
    ("a: y\n", None),  # PyYAML does not resolve y/n: a plain string, fine
    ("a: !!binary aGk=\n", "YAML tag 'tag:yaml.org,2002:binary' is not allowed in a spec"),
    ("<<: {a: 1}\n", "complex keys and merge keys (<<) are not supported"),
])
def test_yaml_11_surprises(text: str, message: str | None) -> None:
    if message is None:
        assert load_yaml(text, "x.yaml").data == {"a": "y"}
        return
    with pytest.raises(SpecError) as info:
        load_yaml(text, "x.yaml")
    assert [p.message for p in info.value.problems] == [message]


def test_progress_bar_shows_done_total_rate_and_time_left(capsys: pytest.CaptureFixture[str]) -> None:
    bar = Progress(total=400)
    bar.started -= 2.0  # as if two seconds had passed
    bar.advance(100)
    bar.finish()
    err = capsys.readouterr().err
    line = err.strip("\n").split("\r")[-1]
    assert line.startswith("[#######.......................] 100/400 accounts  ")
    rate = float(line.split("accounts")[1].split("/s")[0].replace(",", ""))
    assert 40 <= rate <= 50  # 100 accounts in a little over 2 s
    assert line.rstrip().endswith("s left")
