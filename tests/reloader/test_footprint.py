"""What keeps the sidecar inside prometheus-operator's 10m/50Mi envelope (``make bench`` measures the
figures themselves; tests never assert speed or memory).

Each test pins one cause found by measuring: init mode importing asyncio, ssl or an HTTP client (every
millisecond of CPU is 100 ms of wall time at 10m), anyio's asyncio backend that watchfiles' ``awatch``
loads (about 1.3 MiB), and the C++ runtime that frozenlist's compiled extension maps (about 1 MiB).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reloader.cli import FROZENLIST_PURE_PYTHON, skip_cpp_runtime
from tests.reloader.conftest import Endpoint, start_endpoint
from tests.reloader.procs import Spawn, spawn, wait_serving

__all__ = ["spawn"]

WATCH_ONCE = """
import asyncio, sys
from pathlib import Path
from reloader.watch import watch_changes

async def main() -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(
        watch_changes([Path(sys.argv[1])], lambda n: None, keep=lambda p: True, on_ready=ready.set)
    )
    await asyncio.wait_for(ready.wait(), 60)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    print("anyio backend loaded:", "anyio._backends._asyncio" in sys.modules)

asyncio.run(main())
"""


# Each costs from 0.3 s to 8 s of wall time at 10m CPU: the start-up path imports none of them.
HEAVY = (
    "asyncio ssl _ssl aiohttp http prometheus_client watchfiles click logging re pathlib typing "
    "dataclasses json urllib contextlib secrets enum socket"
)

# Counted from after `import reloader` (an empty package): the test venv's editable-install hook
# imports some of these itself, an installed wheel does not.
INIT_MODE = f"""
import sys
import reloader
before = set(sys.modules)
from reloader.cli import cli

code = cli(sys.argv[1:])
heavy = sorted(n for n in set(sys.modules) - before if n.split(".")[0] in set({HEAVY!r}.split()))
print("exit", code, "heavy", heavy)
"""

# The sidecar, stopped at its first reload POST: what has it imported by then?
FIRST_RELOAD = f"""
import sys
import reloader
before = set(sys.modules)
from reloader import quickpost
from reloader.cli import cli

def first_post(url, *, timeout_s):
    new = set(sys.modules) - before
    early = sorted(n for n in new if n.split(".")[0] in set({HEAVY!r}.split()) and "." not in n)
    print("first reload to", url, "after", early, flush=True)
    sys.exit(0)

quickpost.post_blocking = first_post
cli(sys.argv[1:])
"""


def test_init_mode_imports_no_asyncio_ssl_or_http_client(tmp_path: Path) -> None:
    config, out = tmp_path / "prometheus.yaml", tmp_path / "out.yaml"
    config.write_text("global: {}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            INIT_MODE,
            f"--config-file={config}",
            f"--config-envsubst-file={out}",
            "--watch-interval=0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "exit 0 heavy []", result.stdout + result.stderr
    assert out.read_text() == "global: {}\n"


def test_the_sidecar_sends_its_first_reload_before_any_heavy_import(tmp_path: Path) -> None:
    config, out = tmp_path / "prometheus.yaml", tmp_path / "out.yaml"
    config.write_text("global: {}\n")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FIRST_RELOAD,
            f"--config-file={config}",
            f"--config-envsubst-file={out}",
            "--reload-url=http://127.0.0.1:9/-/reload",
            "--listen-address=:0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The stub stands in for the POST, which imports socket (and enum) itself: nothing else before it.
    assert "first reload to http://127.0.0.1:9/-/reload after []" in result.stdout, (
        result.stdout + result.stderr
    )
    assert out.read_text() == "global: {}\n"


def test_the_watcher_runs_without_anyio_s_event_loop_backend(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WATCH_ONCE, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "anyio backend loaded: False", result.stdout + result.stderr


def test_skip_cpp_runtime_keeps_a_value_the_user_set(monkeypatch: pytest.MonkeyPatch) -> None:
    # setenv first, so that monkeypatch restores the original state after skip_cpp_runtime's own change.
    monkeypatch.setenv(FROZENLIST_PURE_PYTHON, "placeholder")
    monkeypatch.delenv(FROZENLIST_PURE_PYTHON)
    skip_cpp_runtime()
    assert os.environ[FROZENLIST_PURE_PYTHON] == "1"
    monkeypatch.setenv(FROZENLIST_PURE_PYTHON, "")
    skip_cpp_runtime()
    assert os.environ[FROZENLIST_PURE_PYTHON] == ""


async def test_the_sidecar_maps_no_cpp_runtime_and_its_config_never_sees_the_switch(
    tmp_path: Path, spawn: Spawn, aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FROZENLIST_PURE_PYTHON, raising=False)  # the user did not set it
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    config, out = tmp_path / "in" / "prometheus.yaml", tmp_path / "out" / "out.yaml"
    config.write_text(f"switch: $({FROZENLIST_PURE_PYTHON})\n")
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await spawn(
        f"--config-file={config}", f"--config-envsubst-file={out}", f"--reload-url={endpoint.url}"
    )
    await wait_serving(running, "/readyz")
    maps = await asyncio.to_thread(Path(f"/proc/{running.proc.pid}/maps").read_text)
    assert "libstdc++" not in maps
    assert "_http_parser" not in maps, "aiohttp's compiled parser: 0.6 MiB for nothing here"
    # Set by the program for itself after the $(VAR) environment was taken: the config still sees an
    # unset variable, left literally.
    assert out.read_text() == f"switch: $({FROZENLIST_PURE_PYTHON})\n"
    assert await running.stop() == 0
