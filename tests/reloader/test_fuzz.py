"""Fuzzing with reference models (hypothesis): env expansion, gunzip, Go durations.

Each model is the simplest thing that states the rule, working on the whole input at once; the real
code streams chunks, bounds memory and reports errors. For random inputs and random chunk sizes, the
two must give the same answer, and the real code must neither crash (any exception but the one it
documents) nor hang.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reloader.durations import parse_duration
from reloader.render import (
    CHUNK_BYTES,
    GZIP_MAGIC,
    Expansion,
    RenderError,
    check_utf8,
    expand_env,
    maybe_gunzip,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- chunking ---------------------------------------------------------------------------------------


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (any order, duplicates give empty chunks)."""
    points = sorted(min(c, len(data)) for c in cuts)
    out, start = [], 0
    for p in points:
        out.append(data[start:p])
        start = p
    out.append(data[start:])
    return out


cuts = st.lists(st.integers(min_value=0, max_value=4096), max_size=40)


# --- env expansion ----------------------------------------------------------------------------------


KERNEL_MAX_NAME = 128 * 1024 - 2  # MAX_ARG_STRLEN, less "=" and the NUL


def reference_expand(text: bytes, env: dict[str, str], strict: bool) -> tuple[bytes, dict[str, int]]:
    """design.md's rule, scanning left to right: ``$(NAME)`` with NAME of [A-Za-z0-9_]+, one pass.

    The kernel bounds one environment string ("NAME=value" and its NUL) to 128 KiB, so no longer
    name can ever be set; past that bound the model leaves a name alone.
    """
    out = bytearray()
    unset: dict[str, int] = {}
    i = 0
    while i < len(text):
        if text.startswith(b"$(", i):
            j = i + 2
            while j < len(text) and (chr(text[j]).isascii() and (chr(text[j]).isalnum() or text[j] == 95)):
                j += 1
            if j > i + 2 and j < len(text) and text[j] == ord(")") and j - i - 2 <= KERNEL_MAX_NAME:
                name = text[i + 2 : j].decode()
                if name in env:
                    out += env[name].encode("utf-8", "surrogateescape")
                else:
                    if strict:
                        raise RenderError(name)
                    unset[name] = unset.get(name, 0) + 1
                    out += text[i : j + 1]
                i = j + 1
                continue
        out.append(text[i])
        i += 1
    return bytes(out), unset


names = st.text(alphabet="ABCxyz019_", min_size=1, max_size=6) | st.text(
    alphabet="Ab_", min_size=250, max_size=270
)
pieces = st.one_of(
    st.sampled_from(["$", "$$", "$(", "$()", ")", "(", "${", "}", "$1", "${1}", "$$(", "\n", " ", "é"]),
    names.map(lambda n: f"$({n})"),
    names.map(lambda n: f"$({n}"),  # unterminated
    names.map(lambda n: f"$($({n}))"),  # nested
    names.map(lambda n: f"${n}"),
    names.map(lambda n: f"${{{n}}}"),
    names,
    st.text(max_size=5),
)


@FUZZ
@given(
    template=st.lists(pieces, max_size=40).map("".join),
    env=st.dictionaries(names, st.text(max_size=8) | st.sampled_from(["$(A)", "$", ""]), max_size=6),
    chunking=cuts,
    strict=st.booleans(),
)
# Found by this test: names over 256 characters were neither expanded nor counted.
@example(template="$(" + "A" * 300 + ")", env={"A" * 300: "v"}, chunking=[100], strict=False)
@example(template="$(" + "A" * 300 + ")", env={}, chunking=[], strict=True)
def test_env_expansion_matches_the_reference_for_any_chunking(
    template: str, env: dict[str, str], chunking: list[int], strict: bool
) -> None:
    data = template.encode()
    expansion = Expansion()
    try:
        want, unset = reference_expand(data, env, strict)
    except RenderError as exc:
        with pytest.raises(RenderError, match=f"environment variable {exc} is not set"):
            b"".join(expand_env(split(data, chunking), env, Expansion(), strict=True))
        return
    got = b"".join(expand_env(split(data, chunking), env, expansion, strict=strict))
    assert got == want
    assert expansion.unset == unset


@FUZZ
@given(size=st.integers(min_value=0, max_value=3 * CHUNK_BYTES), name=st.sampled_from(["A", "B_1"]))
def test_a_placeholder_at_any_offset_of_a_big_input_is_expanded(size: int, name: str) -> None:
    data = b"x" * size + f"$({name})".encode() + b"y" * 10
    got = b"".join(
        expand_env(
            [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)], {name: "v"}, Expansion()
        )
    )
    assert got == b"x" * size + b"v" + b"y" * 10


# --- UTF-8 check -------------------------------------------------------------------------------------

utf8ish = st.lists(
    st.sampled_from(
        [b"a", b"$(", b"\n", "é".encode(), "€".encode(), "😀".encode(), b"\xc3", b"\xff", b"\x80"]
    ),
    max_size=30,
).map(b"".join)


@FUZZ
@given(data=utf8ish, chunking=st.lists(st.integers(min_value=0, max_value=40), max_size=10))
def test_the_utf8_check_agrees_with_decoding_the_whole_input_for_any_chunking(
    data: bytes, chunking: list[int]
) -> None:
    """ASCII chunks skip the decoder: a character cut by a chunk boundary must still be checked whole."""
    try:
        data.decode("utf-8")
        kind = None
    except UnicodeDecodeError as exc:
        # Cut off at the very end, or a bad byte somewhere: the message says which.
        kind = "truncated character at the end" if exc.reason == "unexpected end of data" else "at byte"
    chunks = split(data, chunking)
    if kind is None:
        assert b"".join(check_utf8(chunks, source="in")) == data
    else:
        with pytest.raises(RenderError, match=rf"^in: not valid UTF-8.*{kind}"):
            b"".join(check_utf8(chunks, source="in"))


# --- gzip -------------------------------------------------------------------------------------------


def reference_gunzip(data: bytes) -> bytes:
    """Go's gzip.Reader in its default multistream mode: members back to back, nothing after them."""
    out = b""
    rest = data
    while True:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += d.decompress(rest)
        except zlib.error as exc:
            raise RenderError(str(exc)) from exc
        if not d.eof:
            raise RenderError("truncated")
        rest = d.unused_data
        if not rest:
            return out


def gunzip(chunks: list[bytes], max_bytes: int = 1 << 30) -> bytes:
    produced = []
    for chunk in maybe_gunzip(chunks, source="in", max_bytes=max_bytes):
        assert 0 < len(chunk) <= max(CHUNK_BYTES, len(chunks[0]) if chunks else 0)
        produced.append(chunk)
    return b"".join(produced)


def same_as_reference(data: bytes, chunking: list[int]) -> None:
    try:
        want: bytes | RenderError = reference_gunzip(data)
    except RenderError as exc:
        want = exc
    try:
        got: bytes | RenderError = gunzip(split(data, chunking))
    except RenderError as exc:
        assert str(exc).startswith("in: "), exc  # one line naming the input
        got = exc
    if isinstance(want, RenderError):
        assert isinstance(got, RenderError), f"accepted what the reference rejects ({want})"
    else:
        assert got == want


payloads = st.binary(max_size=300) | st.integers(min_value=0, max_value=200_000).map(lambda n: b"a" * n)


@FUZZ
@given(tail=st.binary(max_size=200), chunking=cuts)
def test_random_bytes_after_the_magic(tail: bytes, chunking: list[int]) -> None:
    same_as_reference(GZIP_MAGIC + tail, chunking)


@FUZZ
@given(members=st.lists(payloads, min_size=1, max_size=4), garbage=st.binary(max_size=4), chunking=cuts)
def test_concatenated_members_with_or_without_trailing_bytes(
    members: list[bytes], garbage: bytes, chunking: list[int]
) -> None:
    data = b"".join(gzip.compress(m, mtime=0) for m in members) + garbage
    same_as_reference(data, chunking)
    if not garbage:
        assert gunzip(split(data, chunking)) == b"".join(members) == gzip.decompress(data)


@FUZZ
@given(members=st.lists(st.binary(max_size=400), min_size=1, max_size=3), chunking=cuts)
def test_a_truncation_at_every_length_is_an_error_unless_it_ends_a_member(
    members: list[bytes], chunking: list[int]
) -> None:
    encoded = [gzip.compress(m, mtime=0) for m in members]
    data = b"".join(encoded)
    boundaries = {
        sum(len(e) for e in encoded[: i + 1]): b"".join(members[: i + 1]) for i in range(len(encoded))
    }
    for length in range(len(GZIP_MAGIC), len(data) + 1):
        prefix = data[:length]
        if length in boundaries:
            assert gunzip(split(prefix, chunking)) == boundaries[length]
        else:
            with pytest.raises(RenderError, match=r"^in: (truncated|corrupt) gzip data"):
                gunzip(split(prefix, chunking))


@FUZZ
@given(
    flip=st.integers(min_value=0),
    bit=st.integers(min_value=0, max_value=7),
    payload=st.binary(min_size=1, max_size=500),
)
def test_a_flipped_bit_anywhere_matches_the_reference(flip: int, bit: int, payload: bytes) -> None:
    data = bytearray(gzip.compress(payload, mtime=0))
    data[len(GZIP_MAGIC) + flip % (len(data) - len(GZIP_MAGIC))] ^= 1 << bit
    same_as_reference(bytes(data), [7, 40])


def zeros_gzip(total: int) -> bytes:
    """``total`` zero bytes, gzipped without ever holding them all."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(total >> 20)]
    return b"".join([*parts, c.flush()])


@pytest.mark.parametrize("members", [1, 8])
def test_a_bomb_stops_at_the_limit_without_holding_it(members: int) -> None:
    limit = 8 << 20
    bomb = zeros_gzip(64 << 20) if members == 1 else zeros_gzip(2 << 20) * members  # 16 MiB in 8 members
    assert len(bomb) < limit // 50  # it really is a bomb
    produced = 0
    with pytest.raises(RenderError, match=r"^in: gzip data decompresses to more than 8388608 bytes"):
        for chunk in maybe_gunzip(split(bomb, [1000, 5000]), source="in", max_bytes=limit):
            assert len(chunk) <= CHUNK_BYTES
            produced += len(chunk)
    assert limit - CHUNK_BYTES <= produced <= limit


# --- Go durations -----------------------------------------------------------------------------------

_GO_UNITS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_MAX_NS = (1 << 63) - 1


def reference_go_duration_ns(s: str) -> int:
    """Go's time.ParseDuration, as integer nanoseconds; ValueError where Go returns an error.

    Written after Go's algorithm (a leading sign, then number-unit pairs, where the unit is every
    character up to the next digit or dot), not after our parser.
    """
    orig = s
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {orig!r}")
    total = 0
    while s:
        i = 0
        while i < len(s) and s[i] in "0123456789":
            i += 1
        whole, s = s[:i], s[i:]
        frac = ""
        if s.startswith("."):
            s = s[1:]
            i = 0
            while i < len(s) and s[i] in "0123456789":
                i += 1
            frac, s = s[:i], s[i:]
        if not whole and not frac:
            raise ValueError(f"invalid duration {orig!r}")
        i = 0
        while i < len(s) and s[i] != "." and s[i] not in "0123456789":
            i += 1
        unit_name, s = s[:i], s[i:]
        if unit_name not in _GO_UNITS:
            raise ValueError(f"unknown or missing unit in {orig!r}")
        unit = _GO_UNITS[unit_name]
        value = int(whole or "0") * unit
        if frac:
            value += int(frac) * unit // 10 ** len(frac)
        total += value
        if total > 1 << 63:
            raise ValueError(f"invalid duration {orig!r} (overflow)")
    if not neg and total > _MAX_NS:
        raise ValueError(f"invalid duration {orig!r} (overflow)")
    return -total if neg else total


digits = st.text(alphabet="0123456789", min_size=1, max_size=4)
numbers = st.one_of(
    digits,
    st.tuples(digits, st.text(alphabet="0123456789", max_size=12)).map(".".join),  # "1." is fine in Go
    digits.map(lambda d: "." + d),
    st.integers(min_value=10**14, max_value=10**21).map(str),  # near and past int64 nanoseconds
)
units = st.sampled_from(sorted(_GO_UNITS))
junk = st.sampled_from(["", ".", "0", "+", "-", "x", " ", "\u0661", "\u0663", "e3", "hh", "sm", "1"])
well_formed = st.tuples(
    st.sampled_from(["", "", "+", "-"]),
    st.lists(st.tuples(numbers, units).map("".join), min_size=1, max_size=5),
).map(lambda t: t[0] + "".join(t[1]))
durations = st.one_of(
    well_formed,
    st.tuples(well_formed, junk, well_formed).map("".join),  # junk somewhere in the middle
    st.tuples(junk, well_formed, junk).map("".join),
    st.lists(st.one_of(numbers, units, junk), max_size=8).map("".join),
    st.text(max_size=10),
)


@settings(FUZZ, max_examples=1000)
@given(text=durations)
# Found by this test: Unicode digits were read as numbers, "+" was refused, and there was no overflow.
@example(text="\u0661s")
@example(text="+5s")
@example(text="+")
@example(text="100000000000000h")
def test_go_durations_match_the_reference_parser(text: str) -> None:
    try:
        want_ns = reference_go_duration_ns(text)
    except ValueError:
        with pytest.raises(ValueError, match="duration"):
            parse_duration(text)
        return
    if want_ns < 0 or text.startswith("-"):
        with pytest.raises(ValueError, match="negative"):  # no flag of ours takes one
            parse_duration(text)
        return
    got = parse_duration(text)
    units = sum(text.count(u) for u in ("s", "m", "h"))  # each pair may truncate below 1 ns
    assert abs(got * 1e9 - want_ns) <= max(units + 1, want_ns * 1e-12), (got, want_ns)


@pytest.mark.parametrize(
    ("text", "ns"),
    [("+5s", 5 * 10**9), ("2562047h47m16.854775807s", _MAX_NS), ("1.0000000001s", 10**9), ("0.5ns", 0)],
)
def test_reference_parser_agrees_with_go_on_known_values(text: str, ns: int) -> None:
    # Values from Go's own time.ParseDuration tests, so the model itself is pinned.
    assert reference_go_duration_ns(text) == ns


@pytest.mark.parametrize("text", ["2562047h47m16.854775808s", "9223372036854775808ns", "1\u0661s", "\u0661s"])
def test_reference_parser_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        reference_go_duration_ns(text)
