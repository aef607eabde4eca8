"""The Dockerfiles' install steps, run for real in fresh venvs (no container engine runs here).

Build the wheel from exactly what the Dockerfiles COPY, install it into a venv without pip, once without
and once with the [operator] extra, and start the console scripts with ``--help``. Needs the package
index (pip); pip's wheel cache keeps it fast after the first run. One venv per flavour per run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.examples import dockerfile

ROOT = Path(__file__).resolve().parents[2]
SLOW_S = 600  # two venvs and a wheel build, on a 2-core machine shared with other test runs

pytestmark = pytest.mark.timeout(SLOW_S)


def _run(*argv: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=SLOW_S)
    assert proc.returncode == 0, (
        f"{argv} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the build context the Dockerfile COPYs (stage 1)."""
    context = tmp_path_factory.mktemp("context")
    build = dockerfile.stages((ROOT / "Dockerfile.reloader").read_text())[0]
    for source in dockerfile.copy_sources(build):
        src = ROOT / source
        if src.is_dir():
            shutil.copytree(src, context / source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, context / source)
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", dist, context)
    (built,) = dist.glob("config_reloader-*.whl")
    return built


def _venv(parent: Path, wheel: Path, extra: bool) -> Path:
    """Stage 2: a venv without pip, the wheel installed from binary wheels only."""
    venv = parent / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    requirement = f"{wheel}[operator]" if extra else str(wheel)
    _run(
        sys.executable, "-m", "pip", "--python", venv / "bin" / "python",
        "install", "--quiet", "--only-binary=:all:", requirement,
    )  # fmt: skip
    return venv


@pytest.fixture(scope="module")
def reloader_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("reloader"), wheel, extra=False)


@pytest.fixture(scope="module")
def operator_venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return _venv(tmp_path_factory.mktemp("operator"), wheel, extra=True)


def test_wheel_holds_the_two_packages_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        tops = {name.split("/")[0] for name in zf.namelist() if not name.split("/")[0].endswith(".dist-info")}
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    assert tops == {"reloader", "config_operator"}
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    # kubernetes_asyncio only behind the extra: `pip install .` must not pull it in.
    assert [r for r in requires if "kubernetes" in r.lower() and "extra ==" not in r] == []
    assert any("kubernetes" in r.lower() and 'extra == "operator"' in r for r in requires)


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if not p.is_symlink()}


def _runtime_env(tmp: Path) -> dict[str, str]:
    """What the image sets (PYTHONDONTWRITEBYTECODE) and nothing from this test venv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", HOME=str(tmp / "no-home"))
    return env


def test_reloader_image_starts_without_the_operator_extra(reloader_venv: Path, tmp_path: Path) -> None:
    env = _runtime_env(tmp_path)
    before = _files(reloader_venv)
    out = _run(reloader_venv / "bin" / "config-reloader", "--help", env=env).stdout
    for flag in (
        "--config-file",
        "--config-envsubst-file",
        "--watched-dir",
        "--reload-url",
        "--listen-address",
    ):
        assert flag in out
    assert _files(reloader_venv) == before, "the entry point wrote into the venv (read-only root fs)"

    # The image links prometheus-operator's command name to the console script (Dockerfile.reloader).
    alias = tmp_path / "bin" / "prometheus-config-reloader"
    alias.parent.mkdir()
    alias.symlink_to(reloader_venv / "bin" / "config-reloader")
    assert "--config-envsubst-file" in _run(alias, "--help", env=env).stdout

    probe = "import importlib.util as u; print(u.find_spec('kubernetes_asyncio') is None)"
    assert _run(reloader_venv / "bin" / "python", "-c", probe, env=env).stdout.strip() == "True"
    assert not list((reloader_venv / "lib").glob("python3*/site-packages/kubernetes_asyncio*"))
    assert not (reloader_venv / "bin" / "pip").exists()


def test_operator_image_starts_with_the_operator_extra(operator_venv: Path, tmp_path: Path) -> None:
    env = _runtime_env(tmp_path)
    before = _files(operator_venv)
    out = _run(operator_venv / "bin" / "config-operator", "--help", env=env).stdout
    assert "run" in out and "render" in out
    out = _run(operator_venv / "bin" / "config-operator", "run", "--help", env=env).stdout
    for flag in ("--kubeconfig", "--namespace", "--listen-address", "--leader-elect"):
        assert flag in out
    assert _files(operator_venv) == before, "the entry point wrote into the venv (read-only root fs)"
    assert list((operator_venv / "lib").glob("python3*/site-packages/kubernetes_asyncio"))
    assert not (operator_venv / "bin" / "pip").exists()
