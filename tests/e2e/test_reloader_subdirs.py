"""A rule file in a subdirectory of a --watched-dir: its change reloads a real Prometheus (issue 7, point 5).

Prometheus loads the rule files of two subdirectories (its globs allow a ``*`` in the last element only;
team-b does not exist at start). The config itself never changes, so only the reloader's recursive hash
and its recursive watch can bring the new rules in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import wait_for
from tests.support.reloader_proc import reloader_factory

__all__ = ["reloader_factory"]

pytestmark = pytest.mark.e2e


def group(name: str, record: str) -> str:
    return f"groups:\n  - name: {name}\n    rules:\n      - record: {record}\n        expr: vector(1)\n"


def write_by_rename(path: Path, text: str) -> None:
    tmp = path.parent.parent / f".{path.name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def test_rule_files_in_subdirectories_reach_prometheus(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any
) -> None:
    rules = tmp_path / "rules"
    (rules / "team-a").mkdir(parents=True)
    write_by_rename(rules / "team-a" / "a.yaml", group("a", "a:one"))
    src = tmp_path / "prometheus.yaml"
    src.write_text(
        "global:\n  scrape_interval: 1m\n"
        f"rule_files:\n  - {rules}/team-a/*.yaml\n  - {rules}/team-b/*.yaml\n"
        "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"
    )
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text("global:\n  scrape_interval: 1m\n")
    prom = prometheus_factory(out)

    def recorded() -> dict[str, set[str]]:
        return {
            g["name"]: {r["name"] for r in g["rules"]}
            for g in prom.get_json("/api/v1/rules")["data"]["groups"]
        }

    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.reload_url}",
        f"--watched-dir={rules}",
        "--delay-interval=100ms",
    )
    wait_for(lambda: recorded() == {"a": {"a:one"}}, what="rule group 'a'")

    # A change one level down, in a directory that existed at start.
    write_by_rename(rules / "team-a" / "a.yaml", group("a", "a:two"))
    wait_for(lambda: recorded() == {"a": {"a:two"}}, what="the changed rule in team-a/a.yaml")

    # A subdirectory made while running, and a file in it.
    (rules / "team-b").mkdir()
    wait_for(lambda: (reloader.metric("reloader_config_apply_operations_total") or 0) >= 3, what="an apply")
    write_by_rename(rules / "team-b" / "b.yaml", group("b", "b:one"))
    wait_for(lambda: recorded() == {"a": {"a:two"}, "b": {"b:one"}}, what="the rule file in the new team-b")

    assert out.read_text() == src.read_text()  # the config never changed: only the rule files did
    assert reloader.metric("reloader_last_reload_successful") == 1.0
    assert reloader.metric("reloader_reloads_failed_total") == 0.0
    assert reloader.stop() == 0
