"""gzip that compresses again only what changed since the last call, to the same bytes. No I/O.

Gzipping 20 MB at level 9 takes about 90 ms, most of a reconcile after one monitor changed. zlib's
output does not depend on how its input is split into ``compress()`` calls, so the compressor's state
is kept (``copy()``) after every ``STEP`` of input: a new config that shares its first N bytes with
the last one resumes from the last checkpoint before N. The result is always what
``gzip.compress(data, 9, mtime=0)`` gives, header and trailer included.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from typing import Any

LEVEL = 9
STEP = 1 << 20
# gzip's own header for this level and mtime 0, so the bytes match gzip.compress's exactly.
_HEADER = gzip.compress(b"", compresslevel=LEVEL, mtime=0)[:10]


@dataclass
class _Checkpoint:
    offset: int
    """Input consumed so far."""
    state: Any
    """The compressor after that input (a zlib compress object)."""
    output: bytes
    """What it wrote for the input since the previous checkpoint."""


class IncrementalGzip:
    """``gzip.compress(data, 9, mtime=0)``, resumed from the longest unchanged prefix of the last input."""

    def __init__(self, step: int = STEP) -> None:
        self._step = step
        self._data = b""
        self._checkpoints: list[_Checkpoint] = []
        self.resumed_at = 0
        """Where the last call resumed (bytes of input reused)."""

    def compress(self, data: bytes) -> bytes:
        kept = self._unchanged(data)
        checkpoints = self._checkpoints[:kept]
        if checkpoints:
            start, compressor = checkpoints[-1].offset, checkpoints[-1].state.copy()
        else:
            start, compressor = 0, zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.resumed_at = start
        while start + self._step <= len(data):
            end = start + self._step
            output = compressor.compress(data[start:end])
            checkpoints.append(_Checkpoint(end, compressor.copy(), output))
            start = end
        tail = compressor.compress(data[start:]) + compressor.flush()
        self._data, self._checkpoints = data, checkpoints
        trailer = struct.pack("<LL", zlib.crc32(data), len(data) & 0xFFFFFFFF)
        return b"".join([_HEADER, *(c.output for c in checkpoints), tail, trailer])

    def _unchanged(self, data: bytes) -> int:
        """How many checkpoints cover input that ``data`` starts with too."""
        previous, start = self._data, 0
        for count, checkpoint in enumerate(self._checkpoints):
            end = checkpoint.offset
            if end > len(data) or previous[start:end] != data[start:end]:
                return count
            start = end
        return len(self._checkpoints)
