"""The commit of a build is crash-safe, proven by fault injection.

strace kills the build (SIGKILL) at every rename, unlink and rmdir it makes, one run per system call, and
after each kill `--out` must hold either the complete old or the complete new build; the next run must
finish the job (new output in place, the zip too, nothing left beside them). The same again with the
kernel's atomic exchange made to fail (strace injects EINVAL into renameat2), which forces the two-rename
fallback: there a kill between the renames may leave `--out` missing, and the journal must let the next run
complete it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import interruptible, require_binary

pytestmark = pytest.mark.strace

SPEC = """\
provider: {{id: esempio.it, display_name: Esempio, domains: [esempio.it]}}
incoming: {{protocol: imap, host: imap.esempio.it, port: 993, security: ssl}}
outgoing: {{host: smtp.esempio.it, port: 465, security: ssl}}
targets: {{build: [apple]}}
accounts:
  - {{name: {name}, email: mario@esempio.it}}
  - {{name: Anna, email: anna@esempio.it}}
"""
SYSCALLS = ("rename", "renameat", "renameat2", "unlink", "unlinkat", "rmdir")
ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # no .pyc renames in the counts


def _build(spec: Path, out: Path, zip_path: Path, strace: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "generator", "build", str(spec), "--out", str(out), "--zip", str(zip_path),
           "-j", "1", "-q"]
    return subprocess.run([*(strace or []), *cmd], capture_output=True, text=True, env=ENV, timeout=120, check=False,
                          preexec_fn=interruptible)


def _tree(folder: Path) -> dict[str, bytes] | None:
    if not folder.exists():
        return None
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Old and new builds, made once: the trees and zips every injected run is compared with."""
    root = tmp_path_factory.mktemp("states")
    old_spec, new_spec = root / "old.yaml", root / "new.yaml"
    old_spec.write_text(SPEC.format(name="Mario"), encoding="utf-8")
    new_spec.write_text(SPEC.format(name="Mario Rossi"), encoding="utf-8")
    for name, spec in (("old", old_spec), ("new", new_spec)):
        result = _build(spec, root / name, root / f"{name}.zip")
        assert result.returncode == 0, result.stderr
    old, new = _tree(root / "old"), _tree(root / "new")
    assert old != new
    return {"root": root, "new_spec": new_spec, "old": old, "new": new,
            "old_zip": _zip(root / "old.zip"), "new_zip": _zip(root / "new.zip")}


def _reset(work: Path, states: dict[str, object]) -> tuple[Path, Path]:
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    root = states["root"]
    assert isinstance(root, Path)
    shutil.copytree(root / "old", work / "out")
    shutil.copy(root / "old.zip", work / "bundle.zip")
    return work / "out", work / "bundle.zip"


def _count(strace: str, states: dict[str, object], work: Path, extra: list[str]) -> dict[str, int]:
    out, zip_path = _reset(work, states)
    log = work.parent / "count.log"
    spec = states["new_spec"]
    assert isinstance(spec, Path)
    result = _build(spec, out, zip_path, [strace, "-f", "-qq", "-o", str(log), "-e", f"trace={','.join(SYSCALLS)}",
                                          *extra])
    assert result.returncode == 0, result.stderr
    calls = [m[1] for m in re.finditer(r"^(?:\d+\s+)?(\w+)\(", log.read_text(), re.MULTILINE)]
    return {name: calls.count(name) for name in SYSCALLS}


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-rename-fallback"])
def test_kill_at_every_rename_and_unlink_leaves_old_or_new(tmp_path: Path, states: dict[str, object],
                                                           exchange: bool) -> None:
    strace = require_binary("strace", "strace")
    no_exchange = [] if exchange else ["-e", "inject=renameat2:error=EINVAL"]
    work = tmp_path / "work"
    counts = _count(strace, states, work, no_exchange)
    assert counts["renameat2"] >= (1 if exchange else 0) and sum(counts.values()) >= 4, counts
    spec = states["new_spec"]
    assert isinstance(spec, Path)
    kills = 0
    for name, total in counts.items():
        if not exchange and name == "renameat2":
            continue  # every renameat2 fails there (injected EINVAL): it changes nothing on disk
        for n in range(1, total + 1):
            out, zip_path = _reset(work, states)
            inject = ["-e", f"inject={name}:signal=SIGKILL:when={n}"]
            killed = _build(spec, out, zip_path, [strace, "-f", "-qq", "-o", "/dev/null", *no_exchange, *inject])
            assert killed.returncode != 0, f"{name}#{n} was not killed: {killed.stderr}"
            kills += 1
            tree = _tree(out)
            if exchange:
                assert tree in (states["old"], states["new"]), f"kill at {name}#{n}: --out is neither build"
            else:
                assert tree in (states["old"], states["new"], None), f"kill at {name}#{n}: --out is a mix"
            assert _zip(zip_path) in (states["old_zip"], states["new_zip"]), f"kill at {name}#{n}: zip broken"
            # The next run completes (or redoes) the build: new output, new zip, nothing left beside them.
            again = _build(spec, out, zip_path, [strace, "-f", "-qq", "-o", "/dev/null", *no_exchange])
            assert again.returncode == 0, again.stderr
            assert _tree(out) == states["new"], f"after kill at {name}#{n} and a re-run"
            assert _zip(zip_path) == states["new_zip"]
            assert sorted(p.name for p in work.iterdir()) == ["bundle.zip", "out"], f"leftovers after {name}#{n}"
    assert kills >= 6


def test_ctrl_c_at_every_rename_and_unlink_says_what_holds(tmp_path: Path, states: dict[str, object]) -> None:
    """Ctrl-C (SIGINT) at each rename and unlink: either the run says "interrupted: nothing was written" and
    the old output and zip are there, or it finished and the new ones are, never --out new and the zip old
    (a KeyboardInterrupt between the exchange and the zip's rename did that, and said nothing was written)."""
    strace = require_binary("strace", "strace")
    work = tmp_path / "work"
    counts = _count(strace, states, work, [])
    spec = states["new_spec"]
    assert isinstance(spec, Path)
    outcomes = set()
    for name, total in counts.items():
        for n in range(1, total + 1):
            out, zip_path = _reset(work, states)
            inject = ["-e", f"inject={name}:signal=SIGINT:when={n}"]
            run = _build(spec, out, zip_path, [strace, "-f", "-qq", "-o", "/dev/null", *inject])
            assert "Traceback" not in run.stderr, run.stderr
            state = "new" if run.returncode == 0 else "old"
            assert run.returncode in (0, 130), f"{name}#{n}: {run.stderr}"
            if state == "old":
                assert "interrupted: nothing was written" in run.stderr
            assert _tree(out) == states[state], f"Ctrl-C at {name}#{n}: --out is not the {state} build"
            assert _zip(zip_path) == states[f"{state}_zip"], f"Ctrl-C at {name}#{n}: the zip is not the {state} one"
            outcomes.add(state)
            again = _build(spec, out, zip_path)
            assert again.returncode == 0, again.stderr
            assert sorted(p.name for p in work.iterdir()) == ["bundle.zip", "out"], f"leftovers after {name}#{n}"
    assert outcomes == {"old", "new"}
