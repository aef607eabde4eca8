"""Incremental gzip: always gzip.compress's bytes, whatever changed since the last call."""

from __future__ import annotations

import gzip
import random

import pytest

from config_operator.generate import compress
from config_operator.generate.deflate import IncrementalGzip

STEP = 4096


def _text(rng: random.Random, size: int) -> bytes:
    words = [b"job_name", b"serviceMonitor/ns/app", b"- source_labels:", b"  regex: (.+)\n", b"${1}"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + rng.choice([b" ", b"\n", str(rng.randint(0, 999)).encode()])
    return bytes(out[:size])


def _edit(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    kind = rng.choice(["replace", "insert", "delete", "append", "truncate"])
    if kind == "replace":
        return data[:at] + b"X" + data[at + 1 :]
    if kind == "insert":
        return data[:at] + _text(rng, rng.randint(1, 3 * STEP)) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + rng.randint(1, 3 * STEP) :]
    if kind == "append":
        return data + _text(rng, rng.randint(1, STEP))
    return data[:at]


@pytest.mark.parametrize("seed", range(20))
def test_every_result_is_gzip_compress(seed: int) -> None:
    rng = random.Random(seed)
    incremental = IncrementalGzip(step=STEP)
    data = _text(rng, rng.randint(0, 20 * STEP))
    for _ in range(15):
        got = incremental.compress(data)
        assert got == gzip.compress(data, compresslevel=9, mtime=0) == compress(data)
        assert gzip.decompress(got) == data
        data = _edit(rng, data)


def test_a_change_near_the_end_reuses_the_start() -> None:
    rng = random.Random(7)
    incremental = IncrementalGzip(step=STEP)
    data = _text(rng, 40 * STEP)
    incremental.compress(data)
    assert incremental.resumed_at == 0
    changed = data[: 30 * STEP + 5] + b"changed" + data[30 * STEP + 5 :]
    assert incremental.compress(changed) == compress(changed)
    assert incremental.resumed_at == 30 * STEP
    assert incremental.compress(changed) == compress(changed)  # nothing changed: only the tail again
    assert incremental.resumed_at == len(changed) // STEP * STEP
