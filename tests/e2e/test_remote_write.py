"""Remote write end to end: a generated config makes one real Prometheus write to another.

- The receiver is a real Prometheus started with ``--web.enable-remote-write-receiver`` and a
  ``--web.config.file`` demanding basic auth (a bcrypt hash): Prometheus 2.42 checks credentials only
  when a web config says so, so without it the test could not tell a missing password from a right one.
- The sender's config comes from ``generate()``: ``spec.remoteWrite`` with ``basicAuth`` whose password
  is in a Secret, a job scraping the sender itself (from additionalScrapeConfigs), and the default
  external labels, rendered by config-reloader's own pipeline (``$(POD_NAME)`` expanded).
- The samples arrive: the receiver answers a query for the sender's ``up`` series, carrying the
  ``prometheus`` external label, and rejects the same query without credentials.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from config_operator.generate import compress, generate
from reloader.render import Expansion, render
from tests.support.procs import (
    PROMETHEUS,
    Target,
    free_port,
    require_binary,
    start_prometheus,
    stop,
    wait_for,
)

pytestmark = pytest.mark.e2e

USER = "writer"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _get(url: str, auth: tuple[str, str] | None) -> tuple[int, bytes]:
    req = urllib.request.Request(url)
    if auth is not None:
        req.add_header("Authorization", "Basic " + _b64(f"{auth[0]}:{auth[1]}"))
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A Prometheus accepting remote writes behind basic auth: (its URL, the password)."""
    binary = require_binary(PROMETHEUS)
    password = secrets.token_urlsafe(16)
    web = tmp_path / "web.yaml"
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()  # cheap rounds: a test
    web.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    config = tmp_path / "receiver.yaml"
    config.write_text("global:\n  scrape_interval: 1m\n")
    port = free_port()
    log = tmp_path / "receiver.log"
    with log.open("wb") as logf:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'receiver-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                f"--web.config.file={web}",
                "--web.enable-remote-write-receiver",
            ],
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    target = Target("prometheus", url, config, proc, log)
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"receiver exited: {log.read_text()[-2000:]}")
            return _get(url + "/-/ready", (USER, password))[0] == 200

        wait_for(ready, timeout_s=30, what="the receiver to become ready")
        yield url, password
    finally:
        stop(target)


def _sender_config(receiver_url: str, password: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    pc = {
        "apiVersion": "reloader.dev/v1alpha1",
        "kind": "PrometheusConfig",
        "metadata": {"name": "main", "namespace": "monitoring"},
        "spec": {
            "version": "2.42.0",
            "scrapeInterval": "1s",
            "additionalScrapeConfigs": {"name": "extra", "key": "jobs.yaml"},
            "remoteWrite": [
                {
                    "url": f"{receiver_url}/api/v1/write",
                    "name": "central",
                    "remoteTimeout": "5s",
                    "basicAuth": {
                        "username": {"name": "remote-write-auth", "key": "user"},
                        "password": {"name": "remote-write-auth", "key": "password"},
                    },
                    "queueConfig": {"batchSendDeadline": "1s", "maxSamplesPerSend": 100},
                    "writeRelabelConfigs": [{"sourceLabels": ["__name__"], "regex": "up", "action": "keep"}],
                }
            ],
        },
    }
    objects = [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "remote-write-auth", "namespace": "monitoring"},
            "data": {"user": _b64(USER), "password": _b64(password)},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "extra", "namespace": "monitoring"},
            "stringData": {
                "jobs.yaml": "- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:9']\n"
            },
        },
    ]
    return pc, objects


@pytest.mark.timeout(180)
def test_samples_reach_a_receiver_that_demands_basic_auth(tmp_path: Path, receiver: tuple[str, str]) -> None:
    url, password = receiver
    pc, secret_objects = _sender_config(url, password)
    generated = generate(pc, [], [], [], secret_objects)
    text = generated.config.decode()
    config = yaml.safe_load(text)
    (rw,) = config["remote_write"]
    assert rw["basic_auth"] == {"username": USER, "password": password}  # inline, as prometheus-operator

    # The sender scrapes a port nobody serves: its `up` series is 0, which is a sample all the same.
    expansion = Expansion()
    rendered = b"".join(
        render(
            [compress(generated.config)],
            {"POD_NAME": "prometheus-main-0"},
            expansion,
            source="t",
            strict=True,
        )
    )
    sender_config = tmp_path / "sender.yaml"
    sender_config.write_bytes(rendered)
    sender = start_prometheus(tmp_path, sender_config)
    try:
        query = url + "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="self"}'})

        def arrived() -> list[dict[str, Any]]:
            status, body = _get(query, (USER, password))
            if status != 200:
                raise ValueError(f"{status} {body[:200]!r}")
            return list(json.loads(body)["data"]["result"])

        (series,) = wait_for(
            arrived, timeout_s=90, interval_s=0.5, what="the sender's samples at the receiver"
        )
        assert series["metric"]["prometheus"] == "monitoring/main"
        assert series["metric"]["prometheus_replica"] == "prometheus-main-0"
        assert _get(query, None)[0] == 401
        assert _get(query, (USER, "wrong"))[0] == 401
        # write_relabel_configs kept only `up`: nothing else of the sender's arrived.
        other = (
            url + "/api/v1/query?" + urllib.parse.urlencode({"query": 'count({job="self", __name__!="up"})'})
        )
        status, body = _get(other, (USER, password))
        assert status == 200 and json.loads(body)["data"]["result"] == []
    finally:
        stop(sender)
