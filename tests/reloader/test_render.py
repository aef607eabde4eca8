"""render: gzip detection, bounded gunzip, UTF-8, $(NAME) expansion, all over chunks."""

from __future__ import annotations

import gzip
import random
import re
import tracemalloc
from collections.abc import Iterator

import pytest

from reloader.render import CHUNK_BYTES, Expansion, RenderError, expand_env, maybe_gunzip, render

ENV = {
    "POD_NAME": "prom-0",
    "EMPTY": "",
    "SECRETISH": "s3cr3t",
    "A": "a",
    "B": "b",
    "LOOP": "$(A)",
    "_x9": "v",
}


def run(data: bytes, *, env: dict[str, str] | None = None, strict: bool = False, chunk: int = 0) -> bytes:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    return b"".join(render(chunks, ENV if env is None else env, Expansion(), source="in.yaml", strict=strict))


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("replica: $(POD_NAME)", "replica: prom-0"),
        ("a: $(EMPTY)!", "a: !"),
        ("$(A)$(B)", "ab"),
        ("$$(A)", "$a"),
        ("x: $(_x9)", "x: v"),
        ("one pass: $(LOOP)", "one pass: $(A)"),
        ("regex: $1 ${1} $VAR ${VAR} $ $$", "regex: $1 ${1} $VAR ${VAR} $ $$"),
        ("not a name: $(A-B) $() $( A) $(A", "not a name: $(A-B) $() $( A) $(A"),
        ("utf-8 around: é$(A)ü", "utf-8 around: éaü"),
        ("no placeholders at all\n", "no placeholders at all\n"),
        ("$(A)", "a"),
    ],
)
def test_expansion_table(template: str, rendered: str) -> None:
    assert run(template.encode()).decode() == rendered


def reference(data: bytes, env: dict[str, str]) -> bytes:
    """prometheus-config-reloader's rule, as its regexp states it."""

    def value(m: re.Match[bytes]) -> bytes:
        name = m.group(1).decode()
        return env[name].encode() if name in env else m.group(0)

    return re.sub(rb"\$\(([A-Za-z0-9_]+)\)", value, data)


@pytest.mark.parametrize("dollars", [0, 1, 15, 16, 17, 40])
def test_a_placeholder_after_many_other_dollars_is_expanded(dollars: int) -> None:
    # The search skips lone ``$`` one by one for a while, then falls back to a two-byte search.
    text = b"replacement: $1\n" * dollars + b"replica: $(POD_NAME) $ $( $(A)" + b" ${1}" * dollars + b"$(B)"
    assert run(text) == reference(text, ENV)
    assert run(text, chunk=7) == reference(text, ENV)


def test_random_text_renders_as_the_regexp_says() -> None:
    rng = random.Random(7)
    alphabet = [b"$", b"(", b")", b"A", b"B", b"_x9", b"POD_NAME", b"-", b" ", b"$(", b"$1"]
    for _ in range(500):
        text = b"".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        if not text:
            continue
        assert run(text) == reference(text, ENV), text
        assert run(text, chunk=rng.randrange(1, 9)) == reference(text, ENV), text


def test_unset_variable_stays_literally_and_is_counted_by_name() -> None:
    expansion = Expansion()
    out = b"".join(expand_env([b"a: $(NOPE) b: $(NOPE) c: $(ALSO_NOPE) d: $(A)"], ENV, expansion))
    assert out == b"a: $(NOPE) b: $(NOPE) c: $(ALSO_NOPE) d: a"
    assert expansion.unset == {"NOPE": 2, "ALSO_NOPE": 1}
    assert expansion.errors == 3


def test_strict_mode_makes_an_unset_variable_an_error_naming_it_and_not_its_neighbours() -> None:
    with pytest.raises(RenderError, match=r"in\.yaml: environment variable NOPE is not set") as err:
        run(b"a: $(SECRETISH) b: $(NOPE)", strict=True)
    assert "s3cr3t" not in str(err.value)
    assert run(b"a: $(A)", strict=True) == b"a: a"


def test_a_value_is_never_expanded_again() -> None:
    assert run(b"$(LOOP)$(LOOP)") == b"$(A)$(A)"


def test_placeholder_split_at_every_chunk_boundary_is_still_expanded() -> None:
    text = b"head $(POD_NAME) mid $(A)$(B) $(NOPE) tail $1 ${X} $"
    whole = run(text)
    assert whole == b"head prom-0 mid ab $(NOPE) tail $1 ${X} $"
    for cut in range(len(text) + 1):
        chunks = [text[:cut], text[cut:]]
        assert b"".join(render(chunks, ENV, Expansion(), source="x")) == whole, cut
    assert run(text, chunk=1) == whole


def test_a_long_name_split_anywhere_is_still_expanded() -> None:
    # Longer than the few bytes looked at first after a chunk's last ``$(``.
    name = "LONG_" + "X" * 150
    env = {**ENV, name: "long"}
    text = f"a: $(POD_NAME) b: $({name}) c: $({name}-) d".encode()
    whole = b"a: prom-0 b: long c: $(" + name.encode() + b"-) d"
    for cut in range(len(text) + 1):
        chunks = [text[:cut], text[cut:]]
        assert b"".join(render(chunks, env, Expansion(), source="x")) == whole, cut


def test_placeholder_split_across_gzip_output_chunks_is_expanded() -> None:
    # The placeholder straddles the 64 KiB boundary of the decompressor's output.
    text = b"x" * (CHUNK_BYTES - 4) + b"$(POD_NAME)" + b"y" * 10
    out = run(gzip.compress(text), chunk=777)
    assert out == b"x" * (CHUNK_BYTES - 4) + b"prom-0" + b"y" * 10


def test_gzip_is_detected_by_magic_bytes_not_name() -> None:
    plain = b"scrape_configs: []\nreplica: $(POD_NAME)\n"
    assert run(gzip.compress(plain)) == b"scrape_configs: []\nreplica: prom-0\n"
    assert run(gzip.compress(plain), chunk=1) == b"scrape_configs: []\nreplica: prom-0\n"
    assert run(plain) == b"scrape_configs: []\nreplica: prom-0\n"


def test_gzip_magic_needs_the_deflate_method_byte() -> None:
    # 1f 8b without 08 is not gzip for us: it is plain bytes, and then not UTF-8.
    with pytest.raises(RenderError, match="not valid UTF-8 at byte 1"):
        run(b"\x1f\x8b\x09rest")


def test_concatenated_gzip_members_are_one_stream() -> None:
    assert run(gzip.compress(b"a: 1\n") + gzip.compress(b"b: $(A)\n"), chunk=5) == b"a: 1\nb: a\n"


def test_truncated_gzip_is_a_clear_error() -> None:
    data = gzip.compress(b"global: {}\n" * 1000)
    with pytest.raises(RenderError, match=r"^in\.yaml: truncated gzip data"):
        run(data[: len(data) // 2])
    with pytest.raises(RenderError, match="truncated gzip"):
        run(data[:3])


def test_corrupt_gzip_is_a_clear_error() -> None:
    data = bytearray(gzip.compress(b"global: {}\n" * 1000))
    data[-6] ^= 0xFF  # inside the CRC/length trailer
    with pytest.raises(RenderError, match=r"^in\.yaml: corrupt gzip data"):
        run(bytes(data))
    with pytest.raises(RenderError, match=r"^in\.yaml: corrupt gzip data"):
        run(b"\x1f\x8b\x08" + b"\xff" * 40)


def test_gzip_bomb_stops_at_the_limit_with_bounded_chunks() -> None:
    bomb = gzip.compress(b"\0" * (20 * 1024 * 1024))  # 20 MiB of zeros, about 20 KiB compressed
    assert len(bomb) < 100 * 1024
    seen = 0
    with pytest.raises(RenderError, match=r"in\.yaml: gzip data decompresses to more than 1048576 bytes"):
        for chunk in maybe_gunzip([bomb], source="in.yaml", max_bytes=1024 * 1024):
            assert len(chunk) <= CHUNK_BYTES
            seen += len(chunk)
    assert seen <= 1024 * 1024


def test_bytes_that_are_not_utf8_are_an_error_naming_input_and_offset() -> None:
    with pytest.raises(RenderError, match=r"^in\.yaml: not valid UTF-8 at byte 3"):
        run(b"ok \xff\xfe")
    with pytest.raises(RenderError, match=r"not valid UTF-8 at byte 70000"):
        run(b"a" * 70000 + b"\xc3\x28", chunk=4096)
    with pytest.raises(RenderError, match="truncated character"):
        run(b"abc\xc3")


def test_a_multibyte_character_split_across_chunks_is_fine() -> None:
    assert run("é€😀$(A)".encode(), chunk=1) == "é€😀a".encode()


@pytest.mark.parametrize("data", [b"", gzip.compress(b"")])
def test_empty_input_is_an_error(data: bytes) -> None:
    with pytest.raises(RenderError, match=r"^in\.yaml: input is empty$"):
        run(data)


def test_memory_does_not_grow_with_the_size_of_the_config() -> None:
    line = b"  - job_name: job-$(POD_NAME)\n    static_configs: [{targets: ['127.0.0.1:1']}]\n"
    total = 32 * 1024 * 1024

    def source() -> Iterator[bytes]:
        block = line * (CHUNK_BYTES // len(line))
        for _ in range(total // len(block)):
            yield block

    tracemalloc.start()
    try:
        produced = 0
        for chunk in render(source(), ENV, Expansion(), source="big"):
            produced += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert produced > total // 2
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes while rendering {produced} bytes"


@pytest.mark.parametrize(
    "size", [1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES, 1_000_003]
)
@pytest.mark.parametrize("kind", ["zeros", "random"])
def test_gunzip_round_trips_around_the_output_chunk_size(size: int, kind: str) -> None:
    data = b"\0" * size if kind == "zeros" else random.Random(size).randbytes(size)
    for chunk in (1000, len(data)):
        compressed = gzip.compress(data)
        pieces = [compressed[i : i + chunk] for i in range(0, len(compressed), chunk)]
        assert b"".join(maybe_gunzip(pieces, source="x")) == data
