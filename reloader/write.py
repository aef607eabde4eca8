"""File I/O at the edge: read the input in chunks, write the output atomically.

``write_atomic`` streams the rendered chunks into a uniquely named temporary file next to the output,
hashing as it goes. When the bytes equal the current output, the temporary file is dropped and the
output is not touched (same inode, same mtime). Otherwise: fsync, ``os.replace`` over the output, fsync
the directory. Any failure removes the temporary file and leaves the previous output exactly as it was.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

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


def file_sha256(path: str | Path) -> str | None:
    """Hex digest of a file's bytes, streamed; None when it does not exist or cannot be read."""
    digest = hashlib.sha256()
    try:
        for chunk in read_chunks(path):
            digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


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
    unchanged. Either way, the output is left as it was and the temporary file is gone.
    """
    out = Path(path)
    directory = out.parent
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)
    except OSError as exc:
        raise _write_error(out, exc, f"cannot create a file in {directory}: ") from exc
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    size = 0
    try:
        try:
            for chunk in chunks:  # the source's own errors pass through untouched
                _guarded(out, _write_all, fd, chunk, write_chunk)
                digest.update(chunk)
                size += len(chunk)
            _guarded(out, os.fsync, fd)
        finally:
            os.close(fd)
        sha = digest.hexdigest()
        if file_sha256(out) == sha:
            tmp.unlink()
            return WriteResult(sha256=sha, size=size, changed=False)
        # mkstemp makes the file 0600; the output keeps its mode, or gets a normal file's.
        mode = out.stat().st_mode & 0o777 if out.exists() else 0o644
        _guarded(out, os.chmod, tmp, mode)
        _guarded(out, os.replace, tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(directory)
    return WriteResult(sha256=sha, size=size, changed=True)


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
