"""Where a build lands: a folder swapped in by rename, and/or a deterministic zip. Both are atomic: until
`commit()` nothing is visible at the destination, and `abort()` leaves the previous output as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from generator.errors import BuildError

Status = Literal["created", "unchanged", "changed"]
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: fixed, so archives are reproducible


class Sink:
    def add(self, path: str, data: bytes, secret: bool) -> Status | None:
        raise NotImplementedError

    def add_stream(self, path: str, chunks: Iterable[bytes]) -> None:
        raise NotImplementedError

    def removed(self) -> Iterator[str]:
        return iter(())

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class DirSink(Sink):
    """Writes into a temporary folder beside `out`, then replaces `out` with two renames."""

    def __init__(self, out: Path, manifest: str) -> None:
        if out.exists() and not out.is_dir():
            raise BuildError(f"{out} exists and is not a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / manifest).is_file():
            raise BuildError(f"refusing to replace {out}: it is not empty and has no {manifest}, so it is not a "
                             "mailprofile output; choose another --out folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.manifest = manifest
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        self.fresh = not out.exists()  # nothing to compare with: every file is created
        self._last_dir = ""  # files come grouped by folder; remember the last one made

    def _open(self, path: str, secret: bool) -> int:
        dest = f"{self.tmp}/{path}"
        folder = dest.rpartition("/")[0]
        if folder != self._last_dir:
            os.makedirs(folder, exist_ok=True)
            self._last_dir = folder
        try:
            # Files that carry a password are created 0600 from the start: no window in which others can read.
            return os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
        except FileExistsError:
            raise BuildError(f"two outputs share the path {path}") from None

    def add(self, path: str, data: bytes, secret: bool) -> Status:
        fd = self._open(path, secret)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once, but write() may legally take less
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        if self.fresh:
            return "created"
        old = self.out / path
        if not old.is_file():
            return "created"
        return "unchanged" if _same(old, data) else "changed"

    def add_stream(self, path: str, chunks: Iterable[bytes]) -> None:
        with os.fdopen(self._open(path, False), "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)

    def removed(self) -> Iterator[str]:
        """Files of the previous output that this build does not write again."""
        if not self.out.is_dir():
            return
        for root, dirs, files in os.walk(self.out):
            dirs.sort()
            for name in sorted(files):
                rel = (Path(root) / name).relative_to(self.out).as_posix()
                if rel != self.manifest and not (self.tmp / rel).exists():
                    yield rel

    def commit(self) -> None:
        os.chmod(self.tmp, 0o777 & ~_umask())
        if not self.out.exists():
            os.rename(self.tmp, self.out)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old-", dir=self.out.parent))
        os.rmdir(old)
        os.rename(self.out, old)
        try:
            os.rename(self.tmp, self.out)
        except OSError:
            os.rename(old, self.out)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def _same(path: Path, data: bytes) -> bool:
    if path.stat().st_size != len(data):
        return False
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


class ZipSink(Sink):
    """A reproducible zip: fixed timestamps, members in build order, Unix modes kept (0600 for secrets)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.secret = False

    def _info(self, path: str, secret: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(path, date_time=ZIP_EPOCH)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.create_system = 3  # Unix, so the mode below is honoured by unzip
        info.external_attr = ((0o100600 if secret else 0o100644) & 0xFFFF) << 16
        return info

    def add(self, path: str, data: bytes, secret: bool) -> None:
        self.secret |= secret
        self.zip.writestr(self._info(path, secret), data)
        return None

    def add_stream(self, path: str, chunks: Iterable[bytes]) -> None:
        with self.zip.open(self._info(path, False), "w", force_zip64=True) as handle:
            for chunk in chunks:
                handle.write(chunk)

    def commit(self) -> None:
        self.zip.close()
        # An archive that holds a password is as secret as the file inside it.
        os.chmod(self.tmp, 0o600 if self.secret else 0o666 & ~_umask())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.zip.close()
        self.tmp.unlink(missing_ok=True)
