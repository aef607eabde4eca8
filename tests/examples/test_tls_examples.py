"""The https and basic-auth examples (issue 7): the sidecar variant runs, as written, against a real
Prometheus that uses the example's own web config; prometheus-operator's override mounts what its client
file names."""

from __future__ import annotations

import base64
import gzip
import json
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from reloader.httpclient import load_client_config
from reloader.webconfig import load_web_config
from tests.examples import manifests as m
from tests.examples import systemd
from tests.support import procs
from tests.support.certs import CA

HTTPS = m.EXAMPLES / "kubernetes" / "sidecar" / "https-basic-auth"
SIDECAR = m.EXAMPLES / "kubernetes" / "sidecar"
OPERATOR_HTTPS = m.EXAMPLES / "prometheus-operator" / "prometheus-https.yaml"
BIN = Path(sys.executable).parent / "config-reloader"


def one(path: Path, kind: str, name: str | None = None) -> dict[str, Any]:
    (body,) = [
        d.body
        for d in m.manifests()
        if (d.path == path or d.path.parent == path)
        and d.kind == kind
        and (name is None or d.body["metadata"]["name"] == name)
    ]
    return dict(body)


def containers(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in [*pod.get("initContainers", []), *pod["containers"]]}


def test_the_sidecar_variant_s_password_matches_its_bcrypt_hash() -> None:
    web = yaml.safe_load(one(HTTPS, "Secret", "prometheus-web-config")["stringData"]["web.yml"])
    client = one(HTTPS, "Secret", "config-reloader-client")["stringData"]
    user = yaml.safe_load(client["client.yaml"])["basic_auth"]["username"]
    assert bcrypt.checkpw(client["password"].encode(), web["basic_auth_users"][user].encode())


def test_the_operator_override_mounts_what_its_client_file_names(tmp_path: Path) -> None:
    prometheus = one(OPERATOR_HTTPS, "Prometheus")
    sidecar = containers(prometheus["spec"])["config-reloader"]
    [flag] = [a for a in sidecar["args"] if a.startswith("--reload-http-client-file=")]
    client_path = Path(flag.partition("=")[2])
    [mount] = [v for v in sidecar["volumeMounts"] if client_path.is_relative_to(v["mountPath"])]
    [volume] = [v for v in prometheus["spec"]["volumes"] if v["name"] == mount["name"]]
    projected = {
        str(Path(mount["mountPath"]) / item["path"])
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }
    text = one(OPERATOR_HTTPS, "Secret")["stringData"]["client.yaml"]
    path = tmp_path / "client.yaml"
    path.write_text(text)
    config = load_client_config(path)  # the format is ours to read: it must parse
    assert {str(client_path), str(config.tls.ca_file)} <= projected
    assert "--reload-url=https://localhost:9090/-/reload" in sidecar["args"]
    # The other args are the ones prometheus-operator passes (the override replaces them as a whole).
    for arg in ("--config-file=", "--config-envsubst-file=", "--watched-dir=", "--listen-address="):
        assert any(a.startswith(arg) for a in sidecar["args"]), arg


@pytest.mark.e2e
def test_the_sidecar_variant_reloads_a_prometheus_behind_https_and_basic_auth(tmp_path: Path) -> None:
    """Prometheus with the example's web.yml (certificate made here), the sidecar with the example's
    args and client file, paths moved into tmp_path: the reload goes through TLS verification and
    basic auth."""
    etc = tmp_path / "etc"
    replacements = {
        "/etc/prometheus": str(etc / "prometheus"),
        "/etc/config-reloader": str(etc / "config-reloader"),
    }
    tls = etc / "prometheus" / "tls"
    ca = CA(tls, name="ca")
    ca.issue("tls", hosts=("prometheus.monitoring.svc", "127.0.0.1"))
    web_secret = one(HTTPS, "Secret", "prometheus-web-config")["stringData"]
    (etc / "prometheus" / "web").mkdir(parents=True)
    web = etc / "prometheus" / "web" / "web.yml"
    web.write_text(systemd.rewrite(web_secret["web.yml"], replacements))
    load_web_config(web)  # our reader takes Prometheus' format as it is
    client_secret = one(HTTPS, "Secret", "config-reloader-client")["stringData"]
    (etc / "config-reloader").mkdir()
    for key, value in client_secret.items():
        (etc / "config-reloader" / key).write_text(systemd.rewrite(value, replacements))

    config_dir, out_dir, rules_dir = (
        etc / "prometheus" / "config",
        etc / "prometheus" / "config_out",
        etc / "prometheus" / "rules" / "prometheus-rulefiles-0",
    )
    for d in (config_dir, out_dir, rules_dir):
        d.mkdir(parents=True)
    template = (SIDECAR / "prometheus.yaml.tmpl").read_bytes()
    (config_dir / "prometheus.yaml.gz").write_bytes(gzip.compress(template))
    out = out_dir / "prometheus.env.yaml"
    out.write_text("global:\n  scrape_interval: 1m\n")

    binary = procs.require_binary(procs.PROMETHEUS)
    port = procs.free_port()
    prom_log = tmp_path / "prometheus.log"
    with prom_log.open("wb") as logf:
        prom = subprocess.Popen(
            [
                binary,
                f"--config.file={out}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.enable-lifecycle",
                f"--web.config.file={web}",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
        )
    ctx = ssl.create_default_context(cafile=str(ca.cert_path))
    token = base64.b64encode(f"reloader:{client_secret['password']}".encode()).decode()

    def config_yaml() -> str:
        request = urllib.request.Request(f"https://127.0.0.1:{port}/api/v1/status/config")
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, context=ctx, timeout=5) as response:
            return str(json.loads(response.read())["data"]["yaml"])

    sidecar_port = procs.free_port()
    pod = one(HTTPS, "StatefulSet")["spec"]["template"]["spec"]
    args = [
        systemd.rewrite(a, replacements)
        .replace("127.0.0.1:9090", f"127.0.0.1:{port}")
        .replace("--listen-address=:8080", f"--listen-address=127.0.0.1:{sidecar_port}")
        for a in containers(pod)["config-reloader"]["args"]
    ]
    reloader_log = tmp_path / "sidecar.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        procs.wait_for(lambda: "scrape_interval" in config_yaml(), timeout_s=30, what="Prometheus over https")
        with reloader_log.open("wb") as logf:
            proc = subprocess.Popen(
                [str(BIN), *args], env={"POD_NAME": "prometheus-1"}, stdout=logf, stderr=subprocess.STDOUT
            )
        procs.wait_for(lambda: "replica: prometheus-1" in config_yaml(), timeout_s=60, what="the reload")
        # The /metrics server starts after the first reload (the reloader defers its heavy imports).
        _, metrics = procs.wait_for(
            lambda: procs.http_get(f"http://127.0.0.1:{sidecar_port}/metrics"), timeout_s=30, what="/metrics"
        )
        assert procs.sample(metrics.decode(), "reloader_last_reload_successful") == 1.0
        log = reloader_log.read_text()
        assert "level=warn" not in log, log  # verified: no "not verified" warning
        assert client_secret["password"] not in log + prom_log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        for p in (proc, prom):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
