"""Writes that never leave a half-written file at the destination, and runs that never collide.

Every output is written to a temporary name beside it (``.<stem>.<8 chars><suffix>``) and
renamed onto it on success. A run holds an exclusive lock on the output's name while it
writes (``.<name>.lock`` beside it, an ``flock`` the kernel drops when the process dies,
even by ``kill -9``), so:

* a second run writing the same output at the same time fails with a clear message instead
  of silently replacing the first one's file;
* temporaries of that output found while holding the lock were left by a writer that is
  gone (killed), and are removed.

Outputs get the usual mode (0666 less the umask, folders 0777 less the umask), as any other
tool's would, whatever mode the library that wrote the temporary file gave it.

An output that cannot be written (no space, a file-size limit, a read-only disk, no
permission, a folder in the way) is a ``WriteError`` naming the output, never the temporary
name: ``check_writable`` refuses what it can before the work, ``writing`` and ``atomic_path``
word what the disk says during it. Every temporary file this process creates is recorded
until it is renamed or removed, so ``removing_leftovers`` (around each CLI command) removes
one that a signal arriving mid-cleanup (Ctrl-C during open, write, flush or rename) left.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from faceswap_gan.errors import FaceswapError

try:  # POSIX; elsewhere runs are not locked (the exists checks still apply)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

# What the system says when an output cannot be written, as the user should read it.
_WRITE_CAUSES = {
    errno.ENOSPC: "no space left on device; free some and run the same command again "
                  "(finished work is kept)",
    errno.EDQUOT: "disk quota exceeded; free some space and run the same command again "
                  "(finished work is kept)",
    errno.EFBIG: "file too large for the file system or the file-size limit (ulimit -f); "
                 "finished work is kept",
    errno.EROFS: "read-only file system; choose another output",
    errno.EACCES: "permission denied; choose another output",
    errno.EPERM: "permission denied; choose another output",
    errno.EISDIR: "it is a folder; choose another output name",
    errno.ENOTDIR: "a file is in the way of its folder",
    errno.ENAMETOOLONG: "the name is too long",
}


class WriteError(FaceswapError):
    """An output could not be written. What was there before is kept (the temporary file is
    removed), so the same command can run again once the cause is fixed; callers that clean
    up after bad input must not clean up after this."""


def write_error(dest: str | os.PathLike, error_number: int) -> WriteError:
    """The one wording of a failed write of ``dest``."""
    cause = _WRITE_CAUSES.get(error_number) or os.strerror(error_number).lower()
    return WriteError(f"cannot write {dest}: {cause}")


def is_write_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the system refusing a write (space, limits, permissions, a folder in
    the way), rather than a bug."""
    return isinstance(exc, OSError) and exc.errno in _WRITE_CAUSES


@contextlib.contextmanager
def writing(dest: str | os.PathLike) -> Iterator[None]:
    """Turn the system refusing a write inside the block into a WriteError naming ``dest``."""
    try:
        yield
    except OSError as exc:
        if not is_write_failure(exc):
            raise
        raise write_error(dest, exc.errno) from None


def check_writable(dest: str | os.PathLike, overwrite: bool = True,
                   source: str | os.PathLike | None = None) -> None:
    """Refuse, before any work, an output that could not be written: the input itself
    (``source``), a folder, an existing file without ``overwrite``, or a place where no file
    can be made (a file in the way of its folder, a read-only or unwritable folder)."""
    dest = Path(dest)
    if source is not None and dest.resolve() == Path(source).resolve():
        raise FaceswapError(f"the output {dest} is the input; choose another with -o")
    if dest.is_dir():
        raise write_error(dest, errno.EISDIR)
    if not overwrite and os.path.lexists(dest):
        raise FaceswapError(_exists_message(dest))
    folder = dest.parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent  # the folders that do not exist yet are made in the nearest one
    if not folder.is_dir():
        raise write_error(dest, errno.ENOTDIR)
    if not os.access(folder, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(folder).f_flag & os.ST_RDONLY
        raise write_error(dest, errno.EROFS if read_only else errno.EACCES)


# Temporary files of this process not yet renamed or removed -> the thread that made them.
_OWNED: dict[Path, int] = {}


def _own(path: Path) -> None:
    _OWNED[path] = threading.get_ident()


def _disown(path: Path) -> None:
    _OWNED.pop(path, None)


def remove_owned_temporaries() -> int:
    """Remove the temporary files this thread created and has not renamed or removed (a
    signal cut their cleanup short). Returns how many were removed."""
    me = threading.get_ident()
    removed = 0
    for path, owner in list(_OWNED.items()):
        if owner != me:
            continue  # another thread's writer may still be using it
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
        _disown(path)
    return removed


@contextlib.contextmanager
def removing_leftovers() -> Iterator[None]:
    """Around a whole command: however it ends, no temporary file of this thread stays. The
    removal itself runs with Ctrl-C and SIGTERM held off, so a second signal cannot cut it
    short; they are delivered once it is done."""
    try:
        yield
    finally:
        with _signals_held():
            remove_owned_temporaries()


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    main = threading.current_thread() is threading.main_thread()
    if not main or not hasattr(signal, "pthread_sigmask"):  # signals only reach the main thread
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_TOKEN = r"[a-z0-9_]{8}"  # the random part of a temporary name (also tempfile's mkstemp names)


def temporary_pattern(stem_regex: str, suffix: str) -> re.Pattern[str]:
    """The names of the temporary files of outputs whose stem matches ``stem_regex``."""
    return re.compile(rf"^\.(?:{stem_regex})\.{_TOKEN}{re.escape(suffix)}$")


def remove_temporaries(folder: str | os.PathLike, stem_regex: str, suffix: str) -> int:
    """Delete the temporaries of outputs in ``folder`` whose stem matches ``stem_regex``.

    Only call it while no writer of those outputs can be alive (holding their lock). Returns
    how many were removed.
    """
    pattern = temporary_pattern(stem_regex, suffix)
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if pattern.match(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


def _lock_path(dest: Path) -> Path:
    return dest.parent / f".{dest.name}.lock"


def _exists_message(dest: Path) -> str:
    return f"{dest} exists; use --force to replace it"


@contextlib.contextmanager
def output_lock(dest: str | os.PathLike, overwrite: bool = True) -> Iterator[None]:
    """Hold the exclusive claim on writing ``dest`` for the duration of the block.

    Raises FaceswapError when another process holds it, or (``overwrite=False``) when ``dest``
    exists. On entry, temporaries of ``dest`` left by killed runs are removed.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_write_failure(exc):
            raise write_error(dest, exc.errno) from None
        raise FaceswapError(f"cannot write in {dest.parent}: {exc.strerror}") from None
    lock = _lock_path(dest)
    fd = _acquire(lock, dest) if fcntl is not None else None
    try:
        if not overwrite and os.path.lexists(dest):
            raise FaceswapError(_exists_message(dest))
        remove_temporaries(dest.parent, re.escape(dest.stem), dest.suffix)
        yield
    finally:
        if fd is not None:
            # Unlinked while still held: a waiting opener notices (inode check) and retries.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)
            os.close(fd)


def _acquire(lock: Path, dest: Path) -> int:
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if is_write_failure(exc):
                raise write_error(dest, exc.errno) from None
            raise FaceswapError(f"cannot write in {dest.parent}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FaceswapError(f"cannot lock {lock}: {exc.strerror}") from None
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise FaceswapError(
                f"{dest} is being written by another faceswap run{who}; wait for it to "
                "finish or choose another output"
            ) from None
        # The previous holder may have unlinked the file between our open and our lock.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            with contextlib.suppress(OSError):  # the pid only names the holder (a full disk)
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            return fd
        os.close(fd)


def _new_temporary(dest: Path) -> Path:
    """Create an empty temporary file beside ``dest`` with the usual mode (0666 less umask)."""
    while True:
        tmp = dest.parent / f".{dest.stem}.{secrets.token_hex(4)}{dest.suffix}"
        _own(tmp)  # before it exists: a signal between creating and recording cannot lose it
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            _disown(tmp)  # someone else's
            continue
        except OSError as exc:
            _disown(tmp)
            if is_write_failure(exc):
                raise write_error(dest, exc.errno) from None
            raise FaceswapError(f"cannot write in {dest.parent}: {exc.strerror}") from None


@contextlib.contextmanager
def atomic_path(
    dest: str | os.PathLike, *, overwrite: bool = True, locked: bool = False
) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only if the block succeeds.

    The temporary file keeps ``dest``'s extension so writers that pick a format from the name
    (PyAV, OpenCV) still work. ``dest`` gets the usual mode (0666 less the umask).
    Unless ``locked`` (the caller holds ``output_lock(dest)``, or a run-wide lock that covers
    ``dest`` and cleans its temporaries), the write holds ``output_lock(dest, overwrite)``.
    """
    dest = Path(dest)
    if dest.is_dir():  # the rename at the end would fail, after all the work
        raise write_error(dest, errno.EISDIR)
    claim = contextlib.nullcontext() if locked else output_lock(dest, overwrite)
    with claim:
        if locked:
            with writing(dest):
                dest.parent.mkdir(parents=True, exist_ok=True)
        tmp_path = _new_temporary(dest)
        try:
            with writing(dest):
                yield tmp_path
                usual_modes(tmp_path)  # the writer may have replaced our file with a 0600 one
                os.replace(tmp_path, dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp_path.unlink()
            _disown(tmp_path)


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for every thread)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def usual_modes(path: str | os.PathLike) -> None:
    """Give ``path`` (a file, or a folder and the files directly in it) the mode a new file or
    folder gets (0666/0777 less the umask): libraries that write through their own temporary
    files (safetensors) or folders made by ``tempfile`` are 0600/0700, unreadable to others."""
    path = Path(path)
    mask = _umask()
    if path.is_dir():
        os.chmod(path, 0o777 & ~mask)
        for child in path.iterdir():
            if child.is_file() and not child.is_symlink():
                os.chmod(child, 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def write_json_atomic(dest: str | os.PathLike, data: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
