"""write: the atomic replace, the unchanged-bytes skip, and failures that leave the output as it was.

A full disk is simulated here through the ``write_chunk`` seam (os.write's shape, raising ENOSPC);
tests/reloader/test_cli_filesystems.py does it for real, on a tiny tmpfs in a private mount namespace.
"""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloader.render import RenderError
from reloader.write import TEMP_PREFIX, WriteError, is_own_temp, read_chunks, temp_prefix, write_atomic


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX))


def test_writes_new_output_and_reports_hash_and_size(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    result = write_atomic(out, [b"a: 1\n", b"b: 2\n"])
    assert out.read_bytes() == b"a: 1\nb: 2\n"
    assert result.changed and result.size == 10
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert out.stat().st_mode & 0o777 == 0o644
    assert leftovers(tmp_path) == []


def test_replaces_the_output_with_a_new_inode_and_keeps_its_mode(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(b"old\n")
    out.chmod(0o640)
    inode = out.stat().st_ino
    result = write_atomic(out, [b"new\n"])
    assert result.changed
    assert out.read_bytes() == b"new\n"
    assert out.stat().st_ino != inode  # renamed over, never rewritten in place
    assert out.stat().st_mode & 0o777 == 0o640


def test_unchanged_bytes_leave_the_output_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(b"same\n")
    os.utime(out, (1_000_000, 1_000_000))
    before = out.stat()
    result = write_atomic(out, [b"sa", b"me\n"])
    assert not result.changed
    after = out.stat()
    assert (after.st_ino, after.st_mtime) == (before.st_ino, before.st_mtime)
    assert leftovers(tmp_path) == []


def test_missing_directory_is_an_error_naming_the_output(tmp_path: Path) -> None:
    out = tmp_path / "nope" / "out.yaml"
    with pytest.raises(
        WriteError, match=r"output .*nope/out\.yaml: cannot create a file in .*nope: No such file"
    ):
        write_atomic(out, [b"x"])


def test_full_disk_keeps_the_previous_output_and_removes_the_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(b"previous\n")
    room = [100]  # bytes left on the "disk"

    def small_disk(fd: int, data: bytes) -> int:
        if len(data) > room[0]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        room[0] -= len(data)
        return os.write(fd, data)

    with pytest.raises(WriteError, match=r"output .*out\.yaml: No space left on device"):
        write_atomic(out, [b"x" * 64, b"y" * 64, b"z" * 64], write_chunk=small_disk)
    assert out.read_bytes() == b"previous\n"
    assert leftovers(tmp_path) == []


def test_a_render_error_midway_keeps_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(b"previous\n")

    def broken() -> Iterator[bytes]:
        yield b"half of a new config\n"
        raise RenderError("in.yaml: truncated gzip data")

    with pytest.raises(RenderError, match="truncated"):
        write_atomic(out, broken())
    assert out.read_bytes() == b"previous\n"
    assert leftovers(tmp_path) == []


def test_an_output_that_is_a_directory_fails_cleanly(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.mkdir()
    (out / "keep").write_text("k")
    with pytest.raises(WriteError, match=r"out\.yaml"):
        write_atomic(out, [b"data"])
    assert (out / "keep").read_text() == "k"
    assert leftovers(tmp_path) == []


def test_read_chunks_follows_symlinks_and_raises_for_a_missing_file(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_bytes(b"r" * 200_000)
    link = tmp_path / "link"
    link.symlink_to(target)
    chunks = list(read_chunks(link, chunk_bytes=65536))
    assert b"".join(chunks) == b"r" * 200_000
    assert max(len(c) for c in chunks) == 65536
    with pytest.raises(FileNotFoundError):
        next(read_chunks(tmp_path / "missing"))


def test_unchanged_bytes_cost_no_write_at_all(tmp_path: Path) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(b"a" * 300_000)
    writes: list[int] = []

    def counting(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return os.write(fd, data)

    result = write_atomic(out, [b"a" * 100_000] * 3, write_chunk=counting)
    assert not result.changed
    assert writes == []


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"abcdefghij" * 1000, b"Xbcdefghij" + b"abcdefghij" * 999),  # differs at the first byte
        (b"abcdefghij" * 1000, b"abcdefghij" * 500 + b"X" + b"bcdefghij" + b"abcdefghij" * 499),  # middle
        (b"abcdefghij" * 1000, b"abcdefghij" * 999 + b"abcdefghiX"),  # last byte
        (b"abcdefghij" * 1000, b"abcdefghij" * 1000 + b"more"),  # new is longer
        (b"abcdefghij" * 1000, b"abcdefghij" * 700),  # new is a prefix of the old
        (b"short", b"short but longer now"),
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 4096, 100_000])
def test_the_equal_prefix_is_copied_and_the_rest_streamed(
    tmp_path: Path, old: bytes, new: bytes, chunk: int
) -> None:
    out = tmp_path / "out.yaml"
    out.write_bytes(old)
    result = write_atomic(out, [new[i : i + chunk] for i in range(0, len(new), chunk)])
    assert result.changed and result.size == len(new)
    assert out.read_bytes() == new
    assert result.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert leftovers(tmp_path) == []


def test_the_file_is_fsynced_before_the_rename_and_the_directory_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spies that record and then call the real functions: durability leaves no trace a test can read.
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    out = tmp_path / "out.yaml"
    out.write_bytes(b"old\n")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_atomic(out, [b"new\n"])
    assert [kind for kind, _ in calls] == ["fsync", "replace", "fsync"], calls
    assert Path(calls[0][1]).parent == tmp_path and Path(calls[0][1]).name.startswith(TEMP_PREFIX)
    assert calls[1][1] == str(out)
    assert calls[2][1] == str(tmp_path)

    calls.clear()
    write_atomic(out, [b"new\n"])  # unchanged: nothing written, nothing to make durable
    assert calls == []


def test_temporary_names_carry_the_output_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (seen.append(Path(src).name), real_replace(src, dst)))
    write_atomic(tmp_path / "prometheus.env.yaml", [b"a\n"])
    [name] = seen
    assert name.startswith(f"{TEMP_PREFIX}prometheus.env.yaml.") and name.endswith(".tmp"), name
    assert is_own_temp(tmp_path / "prometheus.env.yaml", name)


def test_a_write_removes_its_own_leftovers_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "a.yaml"
    own = [f"{temp_prefix(out)}0123456789ab.tmp", f"{temp_prefix(out)}ffffffffffff.tmp"]
    foreign = [
        f"{temp_prefix(tmp_path / 'a.yaml.b')}0123456789ab.tmp",  # another output whose name extends ours
        f"{temp_prefix(tmp_path / 'b.yaml')}0123456789ab.tmp",  # another reloader in the same directory
        f"{temp_prefix(out)}0123456789a.tmp",  # wrong length: not a name we create
        f"{temp_prefix(out)}0123456789ab.tmp.bak",
        f"{TEMP_PREFIX}a.yaml.tmp",
        "a.yaml.tmp",
        "a.yaml",
    ]
    for name in own + foreign:
        (tmp_path / name).write_bytes(b"x" * 10)
    (tmp_path / f"{temp_prefix(out)}aaaaaaaaaaaa.tmp").mkdir()  # not a regular file: left alone
    write_atomic(out, [b"x" * 10])  # unchanged bytes: the leftovers go all the same
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([*foreign, f"{temp_prefix(out)}aaaaaaaaaaaa.tmp"])
    assert all((tmp_path / n).read_bytes() == b"x" * 10 for n in foreign)


def test_a_symlink_with_a_temporary_name_is_neither_followed_nor_removed(tmp_path: Path) -> None:
    # We only ever create regular files: a symlink of that name is someone else's.
    out = tmp_path / "out.yaml"
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    link = tmp_path / f"{temp_prefix(out)}0123456789ab.tmp"
    link.symlink_to(victim)
    write_atomic(out, [b"new\n"])
    assert victim.read_bytes() == b"keep" and link.is_symlink()


@pytest.mark.parametrize("length", [1, 200, 230, 255])
def test_long_output_names_still_get_a_temporary_name_that_fits(tmp_path: Path, length: int) -> None:
    out = tmp_path / ("n" * length)
    prefix = temp_prefix(out)
    assert len(prefix) + 12 + len(".tmp") <= 255
    (tmp_path / f"{prefix}0123456789ab.tmp").write_bytes(b"old")
    write_atomic(out, [b"data"])
    assert out.read_bytes() == b"data"
    assert leftovers(tmp_path) == []
    assert temp_prefix(tmp_path / ("m" * length)) != prefix
