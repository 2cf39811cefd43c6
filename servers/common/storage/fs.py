"""Filesystem object store: the embedded default.

Layout under `root`:

    <root>/<key>                  committed objects, e.g. <root>/datasets/<uuid>
    <root>/.partial/upload-*      uploads in progress (same filesystem, so the final rename is atomic)

The `.partial` directory itself is `flock`ed: shared while a writer creates its partial file,
exclusive while stale partials are swept, so a sweep never sees a file its writer has not locked yet.

A commit writes out the last buffered bytes, fsyncs the partial file, renames it onto the key
(`os.replace`, atomic on POSIX) and fsyncs the directory, so an acknowledged object survives a
power cut and an interrupted upload leaves nothing under its key.

Every live writer holds an exclusive `flock` on its partial file. The kernel drops the lock
when the process dies, even by SIGKILL, so opening a store removes exactly the partials whose
writer is gone; uploads of another live process sharing the directory are left alone.

Blocking calls (open, write, fsync, rename, pread) run in worker threads; writes are coalesced
into blocks of `flush_bytes` first, so the thread hand-off is paid per block, not per network
frame. Memory per writer is at most one block, whatever the object size.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from servers.common import errors
from servers.common.storage import InFlight, check_read_args, offset_past_end, run_to_end, validate_key

log = logging.getLogger("mlmesh.storage.fs")

PARTIAL_DIR = ".partial"
PARTIAL_PREFIX = "upload-"
DEFAULT_FLUSH_BYTES = 1 << 20

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _os_error(exc: OSError, what: str) -> errors.MeshError:
    if exc.errno in _FULL:
        return errors.ResourceExhausted(
            f"object storage is full while {what}: {exc.strerror}", reason="STORAGE_FULL"
        )
    return errors.Unavailable(f"object storage failed while {what}: {exc}", reason="STORAGE_IO_ERROR")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _makedirs_durable(root: Path, directory: Path) -> None:
    """Creates `directory` (inside `root`) and any missing parents, fsyncing each new entry's parent."""
    missing: list[Path] = []
    d = directory
    while d != root and not d.is_dir():
        missing.append(d)
        d = d.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        _fsync_dir(d.parent)


class FilesystemObjectStore:
    """An `ObjectStore` over the directory `root` (created if missing).

    Opening it removes partial uploads whose writer process is gone.
    `flush_bytes`: writes are buffered up to this many bytes before they go to disk.
    """

    def __init__(self, root: Path | str, *, flush_bytes: int = DEFAULT_FLUSH_BYTES):
        if flush_bytes <= 0:
            raise ValueError("flush_bytes must be positive")
        self.root = Path(root).absolute()
        self.partial_dir = self.root / PARTIAL_DIR
        self.flush_bytes = flush_bytes
        try:
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            self.swept = self._sweep_partials()
        except OSError as exc:
            raise _os_error(exc, f"opening {self.root}") from exc

    def __repr__(self) -> str:
        return f"FilesystemObjectStore({str(self.root)!r})"

    # -- partial uploads ----------------------------------------------------------------------

    def _lock_fd(self) -> int:
        return os.open(self.partial_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _sweep_partials(self) -> int:
        """Removes partial files no live writer holds; returns how many."""
        removed = 0
        lock = self._lock_fd()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for entry in os.scandir(self.partial_dir):
                if not entry.is_file(follow_symlinks=False):  # not ours to judge
                    log.warning("leaving unexpected entry %s in %s", entry.name, self.partial_dir)
                    continue
                try:
                    fd = os.open(entry.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
                except FileNotFoundError:
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer (maybe another process) holds it
                else:
                    os.unlink(entry.path)
                    removed += 1
                finally:
                    os.close(fd)
        finally:
            os.close(lock)
        if removed:
            _fsync_dir(self.partial_dir)
            log.info("removed %d interrupted upload(s) from %s", removed, self.partial_dir)
        return removed

    def _create_partial(self) -> tuple[int, Path]:
        lock = self._lock_fd()
        try:
            # Shared: writers do not block each other, only a sweep in progress.
            fcntl.flock(lock, fcntl.LOCK_SH)
            fd, name = tempfile.mkstemp(prefix=PARTIAL_PREFIX, dir=self.partial_dir)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BaseException:
                os.close(fd)
                os.unlink(name)
                raise
        finally:
            os.close(lock)
        return fd, Path(name)

    # -- the port -----------------------------------------------------------------------------

    def path_of(self, key: str) -> Path:
        """Where the object `key` lives (after validating the key)."""
        return self.root / validate_key(key)

    async def open_writer(self, key: str) -> FilesystemObjectWriter:
        dest = self.path_of(key)
        io = InFlight()
        try:
            fd, tmp = await io.run(self._create_partial)
        except OSError as exc:
            raise _os_error(exc, f"starting an upload to {key}") from exc
        except asyncio.CancelledError:
            io.after_result(_drop_partial)  # the thread may still create it: undo that then
            raise
        return FilesystemObjectWriter(self, key, dest, fd, tmp, io)

    async def read(self, key: str, offset: int = 0, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        path = self.path_of(key)
        check_read_args(offset, chunk_size)
        io = InFlight()
        try:
            fd, size = await io.run(_open_regular, path)
        except FileNotFoundError:
            raise errors.NotFound(f"object {key} does not exist", reason="OBJECT_NOT_FOUND") from None
        except OSError as exc:
            raise _os_error(exc, f"opening {key}") from exc
        try:
            if offset > size:
                raise offset_past_end(key, offset, size)
            pos = offset
            while True:
                try:
                    chunk = await io.run(os.pread, fd, chunk_size, pos)
                except OSError as exc:
                    raise _os_error(exc, f"reading {key}") from exc
                if not chunk:
                    return
                pos += len(chunk)
                yield chunk
        finally:
            # Not while a pread may still run in its thread: the number could be reused.
            io.after(lambda: os.close(fd))

    async def size(self, key: str) -> int:
        path = self.path_of(key)
        try:
            st = await InFlight().run(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            raise errors.NotFound(f"object {key} does not exist", reason="OBJECT_NOT_FOUND") from None
        except OSError as exc:
            raise _os_error(exc, f"reading the size of {key}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise errors.NotFound(f"object {key} does not exist", reason="OBJECT_NOT_FOUND")
        return st.st_size

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except errors.NotFound:
            return False
        return True

    async def delete(self, key: str) -> None:
        path = self.path_of(key)
        try:
            await InFlight().run(_unlink_file, path)
        except OSError as exc:
            raise _os_error(exc, f"deleting {key}") from exc

    async def close(self) -> None:
        """Nothing to release: every open descriptor belongs to a writer or a read in progress."""


def _drop_partial(created: tuple[int, Path]) -> None:
    fd, tmp = created
    os.close(fd)
    _unlink_missing_ok(tmp)


def _open_regular(path: Path) -> tuple[int, int]:
    """Opens a committed object; FileNotFoundError unless it is a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (NotADirectoryError, IsADirectoryError):
        raise FileNotFoundError(path) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise FileNotFoundError(path)
    return fd, st.st_size


def _unlink_file(path: Path) -> None:
    try:
        if stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    except (FileNotFoundError, NotADirectoryError):
        pass


class FilesystemObjectWriter:
    """One upload into a partial file. Made by `FilesystemObjectStore.open_writer`."""

    def __init__(self, store: FilesystemObjectStore, key: str, dest: Path, fd: int, tmp: Path, io: InFlight):
        self.key = key
        self._store = store
        self._dest = dest
        self._fd: int | None = fd
        self._tmp = tmp
        self._io = io
        self._buf = bytearray()
        self._size = 0
        self._state = "open"  # open -> committed | aborted | failed
        self._renamed = False

    def __repr__(self) -> str:
        return f"FilesystemObjectWriter({self.key!r}, {self._state}, {self._size} bytes)"

    def _check_open(self) -> None:
        if self._state != "open":
            raise errors.FailedPrecondition(
                f"the upload to {self.key} is {self._state}; it takes no more calls", reason="WRITER_CLOSED"
            )

    async def write(self, data: bytes) -> None:
        self._check_open()
        n = memoryview(data).nbytes
        if not n:
            return
        self._size += n
        if not self._buf and n >= self._store.flush_bytes:
            await self._guarded(self._io.run(_write_all, self._fd, data))
            return
        self._buf += data
        if len(self._buf) >= self._store.flush_bytes:
            await self._flush()

    async def _flush(self) -> None:
        # The thread owns the old buffer now; a fresh one takes the next bytes.
        block, self._buf = self._buf, bytearray()
        await self._guarded(self._io.run(_write_all, self._fd, block))

    async def _guarded(self, call) -> None:
        try:
            await call
        except BaseException as exc:
            self._state = "failed"
            await run_to_end(self._discard())
            if isinstance(exc, OSError):
                raise _os_error(exc, f"writing {self.key}") from exc
            raise

    async def commit(self) -> int:
        self._check_open()
        if self._buf:
            await self._flush()
        try:
            await self._io.run(self._finish)
        except BaseException as exc:
            self._state = "failed"
            await run_to_end(self._discard())
            if isinstance(exc, OSError):
                if exc.errno in (errno.EISDIR, errno.ENOTDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise errors.InvalidArgument(
                        f"object key {self.key} clashes with an existing object's path", reason="OBJECT_KEY_CLASH"
                    ) from exc
                raise _os_error(exc, f"committing {self.key}") from exc
            raise
        self._state = "committed"
        return self._size

    def _finish(self) -> None:
        fd = self._fd
        assert fd is not None
        os.fsync(fd)
        _makedirs_durable(self._store.root, self._dest.parent)
        # Still holding the flock, so a sweep by another process cannot take the file away here.
        os.replace(self._tmp, self._dest)
        self._renamed = True
        _fsync_dir(self._dest.parent)
        _fsync_dir(self._tmp.parent)
        self._fd = None
        os.close(fd)

    async def abort(self) -> None:
        if self._state in ("committed", "aborted"):
            return
        self._state = "aborted"
        await run_to_end(self._discard())

    async def _discard(self) -> None:
        """Removes the partial file (and the object, if a failed commit got as far as the rename)."""
        await self._io.settle()
        self._buf = bytearray()
        fd, self._fd = self._fd, None
        try:
            if fd is not None:
                os.close(fd)
            await self._io.run(self._remove_files)
        except OSError:
            log.warning("could not remove the partial upload %s for %s", self._tmp, self.key, exc_info=True)

    def _remove_files(self) -> None:
        if self._renamed:
            self._renamed = False
            _unlink_file(self._dest)
        else:
            _unlink_missing_ok(self._tmp)


def _unlink_missing_ok(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

