"""Shared test helpers.

Real-consumer tests (Thunderbird, hivex, OpenSSL) call `require(...)`: locally a missing tool is a skip with
a visible reason; with MAILPROFILE_REQUIRE_REAL=1 (set by .ci/run) it is a failure, so CI cannot pass
without running them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
REQUIRE_REAL = os.environ.get("MAILPROFILE_REQUIRE_REAL") == "1"


def require(available: bool, reason: str) -> None:
    """Skip (locally) or fail (CI) when a real consumer is not installed."""
    if available:
        return
    if REQUIRE_REAL:
        pytest.fail(f"{reason} (MAILPROFILE_REQUIRE_REAL=1 turns this skip into a failure)")
    pytest.skip(reason)


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} not installed (Debian package {package})")
    assert path is not None
    return path


def zbar(png: bytes, folder: Path, what: str = "the image") -> bytes:
    """What zbar (zbarimg, Debian zbar-tools) reads in the PNG `png`, as bytes; a test failure if it finds no
    code. The file goes into `folder`, named by its content."""
    zbarimg = require_binary("zbarimg", "zbar-tools")
    path = folder / f"zbar-{hashlib.sha256(png).hexdigest()[:12]}.png"
    path.write_bytes(png)
    result = subprocess.run([zbarimg, "-q", "--raw", "-Sbinary", str(path)], capture_output=True, check=False)
    assert result.returncode == 0, f"zbar found no QR code in {what}: {result.stderr!r}"
    return result.stdout.rstrip(b"\n")


def interruptible() -> None:
    """preexec_fn for a child a test interrupts as a terminal's Ctrl-C would: SIGINT at its default, as in a
    foreground job. A shell starts background jobs (`make test &`, a CI runner's) with SIGINT ignored, Python
    then installs no KeyboardInterrupt handler, and the child would go on as if never interrupted."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
