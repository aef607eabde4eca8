"""A real full disk and a real read-only directory, on a tiny tmpfs in a private mount namespace.

``unshare --mount`` gives the reloader its own mount table, so the tmpfs exists for it alone; the test
reads the reloader's view of it through /proc/PID/root. This needs root (or CAP_SYS_ADMIN) and
unshare(1); without them, the tests skip and test_write.py's injected ENOSPC still covers a full disk.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from reloader.write import TEMP_PREFIX
from tests.reloader.conftest import Endpoint, start_endpoint
from tests.reloader.procs import Running, wait_serving
from tests.support.polling import eventually
from tests.support.procs import free_port
from tests.support.reloader_proc import reloader_binary, reloader_env


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs /mnt"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_unshare(), reason="needs root and unshare --mount to mount a tmpfs")

BIG = "x: " + "y" * 200_000 + "\n"  # larger than the 64 KiB tmpfs


def mount_script(out_dir: Path, seed: str | None, then: str, read_only: bool = False) -> str:
    lines = [f"mount -t tmpfs -o size=64k tmpfs {out_dir}"]
    if seed is not None:
        lines.append(f"printf '%s' '{seed}' > {out_dir}/out.yaml")
    if read_only:
        lines.append(f"mount -o remount,ro {out_dir}")
    lines.append(then)
    return " && ".join(lines)


def run_in_namespace(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        capture_output=True,
        text=True,
        env=reloader_env(),
        timeout=60,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("read_only", "cause"), [(False, "No space left on device"), (True, "Read-only file system")]
)
def test_init_mode_on_a_full_or_read_only_disk_is_one_line_and_keeps_the_output(
    files: Path, read_only: bool, cause: str
) -> None:
    config = files / "in" / "prometheus.yaml"
    config.write_text(BIG)
    out_dir = files / "out"
    reloader = f"{reloader_binary()} --config-file={config} --config-envsubst-file={out_dir}/out.yaml --watch-interval=0"
    script = mount_script(
        out_dir,
        "previous",
        f"{{ {reloader}; rc=$?; echo ---; cat {out_dir}/out.yaml; echo; ls -A {out_dir}; exit $rc; }}",
        read_only,
    )
    result = run_in_namespace(script)
    log, _, after = result.stdout.partition("---\n")
    lines = (log + result.stderr).splitlines()
    assert result.returncode == 1, result
    assert len(lines) == 1, lines
    assert f"output {out_dir}/out.yaml" in lines[0] and cause in lines[0], lines[0]
    assert after.splitlines() == ["previous", "out.yaml"]  # the old bytes, and no temporary file left


@pytest.fixture
async def namespaced(files: Path) -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def start_sidecar(
    files: Path, url: str, procs: list[asyncio.subprocess.Process]
) -> tuple[Running, Path]:
    out_dir = files / "out"
    port = free_port()
    args = (
        f"--config-file={files / 'in' / 'prometheus.yaml'} --config-envsubst-file={out_dir}/out.yaml "
        f"--reload-url={url} --listen-address=127.0.0.1:{port} --delay-interval=50ms --retry-interval=1h"
    )
    log_path = files / "reloader.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            "unshare",
            "--mount",
            "sh",
            "-c",
            mount_script(out_dir, None, f"exec {reloader_binary()} {args}"),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=reloader_env(),
        )
    procs.append(proc)
    running = Running(proc=proc, log_path=log_path, port=port)
    await wait_serving(running, "/readyz")
    await wait_serving(running, "/healthz")
    # The reloader's own view of its tmpfs.
    return running, Path(f"/proc/{proc.pid}/root") / str(out_dir).lstrip("/")


async def test_a_full_disk_while_running_keeps_the_output_and_the_process(
    files: Path, aiohttp_server: Any, namespaced: list[asyncio.subprocess.Process]
) -> None:
    config = files / "in" / "prometheus.yaml"
    config.write_text("small: 1\n")
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "unused"))
    running, seen_out = await start_sidecar(files, endpoint.url, namespaced)
    assert (seen_out / "out.yaml").read_text() == "small: 1\n"

    config.write_text(BIG)
    await eventually(
        lambda: any("No space left on device" in line for line in running.lines()), "the ENOSPC line"
    )
    [line] = [line for line in running.lines() if "No space left" in line]
    assert "level=error" in line and "out.yaml" in line
    assert (seen_out / "out.yaml").read_text() == "small: 1\n"
    assert sorted(p.name for p in seen_out.iterdir()) == ["out.yaml"]
    assert running.alive()

    config.write_text("small: 2\n")
    await eventually(lambda: len(endpoint.seen) == 2, "the reload after the disk has room again")
    assert (seen_out / "out.yaml").read_text() == "small: 2\n"
    assert not any(p.name.startswith(TEMP_PREFIX) for p in seen_out.iterdir())
    assert await running.stop() == 0


async def test_a_read_only_output_dir_while_running_keeps_the_output_and_the_process(
    files: Path, aiohttp_server: Any, namespaced: list[asyncio.subprocess.Process]
) -> None:
    config = files / "in" / "prometheus.yaml"
    config.write_text("v: 1\n")
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "unused"))
    running, seen_out = await start_sidecar(files, endpoint.url, namespaced)
    out_dir = files / "out"
    remount = await asyncio.create_subprocess_exec(
        "nsenter", f"--target={running.proc.pid}", "--mount", "mount", "-o", "remount,ro", str(out_dir)
    )
    assert await remount.wait() == 0

    config.write_text("v: 2\n")
    await eventually(
        lambda: any("Read-only file system" in line for line in running.lines()), "the EROFS line"
    )
    assert (seen_out / "out.yaml").read_text() == "v: 1\n"
    assert running.alive()
    assert len(endpoint.seen) == 1
    assert await running.stop() == 0
