"""SIGKILL during a write: the output is always one complete rendered version, and leftovers go away.

config-reloader runs as a real process on a config of several MiB (so a write takes a while) while a
thread keeps replacing the input. It is killed with SIGKILL 200 times, half of the time at a random
moment and half of the time just after a temporary file appeared (that is, in the middle of a write),
and restarted each time. After every kill the output is byte for byte the rendering of one of the
inputs, never partial and never missing; at most one temporary file (the killed write's own) is
left, because each restart removes its predecessor's; and files that are not ours, including another
output's temporary files in the same directory, are never touched. A second reloader writes another
output into the same directory all along, and is never killed: none of its writes may fail, which
they would if a restart of the first one removed its temporary file under it.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reloader.write import TEMP_PREFIX, is_own_temp, temp_prefix
from tests.support.reloader_proc import reloader_binary, reloader_env, replace_file

KILLS = 200
POD = "prometheus-k8s-1"
JOBS = 20_000  # about 3.3 MiB rendered


def config_text(version: int) -> bytes:
    body = "".join(
        f"  - job_name: job-{i}\n"
        f"    static_configs: [{{targets: ['host-{i}.example:9100'], labels: {{replica: $(POD_NAME)}}}}]\n"
        for i in range(JOBS)
    )
    return f"# version {version}\nglobal: {{external_labels: {{pod: $(POD_NAME)}}}}\nscrape_configs:\n{body}".encode()


class Inputs:
    """Replaces the input in a loop and remembers the hash of every version's rendering."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.body = config_text(0)
        self.rendered: set[str] = set()
        self.version = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.write(0)

    def write(self, version: int) -> None:
        data = self.body.replace(b"# version 0\n", f"# version {version}\n".encode(), 1)
        rendered = data.replace(b"$(POD_NAME)", POD.encode())
        with self.lock:
            self.rendered.add(hashlib.sha256(rendered).hexdigest())
        replace_file(self.path, data)

    def loop(self) -> None:
        while not self.stop.wait(random.uniform(0.02, 0.15)):
            self.version += 1
            self.write(self.version)

    def known(self, digest: str) -> bool:
        with self.lock:
            return digest in self.rendered


@pytest.fixture
def reload_url() -> Iterator[str]:
    """A real HTTP endpoint that accepts every reload (so the reloader never waits on retries)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/-/reload"
    server.shutdown()
    server.server_close()
    thread.join()


def own_temps(out: Path) -> list[str]:
    return [n for n in os.listdir(out.parent) if is_own_temp(out, n)]


def kill_when(proc: subprocess.Popen[bytes], out: Path, mid_write: bool) -> None:
    """SIGKILL ``proc``: at a random moment, or right after a temporary file shows up (mid-write)."""
    deadline = time.monotonic() + random.uniform(0.0, 0.5)
    if mid_write:
        before = set(own_temps(out))
        deadline = time.monotonic() + 10.0  # a write always comes: the input keeps changing
        while time.monotonic() < deadline and proc.poll() is None:
            if set(own_temps(out)) - before:
                time.sleep(random.uniform(0.0, 0.02))
                break
            time.sleep(0.001)
    else:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.005)
    assert proc.poll() is None, f"config-reloader exited on its own with {proc.returncode}"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.timeout(600)  # about a minute alone; the machine may be shared with other test runs
def test_sigkill_at_random_moments_never_leaves_a_partial_output_or_piles_up_temp_files(
    tmp_path: Path, reload_url: str
) -> None:
    config = tmp_path / "in" / "prometheus.yaml"
    config.parent.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "prometheus.env.yaml"
    # Another reloader's temporary file, and files that merely look like ours: never touched.
    foreign = {
        f"{temp_prefix(out_dir / 'alertmanager.yaml')}0123456789ab.tmp": b"other reloader",
        f"{temp_prefix(out_dir / 'prometheus.env.yaml.bak')}0123456789ab.tmp": b"longer name",
        f"{TEMP_PREFIX}prometheus.env.yaml.tmp": b"no random part",
        "prometheus.env.yaml.tmp": b"someone's",
    }
    for name, data in foreign.items():
        (out_dir / name).write_bytes(data)
    inputs = Inputs(config)
    argv = [
        reloader_binary(),
        f"--config-file={config}",
        f"--config-envsubst-file={out}",
        f"--reload-url={reload_url}",
        "--delay-interval=0s",
        "--log-level=error",
    ]
    neighbour_out = out_dir / "second.yaml"
    neighbour_log = tmp_path / "neighbour.log"
    with neighbour_log.open("wb") as logf:
        neighbour = subprocess.Popen(
            [*argv[:2], f"--config-envsubst-file={neighbour_out}", *argv[3:-1], "--log-level=info"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=reloader_env({"POD_NAME": POD}),
        )
    changer = threading.Thread(target=inputs.loop, daemon=True)
    changer.start()
    log_path = tmp_path / "reloader.log"
    max_left = 0
    kills_with_leftover = 0
    written_once = False
    try:
        with log_path.open("ab") as logf:
            for i in range(KILLS):
                proc = subprocess.Popen(
                    argv,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=reloader_env({"POD_NAME": POD}),
                )
                try:
                    kill_when(proc, out, mid_write=i % 2 == 1)
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                if out.exists():
                    written_once = True
                    digest = hashlib.sha256(out.read_bytes()).hexdigest()
                    assert inputs.known(digest), f"kill {i}: the output is not one complete rendering"
                else:  # missing only until the very first write completed
                    assert not written_once, f"kill {i}: the output is missing"
                left = own_temps(out)
                assert len(left) <= 1, f"kill {i}: temporary files pile up: {left}"
                max_left = max(max_left, len(left))
                kills_with_leftover += bool(left)
        inputs.stop.set()
        changer.join()
        # A last, clean run: it renders the final input and removes the last leftover.
        done = subprocess.run(
            [*argv[:-1], "--watch-interval=0"],
            env=reloader_env({"POD_NAME": POD}),
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done
        final = config.read_bytes().replace(b"$(POD_NAME)", POD.encode())
        deadline = time.monotonic() + 60
        while neighbour_out.read_bytes() != final and time.monotonic() < deadline:
            time.sleep(0.05)
        assert neighbour.poll() is None, "the second reloader died"
    finally:
        inputs.stop.set()
        changer.join()
        neighbour.terminate()
        neighbour.wait(timeout=30)
    assert neighbour_out.read_bytes() == final
    neighbour_lines = neighbour_log.read_text().splitlines()
    assert not [line for line in neighbour_lines if "level=error" in line], neighbour_lines[-5:]
    writes = sum("config written" in line for line in neighbour_lines)
    assert writes > KILLS // 4, writes  # it was writing all along
    assert out.read_bytes() == final
    assert own_temps(out) == []
    assert {n: (out_dir / n).read_bytes() for n in foreign} == foreign
    assert sorted(os.listdir(out_dir)) == sorted([out.name, neighbour_out.name, *foreign])
    # Proof that the kills did land inside writes; otherwise this test would prove nothing.
    assert kills_with_leftover >= KILLS // 10, (kills_with_leftover, max_left)
    assert b"Traceback" not in log_path.read_bytes()
    print(f"{KILLS} kills, {kills_with_leftover} mid-write; the second reloader wrote {writes} times")
