"""File I/O at the edge: read the input in chunks, write the output atomically.

``write_atomic`` hashes the rendered chunks as they stream by and compares them with the current
output. As long as they are equal, nothing is written: the ticker re-renders every few minutes, and an
unchanged config must cost no disk writes (the output keeps its inode and mtime). At the first
difference, a uniquely named temporary file is created next to the output, the equal prefix is copied
into it from the current output, and the rest streams in. Then: fsync, ``os.replace`` over the output,
fsync the directory. Any failure removes the temporary file and leaves the previous output exactly as
it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

CHUNK_BYTES: Final = 64 * 1024
TEMP_PREFIX: Final = ".config-reloader-"
"""Temporary files start with this, so the watcher can ignore its own writes."""

WriteChunk = Callable[[int, bytes], int]
"""``os.write``'s shape: the seam a test uses to simulate a full disk."""


class WriteError(OSError):
    """The output could not be written; the message is one line naming the path and the cause."""


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one ``write_atomic``."""

    sha256: str
    """Hex digest of the rendered bytes."""
    size: int
    """Number of rendered bytes."""
    changed: bool
    """False when the output already held these bytes and was left alone."""


def read_chunks(path: str | Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes in chunks, following symlinks. OSError propagates to the caller."""
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            yield chunk


def _write_all(fd: int, data: bytes, write_chunk: WriteChunk) -> None:
    while data:
        written = write_chunk(fd, data)
        data = data[written:]  # a short write is rare: the copy costs nothing in the usual case


def write_atomic(
    path: str | Path, chunks: Iterable[bytes], *, write_chunk: WriteChunk = os.write
) -> WriteResult:
    """Write ``chunks`` to ``path`` atomically, unless the bytes are unchanged.

    Raises WriteError for any OS failure on the output side (missing or read-only directory, full
    disk). Errors raised by ``chunks`` itself (a RenderError, or an OSError reading the input) propagate
    unchanged. Either way, the output is left as it was and no temporary file is left behind.
    """
    out = Path(path)
    digest = hashlib.sha256()
    size = 0
    current = _open_current(out)
    temp = _TempFile(out, write_chunk)
    try:
        for chunk in chunks:  # the source's own errors pass through untouched
            digest.update(chunk)
            size += len(chunk)
            if not temp.started:
                if current is not None and _read(current, len(chunk)) == chunk:
                    continue  # still equal to the current output: nothing to write yet
                temp.start(copy_from=current, prefix_bytes=size - len(chunk))
            temp.write(chunk)
        if not temp.started:
            if current is not None and _read(current, 1) == b"":
                return WriteResult(sha256=digest.hexdigest(), size=size, changed=False)
            temp.start(copy_from=current, prefix_bytes=size)  # the current output is longer
        temp.commit()
    except BaseException:
        temp.discard()
        raise
    finally:
        if current is not None:
            current.close()
    return WriteResult(sha256=digest.hexdigest(), size=size, changed=True)


def _open_current(out: Path) -> BinaryIO | None:
    # Anything unreadable (missing, a directory, no permission) simply compares as different.
    try:
        return open(out, "rb")  # closed by write_atomic
    except OSError:
        return None


def _read(f: BinaryIO, n: int) -> bytes | None:
    try:
        return f.read(n)
    except OSError:
        return None


class _TempFile:
    """The temporary file next to the output, created only once the bytes differ."""

    def __init__(self, out: Path, write_chunk: WriteChunk) -> None:
        self.out = out
        self.write_chunk = write_chunk
        self.fd: int | None = None
        self.path: Path | None = None

    @property
    def started(self) -> bool:
        return self.fd is not None

    def start(self, copy_from: BinaryIO | None, prefix_bytes: int) -> None:
        """Create the file, then copy the first ``prefix_bytes`` of the current output into it."""
        directory = self.out.parent
        try:
            self.fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)
        except OSError as exc:
            raise _write_error(self.out, exc, f"cannot create a file in {directory}: ") from exc
        self.path = Path(name)
        if prefix_bytes == 0:
            return
        assert copy_from is not None
        _guarded(self.out, copy_from.seek, 0)
        left = prefix_bytes
        while left > 0:
            block = _read(copy_from, min(left, CHUNK_BYTES))
            if not block:
                raise WriteError(0, f"output {self.out}: changed by someone else while being compared")
            self.write(block)
            left -= len(block)

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        _guarded(self.out, _write_all, self.fd, data, self.write_chunk)

    def commit(self) -> None:
        """fsync, give it the output's mode, rename it over the output, fsync the directory."""
        assert self.fd is not None and self.path is not None
        fd, self.fd = self.fd, None
        try:
            _guarded(self.out, os.fsync, fd)
        finally:
            os.close(fd)
        # mkstemp makes the file 0600; the output keeps its mode, or gets a normal file's.
        try:
            mode = self.out.stat().st_mode & 0o777
        except OSError:
            mode = 0o644
        _guarded(self.out, os.chmod, self.path, mode)
        _guarded(self.out, os.replace, self.path, self.out)
        self.path = None
        _fsync_dir(self.out.parent)

    def discard(self) -> None:
        """Close and remove the temporary file, if there is one."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


def _write_error(out: Path, exc: OSError, context: str = "") -> WriteError:
    return WriteError(exc.errno, f"output {out}: {context}{exc.strerror or exc.__class__.__name__}")


def _guarded(out: Path, fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except OSError as exc:
        raise _write_error(out, exc) from exc


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; some filesystems refuse fsync on a directory, which is harmless.
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
