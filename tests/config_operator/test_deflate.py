"""Segmented gzip: valid gzip, the same bytes with or without the incremental state, and a local change
compressed again locally."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from config_operator.generate import compress, deflate
from config_operator.generate.deflate import IncrementalGzip
from reloader.render import maybe_gunzip


@pytest.fixture(autouse=True)
def frequent_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Small inputs, many segments: one job in four starts one.
    monkeypatch.setattr(deflate, "CUT_EVERY", 4)


def job(rng: random.Random, name: str) -> bytes:
    rules = "".join(
        f"  - source_labels: [__meta_{rng.randrange(9)}]\n    regex: (.+);{rng.randrange(99)}\n"
        for _ in range(rng.randrange(1, 6))
    )
    return f"- job_name: {name}\n  relabel_configs:\n{rules}".encode()


def config(rng: random.Random, names: list[str]) -> bytes:
    return b"global:\n  scrape_interval: 30s\nscrape_configs:\n" + b"".join(job(rng, n) for n in names)


def edit(rng: random.Random, data: bytes) -> bytes:
    """A change anywhere, including ones that break or make a job line."""
    at = rng.randrange(len(data) + 1)
    kind = rng.choice(["replace", "insert", "delete", "job", "truncate", "append"])
    if kind == "replace":
        return data[:at] + rng.choice([b"X", b"\n", b"-"]) + data[at + 1 :]
    if kind == "insert":
        return data[:at] + rng.choice([b"\n- job_name: new\n", b"abc", b"\n"]) + data[at:]
    if kind == "delete":
        return data[:at] + data[at + rng.randint(1, 400) :]
    if kind == "job":
        return data[:at] + b"\n" + job(rng, f"inserted-{rng.randrange(10**6)}") + data[at:]
    if kind == "append":
        return data + job(rng, f"appended-{rng.randrange(10**6)}")
    return data[:at]


def test_empty_and_tiny_inputs_are_plain_gzip() -> None:
    for data in (b"", b"a", b"- job_name: x\n", b"\n- job_name: x"):
        assert gzip.decompress(compress(data)) == data
        assert IncrementalGzip().compress(data) == compress(data)


@pytest.mark.parametrize("seed", range(12))
def test_every_result_is_the_same_valid_gzip_as_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    incremental = IncrementalGzip()
    data = config(rng, [f"serviceMonitor/ns/app-{i}/0" for i in range(rng.randrange(0, 60))])
    for _ in range(25):
        got = incremental.compress(data)
        assert got == compress(data)
        assert gzip.decompress(got) == data
        assert zlib.decompress(got, 16 + zlib.MAX_WBITS) == data
        data = edit(rng, data)


def test_the_reloader_reads_it() -> None:
    rng = random.Random(3)
    data = config(rng, [f"serviceMonitor/ns/app-{i}/0" for i in range(200)])
    blob = compress(data)
    assert b"".join(maybe_gunzip([blob[i : i + 1000] for i in range(0, len(blob), 1000)], source="x")) == data


def test_one_job_changed_is_compressed_again_alone_and_the_size_stays_close_to_plain_gzip() -> None:
    rng = random.Random(11)
    names = [f"serviceMonitor/ns/app-{i}/0" for i in range(3000)]
    data = config(rng, names)
    incremental = IncrementalGzip()
    incremental.compress(data)
    segments = len(deflate.cuts(data, 0, len(data))) + 1
    assert segments > 500  # 3,000 jobs, one in four starts a segment
    changed = data.replace(
        b"- job_name: serviceMonitor/ns/app-1500/0\n", b"- job_name: serviceMonitor/ns/app-1500/0\n  x: 1\n"
    )
    assert incremental.compress(changed) == compress(changed)
    # Its segment, and those whose preset dictionary (the 32 KiB before them) it is in.
    assert 0 < incremental.recompressed < deflate.WINDOW + 4 * len(data) / segments < len(data) / 10
    # With the window as preset dictionary, segments cost a few bytes each.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deflate, "CUT_EVERY", 256)
        big = config(rng, [f"serviceMonitor/ns{i % 7}/app-{i}/{i % 2}" for i in range(3000)])
        assert len(compress(big)) <= 1.01 * len(gzip.compress(big, compresslevel=9, mtime=0))
