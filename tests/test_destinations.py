"""Destinations are checked before the first byte: nothing that is not ours is ever replaced or deleted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.build import BuildOptions, build, prepare
from generator.cli import main
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
    fewer = _spec(tmp_path / "spec", SPEC.replace("targets: {build: [apple]}", "targets: {build: [thunderbird]}"))
    report = build(prepare(load_spec(fewer)), tmp_path / "out")
    assert report.count("removed") == 1 and not (tmp_path / "out" / "mario@esempio.it" / "apple").exists()


@pytest.mark.parametrize("layout", ["account", "per-target"])
def test_files_the_previous_manifest_does_not_list_are_not_deleted(tmp_path: Path, layout: str) -> None:
    """README: "safe to keep in git". A `git init` inside the output, or an .htaccess an admin added, is not
    ours: the build that would replace the folder (and with it these files) stops before the commit."""
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), BuildOptions(out=out, layout=layout))  # type: ignore[arg-type]
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (out / ".htaccess").write_text("Require all granted")
    (out / "elsewhere").symlink_to(tmp_path / "spec")
    before = _files(out)
    with pytest.raises(BuildError, match=r"3 file\(s\) in it are not in its manifest.json, so mailprofile did not "
                                         r"write them \(.git/HEAD, .htaccess, elsewhere\)"):
        build(prepare(load_spec(spec)), BuildOptions(out=out, layout=layout))  # type: ignore[arg-type]
    assert _files(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "spec"]


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


@pytest.mark.parametrize("name", ["lock", "journal"])
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_planted_under_a_work_file_name_is_refused_and_its_target_kept(tmp_path: Path, name: str,
                                                                              link: str) -> None:
    """Whoever can write beside --out could make the build truncate (lock) or overwrite (journal) any file
    the build's user may write, by naming a link like the build's own files."""
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), out)
    before = _files(out)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    planted = tmp_path / f".out.mailprofile-{name}"
    if link == "symlink":
        planted.symlink_to(victim)
    else:
        os.link(victim, planted)
    what = "is a symbolic link" if link == "symlink" else "has other hard links"
    with pytest.raises(BuildError, match=f"{planted.name} {what}, where mailprofile keeps a plain file"):
        build(prepare(load_spec(spec)), out)
    assert victim.read_text() == "precious"
    assert _files(out) == before


def test_a_journal_naming_files_outside_the_build_is_not_acted_on(tmp_path: Path) -> None:
    """A journal finishes a killed commit by renaming the files it names: only the build's own work files."""
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), out)
    victim, planted = tmp_path / "authorized_keys", tmp_path / "evil"
    victim.write_text("precious")
    planted.write_text("attacker's key")
    journal = tmp_path / ".out.mailprofile-journal"
    journal.write_text(json.dumps({"new": "x", "new_inode": out.stat().st_ino, "zip_tmp": str(planted),
                                   "zip": str(victim)}))
    with pytest.raises(BuildError, match="names files that are not this build's work files"):
        build(prepare(load_spec(spec)), out)
    assert victim.read_text() == "precious" and planted.read_text() == "attacker's key"


def test_a_journal_of_another_user_is_not_acted_on(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(reason="giving a file to another user needs root")
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), out)
    journal = tmp_path / ".out.mailprofile-journal"
    journal.write_text(json.dumps({"new": ".out.mailprofile-x", "new_inode": out.stat().st_ino}))
    os.chown(journal, 65534, 65534)
    with pytest.raises(BuildError, match=r"belongs to another user \(uid 65534\)"):
        build(prepare(load_spec(spec)), out)


def test_leftover_cleanup_never_writes_through_a_planted_mark(tmp_path: Path) -> None:
    """A folder named like a work folder, holding our manifest and a mark that links elsewhere: removing it
    must not create or touch the file the link names."""
    spec = _spec(tmp_path / "spec")
    out = tmp_path / "out"
    build(prepare(load_spec(spec)), out)
    lookalike = tmp_path / ".out.mailprofile-zz"
    lookalike.mkdir()
    shutil.copy(out / "manifest.json", lookalike / "manifest.json")
    target = tmp_path / "nologin"
    (lookalike / ".mailprofile-partial").symlink_to(target)
    build(prepare(load_spec(spec)), out)
    assert not target.exists() and not lookalike.exists()


@pytest.mark.parametrize(("option", "dest"), [("--out", "loop"), ("--out", "loop/out"), ("--zip", "loop/b.zip")])
def test_a_symbolic_link_loop_in_a_destination_is_one_line(tmp_path: Path, option: str, dest: str) -> None:
    """Path.resolve() raises RuntimeError on a loop (Python < 3.13): it was an internal error, exit 70."""
    spec = _spec(tmp_path / "spec")
    (tmp_path / "loop").symlink_to(tmp_path / "again")
    (tmp_path / "again").symlink_to(tmp_path / "loop")
    result = CliRunner().invoke(main, ["build", str(spec), option, str(tmp_path / dest)])
    assert result.exit_code == 1
    assert result.output.splitlines()[-2:] == [
        f"error: {option} {tmp_path / dest}: the symbolic links on this path form a loop; fix or remove them",
        "nothing was written"]
