"""Golden files: every example built with every target, stored under tests/golden/<example>/.

`make golden` (python -m tests.golden --update) rewrites them; review the diff before committing.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from generator.build import build, prepare
from generator.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def build_example(spec: Path, out: Path) -> None:
    # Relative spec path, so the manifest and messages do not depend on where the checkout lives.
    loaded = load_spec(spec.relative_to(ROOT))
    build(prepare(loaded), out)


def update() -> None:
    for spec in EXAMPLES:
        target = GOLDEN / spec.stem
        if target.exists():
            shutil.rmtree(target)
        build_example(spec, target)
        print(f"updated {target.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python -m tests.golden --update")
    update()
