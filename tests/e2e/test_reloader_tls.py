"""config-reloader against a real Prometheus 2.42 behind ``--web.config.file`` (TLS and bcrypt basic auth),
as prometheus-operator sets one up with ``spec.web.tlsConfig``; the Thanos sidecar's command line; and our
own /metrics behind a web config. Every test ends by grepping the logs for every secret it set.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import procs
from tests.support.certs import CA, Pair, bcrypt_hash, served_serial
from tests.support.procs import free_port, sample, wait_for
from tests.support.reloader_proc import reloader_binary, reloader_env, reloader_factory, replace_file

__all__ = ["reloader_factory"]

pytestmark = pytest.mark.e2e

PASSWORD = f"Prom-pa55-{random.randrange(10**6):06d}"
WRONG_PASSWORD = f"Wrong-pa55-{random.randrange(10**6):06d}"
SCRAPE_PASSWORD = f"Scrape-pa55-{random.randrange(10**6):06d}"
TOKEN_ENV = f"Env-t0ken-{random.randrange(10**6):06d}"


def prom_config(*jobs: str, extra: str = "") -> str:
    lines = ["global:", "  scrape_interval: 1m", "scrape_configs:"]
    for job in jobs:
        lines += [f"  - job_name: {job}", "    static_configs:", "      - targets: ['127.0.0.1:1']"]
    return "\n".join(lines) + "\n" + extra


def key_material(*pairs: Pair) -> list[str]:
    """The base64 lines of private keys: no log line may hold any of them."""
    return [
        line
        for p in pairs
        for line in p.key.read_text().splitlines()
        if line and not line.startswith("-----")
    ]


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret reached a log: {secret[:4]}..."


@dataclass
class TLSPrometheus:
    """A real Prometheus serving https, optionally with basic auth; its CA and credentials."""

    target: procs.Target
    ca: CA
    server: Pair
    user: str | None

    @property
    def base(self) -> str:
        return self.target.url

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca.cert_path))

    def get_json(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path)
        if self.user is not None:
            token = base64.b64encode(f"{self.user}:{PASSWORD}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, context=self.context(), timeout=5) as response:
            return json.loads(response.read())

    def has_job(self, job: str) -> bool:
        return f"job_name: {job}\n" in self.get_json("/api/v1/status/config")["data"]["yaml"]


def start_tls_prometheus(
    workdir: Path, config: Path, *, basic_auth: bool, exec_name: str | None = None
) -> TLSPrometheus:
    binary = procs.require_binary(procs.PROMETHEUS)
    if exec_name is not None:
        (workdir / exec_name).symlink_to(binary)
        binary = str(workdir / exec_name)
    ca = CA(workdir / "pki")
    server = ca.issue("prometheus")
    web = workdir / "pki" / "prometheus-web.yml"
    text = f"tls_server_config:\n  cert_file: {server.cert}\n  key_file: {server.key}\n"
    if basic_auth:
        text += f"basic_auth_users:\n  reloader: {bcrypt_hash(PASSWORD)}\n"
    web.write_text(text)
    port = free_port()
    log_path = workdir / f"prometheus-{port}.log"
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / f'prom-data-{port}'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
        f"--web.config.file={web}",
    ]
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    target = procs.Target("prometheus", f"https://127.0.0.1:{port}", config, proc, log_path)
    prom = TLSPrometheus(target, ca, server, "reloader" if basic_auth else None)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited: {log_path.read_text()[-2000:]}")
        return bool(prom.get_json("/api/v1/status/runtimeinfo")["status"] == "success")

    try:
        wait_for(ready, timeout_s=30, what="Prometheus over https")
    except BaseException:
        procs.stop(target)
        raise
    return prom


@pytest.fixture
def tls_prometheus(tmp_path: Path) -> Iterator[Any]:
    """``start(config, basic_auth=..., exec_name=None) -> TLSPrometheus``; all stopped at teardown."""
    started: list[TLSPrometheus] = []

    def start(config: Path, *, basic_auth: bool, exec_name: str | None = None) -> TLSPrometheus:
        prom = start_tls_prometheus(tmp_path, config, basic_auth=basic_auth, exec_name=exec_name)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        procs.stop(prom.target)


@pytest.fixture
def io(tmp_path: Path) -> tuple[Path, Path]:
    src = tmp_path / "in" / "prometheus.yaml"
    src.parent.mkdir()
    src.write_text(prom_config("one"))
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text(prom_config("seed"))
    return src, out


def client_file(tmp_path: Path, prom: TLSPrometheus, password: str) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    replace_file(secrets / "password", (password + "\n").encode())
    path = secrets / "client.yaml"
    path.write_text(
        "basic_auth:\n  username: reloader\n  password_file: password\n"
        f"tls_config:\n  ca_file: {prom.ca.cert_path}\n  server_name: localhost\n"
    )
    return path


def test_https_reload_with_no_client_file_is_not_verified_as_in_go(
    tmp_path: Path, io: tuple[Path, Path], tls_prometheus: Any, reloader_factory: Any
) -> None:
    src, out = io
    prom = tls_prometheus(out, basic_auth=False)
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.base}/-/reload",
        "--delay-interval=100ms",
        "--retry-interval=1s",
    )
    wait_for(lambda: prom.has_job("one"), what="Prometheus to run job 'one' after an https reload")
    replace_file(src, prom_config("one", "two").encode())
    wait_for(lambda: prom.has_job("two"), what="Prometheus to run job 'two'")
    warnings = [line for line in reloader.log().splitlines() if "level=warn" in line]
    assert len(warnings) == 1 and "not verified" in warnings[0], warnings
    assert reloader.metric("reloader_reloads_failed_total") == 0.0
    assert_no_secret([reloader.log(), prom.target.log()], key_material(prom.server))


def test_client_file_verifies_the_ca_and_sends_the_password_from_a_file(
    tmp_path: Path, io: tuple[Path, Path], tls_prometheus: Any, reloader_factory: Any
) -> None:
    src, out = io
    prom = tls_prometheus(out, basic_auth=True)
    client = client_file(tmp_path, prom, PASSWORD)
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.base}/-/reload",
        f"--reload-http-client-file={client}",
        "--delay-interval=100ms",
        "--retry-interval=1s",
    )
    wait_for(lambda: prom.has_job("one"), what="Prometheus to run job 'one' after an authenticated reload")
    assert reloader.metric("reloader_last_reload_successful") == 1.0
    assert not [line for line in reloader.log().splitlines() if "level=warn" in line]
    assert_no_secret([reloader.log(), prom.target.log()], [PASSWORD, *key_material(prom.server)])


def test_a_wrong_password_is_one_line_and_fixing_the_file_heals_without_a_restart(
    tmp_path: Path, io: tuple[Path, Path], tls_prometheus: Any, reloader_factory: Any
) -> None:
    src, out = io
    prom = tls_prometheus(out, basic_auth=True)
    client = client_file(tmp_path, prom, WRONG_PASSWORD)
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.base}/-/reload",
        f"--reload-http-client-file={client}",
        "--delay-interval=100ms",
        "--retry-interval=1s",
        wait_ready=False,
    )
    wait_for(
        lambda: (reloader.metric("reloader_reloads_failed_total") or 0) >= 2, what="failed reloads retried"
    )
    assert reloader.metric("reloader_last_reload_successful") == 0.0
    failures = [line for line in reloader.log().splitlines() if "reload failed" in line]
    assert failures and all("HTTP 401" in line and f"{prom.base}/-/reload" in line for line in failures), (
        failures
    )
    assert not prom.has_job("one")
    pid = reloader.proc.pid

    replace_file(tmp_path / "secrets" / "password", PASSWORD.encode())  # the Secret is fixed
    wait_for(lambda: reloader.metric("reloader_last_reload_successful") == 1.0, what="a reload after the fix")
    assert prom.has_job("one")
    assert reloader.alive() and reloader.proc.pid == pid
    assert_no_secret(
        [reloader.log(), prom.target.log()], [PASSWORD, WRONG_PASSWORD, *key_material(prom.server)]
    )


def test_signal_method_with_https_runtimeinfo_and_the_client_file(
    tmp_path: Path, io: tuple[Path, Path], tls_prometheus: Any, reloader_factory: Any
) -> None:
    src, out = io
    name = f"promtls{random.randrange(10**8):08d}"
    prom = tls_prometheus(out, basic_auth=True, exec_name=name)
    client = client_file(tmp_path, prom, PASSWORD)
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        "--reload-method=signal",
        f"--process-executable-name={name}",
        f"--runtimeinfo-url={prom.base}/api/v1/status/runtimeinfo",
        f"--reload-http-client-file={client}",
        "--delay-interval=100ms",
        "--retry-interval=1s",
    )
    wait_for(lambda: prom.has_job("one"), what="Prometheus to run job 'one' after SIGHUP")
    replace_file(src, prom_config("one", "two").encode())
    wait_for(lambda: prom.has_job("two"), what="Prometheus to run job 'two' after SIGHUP")
    wait_for(lambda: reloader.metric("reloader_reloads_total") == 2.0, what="two confirmed reloads")
    assert reloader.metric("reloader_reloads_failed_total") == 0.0, reloader.log()
    assert reloader.metric("reloader_info", 'method="signal"') == 1.0
    assert_no_secret([reloader.log(), prom.target.log()], [PASSWORD, *key_material(prom.server)])


def test_the_thanos_sidecar_command_line_against_prometheus(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any
) -> None:
    """The seed layout's sidecar flags, with a trailing slash on the rule dir and the 3 m tick: a rule
    change must reach Prometheus through a file event, long before the tick."""
    template = tmp_path / "etc" / "prometheus" / "prometheus.yaml.tmpl"
    rules = tmp_path / "etc" / "prometheus" / "rules"
    rules.mkdir(parents=True)
    shared = tmp_path / "etc" / "prometheus-shared" / "prometheus.yaml"
    shared.parent.mkdir(parents=True)
    template.write_text(
        "global:\n  scrape_interval: 1m\n  external_labels:\n    replica: $(POD_NAME)\n    cluster: eu1\n"
        "    token_holder: $(SECRET_TOKEN)\n"
        f"rule_files:\n  - {rules}/*.yaml\n"
    )
    shared.write_text("global:\n  scrape_interval: 1m\n")
    prom = prometheus_factory(shared)
    reloader = reloader_factory(
        f"--prometheus.url={prom.url}",
        f"--reloader.config-file={template}",
        f"--reloader.config-envsubst-file={shared}",
        f"--reloader.rule-dir={rules}/",
        "--reloader.watch-interval=3m",
        "--reloader.retry-interval=1s",
        "--delay-interval=100ms",
        env={"POD_NAME": "prometheus-0", "SECRET_TOKEN": TOKEN_ENV},
    )

    def external_labels() -> Any:
        return prom.get_json("/api/v1/status/config")["data"]["yaml"]

    wait_for(lambda: "replica: prometheus-0" in external_labels(), what="replica: prometheus-0 in force")
    assert "cluster: eu1" in external_labels()
    assert TOKEN_ENV in shared.read_text()  # expanded into the output, and only there

    def groups() -> set[str]:
        return {g["name"] for g in prom.get_json("/api/v1/rules")["data"]["groups"]}

    (rules / "alerts.yaml").write_text("groups:\n  - name: thanos-style\n    rules: []\n")
    wait_for(
        lambda: "thanos-style" in groups(), timeout_s=60, what="the rule group, well before the 3 m tick"
    )
    assert reloader.metric("reloader_reloads_total") == 2.0
    assert_no_secret([reloader.log(), prom.log()], [TOKEN_ENV])


# Our own /metrics behind a web config ----------------------------------------------------------------


@pytest.fixture
def tls_reloader(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, CA, Pair, Path]]:
    """config-reloader serving /metrics with TLS, verified client certificates and basic auth."""
    ca = CA(tmp_path / "web-pki")
    server = ca.issue("reloader")
    web = tmp_path / "web-pki" / "web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {server.cert.name}\n  key_file: {server.key.name}\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert_path.name}\n"
        f"basic_auth_users:\n  scraper: {bcrypt_hash(SCRAPE_PASSWORD)}\n"
    )
    config = tmp_path / "prometheus.yaml"
    config.write_text("global: {}\n")
    port = free_port()
    log_path = tmp_path / "reloader-tls.log"
    with log_path.open("wb") as logf:
        proc = subprocess.Popen(
            [
                reloader_binary(),
                f"--config-file={config}",
                "--reload-url=http://127.0.0.1:1/-/reload",
                f"--listen-address=127.0.0.1:{port}",
                f"--web-config-file={web}",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=reloader_env(),
        )
    try:
        yield proc, port, ca, server, log_path
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def scrape(port: int, ctx: ssl.SSLContext, password: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"https://127.0.0.1:{port}/metrics")
    if password is not None:
        request.add_header(
            "Authorization", "Basic " + base64.b64encode(f"scraper:{password}".encode()).decode()
        )
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""


def test_our_metrics_behind_tls_client_certificates_and_basic_auth_with_rotation(
    tmp_path: Path, tls_reloader: tuple[subprocess.Popen[bytes], int, CA, Pair, Path]
) -> None:
    proc, port, ca, server, log_path = tls_reloader
    client = ca.issue("scraper", server=False)
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    ctx.load_cert_chain(client.cert, client.key)
    status, text = wait_for(lambda: scrape(port, ctx, SCRAPE_PASSWORD), what="/metrics over TLS")
    assert status == 200 and sample(text, "reloader_reloads_total") is not None
    assert scrape(port, ctx, WRONG_PASSWORD)[0] == 401
    assert scrape(port, ctx, None)[0] == 401
    anonymous = ssl.create_default_context(cafile=str(ca.cert_path))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        scrape(port, anonymous, SCRAPE_PASSWORD)

    assert served_serial("127.0.0.1", port, ca.cert_path, client) == server.serial
    rotated = ca.issue("reloader-rotated")
    keys = key_material(server, rotated, client)
    os.replace(rotated.key, server.key)
    os.replace(rotated.cert, server.cert)
    assert served_serial("127.0.0.1", port, ca.cert_path, client) == rotated.serial
    assert scrape(port, ctx, SCRAPE_PASSWORD)[0] == 200
    assert proc.poll() is None
    log = log_path.read_text()
    assert "certificate files re-read" in log
    assert_no_secret([log], [SCRAPE_PASSWORD, WRONG_PASSWORD, *keys])
