"""Where a build lands: a folder and/or a deterministic zip, committed together or not at all.

Before the first byte is written every destination is checked (a folder is replaced only if it is empty or
a mailprofile output, a zip only if it is a mailprofile bundle, never one that holds an input of the build
or lies inside the other destination), locked against a concurrent build, and cleared of what an earlier,
killed build of ours left behind. The commit is crash-safe:

1. a journal beside the folder names the new tree (by inode) and the zip's temporary file;
2. the new tree takes the folder's place with one `renameat2(RENAME_EXCHANGE)`: at every instant the path
   holds either the complete old or the complete new output (where the kernel or file system cannot
   exchange, two renames, and the journal lets the next run finish the second);
3. the zip is renamed into place; 4. the journal is removed; 5. the old tree is deleted.

A run killed anywhere in 1-5 is completed (or, before 2, undone) by the next build to the same folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from generator import __version__
from generator.errors import BuildError
from generator.zipwriter import ZipWriter

Status = Literal["created", "unchanged", "changed"]
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: fixed, so archives are reproducible
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1  # bump when the manifest's meaning changes; outputs of other formats are not replaced
GENERATOR = f"mailprofile {__version__}"
_GENERATOR_RE = re.compile(r"^mailprofile \d")
WORK_TAG = ".mailprofile-"  # every file or folder a build makes beside a destination: .<name>.mailprofile-*
PARTIAL_MARK = ".mailprofile-partial"  # inside a tree being built; removed just before the commit
_MANIFEST_HEAD_MAX = 1 << 16  # the manifest's first line (its head) is far smaller
_REMOVED_BATCH = 1 << 16  # files no longer written, checked against the old manifest this many at a time


# What others may do with an output is read it, whatever the umask: a world-writable folder (umask 000) let
# any local user swap a profile before it is mailed or served. A stricter umask (077) still applies.
FILE_MODE, FOLDER_MODE = 0o644, 0o755


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _work_name(dest: Path, tag: str) -> Path:
    """.<name>.mailprofile-<tag> beside `dest`, short enough for any file system (names of 255 bytes)."""
    name = dest.name
    if len(name.encode()) > 180:
        name = name.encode()[:160].decode(errors="ignore") + "~" + hashlib.sha256(dest.name.encode()).hexdigest()[:8]
    return dest.parent / f".{name}{WORK_TAG}{tag}"


def _is_work_path(path: Path, dest: Path) -> bool:
    """Whether `path` is one of the work folders a build makes beside `dest` (.<name>.mailprofile-*)."""
    return path.parent == dest.parent and path.name.startswith(_work_name(dest, "").name) and ".." not in path.parts


# --- ownership ---------------------------------------------------------------------------------------------

def manifest_head(text: str) -> dict[str, Any] | None:
    """The head of a mailprofile manifest (its first line, which ends with '"files": ['), else None."""
    first = text.split("\n", 1)[0]
    for candidate in (first + "]}", text):
        try:
            head = json.loads(candidate)
        except ValueError:
            continue
        return head if isinstance(head, dict) else None
    return None


def is_our_manifest(head: dict[str, Any] | None) -> bool:
    """Written by mailprofile, in a format this version understands (no "format": outputs from before 0.2)."""
    if head is None or not isinstance(head.get("generator"), str) or not _GENERATOR_RE.match(head["generator"]):
        return False
    return head.get("format", 0) in (0, MANIFEST_FORMAT)


def _read_head(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            if not os.path.isfile(path):
                return None
            data = handle.read(_MANIFEST_HEAD_MAX)
    except OSError:
        return None
    return manifest_head(data.decode("utf-8", errors="replace"))


def manifest_paths(path: Path) -> Iterator[str]:
    """The paths a mailprofile manifest lists, read one entry a line (as every version writes it)."""
    try:
        handle = path.open("rb")
    except OSError:
        return
    with handle:
        handle.readline()  # the head
        for line in handle:
            try:
                entry = json.loads(line.rstrip().rstrip(b","))
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                yield entry["path"]


def is_our_folder(folder: Path) -> bool:
    return (folder / MANIFEST).is_file() and is_our_manifest(_read_head(folder / MANIFEST))


def is_our_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive, archive.open(MANIFEST) as member:
            data = member.read(_MANIFEST_HEAD_MAX)
    except (OSError, KeyError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return is_our_manifest(manifest_head(data.decode("utf-8", errors="replace")))


# --- checks before the first byte --------------------------------------------------------------------------

def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_destinations(out: Path | None, zip_path: Path | None, inputs: Sequence[tuple[str, Path]]) -> None:
    """Refuse, before anything is written, every destination whose replacement could destroy data that is not
    a mailprofile output. `out` and `zip_path` are resolved paths; `inputs` are (what, path) the build reads."""
    if out is not None:
        if out.exists() and not out.is_dir():
            raise BuildError(f"--out {out} exists and is not a folder; choose a folder")
        if out.parent == out:
            raise BuildError(f"--out {out} is the root of the file system; choose a folder of its own")
        if os.path.ismount(out):
            raise BuildError(f"--out {out} is a mount point (a volume or bind mount), which the build cannot swap "
                             f"for the new output by a rename; write to a folder inside it, e.g. {out / 'profiles'}")
        if out.is_dir() and not _empty(out) and not is_our_folder(out):
            raise BuildError(f"refusing to replace {out}: it is not empty and has no {MANIFEST} written by "
                             "mailprofile, so it is not a mailprofile output; choose another --out folder")
        for what, path in inputs:
            if _inside(path, out):
                raise BuildError(f"{what} {path} is inside --out {out}, which the build replaces as a whole; move "
                                 "it out of that folder or choose another --out")
    if zip_path is not None:
        if out is not None and zip_path == out:
            raise BuildError(f"--zip and --out name the same path {out}; give the zip a file name of its own")
        if out is not None and _inside(zip_path, out):
            raise BuildError(f"--zip {zip_path} is inside --out {out}, which the build replaces as a whole; write "
                             "the zip somewhere else")
        if zip_path.is_dir():
            raise BuildError(f"--zip {zip_path} is a folder; give a file name such as {zip_path / 'profiles.zip'}")
        if os.path.ismount(zip_path):
            raise BuildError(f"--zip {zip_path} is a mount point (a file bind-mounted on its own), which the build "
                             "cannot replace by a rename; mount the folder that holds it and write there")
        if zip_path.exists() and not (zip_path.is_file() and is_our_zip(zip_path)):
            raise BuildError(f"refusing to replace {zip_path}: it is not a zip written by mailprofile; choose "
                             "another --zip file")
        for what, path in inputs:
            if path == zip_path:
                raise BuildError(f"--zip {zip_path} is the {what}; choose another file name")


# --- locks, journal, leftovers -----------------------------------------------------------------------------

def open_work_file(path: Path, flags: int) -> int:
    """Open one of the build's fixed-name files beside a destination (lock, journal), never through what
    someone else put there under that name: a symbolic or hard link to another file (the lock is truncated,
    the journal overwritten: with a link, the file linked to would be), a FIFO or a device. Whoever can
    write in the destination's folder can plant one; the build may run as root."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise BuildError(f"{path} is a symbolic link, where mailprofile keeps a plain file of its own; remove it "
                         "(and find out who made it: it would make the build write elsewhere)") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        what = "has other hard links" if stat.S_ISREG(info.st_mode) else "is not a regular file"
        raise BuildError(f"{path} {what}, where mailprofile keeps a plain file of its own; remove it (and find out "
                         "who made it: it would make the build write elsewhere)")
    return fd


class Lock:
    """An exclusive, non-blocking lock beside a destination (.<name>.mailprofile-lock): two builds into the
    same place never run at once. The file is removed on release; whoever locks it checks afterwards that
    the path still names the file it locked (else a releasing build removed it in between: try again), so
    at most one build holds the lock on the file that is there."""

    def __init__(self, dest: Path, role: str = "build") -> None:
        """role: 'build' (writes dest) or 'send' (reads dest, which a build must not replace meanwhile)."""
        self.path = _work_name(dest, "lock")
        while True:
            fd = open_work_file(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder, _, held_by = os.pread(fd, 32, 0).decode(errors="replace").strip().partition(" ")
                os.close(fd)
                if held_by == "send":
                    raise BuildError(f"a mailprofile send (process {holder or '?'}) is sending the messages in "
                                     f"{dest}; wait for it to finish (meanwhile a rebuild would change what it "
                                     "sends, a second send would repeat it)") from None
                raise BuildError(f"another mailprofile build (process {holder or '?'}) is writing to {dest}; wait "
                                 "for it to finish or choose another destination") from None
            try:
                same = os.lstat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)

    def release(self) -> None:
        if self.fd >= 0:
            self.path.unlink(missing_ok=True)  # still holding the lock: nobody else can be using this file
            os.close(self.fd)
            self.fd = -1


def _remove_tree(path: Path) -> None:
    """Delete a work folder so that, killed at any point, what remains still carries our mark (the mark goes
    last, then the empty folder): the next run can prove it ours and finish the job."""
    if not path.is_dir() or path.is_symlink():
        path.unlink(missing_ok=True)
        return
    mark = path / PARTIAL_MARK
    if os.path.lexists(mark) and not _is_plain_file(mark):
        with contextlib.suppress(OSError):  # a link planted in a look-alike folder: never written through
            os.unlink(mark)
    os.close(os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644))
    with os.scandir(path) as entries:
        for entry in list(entries):
            if entry.name != PARTIAL_MARK:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
    mark.unlink()
    os.rmdir(path)


def _take_access(new: Path, out: Path) -> None:
    """The new output folder gets the old one's mode and group (an admin's `chgrp www-data out; chmod 750 out`
    for the web server that serves it must survive a rebuild), never writable by others; a first build gets
    FOLDER_MODE less the umask. The group is kept where this user may set it (a member of it, or root)."""
    try:
        old = os.stat(out, follow_symlinks=False)
    except FileNotFoundError:
        os.chmod(new, FOLDER_MODE & ~_umask())
        return
    if old.st_gid != os.stat(new).st_gid:
        with contextlib.suppress(PermissionError):
            os.chown(new, -1, old.st_gid)
    os.chmod(new, stat.S_IMODE(old.st_mode) & ~0o022 & ~stat.S_ISUID)


def _is_plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def remove_leftovers(dest: Path) -> list[Path]:
    """Delete what a killed build of ours left beside `dest` (the caller holds the lock, so nothing of it is
    in use): folders named .<name>.mailprofile-* that carry our partial-build mark or our manifest. Anything
    else with a similar name is left alone."""
    prefix = _work_name(dest, "").name
    removed: list[Path] = []
    try:
        with os.scandir(dest.parent) as listing:
            entries = list(listing)
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
            continue
        path = Path(entry.path)
        if _empty(path):
            os.rmdir(path)
            removed.append(path)
        elif _is_plain_file(path / PARTIAL_MARK) or is_our_folder(path):
            _remove_tree(path)
            removed.append(path)
    return removed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """What a commit is about to do, so a run killed half-way can be finished by the next one."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.path = _work_name(out, "journal")

    def write(self, record: dict[str, Any]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        with os.fdopen(open_work_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w", encoding="utf-8") as handle:
            json.dump(record, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.out.parent)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)

    def recover(self) -> str | None:
        """Finish (or undo) a commit that a killed run left half-done; say what was done, None if nothing."""
        try:
            fd = open_work_file(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self.remove()
            return None
        with os.fdopen(fd, "rb") as handle:
            owner, data = os.fstat(fd).st_uid, handle.read(_MANIFEST_HEAD_MAX)
        if owner != os.geteuid():
            raise BuildError(f"{self.path} belongs to another user (uid {owner}), so no build of yours wrote it; it "
                             "names files to rename: remove it after checking who made it")
        try:
            record = json.loads(data.decode("utf-8"))
            new_inode = int(record["new_inode"])
            new = self.out.parent / str(record["new"])
            zip_tmp = Path(record["zip_tmp"]) if record.get("zip_tmp") else None
            zip_path = Path(record["zip"]) if record.get("zip") else None
        except (ValueError, KeyError, TypeError):
            self.remove()  # unreadable: written only partly, so no rename had happened yet
            return None
        if not _is_work_path(new, self.out) or (zip_tmp is None) != (zip_path is None) or (
                zip_tmp is not None and zip_path is not None
                and not (zip_tmp.name == "bundle.zip" and _is_work_path(zip_tmp.parent, zip_path))):
            raise BuildError(f"{self.path} names files that are not this build's work files; remove it after "
                             "checking who made it")
        try:
            current = os.stat(self.out, follow_symlinks=False).st_ino
        except FileNotFoundError:
            current = None
        if current is None and new.is_dir() and os.stat(new).st_ino == new_inode:
            os.rename(new, self.out)  # killed between the two renames of the fallback: finish it
            current = new_inode
        done = current == new_inode
        if done and zip_tmp is not None and zip_path is not None and zip_tmp.is_file():
            os.replace(zip_tmp, zip_path)
        self.remove()
        return "completed the commit of an interrupted build" if done else "undid an interrupted build"


# --- exchanging two paths ----------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2  # linux/fs.h
_libc: Any = None


def exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 with RENAME_EXCHANGE). False where the kernel, the C
    library or the file system cannot; raises OSError for real failures."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.renameat2  # noqa: B018 - glibc >= 2.28
        except (OSError, AttributeError):
            _libc = False
    if _libc is False:
        return False
    at_fdcwd = -100
    result = _libc.renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


# --- sinks -------------------------------------------------------------------------------------------------

class Sink:
    def add(self, path: str, data: bytes, secret: bool) -> Status | None:
        raise NotImplementedError

    def add_stream(self, path: str, chunks: Iterable[bytes], secret: bool = False) -> None:
        raise NotImplementedError

    def removed(self) -> Iterator[str]:
        return iter(())

    def abort(self) -> None:
        raise NotImplementedError


class DirSink(Sink):
    """Writes the new tree into .<out>.mailprofile-XXXXXXXX beside `out` (same file system, so the commit is
    a rename)."""

    def __init__(self, out: Path, manifest: str) -> None:
        self.out = out
        self.manifest = manifest
        self.tmp = Path(tempfile.mkdtemp(prefix=_work_name(out, "").name, dir=out.parent))
        (self.tmp / PARTIAL_MARK).touch()
        self.fresh = not out.exists()  # nothing to compare with: every file is created
        self._last_dir = self._last_parent = ""  # files come grouped by folder; remember the last made

    def _open(self, path: str, secret: bool) -> int:
        dest = f"{self.tmp}/{path}"
        folder = dest.rpartition("/")[0]
        if folder != self._last_dir:
            self._make(folder)
            self._last_dir = folder
        try:
            # Files that carry a password are created 0600 from the start: no window in which others can read.
            return os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else FILE_MODE)
        except FileExistsError:
            raise BuildError(f"two outputs share the path {path}") from None

    def _make(self, folder: str) -> None:
        """Files come grouped by folder, and an account's folders share a parent (<address>/apple,
        <address>/thunderbird, ...): one mkdir each for a new parent and a new folder, where makedirs would
        stat first, and fail a mkdir for every first folder of an account."""
        parent = folder.rpartition("/")[0]
        if parent != self._last_parent:
            try:
                os.mkdir(parent, FOLDER_MODE)
            except FileExistsError:
                pass
            except FileNotFoundError:  # makedirs gives the folders above the last one 0777 & ~umask
                for above in reversed(Path(parent).relative_to(self.tmp).parents[:-1]):
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(self.tmp / above, FOLDER_MODE)
                os.mkdir(parent, FOLDER_MODE)
            self._last_parent = parent
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, FOLDER_MODE)

    def add(self, path: str, data: bytes, secret: bool) -> Status:
        try:
            fd = self._open(path, secret)
            try:
                view = memoryview(data)
                while view:  # a regular file takes it all at once, but write() may legally take less
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except OSError as exc:
            raise _located(exc, f"{self.tmp}/{path}") from None
        if self.fresh:
            return "created"
        old = self.out / path
        if not old.is_file():
            return "created"
        return "unchanged" if _same(old, data) else "changed"

    def add_stream(self, path: str, chunks: Iterable[bytes], secret: bool = False) -> None:
        try:
            with os.fdopen(self._open(path, secret), "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
        except OSError as exc:
            raise _located(exc, f"{self.tmp}/{path}") from None

    def removed(self) -> Iterator[str]:
        """Files of the previous output that this build does not write again. Each must be listed in the
        previous manifest: one that is not was put there by someone else (a `git init` in the output, an
        .htaccess, notes), and the commit would delete it with the old tree, so the build stops first."""
        if not self.out.is_dir():
            return
        batch: list[str] = []
        for root, dirs, files in os.walk(self.out):
            dirs.sort()
            links = [d for d in dirs if os.path.islink(os.path.join(root, d))]  # walk does not enter these
            for name in sorted(files + links):
                rel = (Path(root) / name).relative_to(self.out).as_posix()
                if rel != self.manifest and not (self.tmp / rel).exists():
                    batch.append(rel)
                    if len(batch) >= _REMOVED_BATCH:  # checked in batches: memory stays flat on a layout change
                        yield from self._ours(batch)
                        batch = []
        yield from self._ours(batch)

    def _ours(self, paths: list[str]) -> list[str]:
        """`paths`, once every one is proven listed in the previous manifest; else a BuildError naming them."""
        if not paths:
            return paths
        unlisted = set(paths)
        for listed in manifest_paths(self.out / self.manifest):
            unlisted.discard(listed)
            if not unlisted:
                return paths
        examples = ", ".join(sorted(unlisted)[:3]) + (", ..." if len(unlisted) > 3 else "")
        raise BuildError(f"refusing to replace {self.out}: {len(unlisted)} file(s) in it are not in its {MANIFEST}, "
                         f"so mailprofile did not write them ({examples}); the build replaces the folder as a "
                         "whole: move them out of --out (keep a git repository around the output folder, not "
                         "inside it), or delete them if they are not needed")

    def abort(self) -> None:
        with contextlib.suppress(OSError):  # what is left carries our mark: the next run removes it
            _remove_tree(self.tmp)


class OutOfInodes(OSError):
    """ENOSPC on a file system that still has free blocks: it ran out of inodes."""

    def __init__(self, filename: str) -> None:
        super().__init__(errno.ENOSPC, "no free inodes left on the file system (df -i shows it; df -h may still "
                         "show free space)", filename)

    def __reduce__(self) -> tuple[type[OutOfInodes], tuple[str]]:  # raised in a worker, re-raised in the main
        return OutOfInodes, (str(self.filename),)


def _located(exc: OSError, path: str) -> OSError:
    """The same error, naming the file (os.write and zipfile report ENOSPC without one). ENOSPC with blocks
    to spare means the file system ran out of inodes (a tree of millions of small files does that): said
    so, since "No space left on device" next to a df -h with free space sends the admin the wrong way. Must
    be called where the error happens: once the build's work folder is removed, the inodes are free again."""
    filename = exc.filename if exc.filename is not None else path
    if exc.errno == errno.ENOSPC and _out_of_inodes(str(filename)):
        return OutOfInodes(str(filename))
    return exc if exc.filename is not None else OSError(exc.errno, exc.strerror, path)


def _out_of_inodes(path: str) -> bool:
    """Whether the file system holding `path` (or its nearest existing folder) has no inode left for us but
    still has free blocks."""
    folder = path
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        info = os.statvfs(folder or ".")
    except OSError:
        return False
    return info.f_files > 0 and info.f_favail == 0 and info.f_bavail > 0


def _same(path: Path, data: bytes) -> bool:
    if path.stat().st_size != len(data):
        return False
    return hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(data).digest()


class ZipSink(Sink):
    """A reproducible zip: fixed timestamps, members in build order, Unix modes kept (0600 for secrets).
    Written in a marked work folder beside the destination, renamed into place by the commit; its memory
    does not grow with the member count (generator/zipwriter.py)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.work = Path(tempfile.mkdtemp(prefix=_work_name(path, "").name, dir=path.parent))
        (self.work / PARTIAL_MARK).touch()
        self.tmp = self.work / "bundle.zip"
        self.zip = ZipWriter(self.tmp, ZIP_EPOCH)
        self.secret = False

    def add(self, path: str, data: bytes, secret: bool) -> None:
        self.secret |= secret
        try:
            self.zip.add(path, data, 0o100600 if secret else 0o100644)
        except OSError as exc:
            raise _located(exc, str(self.tmp)) from None
        return None

    def add_stream(self, path: str, chunks: Iterable[bytes], secret: bool = False) -> None:
        self.secret |= secret
        try:
            self.zip.add_stream(path, chunks, 0o100600 if secret else 0o100644)
        except OSError as exc:
            raise _located(exc, str(self.tmp)) from None

    def finish(self) -> None:
        try:
            self.zip.close()
        except OSError as exc:
            raise _located(exc, str(self.tmp)) from None
        # An archive that holds a password is as secret as the file inside it.
        os.chmod(self.tmp, 0o600 if self.secret else FILE_MODE & ~_umask())

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.zip.discard()
        with contextlib.suppress(OSError):  # what is left carries our mark: the next run removes it
            _remove_tree(self.work)


# --- the whole output of one build -------------------------------------------------------------------------

class Output:
    """Every destination of one build: checked, locked and cleaned before the first byte, committed together.

    Use as a context manager; `commit()` makes the build visible, leaving the block without it undoes it."""

    def __init__(self, out: Path | None, zip_path: Path | None, inputs: Sequence[tuple[str, Path]] = ()) -> None:
        if out is None and zip_path is None:
            raise BuildError("nowhere to write: give --out DIR, --zip FILE or both")
        self.out, self.zip_path = out, zip_path
        self.inputs = inputs
        self.locks: list[Lock] = []
        self.dir: DirSink | None = None
        self.zip: ZipSink | None = None
        self.notes: list[str] = []  # what recovery did, for the report
        self.committed = False
        self._old: Path | None = None

    def __enter__(self) -> Output:
        check_destinations(self.out, self.zip_path, self.inputs)
        try:
            for dest in (self.out, self.zip_path):
                if dest is not None:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self.locks.append(Lock(dest))
            if self.out is not None:
                note = Journal(self.out).recover()
                if note:
                    self.notes.append(f"{self.out}: {note}")
                check_destinations(self.out, self.zip_path, self.inputs)  # recovery may have changed it
            for dest in (self.out, self.zip_path):
                if dest is not None:
                    for path in remove_leftovers(dest):
                        self.notes.append(f"removed {path}, left by an interrupted build")
            if self.out is not None:
                self.dir = DirSink(self.out, MANIFEST)
            if self.zip_path is not None:
                self.zip = ZipSink(self.zip_path)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def sinks(self) -> list[Sink]:
        return [s for s in (self.dir, self.zip) if s is not None]

    def commit(self) -> None:
        if self.zip is not None:
            self.zip.finish()
        # From the journal to the last rename, Ctrl-C waits: a KeyboardInterrupt raised between two renames
        # left --out new and the zip old, and the run said "nothing was written". The steps take milliseconds.
        interrupted: list[int] = []
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))
        try:
            self._swap()
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
        if interrupted:
            raise KeyboardInterrupt  # now the new output is complete: the caller says so
        self._cleanup()

    def _swap(self) -> None:
        if self.dir is None:
            assert self.zip is not None
            os.replace(self.zip.tmp, self.zip_path)  # type: ignore[arg-type]
            self.committed = True
            return
        out, new = self.dir.out, self.dir.tmp
        _take_access(new, out)
        (new / PARTIAL_MARK).unlink()
        journal = Journal(out)
        journal.write({"new": new.name, "new_inode": os.stat(new).st_ino,
                       "zip_tmp": str(self.zip.tmp) if self.zip else None,
                       "zip": str(self.zip_path) if self.zip_path else None})
        try:
            if not out.exists():
                os.rename(new, out)
            elif not exchange(new, out):
                old = _work_name(out, "old")
                _remove_tree(old)
                os.rename(out, old)
                try:
                    os.rename(new, out)
                except OSError:
                    os.rename(old, out)
                    raise
                new = old
        except OSError:
            journal.remove()  # nothing was swapped: no commit for the next run to finish or undo
            raise
        if self.zip is not None:
            os.replace(self.zip.tmp, self.zip_path)  # type: ignore[arg-type]
        _fsync_dir(out.parent)
        journal.remove()
        self.committed = True
        self._old = new  # the old output, now at the temporary name (gone already if there was none)

    def _cleanup(self) -> None:
        if self._old is not None:
            _remove_tree(self._old)
        if self.zip is not None:
            _remove_tree(self.zip.work)

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            for sink in self.sinks:
                sink.abort()
        for lock in self.locks:
            lock.release()
