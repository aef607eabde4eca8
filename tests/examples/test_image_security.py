"""The sidecar image runs read-only, non-root, and needs no shell (issue 12).

No container engine runs here, so this is checked twice:

- on Dockerfile.reloader's text: a numeric non-root USER, exec-form ENTRYPOINT/CMD/HEALTHCHECK and no
  SHELL in the final stage, bytecode compiled at install time and never written at run time; and on
  the example manifests: every config-reloader container is read-only and non-root, and its probes are
  httpGet (the only probe kind that needs nothing in the image);
- by running the installed config-reloader the way the image runs it: as uid 65534, with the root file
  system read-only (a private mount namespace with ``/`` remounted read-only), no shell (``/bin/sh``
  and bash hidden behind /dev/null), HOME pointing nowhere and PYTHONDONTWRITEBYTECODE=1, only the
  output directory writable (a tmpfs, like the pod's emptyDir). Init mode and sidecar mode, with a
  real reload endpoint, must both work there. This needs root and unshare; without them it skips
  with the reason, and with CI=true it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.examples import dockerfile
from tests.reloader.procs import Running, wait_serving
from tests.support.polling import eventually
from tests.support.procs import free_port
from tests.support.reloader_proc import reloader_binary, replace_file

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
SHELLS = ("/usr/bin/dash", "/usr/bin/bash")


# --- the Dockerfile's text ------------------------------------------------------------------------


def runtime_violations(text: str) -> list[str]:
    """What in the final stage would need root, a writable root file system, or a shell at run time."""
    found: list[str] = []
    all_stages = dockerfile.stages(text)
    final = all_stages[-1]
    users = final.all("USER")
    user = users[-1] if users else "root"
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not gid.isdigit():
        # The kubelet can only enforce runAsNonRoot on a numeric user.
        found.append(f"USER {user!r} is not numeric uid:gid")
    elif int(uid) == 0 or int(gid) == 0:
        found.append(f"USER {user!r} is root")
    for keyword in ("ENTRYPOINT", "CMD"):
        for args in final.all(keyword):
            if not _exec_form(args):
                found.append(f"{keyword} {args!r} is shell form: it needs /bin/sh")
    for args in final.all("HEALTHCHECK"):
        if args.upper() == "NONE":
            continue
        command = args.split("CMD", 1)[1].strip() if "CMD" in args else ""
        if "CMD-SHELL" in args or not _exec_form(command):
            found.append(f"HEALTHCHECK {args!r} needs a shell")
    if final.all("SHELL"):
        found.append("the final stage sets a SHELL")
    if dockerfile.env(final).get("PYTHONDONTWRITEBYTECODE") != "1":
        found.append("Python would write bytecode at run time (PYTHONDONTWRITEBYTECODE is not 1)")
    for stage in all_stages:
        for run in stage.all("RUN"):
            if "pip" in run and "install" in run and "--no-compile" in run:
                found.append("the venv is installed without bytecode: a read-only image would run slower")
    for volume in final.all("VOLUME"):
        found.append(f"VOLUME {volume}: the image must not need a writable path of its own")
    return found


def _exec_form(args: str) -> bool:
    try:
        parsed = json.loads(args)
    except json.JSONDecodeError:
        return False
    return isinstance(parsed, list) and bool(parsed) and all(isinstance(a, str) for a in parsed)


def test_the_sidecar_image_needs_no_root_no_writable_root_and_no_shell() -> None:
    assert runtime_violations((ROOT / "Dockerfile.reloader").read_text()) == []


BROKEN = [
    ("named user", "USER 65534:65534", "USER nobody", "not numeric"),
    ("root user", "USER 65534:65534", "USER 0:0", "is root"),
    ("shell-form entry point", 'ENTRYPOINT ["config-reloader"]', "ENTRYPOINT config-reloader", "shell form"),
    ("shell-form CMD", 'ENTRYPOINT ["config-reloader"]', 'ENTRYPOINT ["config-reloader"]\nCMD --help', "CMD"),
    (
        "shell health check",
        'ENTRYPOINT ["config-reloader"]',
        'HEALTHCHECK CMD curl -f http://127.0.0.1:8080/healthz\nENTRYPOINT ["config-reloader"]',
        "HEALTHCHECK",
    ),
    ("a SHELL", "USER 65534:65534", 'SHELL ["/bin/bash", "-c"]\nUSER 65534:65534', "SHELL"),
    ("bytecode at run time", "PYTHONDONTWRITEBYTECODE=1", "PYTHONDONTWRITEBYTECODE=0", "bytecode"),
    ("no bytecode", "install --only-binary", "install --no-compile --only-binary", "without bytecode"),
    ("a volume", "USER 65534:65534", "VOLUME /data\nUSER 65534:65534", "VOLUME"),
]


@pytest.mark.parametrize(("what", "old", "new", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_image_is_caught(what: str, old: str, new: str, expected: str) -> None:
    text = (ROOT / "Dockerfile.reloader").read_text()
    assert old in text, old  # otherwise the mutation proves nothing
    found = runtime_violations(text.replace(old, new))
    assert any(expected in v for v in found), found


def test_an_exec_form_health_check_is_fine() -> None:
    text = (
        (ROOT / "Dockerfile.reloader")
        .read_text()
        .replace(
            'ENTRYPOINT ["config-reloader"]',
            'HEALTHCHECK CMD ["python", "-c", "print()"]\nENTRYPOINT ["config-reloader"]',
        )
    )
    assert runtime_violations(text) == []


# --- the manifests that run it ---------------------------------------------------------------------


def reloader_containers() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file, pod spec, container) for every config-reloader container of the examples."""
    for path in sorted((ROOT / "examples").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = (
                (((doc or {}).get("spec") or {}).get("template") or {}).get("spec")
                if isinstance(doc, dict)
                else None
            )
            if not spec:
                continue
            for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
                if "config-reloader" in str(container.get("image", "")):
                    yield str(path.relative_to(ROOT)), spec, container


def test_every_reloader_container_runs_read_only_non_root_with_http_probes() -> None:
    seen = list(reloader_containers())
    assert len(seen) >= 2, seen  # the sidecar and its init container at least
    for where, pod, container in seen:
        ctx = {**(pod.get("securityContext") or {}), **(container.get("securityContext") or {})}
        name = f"{where}: {container['name']}"
        assert ctx.get("readOnlyRootFilesystem") is True, name
        assert ctx.get("runAsNonRoot") is True and ctx.get("runAsUser", 0) != 0, name
        assert ctx.get("allowPrivilegeEscalation") is False, name
        assert "command" not in container or container["command"][0] not in ("sh", "/bin/sh", "bash"), name
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            if probe in container:
                assert set(container[probe]) & {"httpGet", "tcpSocket", "grpc"}, (
                    f"{name}: {probe} needs a shell"
                )


# --- the program, run the way the image runs it ----------------------------------------------------


def _can_isolate() -> str | None:
    if os.geteuid() != 0:
        return "needs root to remount / read-only in a private mount namespace"
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            return f"needs {tool} (util-linux)"
    return None


@pytest.fixture
def isolated() -> None:
    reason = _can_isolate()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory that uid 65534 can read (pytest's own temporary directories are root's only)."""
    path = Path(tempfile.mkdtemp(prefix="config-reloader-image-"))
    path.chmod(0o755)
    (path / "in").mkdir(mode=0o755)
    (path / "out").mkdir(mode=0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _closed_top(path: Path) -> Path | None:
    """The highest ancestor of ``path`` that others cannot enter, if any."""
    return next((a for a in reversed(path.parents) if a != Path("/") and not a.stat().st_mode & 0o001), None)


def run_reachable(world: Path) -> list[str]:
    """Mount commands that let uid 65534 run this Python, its venv and the checkout's sources when they
    live under a private directory.

    (pyenv puts Python under /root, and ``mktemp -d`` makes a clone's directory 0700.) For each closed
    top ancestor: a tmpfs over it, holding bind mounts of the needed paths and nothing else; like an
    image, where these are world-readable and nothing else of the build is there.
    """
    import reloader

    needed = {
        Path(os.path.realpath(p)) for p in (sys.base_prefix, sys.prefix, Path(reloader.__file__).parent)
    }
    by_top: dict[Path, list[Path]] = {}
    for path in sorted(needed):
        top = _closed_top(path)
        if top is not None:
            by_top.setdefault(top, []).append(path)
    hold_all: list[str] = []
    hide: list[str] = []
    restore: list[str] = []
    for n, (top, paths) in enumerate(sorted(by_top.items())):
        hide.append(f"mount -t tmpfs -o size=1m,mode=0755 tmpfs {shlex.quote(str(top))}")
        for m, path in enumerate(paths):
            hold = world / f"reachable-{n}-{m}"
            hold.mkdir(mode=0o755)
            hold_all.append(f"mount --bind {shlex.quote(str(path))} {hold}")
            restore += [f"mkdir -p {shlex.quote(str(path))}", f"mount --bind {hold} {shlex.quote(str(path))}"]
    return hold_all + hide + restore


def image_like(world: Path, *reloader_args: str, then: str = "exec") -> list[str]:
    """argv: in a private mount namespace, make / read-only, hide the shells, mount the output tmpfs,
    then run config-reloader as 65534 with the image's environment."""
    out = world / "out"
    setup = [
        *run_reachable(world),
        f"mount -t tmpfs -o size=1m,uid={NOBODY},gid={NOBODY},mode=0755 tmpfs {out}",
        "mount -o remount,bind,ro /",
        *(f"mount --bind /dev/null {shell}" for shell in SHELLS if Path(shell).exists()),
    ]
    run = shlex.join(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            "--",
            "env",
            "-i",
            "PYTHONDONTWRITEBYTECODE=1",
            "PYTHONUNBUFFERED=1",
            "HOME=/nonexistent",
            "POD_NAME=prometheus-k8s-1",
            reloader_binary(),
            *reloader_args,
        ]
    )
    script = " && ".join(setup) + (f" && exec {run}" if then == "exec" else f" && {{ {run}; {then}; }}")
    return ["unshare", "--mount", "sh", "-c", script]


def test_init_mode_runs_read_only_non_root_without_a_shell(isolated: None, world: Path) -> None:
    replace_file(world / "in" / "prometheus.yaml", b"global: {external_labels: {replica: $(POD_NAME)}}\n")
    (world / "in" / "prometheus.yaml").chmod(0o644)
    out = world / "out" / "prometheus.env.yaml"
    argv = image_like(
        world,
        f"--config-file={world / 'in' / 'prometheus.yaml'}",
        f"--config-envsubst-file={out}",
        "--watch-interval=0",
        then=f"rc=$?; cat {out}; stat -c %u {out}; touch /probe-root-is-ro 2>/dev/null && echo root-writable; exit $rc",
    )
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert "global: {external_labels: {replica: prometheus-k8s-1}}" in lines, lines
    assert str(NOBODY) in lines and "root-writable" not in lines, lines
    assert "Read-only file system" not in result.stdout + result.stderr
    assert "Permission denied" not in result.stdout + result.stderr


@pytest.fixture
async def namespaced() -> AsyncIterator[list[asyncio.subprocess.Process]]:
    procs: list[asyncio.subprocess.Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_the_sidecar_runs_read_only_non_root_without_a_shell(
    isolated: None,
    world: Path,
    aiohttp_server: Any,
    namespaced: list[asyncio.subprocess.Process],
    tmp_path: Path,
) -> None:
    seen: list[bytes] = []
    out = world / "out" / "prometheus.env.yaml"

    async def reload(_: web.Request) -> web.Response:
        seen.append((own_view(out)).read_bytes())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/-/reload", reload)
    server = await aiohttp_server(app)
    config = world / "in" / "prometheus.yaml"
    replace_file(config, b"v: 1 $(POD_NAME)\n")
    config.chmod(0o644)
    port = free_port()
    argv = image_like(
        world,
        f"--config-file={config}",
        f"--config-envsubst-file={out}",
        f"--watched-dir={world / 'in'}",
        f"--reload-url={server.make_url('/-/reload')}",
        f"--listen-address=127.0.0.1:{port}",
        "--delay-interval=0s",
    )
    log_path = tmp_path / "reloader.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=log, stderr=asyncio.subprocess.STDOUT)
    namespaced.append(proc)
    running = Running(proc=proc, log_path=log_path, port=port)

    def own_view(path: Path) -> Path:
        return Path(f"/proc/{proc.pid}/root") / str(path).lstrip("/")

    await wait_serving(running, "/readyz")
    assert seen == [b"v: 1 prometheus-k8s-1\n"]
    status, metrics = await running.get("/metrics")
    assert status == 200 and "reloader_reloads_total 1.0" in metrics
    replace_file(config, b"v: 2 $(POD_NAME)\n")
    config.chmod(0o644)
    await eventually(lambda: len(seen) == 2, "the reload after a change", detail=lambda: log_path.read_text())
    assert seen[1] == b"v: 2 prometheus-k8s-1\n"
    assert (await running.get("/healthz"))[0] == 200
    assert await running.stop() == 0
    log = log_path.read_text()
    assert "level=error" not in log and "Traceback" not in log, log
