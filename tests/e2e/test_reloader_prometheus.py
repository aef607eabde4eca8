"""config-reloader against a real Prometheus from Debian: volumes, templates, bad configs, rules, init mode.

Every test reads what Prometheus itself reports (/api/v1/status/config, /api/v1/rules) and what the
reloader reports on its own /metrics, never the reloader's internals.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import Target, wait_for
from tests.support.reloader_proc import (
    K8sVolume,
    Reloader,
    gz,
    reloader_factory,
    replace_file,
    run_reloader_once,
)

__all__ = ["reloader_factory"]

pytestmark = pytest.mark.e2e

SEED = "global:\n  scrape_interval: 1m\n"


def prom_config(*jobs: str, external_labels: str = "", extra: str = "") -> str:
    """A Prometheus config with one static job per name; its targets never need to be up."""
    lines = ["global:", "  scrape_interval: 1m"]
    if external_labels:
        lines += ["  external_labels:", *(f"    {kv}" for kv in external_labels.split(";"))]
    lines.append("scrape_configs:")
    for job in jobs:
        lines += [f"  - job_name: {job}", "    static_configs:", "      - targets: ['127.0.0.1:1']"]
    return "\n".join(lines) + "\n" + extra


def has_job(target: Target, job: str) -> bool:
    return f"job_name: {job}\n" in target.config_yaml()


def reloads(reloader: Reloader) -> float:
    return reloader.metric("reloader_reloads_total") or 0.0


def test_gz_in_kubernetes_volume_is_reloaded_after_each_data_swap(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any
) -> None:
    volume = K8sVolume(tmp_path / "config")
    volume.update({"prometheus.yaml.gz": gz(prom_config("first"))})
    out = tmp_path / "config_out" / "prometheus.env.yaml"
    out.parent.mkdir()
    out.write_text(SEED)
    prom = prometheus_factory(out)

    reloader = reloader_factory(
        f"--config-file={volume.root / 'prometheus.yaml.gz'}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.reload_url}",
        "--delay-interval=100ms",
    )
    wait_for(lambda: has_job(prom, "first"), what="Prometheus to run job 'first'")
    assert out.read_text() == prom_config("first")

    # Two swaps in a row: the second must be seen as well, although the visible name never changed.
    for jobs in (("first", "second"), ("first", "second", "third")):
        before = reloads(reloader)
        volume.update({"prometheus.yaml.gz": gz(prom_config(*jobs))})
        wait_for(lambda j=jobs: has_job(prom, j[-1]), what=f"Prometheus to run job {jobs[-1]!r}")
        wait_for(lambda b=before: reloads(reloader) > b, what="reloader_reloads_total to grow")

    assert out.read_text() == prom_config("first", "second", "third")
    assert reloader.metric("reloader_last_reload_successful") == 1.0
    assert reloader.metric("reloader_reloads_failed_total") == 0.0
    assert prom.metric("prometheus_config_last_reload_successful") == 1.0
    assert reloader.stop() == 0  # SIGTERM is a clean stop


def test_pod_name_placeholders_become_external_labels(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any
) -> None:
    relabel = (
        "    relabel_configs:\n"
        "      - source_labels: [__address__]\n"
        "        regex: '(.*):1'\n"
        "        target_label: host\n"
        "        replacement: '${1}-$1'\n"
    )
    template = (
        prom_config(
            "app",
            external_labels="replica: $(POD_NAME);shard: $(STATEFULSET_ORDINAL_NUMBER);zone: $(ZONE_UNSET)",
        ).rstrip("\n")
        + "\n"
        + relabel
    )
    src = tmp_path / "prometheus.yaml.tmpl"
    src.write_text(template)
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text(SEED)
    prom = prometheus_factory(out)

    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.reload_url}",
        env={"POD_NAME": "prometheus-k8s-3"},
    )
    wait_for(lambda: has_job(prom, "app"), what="Prometheus to run the rendered template")
    running = prom.config_yaml()
    assert "replica: prometheus-k8s-3" in running
    assert 'shard: "3"' in running or "shard: '3'" in running or "shard: 3" in running
    # An unset variable is left as it was written, and counted.
    assert "zone: $(ZONE_UNSET)" in running
    assert reloader.metric("reloader_config_environment_variable_expansion_errors") == 1.0
    # Relabel references are not environment variables: Prometheus gets them untouched.
    assert "replacement: ${1}-$1" in running
    # The unset variable is named in the log; the value of a set one never is (it may be a credential).
    assert "ZONE_UNSET" in reloader.log()
    assert "prometheus-k8s-3" not in reloader.log()


@pytest.mark.parametrize("fix", ["back_to_last_good_bytes", "new_good_bytes"])
def test_invalid_config_keeps_old_one_running_until_fixed(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any, fix: str
) -> None:
    good = prom_config("good")
    src = tmp_path / "in" / "prometheus.yaml"
    src.parent.mkdir()
    src.write_text(good)
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text(SEED)
    prom = prometheus_factory(out)
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.reload_url}",
        "--delay-interval=100ms",
        "--retry-interval=1s",
    )
    wait_for(lambda: has_job(prom, "good"), what="Prometheus to run the good config")
    assert reloader.metric("reloader_last_reload_successful") == 1.0

    # Valid YAML that Prometheus rejects: it answers the reload with 500 and keeps the old config.
    replace_file(src, prom_config("broken").replace("scrape_interval: 1m", "scrape_interval: soon").encode())
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 0.0,
        what="reloader_last_reload_successful 0",
    )
    assert (reloader.metric("reloader_reloads_failed_total") or 0.0) >= 1.0
    assert prom.proc.poll() is None
    assert has_job(prom, "good") and not has_job(prom, "broken")
    assert prom.metric("prometheus_config_last_reload_successful") == 0.0
    # One line that names the target and its answer, with Prometheus's reason from the body.
    failures = [line for line in reloader.log().splitlines() if prom.reload_url in line and "500" in line]
    assert failures and "soon" in failures[0], reloader.log()[-2000:]
    assert reloader.alive()

    fixed = good if fix == "back_to_last_good_bytes" else prom_config("good", "fixed")
    replace_file(src, fixed.encode())
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 1.0,
        what="reloader_last_reload_successful 1 after the fix",
    )
    assert prom.metric("prometheus_config_last_reload_successful") == 1.0
    assert out.read_text() == fixed
    if fix == "new_good_bytes":
        assert has_job(prom, "fixed")


def test_new_rule_file_in_watched_dir_reaches_prometheus(
    tmp_path: Path, prometheus_factory: Any, reloader_factory: Any
) -> None:
    rules = K8sVolume(tmp_path / "rules")
    rules.update(
        {"base.yaml": b"groups:\n  - name: base\n    rules:\n      - record: base:up\n        expr: up\n"}
    )
    src = tmp_path / "prometheus.yaml"
    src.write_text(prom_config("app", extra=f"rule_files:\n  - {rules.root}/*.yaml\n"))
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text(SEED)
    prom = prometheus_factory(out)

    def groups() -> set[str]:
        return {g["name"] for g in prom.get_json("/api/v1/rules")["data"]["groups"]}

    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        f"--reload-url={prom.reload_url}",
        f"--watched-dir={rules.root}",
        "--delay-interval=100ms",
    )
    wait_for(lambda: groups() == {"base"}, what="rule group 'base'")
    before = reloads(reloader)

    # The config is unchanged: only the watched directory tells the reloader to reload.
    rules.update(
        {
            "base.yaml": b"groups:\n  - name: base\n    rules:\n      - record: base:up\n        expr: up\n",
            "extra.yaml": b"groups:\n  - name: extra\n    rules:\n      - alert: Extra\n        expr: vector(1)\n",
        }
    )
    wait_for(lambda: groups() == {"base", "extra"}, what="rule group 'extra' after a new rule file")
    assert (reloader.metric("reloader_reloads_total") or 0.0) > before
    assert reloader.metric("reloader_last_reload_successful") == 1.0


def test_init_mode_renders_once_and_prometheus_starts_on_the_result(
    tmp_path: Path, prometheus_factory: Any
) -> None:
    # Gzip is known by its magic bytes, not by the name: this one has no .gz suffix.
    src = tmp_path / "prometheus.yaml"
    src.write_bytes(gz(prom_config("init", external_labels="replica: $(POD_NAME)")))
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()

    result = run_reloader_once(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        "--watch-interval=0",
        env={"POD_NAME": "prometheus-0"},
    )
    assert result.returncode == 0, result.stdout
    assert out.read_text() == prom_config("init", external_labels="replica: prometheus-0")

    prom = prometheus_factory(out)
    assert has_job(prom, "init")
    assert "replica: prometheus-0" in prom.config_yaml()
