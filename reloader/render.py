"""Rendering: input bytes in, config bytes out. Pure: no files, no environment lookups, no clock.

A render is a chain of generators over chunks, so memory stays flat however big the config is:

1. ``maybe_gunzip``: gunzip when the data starts with the gzip magic ``1f 8b 08`` (the file name does
   not matter), with a bound on the decompressed size so that a gzip bomb is an error, not an OOM kill;
2. ``check_utf8``: the config must be UTF-8;
3. ``expand_env``: ``$(NAME)`` placeholders, the prometheus-config-reloader way.

Every error is a ``RenderError`` whose message names the input and the cause in one line.
"""

from __future__ import annotations

import codecs
import zlib

# Annotations only: init mode imports this module, and typing costs about 0.5 s at 10m CPU.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Final

GZIP_MAGIC: Final = b"\x1f\x8b\x08"
CHUNK_BYTES: Final = 64 * 1024
DEFAULT_MAX_DECOMPRESSED_BYTES: Final = 512 * 1024 * 1024
MAX_NAME_CHARS: Final = 128 * 1024 - 2
"""Longer names are not placeholders; this bounds what a chunk boundary can hold back.

Linux bounds one environment string ("NAME=value" and its NUL) to 128 KiB (MAX_ARG_STRLEN), so no
longer name can be set: up to here, every name is one that prometheus-config-reloader would expand.
"""

_NAME_BYTES: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
"""What a placeholder's NAME is made of: ``$(NAME)`` is ``\\$\\(([A-Za-z0-9_]+)\\)``.

The scanning below is plain bytes operations, not ``re``: importing re costs about 1 s of wall time
under a 10m CPU limit, in init mode, for a handful of placeholders."""
_NAME_SET: Final = frozenset(_NAME_BYTES)
_NAME_PEEK: Final = 64
_DOLLAR_TRIES: Final = 16
"""How many ``$`` not followed by ``(`` ``_find_open`` skips one by one before the two-byte find."""


class RenderError(ValueError):
    """The input cannot be rendered; the message is one line naming the input and the cause."""


class Expansion:
    """What ``expand_env`` saw: the unset variables, by name, with how often each was referenced."""

    __slots__ = ("unset",)

    def __init__(self, unset: dict[str, int] | None = None) -> None:
        self.unset: dict[str, int] = {} if unset is None else unset
        """name -> number of ``$(NAME)`` references left literally in the output."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expansion) and self.unset == other.unset

    def __repr__(self) -> str:
        return f"Expansion(unset={self.unset!r})"

    @property
    def errors(self) -> int:
        """Unset references in total: the value of reloader_config_environment_variable_expansion_errors."""
        return sum(self.unset.values())


def maybe_gunzip(
    chunks: Iterable[bytes], *, source: str, max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
) -> Iterator[bytes]:
    """Pass plain data through; gunzip data that starts with the gzip magic, bounded by ``max_bytes``."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= len(GZIP_MAGIC):
            break
    if not head.startswith(GZIP_MAGIC):
        if head:
            yield head
        yield from it
        return
    yield from _gunzip(_prepend(head, it), source=source, max_bytes=max_bytes)


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _gunzip(chunks: Iterable[bytes], *, source: str, max_bytes: int) -> Iterator[bytes]:
    # wbits 16+MAX_WBITS: gzip header and trailer (CRC, length) are checked by zlib itself.
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    produced = 0
    member_done = False
    for chunk in chunks:
        data = chunk
        while data:
            if member_done:
                # Concatenated gzip members are one stream, as Go's gzip.Reader reads them.
                if not data.startswith(GZIP_MAGIC[:2]) and len(data) >= 2:
                    raise RenderError(f"{source}: trailing garbage after gzip data")
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                member_done = False
            try:
                out = inflater.decompress(data, CHUNK_BYTES)
                # max_length leaves the rest in unconsumed_tail: feed it in slices, never all at once.
                while True:
                    produced += len(out)
                    if produced > max_bytes:
                        raise RenderError(
                            f"{source}: gzip data decompresses to more than {max_bytes} bytes (gzip bomb?)"
                        )
                    if out:
                        yield out
                    if inflater.eof:
                        break
                    # A full output buffer may mean more output is pending even with no input left.
                    if not inflater.unconsumed_tail and len(out) < CHUNK_BYTES:
                        break
                    out = inflater.decompress(inflater.unconsumed_tail, CHUNK_BYTES)
            except zlib.error as exc:
                raise RenderError(f"{source}: corrupt gzip data: {exc}") from exc
            if inflater.eof:
                member_done = True
                data = inflater.unused_data
            else:
                data = b""
    if not member_done:
        raise RenderError(f"{source}: truncated gzip data (unexpected end of file)")


def check_utf8(chunks: Iterable[bytes], *, source: str) -> Iterator[bytes]:
    """Pass the chunks through unchanged; raise RenderError at the first byte that is not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0
    pending = False
    """The decoder holds the start of a character that the chunk boundary cut in two."""
    for chunk in chunks:
        # ASCII is valid UTF-8 as it is, and nearly every config is ASCII: only a chunk with other bytes,
        # or one after a cut character, goes through the decoder (which would build a str of it).
        if pending or not chunk.isascii():
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise RenderError(f"{source}: not valid UTF-8 at byte {offset + exc.start}") from exc
            pending = bool(decoder.getstate()[0])
        offset += len(chunk)
        yield chunk
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise RenderError(f"{source}: not valid UTF-8: truncated character at the end") from exc


def expand_env(
    chunks: Iterable[bytes],
    env: Mapping[str, str],
    expansion: Expansion,
    *,
    strict: bool = False,
    source: str = "config",
) -> Iterator[bytes]:
    """Replace each ``$(NAME)`` with ``env[NAME]``, in one pass (values are never expanded again).

    ``$VAR``, ``${VAR}`` and ``$1`` stay as they are: relabel rules use them. An unset NAME is left
    literally and counted in ``expansion``; with ``strict`` it raises RenderError instead.
    """

    def value_of(name_bytes: bytes, placeholder: bytes) -> bytes:
        name = name_bytes.decode("ascii")
        value = env.get(name)
        if value is None:
            if strict:
                raise RenderError(f"{source}: environment variable {name} is not set (strict mode)")
            expansion.unset[name] = expansion.unset.get(name, 0) + 1
            return placeholder
        return value.encode("utf-8", "surrogateescape")

    carry = b""
    for chunk in chunks:
        buf = carry + chunk
        # Hold back a placeholder that the chunk boundary cut in two; the next chunk completes it.
        cut = buf.rfind(b"$")
        if cut >= 0 and _is_partial(buf, cut):
            buf, carry = buf[:cut], buf[cut:]
        else:
            carry = b""
        if buf:
            yield _substitute(buf, value_of)
    if carry:
        yield carry


def _name_end(buf: bytes, start: int) -> int:
    """The end of the run of NAME bytes that starts at ``start`` (``start`` itself when there is none)."""
    end, limit = start, min(len(buf), start + MAX_NAME_CHARS + 1)
    while end < limit and buf[end] in _NAME_SET:
        end += 1
    return end


def _find_open(buf: bytes, start: int) -> int:
    """``buf.find(b"$(", start)``, but by memchr on ``$`` first: a two-byte find scans at about 1 GB/s,
    a one-byte one many times faster, and most configs have few ``$``. Relabel-heavy ones, with a
    ``$1`` in every rule, fall back to the two-byte find after a few misses."""
    for _ in range(_DOLLAR_TRIES):
        start = buf.find(b"$", start)
        if start < 0 or buf.startswith(b"$(", start):
            return start
        start += 1
    return buf.find(b"$(", start)


def _substitute(buf: bytes, value_of: Callable[[bytes, bytes], bytes]) -> bytes:
    """Each complete ``$(NAME)`` of ``buf`` replaced by ``value_of(NAME, placeholder)``, left to right."""
    start = _find_open(buf, 0)
    if start < 0:
        return buf
    out: list[bytes] = []
    done = 0
    while start >= 0:
        end = _name_end(buf, start + 2)
        if start + 2 < end <= start + 2 + MAX_NAME_CHARS and buf[end : end + 1] == b")":
            out += (buf[done:start], value_of(buf[start + 2 : end], buf[start : end + 1]))
            done = end + 1
            start = _find_open(buf, done)
        else:
            start = _find_open(buf, start + 1)
    out.append(buf[done:])
    return b"".join(out)


def _is_partial(buf: bytes, cut: int) -> bool:
    """Whether ``buf[cut:]`` is a placeholder cut off by the end of a chunk: ``$``, ``$(`` or ``$(NAME``."""
    if cut + 1 == len(buf):
        return True
    # The last ``$`` may be far from the end: look at the few bytes after it before the whole tail.
    if buf[cut + 1] != 0x28 or len(buf) - cut - 2 > MAX_NAME_CHARS:
        return False
    head = buf[cut + 2 : cut + 2 + _NAME_PEEK]
    if head.translate(None, _NAME_BYTES):
        return False
    return len(head) < _NAME_PEEK or not buf[cut + 2 + _NAME_PEEK :].translate(None, _NAME_BYTES)


def render(
    chunks: Iterable[bytes],
    env: Mapping[str, str],
    expansion: Expansion,
    *,
    source: str,
    strict: bool = False,
    max_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
) -> Iterator[bytes]:
    """The whole pipeline: gunzip if gzip, check UTF-8, expand ``$(NAME)``. Empty input is an error."""
    seen = 0

    def counted(data: Iterable[bytes]) -> Iterator[bytes]:
        nonlocal seen
        for chunk in data:
            seen += len(chunk)
            yield chunk

    plain = counted(maybe_gunzip(chunks, source=source, max_bytes=max_bytes))
    yield from expand_env(check_utf8(plain, source=source), env, expansion, strict=strict, source=source)
    if seen == 0:
        raise RenderError(f"{source}: input is empty")
