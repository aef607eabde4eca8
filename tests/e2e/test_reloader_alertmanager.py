"""config-reloader against a real Alertmanager from Debian: the same flow as Prometheus, via /-/reload.

Alertmanager reports the config in force at /api/v2/status (config.original).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import wait_for
from tests.support.reloader_proc import K8sVolume, gz, reloader_factory

__all__ = ["reloader_factory"]

pytestmark = pytest.mark.e2e

SEED = "route:\n  receiver: seed\nreceivers:\n  - name: seed\n"


def am_config(route_to: str, *receivers: str) -> str:
    lines = ["route:", f"  receiver: {route_to}", "  group_by: [alertname]", "receivers:"]
    lines += [f"  - name: {r}" for r in receivers]
    return "\n".join(lines) + "\n"


def test_alertmanager_follows_volume_updates_and_survives_a_bad_config(
    tmp_path: Path, alertmanager_factory: Any, reloader_factory: Any
) -> None:
    volume = K8sVolume(tmp_path / "config")
    volume.update({"alertmanager.yaml.gz": gz(am_config("team-$(TEAM)", "team-$(TEAM)"))})
    out = tmp_path / "config_out" / "alertmanager.env.yaml"
    out.parent.mkdir()
    out.write_text(SEED)
    am = alertmanager_factory(out)

    reloader = reloader_factory(
        f"--config-file={volume.root / 'alertmanager.yaml.gz'}",
        f"--config-envsubst-file={out}",
        f"--reload-url={am.reload_url}",
        "--delay-interval=100ms",
        "--retry-interval=1s",
        "--log-format=json",
        env={"TEAM": "sre7f3a"},
    )
    wait_for(
        lambda: "receiver: team-sre7f3a" in am.config_yaml(), what="Alertmanager to route to team-sre7f3a"
    )

    volume.update({"alertmanager.yaml.gz": gz(am_config("pager", "team-$(TEAM)", "pager"))})
    wait_for(lambda: "receiver: pager" in am.config_yaml(), what="Alertmanager to route to pager")
    assert reloader.metric("reloader_last_reload_successful") == 1.0
    last_good = am.config_yaml()

    # A route to a receiver that does not exist: Alertmanager answers the reload with 500 and keeps going.
    volume.update({"alertmanager.yaml.gz": gz(am_config("nobody", "pager"))})
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 0.0,
        what="reloader_last_reload_successful 0 on a config Alertmanager rejects",
    )
    assert am.proc.poll() is None
    assert am.config_yaml() == last_good
    assert am.metric("alertmanager_config_last_reload_successful") == 0.0
    failures = [line for line in reloader.log().splitlines() if am.reload_url in line and "500" in line]
    assert failures and "nobody" in failures[0], reloader.log()[-2000:]
    assert reloader.alive()

    # Back to the last good bytes: the hash equals the last successful one, but the last reload failed.
    volume.update({"alertmanager.yaml.gz": gz(am_config("pager", "team-$(TEAM)", "pager"))})
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 1.0,
        what="reloader_last_reload_successful 1 after the fix",
    )
    assert am.metric("alertmanager_config_last_reload_successful") == 1.0
    assert "receiver: pager" in am.config_yaml()
    assert reloader.stop() == 0
    # --log-format=json: every line is one JSON object with the message first; no value of TEAM in any.
    lines = [json.loads(line) for line in reloader.log().splitlines()]
    assert lines and all(next(iter(line)) == "msg" for line in lines)
    assert "sre7f3a" not in reloader.log()
