"""File I/O at the edge: read the input in chunks, write the output atomically.

``write_atomic`` hashes the rendered chunks as they stream by and compares them with the current
output. As long as they are equal, nothing is written: the ticker re-renders every few minutes, and an
unchanged config must cost no disk writes (the output keeps its inode and mtime). At the first
difference, a uniquely named temporary file is created next to the output, the equal prefix is copied
into it from the current output, and the rest streams in. Then: fsync, ``os.replace`` over the output,
fsync the directory. Any failure removes the temporary file and leaves the previous output exactly as
it was.

A SIGKILL (an OOM kill, a node that stops the container) between creating the temporary file and the
rename leaves it behind, and nothing in this process can remove it. So every ``write_atomic`` first
removes the leftovers of earlier writes of the same output: temporary names carry the output's name
(``.config-reloader-<output name>.<random>.tmp``), so two reloaders writing different outputs into one
directory never remove each other's files, and files of any other name are never touched.
"""

from __future__ import annotations

import errno
import hashlib
import os

# Annotations only: init mode imports this module, and typing costs about 0.5 s at 10m CPU.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import BinaryIO, Final, TypeAlias

    PathArg: TypeAlias = str | os.PathLike[str]

    WriteChunk = Callable[[int, bytes], int]
    """``os.write``'s shape: the seam a test uses to simulate a full disk."""

CHUNK_BYTES: Final = 64 * 1024
TEMP_PREFIX: Final = ".config-reloader-"
"""Temporary files start with this, so the watcher can ignore its own writes."""
TEMP_SUFFIX: Final = ".tmp"
_RANDOM_BYTES: Final = 6
_HEX: Final = "0123456789abcdef"
"""Between prefix and suffix: ``_RANDOM_BYTES`` random bytes in lowercase hex, always this long."""
_NAME_MAX: Final = 255


class WriteError(OSError):
    """The output could not be written; the message is one line naming the path and the cause."""


class WriteResult:
    """The outcome of one ``write_atomic``."""

    __slots__ = ("changed", "sha256", "size")

    def __init__(self, *, sha256: str, size: int, changed: bool) -> None:
        self.sha256 = sha256
        """Hex digest of the rendered bytes."""
        self.size = size
        """Number of rendered bytes."""
        self.changed = changed
        """False when the output already held these bytes and was left alone."""


def read_chunks(path: PathArg, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The file's bytes in chunks, following symlinks. OSError propagates to the caller."""
    # Unbuffered: no isatty probe and no seek at open, and each read goes straight to the file.
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(chunk_bytes):
            yield chunk


def temp_prefix(out: PathArg) -> str:
    """The start of every temporary name for ``out``: the output's name, then a dot.

    A name too long for the file system once prefixed is replaced by its hash, which is still unique
    to that output.
    """
    name = os.path.basename(os.fspath(out))
    if len(os.fsencode(TEMP_PREFIX + name)) + 1 + 2 * _RANDOM_BYTES + len(TEMP_SUFFIX) > _NAME_MAX:
        name = "sha256-" + hashlib.sha256(os.fsencode(name)).hexdigest()[:32]
    return f"{TEMP_PREFIX}{name}."


def is_own_temp(out: PathArg, name: str) -> bool:
    """True for a temporary name that a write of ``out`` created, and for no other name.

    The random part has a fixed length, so the output's name is read back unambiguously: the
    temporary files of ``a`` and of ``a.b`` never match each other's pattern.
    """
    prefix = temp_prefix(out)
    if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
        return False
    middle = name[len(prefix) : len(name) - len(TEMP_SUFFIX)]
    return len(middle) == 2 * _RANDOM_BYTES and not middle.strip(_HEX)


def remove_leftovers(out: PathArg) -> list[str]:
    """Remove the temporary files that earlier (killed) writes of ``out`` left; returns their names.

    Only regular files of the exact pattern are removed. A directory that cannot be listed, or a file
    that cannot be removed, is not an error here: the write that follows reports the real problem.
    """
    removed: list[str] = []
    try:
        with os.scandir(_parent(os.fspath(out))) as it:
            prefix = temp_prefix(out)
            candidates = [e for e in it if e.name.startswith(prefix) and is_own_temp(out, e.name)]
    except OSError:
        return removed
    for entry in candidates:
        try:
            if entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue
    return removed


def _parent(out: str) -> str:
    return os.path.dirname(out) or "."


def _write_all(fd: int, data: bytes, write_chunk: WriteChunk) -> None:
    while data:
        written = write_chunk(fd, data)
        data = data[written:]  # a short write is rare: the copy costs nothing in the usual case


def write_atomic(
    path: PathArg, chunks: Iterable[bytes], *, write_chunk: WriteChunk = os.write
) -> WriteResult:
    """Write ``chunks`` to ``path`` atomically, unless the bytes are unchanged.

    Raises WriteError for any OS failure on the output side (missing or read-only directory, full
    disk). Errors raised by ``chunks`` itself (a RenderError, or an OSError reading the input) propagate
    unchanged. Either way, the output is left as it was and no temporary file is left behind.
    """
    out = os.fspath(path)
    # One process writes one output at a time, so any temporary file of this output is a leftover.
    remove_leftovers(out)
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


def _open_current(out: str) -> BinaryIO | None:
    # Anything unreadable (missing, a directory, no permission) simply compares as different.
    try:
        return open(out, "rb", buffering=0)  # closed by write_atomic; unbuffered, as read_chunks
    except OSError:
        return None


def _read(f: BinaryIO, n: int) -> bytes | None:
    try:
        return f.read(n)
    except OSError:
        return None


class _TempFile:
    """The temporary file next to the output, created only once the bytes differ."""

    def __init__(self, out: str, write_chunk: WriteChunk) -> None:
        self.out = out
        self.write_chunk = write_chunk
        self.fd: int | None = None
        self.path: str | None = None

    @property
    def started(self) -> bool:
        return self.fd is not None

    def start(self, copy_from: BinaryIO | None, prefix_bytes: int) -> None:
        """Create the file, then copy the first ``prefix_bytes`` of the current output into it."""
        directory = _parent(self.out)
        try:
            self.fd, self.path = _create_temp(self.out)
        except OSError as exc:
            raise _write_error(self.out, exc, f"cannot create a file in {directory}: ") from exc
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
        # The temporary file is 0600; the output keeps its mode, or gets a normal file's.
        try:
            mode = os.stat(self.out).st_mode & 0o777
        except OSError:
            mode = 0o644
        _guarded(self.out, os.chmod, self.path, mode)
        _guarded(self.out, os.replace, self.path, self.out)
        self.path = None
        _fsync_dir(_parent(self.out))

    def discard(self) -> None:
        """Close and remove the temporary file, if there is one."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.path is not None:
            # Not contextlib.suppress: init mode imports this module, and contextlib is not free.
            try:  # noqa: SIM105
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


def _create_temp(out: str) -> tuple[int, str]:
    # O_EXCL: a name that exists (astronomically unlikely) is never reused; 0600 like mkstemp.
    for _ in range(100):
        path = os.path.join(_parent(out), f"{temp_prefix(out)}{os.urandom(_RANDOM_BYTES).hex()}{TEMP_SUFFIX}")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", _parent(out))


def _write_error(out: str, exc: OSError, context: str = "") -> WriteError:
    return WriteError(exc.errno, f"output {out}: {context}{exc.strerror or exc.__class__.__name__}")


def _guarded(out: str, fn: Callable[..., object], *args: object) -> None:
    try:
        fn(*args)
    except OSError as exc:
        raise _write_error(out, exc) from exc


def _fsync_dir(directory: str) -> None:
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
