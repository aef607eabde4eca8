"""The VM example, run for real: the command lines of examples/vm's systemd units (paths rewritten into
tmp_path, the binary from this venv, the environment file loaded) against Debian's Prometheus.

- prometheus.service's ExecStartPre renders the template once (init mode), and Prometheus starts on it;
- config-reloader.service's ExecStart (http method) re-renders and reloads on a template or rule change;
- config-reloader-signal.service's ExecStart (signal method) does the same with SIGHUP.

The signal method signals every process with that executable name. Other tests on this machine run
their own Prometheus, so the signal test runs the binary through a symlink with a name of its own, and
rewrites --process-executable-name to it; everything else stays as in the unit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.examples import systemd
from tests.support import procs
from tests.support.reloader_proc import Reloader

ROOT = Path(__file__).resolve().parents[2]
VM = ROOT / "examples" / "vm"
BIN = Path(sys.executable).parent / "config-reloader"
WAIT_S = 60.0  # generous: two cores shared with other helpers' test runs

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@dataclass
class Host:
    """The VM's file system, inside tmp_path."""

    root: Path
    env: dict[str, str]
    replacements: dict[str, str]

    @property
    def template(self) -> Path:
        return self.root / "etc/prometheus/prometheus.yaml.tmpl"

    @property
    def rules(self) -> Path:
        return self.root / "etc/prometheus/rules"

    @property
    def rendered(self) -> Path:
        return self.root / "var/lib/config-reloader/prometheus.yaml"

    def argv(self, unit: str, key: str, **extra: str) -> list[str]:
        """A unit's command line, rewritten to this host (and ``extra`` replacements)."""
        replacements = {**self.replacements, **extra}
        return [systemd.rewrite(a, replacements) for a in systemd.command((VM / unit).read_text(), key)]


@pytest.fixture
def host(tmp_path: Path) -> Host:
    """The files of the walk-through installed under tmp_path, as examples/vm/README.md puts them."""
    root = tmp_path / "vm"
    replacements = {
        "/opt/config-reloader/bin/config-reloader": str(BIN),
        "/etc/prometheus": str(root / "etc/prometheus"),
        "/var/lib/config-reloader": str(root / "var/lib/config-reloader"),
    }
    h = Host(root=root, env={}, replacements=replacements)
    h.rules.mkdir(parents=True)
    h.rendered.parent.mkdir(parents=True)
    h.template.write_text(systemd.rewrite((VM / "prometheus.yaml.tmpl").read_text(), replacements))
    for rule in (VM / "rules").iterdir():
        shutil.copy(rule, h.rules / rule.name)
    # What EnvironmentFile= does: the unit's environment is systemd's plus the file's variables.
    h.env = {k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")}
    h.env.update(systemd.env_file(VM / "prometheus.env"))
    return h


def test_units_render_the_template_prometheus_reads() -> None:
    """Both reloader units and ExecStartPre render the same template to the file Prometheus reads."""
    text = (VM / "prometheus.service").read_text()
    (config_flag,) = [a for a in systemd.command(text, "ExecStart") if a.startswith("--config.file=")]
    rendered = config_flag.removeprefix("--config.file=")
    for unit, key in [
        ("prometheus.service", "ExecStartPre"),
        ("config-reloader.service", "ExecStart"),
        ("config-reloader-signal.service", "ExecStart"),
    ]:
        argv = systemd.command((VM / unit).read_text(), key)
        assert f"--config-envsubst-file={rendered}" in argv, (unit, key)
        assert "--config-file=/etc/prometheus/prometheus.yaml.tmpl" in argv, (unit, key)
        env_files = systemd.unit_settings((VM / unit).read_text())[("Service", "EnvironmentFile")]
        assert env_files == ["/etc/config-reloader/prometheus.env"], unit


def _render_once(host: Host) -> None:
    """prometheus.service's ExecStartPre: init mode, exit 0, a complete file."""
    argv = host.argv("prometheus.service", "ExecStartPre")
    assert "--watch-interval=0" in argv
    done = subprocess.run(argv, env=host.env, capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(host.rendered.read_text())
    assert rendered["global"]["external_labels"] == {"datacenter": "fra1", "host": "prom-1.example.internal"}
    assert "$(" not in host.rendered.read_text()
    assert "${1}" in host.rendered.read_text()  # Prometheus's own syntax is left alone


@pytest.fixture
def start_reloader(tmp_path: Path) -> Iterator[Callable[[Host, list[str]], Reloader]]:
    """Start an ExecStart command line as it is; every process started is stopped at teardown."""
    started: list[Reloader] = []

    def start(host: Host, argv: list[str]) -> Reloader:
        log_path = tmp_path / f"config-reloader-{len(started)}.log"
        with log_path.open("wb") as logf:
            proc = subprocess.Popen(
                argv, env=host.env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        (listen,) = [a.removeprefix("--listen-address=") for a in argv if a.startswith("--listen-address=")]
        reloader = Reloader(proc=proc, url=f"http://{listen}", log_path=log_path)
        started.append(reloader)
        return reloader

    yield start
    for reloader in started:
        reloader.stop()


def _change_and_observe(host: Host, reloader: Reloader, target: procs.Target) -> None:
    """Edit the template and add a rule file; Prometheus must end up running both."""

    def reloaded_once() -> bool:
        assert reloader.alive(), reloader.log()
        return reloader.metric("reloader_last_reload_successful") == 1.0

    procs.wait_for(reloaded_once, timeout_s=WAIT_S, what="config-reloader's first reload")

    job = f"added-on-the-vm-{secrets.token_hex(3)}"
    text = host.template.read_text()
    host.template.write_text(
        text + f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:9']\n"
        "        labels:\n          dc: $(DATACENTER)\n"
    )
    procs.wait_for(lambda: job in target.config_yaml(), timeout_s=WAIT_S, what=f"Prometheus to run job {job}")
    assert "dc: fra1" in target.config_yaml()

    group = f"vm-test-{secrets.token_hex(3)}"
    (host.rules / "added.yaml").write_text(
        f"groups:\n  - name: {group}\n    rules:\n      - record: vm_test:up\n        expr: sum(up)\n"
    )

    def group_loaded() -> bool:
        groups = target.get_json("/api/v1/rules")["data"]["groups"]
        return any(g["name"] == group for g in groups)

    procs.wait_for(group_loaded, timeout_s=WAIT_S, what=f"Prometheus to load rule group {group}")

    assert reloader.stop(timeout_s=WAIT_S) == 0, reloader.log()
    # The env file holds a password: no line of the log may show it.
    assert host.env["NODE_EXPORTER_PASSWORD"] not in reloader.log()


def test_http_unit_reloads_prometheus(
    host: Host, prometheus_factory: Any, start_reloader: Callable[[Host, list[str]], Reloader]
) -> None:
    _render_once(host)
    target = prometheus_factory(host.rendered)
    address = target.url.removeprefix("http://")
    argv = host.argv(
        "config-reloader.service",
        "ExecStart",
        **{"127.0.0.1:9090": address, "127.0.0.1:9533": f"127.0.0.1:{procs.free_port()}"},
    )
    assert "--reload-method=http" in argv and f"--reload-url=http://{address}/-/reload" in argv
    reloader = start_reloader(host, argv)
    _change_and_observe(host, reloader, target)


@pytest.fixture
def own_prometheus(tmp_path: Path) -> Iterator[Callable[[Path], procs.Target]]:
    """Prometheus run through a uniquely named symlink to Debian's binary (see the module docstring)."""
    started: list[procs.Target] = []

    def start(config_path: Path) -> procs.Target:
        binary = tmp_path / f"promvm{secrets.token_hex(4)}"  # <= 15 chars: also the process's comm
        binary.symlink_to(procs.require_binary(procs.PROMETHEUS))  # comm is the name it is run by
        port = procs.free_port()
        log_path = tmp_path / f"{binary.name}.log"
        argv = [
            str(binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / binary.name}-data",
            f"--web.listen-address=127.0.0.1:{port}",
        ]  # no --web.enable-lifecycle: the signal method does not need it
        with log_path.open("wb") as logf:
            proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        target = procs.Target("prometheus", f"http://127.0.0.1:{port}", config_path, proc, log_path)
        target.extra["executable"] = binary.name
        started.append(target)

        def ready() -> bool:
            assert proc.poll() is None, target.log()
            return procs.http_get(target.url + "/-/ready", timeout_s=1.0)[0] == 200

        procs.wait_for(ready, timeout_s=WAIT_S, what="Prometheus (own name) to become ready")
        return target

    yield start
    for target in started:
        procs.stop(target)


def test_signal_unit_reloads_prometheus(
    host: Host,
    own_prometheus: Callable[[Path], procs.Target],
    start_reloader: Callable[[Host, list[str]], Reloader],
) -> None:
    _render_once(host)
    target = own_prometheus(host.rendered)
    address = target.url.removeprefix("http://")
    argv = host.argv(
        "config-reloader-signal.service",
        "ExecStart",
        **{
            "127.0.0.1:9090": address,
            "127.0.0.1:9533": f"127.0.0.1:{procs.free_port()}",
            "--process-executable-name=prometheus": f"--process-executable-name={target.extra['executable']}",
        },
    )
    assert "--reload-method=signal" in argv
    assert f"--runtimeinfo-url=http://{address}/api/v1/status/runtimeinfo" in argv
    reloader = start_reloader(host, argv)
    _change_and_observe(host, reloader, target)
    # Reloads went through SIGHUP: the lifecycle endpoint is off on this Prometheus.
    assert procs.http_post(target.url + "/-/reload")[0] == 403
