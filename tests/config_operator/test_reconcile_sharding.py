"""The running operator against the fake API server with issue 10's fields: changing spec.shards, or a
tenancy field, rewrites the Secret with the new rules; a malformed one keeps the last good Secret."""

from __future__ import annotations

from typing import Any

import yaml

from config_operator.app import Operator
from tests.config_operator.conftest import PCS, condition, prometheus_config, service_monitor
from tests.fakekube import FakeKube
from tests.support.operator_run import secret_config
from tests.support.polling import eventually


def _jobs(kube: FakeKube) -> list[dict[str, Any]] | None:
    config = secret_config(kube, "default", "prometheus-main")
    return None if config is None else list(yaml.safe_load(config)["scrape_configs"])


def _modulus(kube: FakeKube) -> int | None:
    jobs = _jobs(kube)
    if not jobs:
        return None
    (hashmod,) = [r for r in jobs[0]["relabel_configs"] if r.get("action") == "hashmod"]
    return int(hashmod["modulus"])


def _patch_spec(kube: FakeKube, **spec: Any) -> None:
    pc = kube.get(PCS, "default", "main")
    pc["spec"].update(spec)
    kube.update(pc)


async def test_changing_shards_and_tenancy_rewrites_the_secret(kube: FakeKube, operator: Operator) -> None:
    kube.create(service_monitor("api"))
    kube.create(prometheus_config("main"))
    await eventually(lambda: _modulus(kube) == 1, what="the one-shard rules")

    _patch_spec(kube, shards=3, enforcedNamespaceLabel="namespace")
    await eventually(lambda: _modulus(kube) == 3, what="the Secret to follow spec.shards")
    (job,) = _jobs(kube) or []
    assert {"target_label": "namespace", "replacement": "default"} in job["relabel_configs"]
    assert job["relabel_configs"][-1]["regex"] == "$(SHARD);|.+;.+"

    # A malformed field: Reconciled False, and the Secret stays as it was.
    before = secret_config(kube, "default", "prometheus-main")
    _patch_spec(kube, shards=0)
    reconciled = await eventually(
        lambda: (c := condition(kube, "default", "main")) and c["status"] == "False" and c,
        what="Reconciled=False for shards: 0",
    )
    assert "spec.shards" in reconciled["message"]
    assert secret_config(kube, "default", "prometheus-main") == before
