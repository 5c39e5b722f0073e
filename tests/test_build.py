"""The pipeline: atomic output, per-file statuses, manifest, refusal to clobber foreign folders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generator.build import MEDIA_TYPES, build, manifest_line, prepare
from generator.errors import BuildError, SpecError, VerificationError
from generator.render import packaged_templates
from generator.spec import load_spec
from generator.targets.base import OutputFile
from tests.test_spec_errors import BASE

TWO = BASE.replace("targets:", "  - name: Anna Verdi\n    email: anna@esempio.it\ntargets:")


def _spec(tmp_path: Path, text: str = TWO) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_lists_every_file_with_hash_and_size(tmp_path: Path) -> None:
    build(prepare(load_spec(_spec(tmp_path))), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["accounts"] == 2 and manifest["spec"] == "spec.yaml" and manifest["targets"] == ["apple"]
    assert [(e["account"], e["target"], e["kind"]) for e in manifest["files"]] == [
        ("mario.rossi@esempio.it", "apple", "mobileconfig"), ("anna@esempio.it", "apple", "mobileconfig")]
    for entry in manifest["files"]:
        data = (tmp_path / "out" / entry["path"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)


def test_rerun_reports_created_unchanged_changed_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(prepare(load_spec(_spec(tmp_path))), out)
    assert [f.status for f in first.files] == ["created", "created"]
    second = build(prepare(load_spec(_spec(tmp_path))), out)
    assert [f.status for f in second.files] == ["unchanged", "unchanged"]
    text = TWO.replace("name: Anna Verdi", "name: Anna Verdi-Rossi").replace(
        "  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n", "  - name: Carla\n    email: carla@esempio.it\n")
    third = build(prepare(load_spec(_spec(tmp_path, text))), out)
    assert [(f.path.split("/")[0], f.status) for f in third.files] == [
        ("carla@esempio.it", "created"), ("anna@esempio.it", "changed"), ("mario.rossi@esempio.it", "removed")]
    assert not (out / "mario.rossi@esempio.it").exists()


def test_failed_build_leaves_previous_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(prepare(load_spec(_spec(tmp_path))), out)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    bad = TWO.replace("email: anna@esempio.it", "email: anna@nowhere.example")
    with pytest.raises(SpecError):
        build(prepare(load_spec(_spec(tmp_path, bad))), out)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "spec.yaml"]  # no temporary folder left


def test_verification_failure_writes_nothing(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl" / "apple"
    tpl.mkdir(parents=True)
    text = (packaged_templates() / "apple" / "mobileconfig.xml.j2").read_text(encoding="utf-8")
    (tpl / "mobileconfig.xml.j2").write_text(text.replace("{{ mail.EmailAddress|plist_string }}",
                                                          "<string>x@example.com</string>"))
    with pytest.raises(VerificationError):
        build(prepare(load_spec(_spec(tmp_path)), templates=tmp_path / "tpl"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_refuses_to_replace_a_folder_that_is_not_an_output(tmp_path: Path) -> None:
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "thesis.txt").write_text("precious")
    with pytest.raises(BuildError, match="not a mailprofile output"):
        build(prepare(load_spec(_spec(tmp_path))), tmp_path / "documents")
    assert (tmp_path / "documents" / "thesis.txt").read_text() == "precious"


def test_unknown_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="unknown target outlok: choose from apple, thunderbird, outlook"):
        prepare(load_spec(_spec(tmp_path)), ["outlok"])


@settings(max_examples=300, deadline=None)
@given(account=st.one_of(st.none(), st.text()), path=st.text(), name=st.one_of(st.none(), st.text()),
       kind=st.sampled_from([*MEDIA_TYPES, "unknown-kind"]), secret=st.booleans(), data=st.binary(max_size=64))
def test_a_manifest_line_is_json_dumps_of_its_entry(account: str | None, path: str, name: str | None, kind: str,
                                                     secret: bool, data: bytes) -> None:
    """Manifest lines are written out by hand for speed; they must be what json.dumps writes (any text,
    quotes, controls, U+2028, lone surrogates included)."""
    f = OutputFile("ignored", data, "target\"x", kind, account, secret)
    entry: dict[str, object] = {"account": account, "target": f.target, "kind": kind, "path": path,
                                "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
                                "media_type": MEDIA_TYPES.get(kind, "application/octet-stream")}
    if name is not None:
        entry["name"] = name
    if secret:
        entry["secret"] = True
    assert manifest_line(f, path, name) == json.dumps(entry, ensure_ascii=False)
