"""gzip made of segments, so that after one monitor changed only its segment is compressed again.
No I/O.

Gzipping 25 MB at level 9 takes about 150 ms, most of a reconcile after one monitor changed. So the
config is cut into segments, each compressed on its own, with the 32 KiB before it as deflate's preset
dictionary (what the decompressor's window holds at that point), and ended with a full flush: as pigz
does, the concatenation is one valid deflate stream, nearly as small as one pass, and its bytes depend
only on the config. A segment starts at a scrape job (``- job_name: NAME`` at the start of a line)
whose NAME's CRC-32 is a multiple of ``CUT_EVERY``: the cuts come from the content, not from offsets,
so a change moves no cut outside the jobs it touched. The segments before it, and those after it
whose 32 KiB window it did not touch, are the same bytes as last time and keep their compressed form.
"""

from __future__ import annotations

import gzip
import itertools
import struct
import zlib

LEVEL = 9
CUT_EVERY = 256
"""One job in this many starts a segment, on average: about 40 segments at 5,000 monitors."""
WINDOW = 32 * 1024
"""deflate's window: how far back a segment's preset dictionary reaches."""
_JOB = b"- job_name: "
# gzip's own header for this level and mtime 0, as gzip.compress writes it.
_HEADER = gzip.compress(b"", compresslevel=LEVEL, mtime=0)[:10]


def is_cut(data: bytes, at: int) -> bool:
    """Whether a segment starts at ``at``: a job line there, whose name is one of the chosen."""
    if at <= 0 or data[at - 1] != 0x0A or not data.startswith(_JOB, at):
        return False
    end = data.find(b"\n", at)
    return zlib.crc32(data[at + len(_JOB) : end if end >= 0 else len(data)]) % CUT_EVERY == 0


def cuts(data: bytes, start: int, end: int) -> list[int]:
    """The segment starts strictly between ``start`` and ``end``."""
    found: list[int] = []
    at = data.find(b"\n" + _JOB, start, end)
    while at >= 0:
        if start < at + 1 < end and is_cut(data, at + 1):
            found.append(at + 1)
        at = data.find(b"\n" + _JOB, at + 1, end)
    return found


def _deflate(data: bytes, start: int, end: int) -> bytes:
    window = data[max(0, start - WINDOW) : start]
    if window:
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zdict=window)
    else:
        compressor = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    last = end == len(data)
    return compressor.compress(data[start:end]) + compressor.flush(
        zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH
    )


def _segments(data: bytes, bounds: list[int]) -> list[bytes]:
    return [_deflate(data, a, b) for a, b in itertools.pairwise(bounds)]


def _wrap(body: list[bytes], crc: int, size: int) -> bytes:
    return b"".join([_HEADER, *body, struct.pack("<LL", crc, size & 0xFFFFFFFF)])


def compress(data: bytes) -> bytes:
    """The gzip of ``data``, segment by segment (see the module doc); the same bytes every time."""
    bounds = [0, *cuts(data, 0, len(data)), len(data)]
    return _wrap(_segments(data, bounds), zlib.crc32(data), len(data))


class IncrementalGzip:
    """``compress(data)``, reusing the compressed segments that did not change since the last call."""

    def __init__(self) -> None:
        self._data = b""
        self._bounds = [0, 0]
        """The last input's segment starts, then its length."""
        self._body = _segments(b"", [0, 0])
        self._crcs = [0, 0]
        """The CRC-32 of the last input up to each of ``_bounds``."""
        self.recompressed = 0
        """How many input bytes the last call compressed again."""

    def compress(self, data: bytes) -> bytes:
        old, bounds, segments = self._data, self._bounds, len(self._bounds) - 1
        shift = len(data) - len(old)
        # Segments that start the input as before, and end where a cut still is (so not the last).
        head = 0
        while head < segments - 1:
            a, b = bounds[head], bounds[head + 1]
            if b >= len(data) or old[a:b] != data[a:b] or not is_cut(data, b):
                break
            head += 1
        # Segments that end it as before, window included, moved by the change in length, and start
        # at a cut.
        tail = segments
        while tail - 1 > head:
            a, b = bounds[tail - 1], bounds[tail]
            if a + shift <= bounds[head]:
                break
            if old[max(0, a - WINDOW) : b] != data[max(0, a + shift - WINDOW) : b + shift]:
                break
            if not is_cut(data, a + shift):
                break
            tail -= 1
        start = bounds[head]
        end = bounds[tail] + shift if tail < segments else len(data)
        middle = [start, *cuts(data, start, end), end]
        self.recompressed = end - start
        body = [*self._body[:head], *_segments(data, middle), *self._body[tail:]]
        self._bounds = [*bounds[:head], *middle[:-1], *(b + shift for b in bounds[tail:])]
        crcs = self._crcs[: head + 1]
        for a, b in itertools.pairwise(self._bounds[head:]):
            crcs.append(zlib.crc32(data[a:b], crcs[-1]))
        self._data, self._body, self._crcs = data, body, crcs
        return _wrap(body, crcs[-1], len(data))
