"""No secret reaches a metric label, an Event or a status: the places more people can read than Secrets.

Credentials go through the operator in the Secret that ``spec.additionalScrapeConfigs`` names: good
ones, and broken ones whose error is on the very line that holds the credential (a message quoting
the line would leak it). After each, every Event the operator posted (every field, as the fake API
server stored it), every status it patched, and its whole /metrics text are searched for the values.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from prometheus_client import generate_latest

from config_operator.app import Operator
from tests.config_operator.conftest import PCS, condition, prometheus_config
from tests.fakekube import FakeKube
from tests.support.polling import eventually

PASSWORD = "pw-Zq81xLmv"
TOKEN = "tok-Hb42nWcd"
KEY_LINE = "key-Rt55sPqe"
SECRETS = (PASSWORD, TOKEN, KEY_LINE)

GOOD = f"""- job_name: extra
  basic_auth:
    username: admin
    password: {PASSWORD}
  authorization:
    credentials: {TOKEN}
  static_configs:
  - targets: ['127.0.0.1:9']
"""
# Each broken in a way the operator reports, with a credential where the parser stops.
BROKEN = {
    "not YAML": f"- job_name: extra\n  password: [{PASSWORD} {TOKEN}\n  key: {KEY_LINE}: {{\n",
    "not a list of jobs": f"password: {PASSWORD}\ntoken: {TOKEN}\n",
    "duplicate job": f"- job_name: {KEY_LINE}\n- job_name: {KEY_LINE}\n",
}


def _secret(text: bytes | str) -> dict[str, Any]:
    raw = text.encode() if isinstance(text, str) else text
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "extra", "namespace": "default"},
        "data": {"jobs.yaml": base64.b64encode(raw).decode()},
    }


def _leaks(kube: FakeKube, op: Operator) -> list[str]:
    places = {
        "events": json.dumps(kube.list("events", "default")),
        "status": json.dumps(kube.get(PCS, "default", "main").get("status")),
        "metrics": generate_latest(op.metrics.registry).decode(),
    }
    return [f"{secret} in {where}" for where, text in places.items() for secret in SECRETS if secret in text]


async def test_no_secret_in_events_status_or_metrics(kube: FakeKube, operator: Operator) -> None:
    kube.create(_secret(GOOD))
    kube.create(prometheus_config("main", additionalScrapeConfigs={"name": "extra", "key": "jobs.yaml"}))
    await eventually(lambda: (condition(kube, "default", "main") or {}).get("status") == "True", "reconciled")
    # The secrets did go through: they are in the generated config (the Secret), and nowhere else.
    config = kube.get("secrets", "default", "prometheus-main")
    assert config["data"]
    assert _leaks(kube, operator) == []

    seen_events = 0
    for problem, text in [*BROKEN.items(), ("not UTF-8", f"{PASSWORD}\xff".encode("latin-1"))]:
        kube.apply(_secret(text))
        # A resync is how a changed referenced Secret is picked up.
        operator.queue.add_all(operator.caches.prometheus_configs.keys())

        def failed(before: int = seen_events) -> bool:
            cond = condition(kube, "default", "main") or {}
            return cond.get("status") == "False" and len(kube.list("events", "default")) > before

        await eventually(failed, f"the operator to report the Secret ({problem})")
        seen_events = len(kube.list("events", "default"))
        assert _leaks(kube, operator) == [], problem
        # Back to good, so the next broken one is a change the operator reports again.
        kube.apply(_secret(GOOD))
        operator.queue.add_all(operator.caches.prometheus_configs.keys())
        await eventually(
            lambda: (condition(kube, "default", "main") or {}).get("status") == "True", "good again"
        )
    warnings = [e for e in kube.list("events", "default") if e.get("type") == "Warning"]
    assert len(warnings) >= len(BROKEN) + 1
