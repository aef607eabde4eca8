"""prometheus-operator's exec probe against the reloader image (issue 7, point 3).

With ``listenLocal: true`` prometheus-operator probes the reloader container with a shell command that
runs curl, else wget, else fails. There is no container engine here, so the test rebuilds the image's
PATH from Dockerfile.reloader: every command on it is absent except what the Dockerfile installs (it
copies Debian's static busybox in as ``wget``), which the test links to this machine's Debian busybox.
Then it runs prometheus-operator's exact command with ``sh`` against a running config-reloader.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.examples import dockerfile
from tests.support.procs import require_binary
from tests.support.reloader_proc import Reloader, start_reloader

ROOT = Path(__file__).resolve().parents[2]
# The python:3.11-slim images' PATH, which the Dockerfile's ENV PATH=/opt/venv/bin:$PATH extends.
BASE_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def probe_command(url: str) -> str:
    """prometheus-operator's exec probe, as it writes it for a container that listens on localhost only."""
    return (
        'if [ -x "$(command -v curl)" ]; then exec curl --fail '
        + url
        + '; elif [ -x "$(command -v wget)" ]; then exec wget -q -O /dev/null '
        + url
        + "; else exit 1; fi"
    )


def image_path() -> list[str]:
    final = dockerfile.stages((ROOT / "Dockerfile.reloader").read_text())[-1]
    path = dockerfile.env(final)["PATH"].replace("$PATH", BASE_IMAGE_PATH)
    return path.split(":")


def busybox_copies() -> list[str]:
    """Destinations of the final stage's COPYs of busybox from a stage that installs busybox-static."""
    all_stages = dockerfile.stages((ROOT / "Dockerfile.reloader").read_text())
    installers = {s.name for s in all_stages if any("busybox-static" in r for r in s.all("RUN"))}
    out = []
    for args in all_stages[-1].all("COPY"):
        match = re.match(r"--from=(\S+)\s+(\S*busybox)\s+(\S+)$", args)
        if match and match.group(1) in installers:
            out.append(match.group(3))
    return out


@pytest.fixture
def image_root(tmp_path: Path) -> tuple[Path, str]:
    """A directory tree with what the image has on its PATH for the probe, and that PATH re-rooted."""
    busybox = require_binary("busybox")
    root = tmp_path / "image"
    for destination in busybox_copies():
        target = root / destination.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(busybox)
    return root, ":".join(str(root / d.lstrip("/")) for d in image_path())


def run_probe(image: tuple[Path, str], url: str) -> subprocess.CompletedProcess[str]:
    _root, path = image
    return subprocess.run(
        ["/bin/sh", "-c", probe_command(url)],
        env={"PATH": path},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_the_image_installs_busybox_as_wget_on_its_path() -> None:
    copies = busybox_copies()
    assert copies and all(os.path.basename(c) == "wget" for c in copies), copies
    assert any(os.path.dirname(c) in image_path() for c in copies), (copies, image_path())


def test_the_re_rooted_path_has_wget_and_no_curl(image_root: tuple[Path, str]) -> None:
    _root, path = image_root
    assert shutil.which("wget", path=path) is not None
    assert shutil.which("curl", path=path) is None
    assert shutil.which("python3", path=path) is None  # nothing from this machine leaks in


@pytest.fixture
def reloader(tmp_path: Path) -> Iterator[Reloader]:
    config = tmp_path / "prometheus.yaml"
    config.write_text("global: {}\n")
    # No target: /healthz answers (the watcher runs), /readyz does not (no reload succeeded).
    started = start_reloader(
        tmp_path, f"--config-file={config}", "--reload-url=http://127.0.0.1:1/-/reload", wait_ready=False
    )
    yield started
    started.stop()


def test_prometheus_operator_s_probe_command_passes_against_a_running_reloader(
    image_root: tuple[Path, str], reloader: Reloader
) -> None:
    healthy = run_probe(image_root, f"{reloader.url}/healthz")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    # The probe must also fail when it should: /readyz is 503 until a reload succeeds ...
    not_ready = run_probe(image_root, f"{reloader.url}/readyz")
    assert not_ready.returncode != 0
    # ... and a reloader that is gone fails the probe.
    reloader.stop()
    gone = run_probe(image_root, f"{reloader.url}/healthz")
    assert gone.returncode != 0


def test_without_wget_the_same_probe_fails(tmp_path: Path, reloader: Reloader) -> None:
    """What happens with the image before this issue: no curl, no wget, and the container is killed."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = run_probe((empty, str(empty)), f"{reloader.url}/healthz")
    assert result.returncode == 1
