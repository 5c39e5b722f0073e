"""The wheel carries every template and the Apple schema data (a checkout is not the only way to install)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import ROOT


def test_wheel_contains_every_template(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True)
    [wheel] = tmp_path.glob("mailprofile-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    templates = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "templates").rglob("*.j2"))
    assert templates
    missing = [t for t in templates if f"generator/{t}" not in names]
    assert missing == []
    assert "generator/data/apple_schema.json" in names and "generator/data/APPLE-LICENSE.txt" in names
    assert "generator/py.typed" in names
    # Guides and messages need the compiled catalogs at run time (Babel only compiles them, in `make i18n`).
    for language in ("en", "it"):
        assert f"generator/locale/{language}/LC_MESSAGES/mailprofile.mo" in names
