"""The Reloader in-process, with real files in tmp_path and a real aiohttp reload endpoint."""

from __future__ import annotations

import asyncio
import functools
import gzip
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from reloader.app import Options, Reloader, StartupError, apply_config, build_env
from reloader.watch import Backend, event_filter, watch_changes, watch_roots
from tests.reloader.conftest import Endpoint, running, sample, start_endpoint
from tests.support.polling import eventually
from tests.support.reloader_proc import K8sVolume

ENV = {"POD_NAME": "prom-7", "SECRET_TOKEN": "hunter2-do-not-log"}


def options(tmp_path: Path, url: str, **kw: Any) -> Options:
    base = Options(
        config_file=tmp_path / "in" / "prometheus.yaml",
        output_file=tmp_path / "out" / "prometheus.env.yaml",
        reload_url=url,
        delay_interval_s=0.05,
        retry_interval_s=0.1,
        reload_timeout_s=10.0,
    )
    return base.replace(**kw)


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\n")
    return tmp_path


def requests_reach(endpoint: Endpoint, count: int) -> bool:
    return len(endpoint.seen) == count


def test_build_env_sets_the_statefulset_ordinal() -> None:
    assert build_env({"POD_NAME": "prometheus-k8s-12"}, "POD_NAME")["STATEFULSET_ORDINAL_NUMBER"] == "12"
    # Always set, as prometheus-config-reloader does: empty when there are no trailing digits.
    assert build_env({"POD_NAME": "web"}, "POD_NAME")["STATEFULSET_ORDINAL_NUMBER"] == ""
    assert build_env({}, "POD_NAME")["STATEFULSET_ORDINAL_NUMBER"] == ""
    assert build_env({"POD_NAME": "web-1a"}, "POD_NAME")["STATEFULSET_ORDINAL_NUMBER"] == ""
    assert build_env({"HOST": "a-3"}, "HOST")["STATEFULSET_ORDINAL_NUMBER"] == "3"


def test_apply_hash_covers_the_config_and_the_watched_dirs(dirs: Path) -> None:
    rules = dirs / "rules"
    rules.mkdir()
    opts = options(dirs, "http://unused", watched_dirs=(rules,))
    first = apply_config(opts, ENV)
    assert first.output_changed
    assert apply_config(opts, ENV).sha256 == first.sha256
    (rules / "r.yaml").write_text("groups: []\n")
    assert apply_config(opts, ENV).sha256 != first.sha256
    assert (dirs / "out" / "prometheus.env.yaml").read_text() == "replica: prom-7\n"


async def test_first_apply_reloads_once_and_becomes_ready(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml"))
    reloader = Reloader(options(dirs, endpoint.url), ENV)
    assert not reloader.ready()
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        await eventually(reloader.healthy, "the watcher")
    assert endpoint.seen == ["replica: prom-7\n"]
    assert sample(reloader, "reloader_reloads_total") == 1
    assert sample(reloader, "reloader_last_reload_successful") == 1
    assert sample(reloader, "reloader_last_reload_success_timestamp_seconds") > 0


async def test_endpoint_failing_every_second_request_is_retried(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(
        aiohttp_server,
        Endpoint(dirs / "out" / "prometheus.env.yaml", answer=lambda n: 500 if n % 2 == 0 else 200),
    )
    reloader = Reloader(options(dirs, endpoint.url), ENV)
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        (dirs / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\nchanged: yes\n")
        await eventually(lambda: len(endpoint.seen) == 3, "the failed reload to be retried")
        await eventually(lambda: sample(reloader, "reloader_last_reload_successful") == 1, "success")
    assert endpoint.seen[1:] == ["replica: prom-7\nchanged: yes\n"] * 2
    assert sample(reloader, "reloader_reloads_total") == 3
    assert sample(reloader, "reloader_reloads_failed_total") == 1


async def test_endpoint_always_500_keeps_retrying_and_not_ready(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(
        aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml", answer=lambda _n: 500)
    )
    reloader = Reloader(options(dirs, endpoint.url), ENV)
    async with running(reloader):
        await eventually(
            lambda: sample(reloader, "reloader_reloads_failed_total") >= 3, "three failed reloads"
        )
        assert not reloader.ready()
        await eventually(reloader.healthy, "the watcher, which does not care about reloads")
        assert sample(reloader, "reloader_last_reload_successful") == 0
    assert (dirs / "out" / "prometheus.env.yaml").read_text() == "replica: prom-7\n"


async def test_a_change_during_a_retry_wait_is_applied_at_once(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(
        aiohttp_server,
        Endpoint(dirs / "out" / "prometheus.env.yaml", answer=lambda n: 500 if n == 1 else 200),
    )
    # The retry is an hour away: only the change can bring the second request.
    reloader = Reloader(options(dirs, endpoint.url, retry_interval_s=3600.0), ENV)
    async with running(reloader):
        await eventually(
            lambda: sample(reloader, "reloader_reloads_failed_total") == 1, "the first reload to fail"
        )
        (dirs / "in" / "prometheus.yaml").write_text("fixed: $(POD_NAME)\n")
        await eventually(reloader.ready, "the change to be reloaded")
    assert endpoint.seen == ["replica: prom-7\n", "fixed: prom-7\n"]


async def test_a_hanging_endpoint_is_cut_by_the_reload_timeout(dirs: Path, aiohttp_server: Any) -> None:
    hang = asyncio.Event()
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml", hang=hang))
    reloader = Reloader(options(dirs, endpoint.url, reload_timeout_s=0.2), ENV)
    try:
        async with running(reloader):
            await eventually(
                lambda: sample(reloader, "reloader_reloads_failed_total") >= 2, "two timed-out reloads"
            )
            assert not reloader.ready()
            hang.set()  # the target answers again
            await eventually(reloader.ready, "a reload once the target answers")
    finally:
        hang.set()


async def test_a_refused_connection_is_retried_and_healthz_stays_up(dirs: Path, unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/-/reload"
    reloader = Reloader(options(dirs, url, listen_address="127.0.0.1:0"), ENV)
    async with running(reloader), aiohttp.ClientSession() as http:
        await eventually(
            lambda: sample(reloader, "reloader_reloads_failed_total") >= 2, "two refused reloads"
        )
        await eventually(lambda: reloader.bound_port, "the server, started after the first reload")
        base = f"http://127.0.0.1:{reloader.bound_port}"
        await eventually(reloader.healthy, "the watcher")
        async with http.get(base + "/healthz") as r:
            assert r.status == 200
        async with http.get(base + "/readyz") as r:
            assert r.status == 503


async def test_kubernetes_data_swaps_are_seen_twice_in_a_row(tmp_path: Path, aiohttp_server: Any) -> None:
    volume = K8sVolume(tmp_path / "config")
    volume.update({"prometheus.yaml.gz": gzip.compress(b"v: 1 $(POD_NAME)\n")})
    out = tmp_path / "out" / "prometheus.env.yaml"
    out.parent.mkdir()
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    opts = options(tmp_path, endpoint.url, config_file=volume.root / "prometheus.yaml.gz", output_file=out)
    reloader = Reloader(opts, ENV)
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        await eventually(reloader.healthy, "the watcher")
        for version in (2, 3):
            volume.update({"prometheus.yaml.gz": gzip.compress(b"v: %d $(POD_NAME)\n" % version)})
            await eventually(functools.partial(requests_reach, endpoint, version), f"reload number {version}")
    assert endpoint.seen == ["v: 1 prom-7\n", "v: 2 prom-7\n", "v: 3 prom-7\n"]


async def test_a_burst_of_500_writes_gives_one_reload(dirs: Path, aiohttp_server: Any) -> None:
    rules = dirs / "rules"
    rules.mkdir()
    out = dirs / "out" / "prometheus.env.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out, extra=lambda: len(list(rules.iterdir()))))
    reloader = Reloader(options(dirs, endpoint.url, watched_dirs=(rules,), delay_interval_s=1.0), ENV)
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        await eventually(reloader.healthy, "the watcher")
        for i in range(500):
            (rules / f"rule-{i:03d}.yaml").write_text(f"groups: [] # {i}\n")
        await eventually(lambda: len(endpoint.observed) >= 2, "the reload after the burst")
        # A marker after the burst: its reload proves that nothing else was queued in between.
        (rules / "zz-marker.yaml").write_text("groups: []\n")
        await eventually(lambda: len(endpoint.observed) >= 3, "the reload after the marker")
    # A reload in the middle of the burst would show a count between 0 and 500.
    assert endpoint.observed == [0, 500, 501]
    assert sample(reloader, "reloader_watch_events_total") >= 500


async def test_the_ticker_finds_a_change_that_no_event_reported(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml"))

    async def deaf_watcher(r: Reloader) -> None:
        r.watching()
        await asyncio.Event().wait()  # never reports anything: only the ticker can see the change

    reloader = Reloader(options(dirs, endpoint.url, watch_interval_s=0.2), ENV, watcher=deaf_watcher)
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        (dirs / "in" / "prometheus.yaml").write_text("ticked: $(POD_NAME)\n")
        await eventually(lambda: len(endpoint.seen) == 2, "the ticker's reload")
        # Each tick re-applies; with the hash unchanged, none may reload. The loop decides on one apply
        # before it starts the next, so three more applies mean at least two decisions were made.
        applies = sample(reloader, "reloader_config_apply_operations_total")
        await eventually(
            lambda: sample(reloader, "reloader_config_apply_operations_total") >= applies + 3,
            "three more ticks",
        )
    assert endpoint.seen == ["replica: prom-7\n", "ticked: prom-7\n"]
    assert sample(reloader, "reloader_reloads_total") == 2
    assert sample(reloader, "reloader_watch_events_total") == 0


async def test_healthz_fails_while_the_watch_loop_is_dead(dirs: Path, aiohttp_server: Any) -> None:
    rules = dirs / "rules"
    rules.mkdir()
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml"))
    opts = options(
        dirs, endpoint.url, watched_dirs=(rules,), listen_address="127.0.0.1:0", retry_interval_s=0.2
    )
    reloader = Reloader(opts, ENV)
    async with running(reloader), aiohttp.ClientSession() as http:
        await eventually(reloader.ready, "readiness")
        await eventually(reloader.healthy, "the watcher")
        healthz = f"http://127.0.0.1:{reloader.bound_port}/healthz"
        shutil.rmtree(rules)  # the watch on it dies, and cannot be restarted while it is gone

        async def status() -> int:
            async with http.get(healthz) as r:
                return r.status

        deadline = asyncio.get_running_loop().time() + 30
        while await status() != 503:
            assert asyncio.get_running_loop().time() < deadline, "healthz never failed"
            await asyncio.sleep(0.02)
        assert sample(reloader, "reloader_watch_errors_total") >= 1
        rules.mkdir()
        while await status() != 200:
            assert asyncio.get_running_loop().time() < deadline, "healthz never recovered"
            await asyncio.sleep(0.02)


async def test_apply_errors_after_startup_keep_the_output_and_the_loop(
    dirs: Path, aiohttp_server: Any
) -> None:
    out = dirs / "out" / "prometheus.env.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    reloader = Reloader(options(dirs, endpoint.url), ENV)
    config = dirs / "in" / "prometheus.yaml"
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        whole = gzip.compress(b"x: 1\n" * 1000)
        config.write_bytes(whole[: len(whole) - 8])  # the trailer is cut off: truncated gzip
        await eventually(
            lambda: sample(reloader, "reloader_config_apply_operations_failed_total") >= 1, "an apply error"
        )
        assert out.read_text() == "replica: prom-7\n"
        config.write_text("good: again\n")
        await eventually(lambda: len(endpoint.seen) == 2, "the reload of the fixed config")
    assert out.read_text() == "good: again\n"


async def test_startup_errors_are_raised_before_anything_runs(dirs: Path) -> None:
    opts = options(dirs, "http://127.0.0.1:1/-/reload", config_file=dirs / "in" / "missing.yaml")
    with pytest.raises(StartupError, match=r"missing\.yaml: No such file or directory"):
        await Reloader(opts, ENV).run(asyncio.Event())
    opts = options(dirs, "http://127.0.0.1:1/-/reload", output_file=dirs / "nope" / "out.yaml")
    with pytest.raises(StartupError, match=r"output .*nope/out\.yaml: cannot create a file"):
        await Reloader(opts, ENV).run(asyncio.Event())
    opts = options(dirs, "http://127.0.0.1:1/-/reload", strict_env=True)
    with pytest.raises(StartupError, match="environment variable POD_NAME is not set"):
        await Reloader(opts, {}).run(asyncio.Event())
    assert not (dirs / "out" / "prometheus.env.yaml").exists()


async def test_metrics_have_the_exact_names(dirs: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml"))
    reloader = Reloader(options(dirs, endpoint.url, listen_address="127.0.0.1:0"), {})
    async with running(reloader), aiohttp.ClientSession() as http:
        await eventually(reloader.ready, "readiness")
        async with http.get(f"http://127.0.0.1:{reloader.bound_port}/metrics") as r:
            text = await r.text()
        async with http.get(f"http://127.0.0.1:{reloader.bound_port}/readyz") as r:
            assert r.status == 200
    names = {
        line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")
    }
    for name in (
        "reloader_reloads_total",
        "reloader_reloads_failed_total",
        "reloader_config_apply_operations_total",
        "reloader_config_apply_operations_failed_total",
        "reloader_watch_events_total",
        "reloader_watch_errors_total",
        "reloader_last_reload_successful",
        "reloader_last_reload_success_timestamp_seconds",
        "reloader_config_environment_variable_expansion_errors",
        "reloader_watches",
        "reloader_info",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
    ):
        assert name in names, name
    assert 'reloader_info{method="http"} 1.0' in text
    # POD_NAME is unset in this reloader's environment: one reference left literally.
    assert "reloader_config_environment_variable_expansion_errors 1.0" in text
    assert "reloader_watches 1.0" in text


def test_without_an_output_file_the_input_is_only_hashed(dirs: Path) -> None:
    opts = options(dirs, "http://unused", output_file=None)
    first = apply_config(opts, ENV)
    assert not first.output_changed
    assert list((dirs / "out").iterdir()) == []
    (dirs / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\nmore: 1\n")
    assert apply_config(opts, ENV).sha256 != first.sha256


async def test_watched_dirs_alone_reload_on_a_new_rule_file(dirs: Path, aiohttp_server: Any) -> None:
    # No --config-file: the Thanos Ruler shape, where only rule files change.
    rules = dirs / "rules"
    rules.mkdir()
    (rules / "a.yaml").write_text("groups: []\n")
    endpoint = await start_endpoint(
        aiohttp_server, Endpoint(dirs / "unused", extra=lambda: sorted(p.name for p in rules.iterdir()))
    )
    opts = options(dirs, endpoint.url, config_file=None, output_file=None, watched_dirs=(rules,))
    reloader = Reloader(opts, ENV)
    async with running(reloader):
        await eventually(reloader.ready, "readiness")
        await eventually(reloader.healthy, "the watcher")
        (rules / "b.yaml").write_text("groups: []\n")
        await eventually(lambda: len(endpoint.observed) == 2, "the reload for b.yaml")
    assert endpoint.observed == [["a.yaml"], ["a.yaml", "b.yaml"]]
    assert sample(reloader, "reloader_watches") == 1


class HangingBackend:
    """A watcher whose real thread blocks after its first beat: no events, no exception, no beat."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(
        self,
        stop: threading.Event,
        emit: Callable[[int], None],
        ready: Callable[[], None],
        beat: Callable[[], None],
    ) -> None:
        del stop, emit
        beat()
        ready()
        self.release.wait()


async def test_a_hung_watcher_fails_healthz_and_is_replaced_by_a_working_one(
    dirs: Path, aiohttp_server: Any
) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(dirs / "out" / "prometheus.env.yaml"))
    opts = options(
        dirs, endpoint.url, listen_address="127.0.0.1:0", retry_interval_s=0.2, watch_heartbeat_s=0.2
    )
    hanging = HangingBackend()
    backends: list[Backend | None] = [hanging, None]  # then the real one (inotify here)
    roots = watch_roots(opts.config_file, opts.watched_dirs)
    keep = event_filter(opts.config_file, opts.watched_dirs, opts.output_file, ".config-reloader-")

    async def watcher(r: Reloader) -> None:
        await watch_changes(
            roots,
            r.notify,
            keep=keep,
            on_ready=r.watching,
            beat=r.beat,
            heartbeat_s=opts.watch_heartbeat_s,
            backend=backends.pop(0) if backends else None,
        )

    reloader = Reloader(opts, ENV, watcher=watcher)
    try:
        async with running(reloader), aiohttp.ClientSession() as http:
            await eventually(lambda: reloader.bound_port, "the server")
            healthz = f"http://127.0.0.1:{reloader.bound_port}/healthz"

            async def status() -> int:
                async with http.get(healthz) as r:
                    return r.status

            statuses: list[int] = []

            async def seen(code: int) -> bool:
                statuses.append(await status())
                return statuses[-1] == code

            # Hung after three missed beats (0.6 s): /healthz fails and the hang is counted ...
            deadline = asyncio.get_running_loop().time() + 30
            while not await seen(503):
                assert asyncio.get_running_loop().time() < deadline, f"healthz never failed: {statuses}"
                await asyncio.sleep(0.02)
            await eventually(lambda: sample(reloader, "reloader_watch_errors_total") >= 1, "the hang counted")
            # ... and a new watcher takes over: healthy again, and it sees changes.
            while not await seen(200):
                assert asyncio.get_running_loop().time() < deadline, f"healthz never recovered: {statuses}"
                await asyncio.sleep(0.02)
            (dirs / "in" / "prometheus.yaml").write_text("after: $(POD_NAME)\n")
            await eventually(lambda: "after: prom-7\n" in endpoint.seen, "the new watcher's reload")
            assert not backends, "the hung watcher was replaced"
    finally:
        hanging.release.set()
