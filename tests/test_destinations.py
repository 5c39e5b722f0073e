"""Destinations are checked before the first byte: nothing that is not ours is ever replaced or deleted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from generator.build import BuildOptions, build, prepare
from generator.errors import BuildError
from generator.output import Lock, remove_leftovers
from generator.spec import load_spec

SPEC = """\
provider: {id: esempio.it, display_name: Esempio, domains: [esempio.it]}
incoming: {protocol: imap, host: imap.esempio.it, port: 993, security: ssl}
outgoing: {host: smtp.esempio.it, port: 465, security: ssl}
targets: {build: [apple]}
accounts:
  - {name: Mario, email: mario@esempio.it}
"""


def _spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("manifest", [
    '{"name": "My web app", "start_url": "/", "icons": []}',  # a web app manifest
    '{"generator": "webpack 5", "files": []}',
    '{"generator": "mailprofile 0.2.0", "format": 99, "files": [\n]}\n',  # ours, from a future format
    "not json at all",
    '["generator", "mailprofile 1"]',
])
def test_a_foreign_manifest_does_not_make_a_folder_ours(tmp_path: Path, manifest: str) -> None:
    site = tmp_path / "www"
    site.mkdir()
    (site / "manifest.json").write_text(manifest)
    (site / "index.html").write_text("<h1>precious</h1>")
    before = _files(site)
    with pytest.raises(BuildError, match="not a mailprofile output"):
        build(prepare(load_spec(_spec(tmp_path / "spec"))), site)
    assert _files(site) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec", "www"]


def test_our_own_output_is_replaced(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec")
    build(prepare(load_spec(spec)), tmp_path / "out")
    head = json.loads((tmp_path / "out" / "manifest.json").read_text().split("\n")[0] + "]}")
    assert head["generator"].startswith("mailprofile ") and head["format"] == 1
    (tmp_path / "out" / "stale.txt").write_text("from an earlier build")
    report = build(prepare(load_spec(spec)), tmp_path / "out")
    assert report.count("removed") == 1 and not (tmp_path / "out" / "stale.txt").exists()


def test_zip_inside_out_is_refused_before_anything_changes(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), out)
    before = _files(out)
    changed = _spec(tmp_path / "spec", SPEC.replace("Mario,", "Mario Rossi,"))
    with pytest.raises(BuildError, match="inside --out"):
        build(prepare(load_spec(changed)), BuildOptions(out=out, zip=out / "bundle.zip"))
    assert _files(out) == before


@pytest.mark.parametrize("where", ["spec", "csv", "templates"])
def test_an_input_inside_out_is_refused(tmp_path: Path, where: str) -> None:
    out = tmp_path / "out"
    spec = _spec(tmp_path / "spec")
    build(prepare(load_spec(spec)), out)
    templates = None
    if where == "spec":
        spec = _spec(out)  # an admin who keeps the spec in the output folder
    elif where == "csv":
        (out / "users.csv").write_text("name,email\nAnna,anna@esempio.it\n")
        spec.write_text(SPEC + "accounts_csv: ../out/users.csv\n", encoding="utf-8")
    else:
        templates = out / "tpl"
        templates.mkdir()
    before = _files(out)
    with pytest.raises(BuildError, match="inside --out"):
        build(prepare(load_spec(spec), templates=templates), out)
    assert _files(out) == before


def test_zip_refuses_to_replace_a_file_that_is_not_our_bundle(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec")
    victim = tmp_path / "notes.zip"
    with zipfile.ZipFile(victim, "w") as archive:
        archive.writestr("notes.txt", "precious")
    plain = tmp_path / "report.pdf"
    plain.write_bytes(b"%PDF-1.7 precious")
    for path in (victim, plain):
        before = path.read_bytes()
        with pytest.raises(BuildError, match="not a zip written by mailprofile"):
            build(prepare(load_spec(spec)), BuildOptions(zip=path))
        assert path.read_bytes() == before
    ours = tmp_path / "bundle.zip"
    build(prepare(load_spec(spec)), BuildOptions(zip=ours))
    build(prepare(load_spec(spec)), BuildOptions(zip=ours))  # a bundle of ours is replaced


def test_a_second_build_into_the_same_out_is_refused(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec")
    out = (tmp_path / "out").resolve()
    # Another process holds the lock, as a running build would.
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from generator.output import Lock; Lock(Path(sys.argv[1])); print('locked', "
                               "flush=True); time.sleep(60)", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(BuildError, match=rf"another mailprofile build \(process {holder.pid}\) is writing"):
            build(prepare(load_spec(spec)), out)
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    build(prepare(load_spec(spec)), out)  # the lock ends with its process
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "spec"]


def test_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    first = Lock(tmp_path / "out")
    with pytest.raises(BuildError, match=f"process {os.getpid()}"):
        Lock(tmp_path / "out")
    first.release()
    Lock(tmp_path / "out").release()
    assert list(tmp_path.iterdir()) == []


def test_leftovers_of_a_killed_build_are_removed_and_only_those(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    partial = tmp_path / ".out.mailprofile-abc123"  # killed while rendering: carries the partial mark
    (partial / "mario@esempio.it").mkdir(parents=True)
    (partial / ".mailprofile-partial").touch()
    (partial / "mario@esempio.it" / "big").write_bytes(b"x" * 1000)
    lookalike = tmp_path / ".out.mailprofile-mine"  # same prefix, not ours: no mark, no manifest of ours
    lookalike.mkdir()
    (lookalike / "diary.txt").write_text("precious")
    report = build(prepare(load_spec(spec)), out)
    assert not partial.exists() and (lookalike / "diary.txt").read_text() == "precious"
    assert report.notes == [f"removed {partial.resolve()}, left by an interrupted build"]
    assert remove_leftovers(out.resolve()) == []
