"""A really full disk and a read-only remount under a running config-reloader.

The output directory is a small tmpfs that the test mounts (as root) and unmounts at teardown. A
config that does not fit gives one clear line, counts in reloader_config_apply_operations_failed_total,
and leaves the previous output intact, with no temporary file; once space is freed (or the directory
is writable again), the next change applies and reloads. Without root the test skips with the reason;
with CI=true it must run, so there a failed mount is a failure.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reloader.write import TEMP_PREFIX, temp_prefix
from tests.reloader.conftest import Endpoint, start_endpoint
from tests.reloader.procs import Running, Spawn, spawn, wait_serving
from tests.support.polling import eventually
from tests.support.reloader_proc import replace_file

__all__ = ["spawn"]  # the fixture, imported for pytest

TMPFS_BYTES = 256 * 1024
CI = os.environ.get("CI", "").lower() == "true"


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        reason = f"mount {' '.join(args)} failed: {result.stderr.strip()}"
        if CI:
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs at tmp_path/out, unmounted at teardown."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs this as root)")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755", "tmpfs", str(out_dir))
    try:
        yield out_dir
    finally:
        subprocess.run(["umount", "-l", str(out_dir)], capture_output=True, timeout=30, check=False)


def config(version: int, size: int = 100) -> bytes:
    return f"# v{version}\n".encode() + b"x" * size + b"\n"


def fill(directory: Path) -> Path:
    """Fill the file system up to the last block."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


async def failed_applies(running: Running) -> float:
    return await running.metric("reloader_config_apply_operations_failed_total") or 0.0


def error_lines(running: Running, cause: str) -> list[str]:
    return [line for line in running.lines() if cause in line]


async def one_clear_line_per_failure(running: Running, cause: str, out: Path) -> None:
    """Each failed apply logged one line (a change may come as two events): the same line, naming
    the output and the cause, and never the config's contents."""
    lines = error_lines(running, cause)
    assert lines and len(set(lines_without_ts(lines))) == 1, lines
    assert "level=error" in lines[0] and f"output {out}" in lines[0], lines[0]
    assert "xxxx" not in lines[0]
    assert await failed_applies(running) == len(lines)


def lines_without_ts(lines: list[str]) -> list[str]:
    return [" ".join(w for w in line.split(" ") if not w.startswith("ts=")) for line in lines]


async def start(spawn: Spawn, files: Path, out: Path, url: str) -> Running:
    running = await spawn(
        f"--config-file={files / 'prometheus.yaml'}",
        f"--config-envsubst-file={out}",
        f"--reload-url={url}",
        "--delay-interval=300ms",
        "--retry-interval=1h",  # so every failed apply below is the one that the change caused
    )
    await wait_serving(running, "/readyz")
    return running


async def test_a_full_disk_then_freed_space(
    tmp_path: Path, small_disk: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = small_disk / "prometheus.env.yaml"
    replace_file(inputs / "prometheus.yaml", config(1))
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await start(spawn, inputs, out, endpoint.url)
    assert out.read_bytes() == config(1)
    assert await failed_applies(running) == 0

    filler = fill(small_disk)
    replace_file(inputs / "prometheus.yaml", config(2, size=64 * 1024))
    await eventually(lambda: error_lines(running, "No space left on device"), "the ENOSPC line")
    await one_clear_line_per_failure(running, "No space left on device", out)
    failed = await failed_applies(running)
    assert out.read_bytes() == config(1)
    assert [n for n in names(small_disk) if n.startswith(TEMP_PREFIX)] == []
    assert running.alive() and len(endpoint.seen) == 1

    filler.unlink()
    replace_file(inputs / "prometheus.yaml", config(3, size=64 * 1024))
    await eventually(lambda: len(endpoint.seen) == 2, "the reload once space was freed")
    assert out.read_bytes() == config(3, size=64 * 1024) == endpoint.seen[1].encode()
    assert await failed_applies(running) == failed
    assert await running.stop() == 0


async def test_a_read_only_remount_then_writable_again(
    tmp_path: Path, small_disk: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = small_disk / "prometheus.env.yaml"
    replace_file(inputs / "prometheus.yaml", config(1))
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await start(spawn, inputs, out, endpoint.url)

    _mount("-o", "remount,ro", str(small_disk))
    replace_file(inputs / "prometheus.yaml", config(2))
    await eventually(lambda: error_lines(running, "Read-only file system"), "the EROFS line")
    await one_clear_line_per_failure(running, "Read-only file system", out)
    assert out.read_bytes() == config(1)
    assert running.alive() and len(endpoint.seen) == 1

    _mount("-o", "remount,rw", str(small_disk))
    replace_file(inputs / "prometheus.yaml", config(3))
    await eventually(lambda: len(endpoint.seen) == 2, "the reload once the directory was writable")
    assert out.read_bytes() == config(3)
    assert names(small_disk) == [out.name]
    assert await running.stop() == 0


async def test_a_disk_filled_by_a_killed_write_s_leftover_is_freed_by_the_next_write(
    tmp_path: Path, small_disk: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    """The issue's emptyDir that only grows: a leftover of our own takes all the room; the next write
    removes it first, so it fits."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = small_disk / "prometheus.env.yaml"
    replace_file(inputs / "prometheus.yaml", config(1))
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await start(spawn, inputs, out, endpoint.url)
    leftover = fill(small_disk).rename(small_disk / f"{temp_prefix(out)}0123456789ab.tmp")
    foreign = small_disk / f"{temp_prefix(small_disk / 'other.yaml')}0123456789ab.tmp"
    foreign.write_bytes(b"")  # another output's temporary file: it stays

    replace_file(inputs / "prometheus.yaml", config(2, size=64 * 1024))
    await eventually(
        lambda: len(endpoint.seen) == 2, "the reload of the config that fits once the leftover is gone"
    )
    assert out.read_bytes() == config(2, size=64 * 1024)
    assert names(small_disk) == sorted([out.name, foreign.name])
    assert not leftover.exists()
    assert await failed_applies(running) == 0
    assert await running.stop() == 0
