"""Every example, built with every target, is byte-identical to its golden copy (and to itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.golden import EXAMPLES, GOLDEN, ROOT, build_example


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.stem for s in EXAMPLES])
def test_example_matches_golden(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    build_example(spec, out)
    got, want = _tree(out), _tree(GOLDEN / spec.stem)
    assert sorted(got) == sorted(want), "file list differs from tests/golden (run make golden and review)"
    for path, data in got.items():
        assert data == want[path], f"{path} differs from tests/golden/{spec.stem}/{path}"


@pytest.mark.parametrize("spec", EXAMPLES, ids=[s.stem for s in EXAMPLES])
def test_build_is_deterministic_across_processes(spec: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process, another hash seed, another time zone: the same bytes."""
    monkeypatch.chdir(ROOT)
    build_example(spec, tmp_path / "a")
    env = {**os.environ, "PYTHONHASHSEED": "4242", "TZ": "Pacific/Kiritimati"}
    subprocess.run([sys.executable, "-m", "generator", "build", str(spec.relative_to(ROOT)), "--out",
                    str(tmp_path / "b"), "--quiet"], check=True, env=env, cwd=ROOT, capture_output=True)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
