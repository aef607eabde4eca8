"""The signal method against a real Prometheus process: SIGHUP, then runtimeinfo says whether it took.

Other helpers and test runs start Prometheus on this machine at the same time, so the target runs under
a unique executable name: a symlink ``promsig<digits>`` to Debian's binary. The kernel's comm is the
basename that was exec'd (at most 15 characters), so only this process matches
``--process-executable-name``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import procs
from tests.support.procs import wait_for
from tests.support.reloader_proc import reloader_factory, replace_file

__all__ = ["reloader_factory"]

pytestmark = pytest.mark.e2e


def config(job: str, interval: str = "1m") -> str:
    return (
        f"global:\n  scrape_interval: {interval}\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:1']\n"
    )


@pytest.fixture
def unique_name() -> str:
    name = f"promsig{random.randrange(10**8):08d}"
    assert len(name) <= 15  # comm is truncated beyond 15 characters
    return name


@pytest.fixture
def prometheus_as(tmp_path: Path, unique_name: str) -> Iterator[Any]:
    """``start(config_path) -> Target``: Prometheus exec'd through the symlink ``unique_name``."""
    started: list[procs.Target] = []

    def start(config_path: Path) -> procs.Target:
        target = procs.start_prometheus(tmp_path, config_path, exec_name=unique_name)
        started.append(target)
        return target

    yield start
    for t in started:
        procs.stop(t)


def test_sighup_reloads_the_named_process_and_runtimeinfo_confirms_it(
    tmp_path: Path, prometheus_as: Any, reloader_factory: Any, unique_name: str
) -> None:
    src = tmp_path / "in" / "prometheus.yaml"
    src.parent.mkdir()
    src.write_text(config("one"))
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    out.write_text(config("seed"))
    prom = prometheus_as(out)

    def has_job(job: str) -> bool:
        return f"job_name: {job}\n" in prom.config_yaml()

    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        "--reload-method=signal",
        f"--process-executable-name={unique_name}",
        f"--runtimeinfo-url={prom.url}/api/v1/status/runtimeinfo",
        "--delay-interval=100ms",
        "--retry-interval=1s",
    )
    wait_for(lambda: has_job("one"), what="Prometheus to run job 'one' after SIGHUP")
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 1.0,
        what="the first SIGHUP reload confirmed by runtimeinfo",
    )
    assert reloader.metric("reloader_info", 'method="signal"') == 1.0
    first_confirmed_at = reloader.metric("reloader_last_reload_success_timestamp_seconds") or 0.0

    # Right after the first reload: runtimeinfo's lastConfigTime has one-second resolution, and a reload
    # in the same second as the previous one must still be confirmed, not timed out.
    replace_file(src, config("two").encode())
    wait_for(lambda: has_job("two"), what="Prometheus to run job 'two' after SIGHUP")
    wait_for(
        lambda: (
            (reloader.metric("reloader_last_reload_success_timestamp_seconds") or 0.0) > first_confirmed_at
        ),
        what="the second SIGHUP reload confirmed by runtimeinfo",
    )
    assert reloader.metric("reloader_reloads_failed_total") == 0.0, reloader.log()

    # Prometheus rejects it on SIGHUP; runtimeinfo's reloadConfigSuccess turns false, and so does ours.
    replace_file(src, config("three", interval="soon").encode())
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 0.0,
        what="reloader_last_reload_successful 0 after a rejected SIGHUP reload",
    )
    assert prom.get_json("/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"] is False
    assert "reloadConfigSuccess=false" in reloader.log()
    assert prom.proc.poll() is None and has_job("two")
    assert reloader.alive()

    replace_file(src, config("two").encode())
    wait_for(
        lambda: reloader.metric("reloader_last_reload_successful") == 1.0,
        what="reloader_last_reload_successful 1 after the fix",
    )
    assert prom.get_json("/api/v1/status/runtimeinfo")["data"]["reloadConfigSuccess"] is True


def test_no_process_of_that_name_is_an_error_that_the_reloader_survives(
    tmp_path: Path, prometheus_as: Any, reloader_factory: Any, unique_name: str
) -> None:
    # A real Prometheus answers runtimeinfo, so the only thing missing is a process of the given name.
    seed = tmp_path / "seed.yaml"
    seed.write_text(config("seed"))
    prom = prometheus_as(seed)
    missing = "nosig" + unique_name.removeprefix("promsig")
    src = tmp_path / "prometheus.yaml"
    src.write_text(config("one"))
    out = tmp_path / "out" / "prometheus.yaml"
    out.parent.mkdir()
    reloader = reloader_factory(
        f"--config-file={src}",
        f"--config-envsubst-file={out}",
        "--reload-method=signal",
        f"--process-executable-name={missing}",
        f"--runtimeinfo-url={prom.url}/api/v1/status/runtimeinfo",
        "--retry-interval=1s",
        wait_ready=False,
    )
    wait_for(
        lambda: (reloader.metric("reloader_reloads_failed_total") or 0.0) >= 1.0,
        what="a failed reload counted",
    )
    assert reloader.metric("reloader_last_reload_successful") == 0.0
    assert out.read_text() == config("one")
    failures = [line for line in reloader.log().splitlines() if "reload failed" in line]
    assert failures and missing in failures[0], failures[:1]
    assert reloader.alive()
    assert "job_name: seed\n" in prom.config_yaml()
