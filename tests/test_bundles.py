"""Bundles and layouts: reproducible zips, per-target folders, manifest fields a mailing script needs,
parallel builds equal to serial ones, --keep-going."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.build import CHUNK, BuildOptions, build, prepare
from generator.cli import main
from generator.errors import SpecError
from generator.spec import load_spec
from tests.test_spec_errors import BASE


def _csv_spec(tmp_path: Path, rows: int, bad_row: int | None = None) -> Path:
    lines = ["name,email"]
    for i in range(rows):
        email = f"user{i}@esempio.it" if i != bad_row else f"user{i}@esempio"
        lines.append(f"Utente {i},{email}")
    (tmp_path / "users.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = BASE.replace("accounts:\n  - name: Mario Rossi\n    email: mario.rossi@esempio.it\n",
                        "accounts_csv: users.csv\n")
    (tmp_path / "spec.yaml").write_text(text, encoding="utf-8")
    return tmp_path / "spec.yaml"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_parallel_build_is_byte_identical_to_serial(tmp_path: Path) -> None:
    spec = _csv_spec(tmp_path, 3 * CHUNK + 5)  # several chunks, so the process pool is really used
    serial = build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "serial", jobs=1))
    parallel = build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "parallel", jobs=2))
    assert serial.accounts == parallel.accounts == 3 * CHUNK + 5
    assert _tree(tmp_path / "serial") == _tree(tmp_path / "parallel")
    manifest = json.loads((tmp_path / "parallel" / "manifest.json").read_text())
    assert [e["account"] for e in manifest["files"]] == [f"user{i}@esempio.it" for i in range(3 * CHUNK + 5)]


def test_zip_is_reproducible_and_equals_the_folder(tmp_path: Path) -> None:
    spec = _csv_spec(tmp_path, 3)
    build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "out", zip=tmp_path / "a.zip"))
    build(prepare(load_spec(spec)), BuildOptions(zip=tmp_path / "b.zip", jobs=2))
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.zip") as archive:
        members = {i.filename: archive.read(i) for i in archive.infolist()}
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert members == _tree(tmp_path / "out")


def test_zip_with_a_password_is_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MP_PW", "secret")
    (tmp_path / "spec.yaml").write_text(BASE + "passwords:\n  include: true\n  from_env: MP_PW\n")
    build(prepare(load_spec(tmp_path / "spec.yaml")), BuildOptions(zip=tmp_path / "p.zip"))
    assert stat.S_IMODE((tmp_path / "p.zip").stat().st_mode) == 0o600
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
    assert modes["mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig"] == 0o600


def test_per_target_layout_groups_files_by_kind(tmp_path: Path) -> None:
    spec = _csv_spec(tmp_path, 2)
    build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "out", layout="per-target"))
    assert sorted(_tree(tmp_path / "out")) == [
        "apple/mobileconfig/user0@esempio.it.mobileconfig", "apple/mobileconfig/user1@esempio.it.mobileconfig",
        "manifest.json"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["layout"] == "per-target"
    assert manifest["files"][0] | {"sha256": "-", "bytes": 0} == {
        "account": "user0@esempio.it", "name": "Utente 0", "target": "apple", "kind": "mobileconfig",
        "path": "apple/mobileconfig/user0@esempio.it.mobileconfig", "sha256": "-", "bytes": 0,
        "media_type": "application/x-apple-aspen-config"}


def test_failure_in_a_late_csv_row_names_the_line_and_writes_nothing(tmp_path: Path) -> None:
    spec = _csv_spec(tmp_path, 2 * CHUNK, bad_row=2 * CHUNK - 3)
    with pytest.raises(SpecError) as info:
        build(prepare(load_spec(spec)), BuildOptions(out=tmp_path / "out", jobs=2))
    [problem] = info.value.problems
    assert str(problem).startswith(f"{tmp_path / 'users.csv'}:{2 * CHUNK - 1}:")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml", "users.csv"]


def test_keep_going_writes_the_valid_accounts_and_lists_the_rest(tmp_path: Path) -> None:
    spec = _csv_spec(tmp_path, 5, bad_row=2)
    result = CliRunner().invoke(main, ["build", str(spec), "--out", str(tmp_path / "out"), "--keep-going"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 invalid account(s) (--keep-going):" in result.output
    assert f"error: {tmp_path / 'users.csv'}:4:10: 'user2@esempio' is not in the provider's domains" in result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["accounts"] == 4
    assert manifest["skipped"] == 1  # a script can tell a partial build from the manifest, not only from stderr
    assert "user2@esempio" not in {e["account"] for e in manifest["files"]}
    result = CliRunner().invoke(main, ["build", str(_csv_spec(tmp_path, 5)), "--out", str(tmp_path / "out"),
                                       "--keep-going", "-q"])
    assert result.exit_code == 0 and "skipped" not in json.loads((tmp_path / "out" / "manifest.json").read_text())


def test_kinds_build_only_the_files_asked_for(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    result = CliRunner().invoke(main, ["build", str(EXAMPLES / "provider-pop3.yaml"), "--out", str(tmp_path / "o"),
                                       "--kinds", "autodiscover-xml,autoconfig-xml", "--quiet"])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*") if p.is_file()) == [
        "domains/esempio.it/config-v1.1.xml", "manifest.json", "mario.rossi@esempio.it/outlook/autodiscover.xml"]
    golden = Path(__file__).parent / "golden" / "provider-pop3"
    for rel in ("domains/esempio.it/config-v1.1.xml", "mario.rossi@esempio.it/outlook/autodiscover.xml"):
        assert (tmp_path / "o" / rel).read_bytes() == (golden / rel).read_bytes()


def test_unknown_kind_and_conflicting_only_are_refused(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    spec = str(EXAMPLES / "provider-pop3.yaml")
    # Both are invalid input, as a spec error is: exit 2 (1 is a build that failed), nothing written.
    result = CliRunner().invoke(main, ["build", spec, "--out", str(tmp_path / "o"), "--kinds", "plist"])
    assert result.exit_code == 2
    assert "Error: Invalid value for '--kinds': unknown kind plist: choose from mobileconfig" in result.output
    result = CliRunner().invoke(main, ["build", spec, "--out", str(tmp_path / "o"), "--kinds", "prf",
                                       "--only", "apple"])
    assert result.exit_code == 2 and not (tmp_path / "o").exists()
    assert "error: --kinds prf needs the targets outlook, which --only leaves out" in result.output


@pytest.mark.parametrize(("options", "error"), [
    (["--kinds", "mobileconfig-signed"], "error: --kinds mobileconfig-signed: this build makes no such file — it is "
     "made with a signing identity: give --sign-cert and --sign-key (or set targets.apple.signing)"),
    (["--kinds", "mobileconfig-mdm"], "error: --kinds mobileconfig-mdm: this build makes no such file — it is made "
     "by --mdm CONSOLE: add it"),
    (["--kinds", "mobileconfig", "--mdm", "jamf"], "error: --kinds mobileconfig: this build makes no such file — "
     "--mdm makes only mobileconfig-mdm: drop --mdm or ask for that kind"),
    (["--kinds", "guide-qr,guide-html"], "error: --kinds guide-qr: this build makes no such file — the code links "
     "to the service: give --base-url (or set delivery.base_url)"),
])
def test_a_kind_this_build_cannot_make_is_refused_and_the_output_kept(tmp_path: Path, options: list[str],
                                                                     error: str) -> None:
    """Such a build made no file, exited 0, and so removed every file of the output it replaced."""
    spec, out = str(_csv_spec(tmp_path, 3)), tmp_path / "out"
    assert CliRunner().invoke(main, ["build", spec, "--out", str(out), "-q"]).exit_code == 0
    before = _tree(out)
    result = CliRunner().invoke(main, ["build", spec, "--out", str(out), "-q", *options])
    assert result.exit_code == 2  # invalid input (the options), as a spec error
    assert error in result.output.splitlines()
    assert _tree(out) == before and len(before) > 3


@pytest.mark.parametrize("into", ["out", "zip"])
def test_accounts_stream_memory_does_not_grow_with_the_list(tmp_path: Path, into: str) -> None:
    """Python heap peak of a build, 500 vs 2,500 accounts: only the duplicate check may grow (~130 bytes
    per address). Holding every mailbox (a bug this test caught once) grows it by ~600 bytes per account;
    zipfile's ZipInfo per member, kept for the central directory, by ~500 bytes per file."""
    import tracemalloc

    peaks = []
    for n in (500, 2500):
        folder = tmp_path / str(n)
        folder.mkdir()
        spec = _csv_spec(folder, n)
        plan = prepare(load_spec(spec), ["apple"])
        tracemalloc.start()
        build(plan, BuildOptions(out=folder / "out", jobs=1) if into == "out" else
              BuildOptions(zip=folder / "p.zip", jobs=1))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] - peaks[0] < 2000 * 300, f"heap peak grew {(peaks[1] - peaks[0]) / 2000:.0f} bytes per account"


def test_zip_of_more_members_than_the_classic_format_counts_reads_back(tmp_path: Path) -> None:
    """70,000 members need the zip64 end records (the classic count field stops at 65,535); names in UTF-8,
    modes and a streamed member of unknown size read back with zipfile and, where installed, unzip."""
    from generator.zipwriter import ZipWriter

    writer = ZipWriter(tmp_path / "big.zip", (1980, 1, 1, 0, 0, 0))
    for i in range(70_000):
        writer.add(f"a/{i}@bücher.example", f"file {i}".encode(), 0o100600 if i % 2 else 0o100644)
    writer.add_stream("manifest.json", (b"x" * 100_000 for _ in range(3)), 0o100644)
    writer.close()
    with zipfile.ZipFile(tmp_path / "big.zip") as archive:
        infos = archive.infolist()
        assert len(infos) == 70_001 and archive.testzip() is None
        assert infos[69_999].filename == "a/69999@bücher.example" and archive.read(infos[69_999]) == b"file 69999"
        assert [i.external_attr >> 16 for i in infos[:2]] == [0o100644, 0o100600]
        assert infos[-1].date_time == (1980, 1, 1, 0, 0, 0) and archive.read("manifest.json") == b"x" * 300_000
    if shutil.which("unzip"):
        checked = subprocess.run(["unzip", "-tq", str(tmp_path / "big.zip")], capture_output=True, text=True,
                                 check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize("passwords", [True, False])
def test_the_manifest_is_as_secret_as_the_files_it_hashes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          passwords: bool) -> None:
    """A profile's sha256 and the spec are all it takes to test password guesses offline: with a password in
    the build, manifest.json is 0600 in the folder and in the zip, like the files it lists."""
    monkeypatch.setenv("MP_PW", "Welcome1!")
    extra = "passwords:\n  include: true\n  from_env: MP_PW\n" if passwords else ""
    (tmp_path / "spec.yaml").write_text(BASE + extra)
    build(prepare(load_spec(tmp_path / "spec.yaml")), BuildOptions(out=tmp_path / "out", zip=tmp_path / "p.zip"))
    expected = 0o600 if passwords else 0o644 & ~_umask()
    assert stat.S_IMODE((tmp_path / "out" / "manifest.json").stat().st_mode) == expected
    with zipfile.ZipFile(tmp_path / "p.zip") as archive:
        assert (archive.getinfo("manifest.json").external_attr >> 16) & 0o777 == (0o600 if passwords else 0o644)
    entry = json.loads((tmp_path / "out" / "manifest.json").read_text())["files"][0]
    profile = (tmp_path / "out" / entry["path"]).read_bytes()
    assert (b"Welcome1!" in profile) == passwords and entry.get("secret", False) == passwords
    assert hashlib.sha256(profile).hexdigest() == entry["sha256"]  # what a reader of the manifest could test


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(("umask", "folder", "file"), [("000", 0o755, 0o644), ("077", 0o700, 0o600)])
def test_others_may_only_read_an_output_whatever_the_umask(tmp_path: Path, umask: str, folder: int, file: int) -> None:
    """Under umask 000 the folders were 0777 and a zip 0666: any local user could swap a profile before it was
    mailed or served. Files were 0644 already; a stricter umask still applies to everything."""
    (tmp_path / "spec.yaml").write_text(BASE.replace("build: [apple]", "build: [apple, thunderbird, guide]"))
    out, bundle = tmp_path / "out", tmp_path / "p.zip"
    command = f'umask {umask} && exec "$0" -m generator build "$1" --out "$2" --zip "$3" -q -j 2'
    run = subprocess.run(["sh", "-c", command, sys.executable, str(tmp_path / "spec.yaml"), str(out), str(bundle)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert {m for p, m in modes.items() if (tmp_path / p).is_dir()} == {folder}
    assert {m for p, m in modes.items() if (tmp_path / p).is_file()} == {file}
    assert "out/domains/esempio.it/guide" in modes  # a folder two levels below one made first
    assert stat.S_IMODE(bundle.stat().st_mode) == file


def test_a_rebuild_keeps_the_output_folders_mode_and_group(tmp_path: Path) -> None:
    """`chgrp www-data out; chmod 750 out` (for the web server that serves it) was undone by every rebuild:
    the new folder took the umask's mode and the builder's group."""
    (tmp_path / "spec.yaml").write_text(BASE)
    out = tmp_path / "out"

    def build() -> None:
        result = CliRunner().invoke(main, ["build", str(tmp_path / "spec.yaml"), "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output

    build()
    assert stat.S_IMODE(out.stat().st_mode) == 0o755 & ~_umask()
    # A group this user may give: root any (a gid needs no name), others one they are a member of.
    others = [4242] if os.geteuid() == 0 else [g for g in os.getgroups() if g != out.stat().st_gid]
    group = others[0] if others else out.stat().st_gid
    os.chown(out, -1, group)
    out.chmod(0o2750)
    build()
    assert (stat.S_IMODE(out.stat().st_mode), out.stat().st_gid) == (0o2750, group)
    out.chmod(0o777)  # never writable by others, whatever the old folder allowed
    build()
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
