"""reload: the http method against real aiohttp endpoints, the signal method against a real process."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reloader.reload import ReloadError, find_processes, parse_rfc3339, redact, reload_http, reload_signal
from tests.support.procs import wait_for

Server = Callable[..., Any]


async def serve(aiohttp_server: Server, routes: list[web.RouteDef]) -> str:
    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    return str(server.make_url(""))


@pytest.mark.parametrize("status", [200, 204])
async def test_any_2xx_is_success(aiohttp_server: Server, status: int) -> None:
    calls: list[str] = []

    async def reload(request: web.Request) -> web.Response:
        calls.append(request.method)
        return web.Response(status=status)

    base = await serve(aiohttp_server, [web.post("/-/reload", reload)])
    async with aiohttp.ClientSession() as session:
        await reload_http(session, base + "/-/reload", timeout_s=10)
    assert calls == ["POST"]


async def test_500_gives_status_and_start_of_body(aiohttp_server: Server) -> None:
    reason = (
        "failed to reload config: couldn't load configuration: yaml: line 3: mapping values\n" + "x" * 5000
    )

    async def reload(_: web.Request) -> web.Response:
        return web.Response(status=500, text=reason)

    base = await serve(aiohttp_server, [web.post("/-/reload", reload)])
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError) as err:
            await reload_http(session, base + "/-/reload", timeout_s=10)
    message = str(err.value)
    assert message.startswith(f"reload {base}/-/reload: HTTP 500: failed to reload config: couldn't load")
    assert "\n" not in message and len(message) < 1200


async def test_a_hanging_endpoint_is_bounded_by_the_timeout(aiohttp_server: Server) -> None:
    release = asyncio.Event()

    async def reload(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    base = await serve(aiohttp_server, [web.post("/-/reload", reload)])
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(ReloadError, match=r"no answer within 0\.3s"):
                await reload_http(session, base + "/-/reload", timeout_s=0.3)
    finally:
        release.set()


async def test_a_refused_connection_is_an_error_naming_the_url(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/-/reload"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError, match=rf"^reload {url}: ClientConnectorError"):
            await reload_http(session, url, timeout_s=10)


@pytest.fixture
def hup_counting_process(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real process named ``fakeprom...`` that records each SIGHUP as ``<count> <unix seconds>``."""
    name = f"fakeprom{tmp_path.name[-6:]}".replace("_", "")[:15]
    exe = tmp_path / name
    shutil.copy("/bin/sh", exe)
    counter = tmp_path / "hups"
    counter.write_text(f"0 {int(time.time())}")  # as if the config had been loaded this very second
    # Like Prometheus, each reload is stamped with one-second resolution.
    # Written to a temporary name and renamed, so that runtimeinfo never reads a half-written record.
    record = f'echo "$n $(date +%s)" > {counter}.tmp && mv {counter}.tmp {counter}'
    script = f"n=0; trap 'n=$((n+1)); {record}' HUP; while :; do sleep 0.05; done"
    proc = subprocess.Popen([str(exe), "-c", script])
    try:
        wait_for(lambda: proc.pid in find_processes(name), timeout_s=30, what="the fake process in /proc")
        yield name, counter
    finally:
        proc.kill()
        proc.wait()


def runtimeinfo_routes(counter: Path, fail_after_hup: bool = False) -> list[web.RouteDef]:
    """runtimeinfo as Prometheus serves it, from the process's SIGHUP record.

    With ``fail_after_hup``, every reload after the first load fails: reloadConfigSuccess turns false
    and lastConfigTime stays where it was.
    """
    first_stamp: list[str] = []

    async def runtimeinfo(_: web.Request) -> web.Response:
        hups, _sep, epoch = (await asyncio.to_thread(counter.read_text)).strip().partition(" ")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
        first_stamp.append(stamp)
        ok = not (fail_after_hup and int(hups) > 0)
        data = {"reloadConfigSuccess": ok, "lastConfigTime": stamp if ok else first_stamp[0]}
        return web.json_response({"status": "success", "data": data})

    return [web.get("/api/v1/status/runtimeinfo", runtimeinfo)]


async def test_signal_sends_sighup_and_waits_for_runtimeinfo(
    aiohttp_server: Server, hup_counting_process: tuple[str, Path]
) -> None:
    name, counter = hup_counting_process
    url = await serve(aiohttp_server, runtimeinfo_routes(counter)) + "/api/v1/status/runtimeinfo"
    async with aiohttp.ClientSession() as session:
        # Back to back, starting in the very second of the last load: lastConfigTime has seconds only,
        # and each reload must still be confirmed (a missed confirmation raises after timeout_s).
        for expected in ("1", "2", "3"):
            await reload_signal(session, name, url, timeout_s=10, poll_interval_s=0.02)
            assert counter.read_text().split()[0] == expected


async def test_signal_fails_at_once_when_reload_config_success_turns_false(
    aiohttp_server: Server, hup_counting_process: tuple[str, Path]
) -> None:
    name, counter = hup_counting_process
    url = (
        await serve(aiohttp_server, runtimeinfo_routes(counter, fail_after_hup=True))
        + "/api/v1/status/runtimeinfo"
    )
    async with aiohttp.ClientSession() as session:
        # A timeout would give a different message: this one proves the early exit.
        with pytest.raises(ReloadError, match="reports reloadConfigSuccess=false"):
            await reload_signal(session, name, url, timeout_s=60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-01-01T00:00:05Z", 1767225605.0),
        ("2026-01-01T01:00:05.123456789+01:00", 1767225605.123456),
        ("0001-01-01T00:00:00Z", -62135596800.0),
        ("not a time", None),
    ],
)
def test_parse_rfc3339(text: str, seconds: float | None) -> None:
    assert parse_rfc3339(text) == (None if seconds is None else pytest.approx(seconds))


async def test_signal_with_no_such_process_is_a_clear_error(aiohttp_server: Server, tmp_path: Path) -> None:
    counter = tmp_path / "hups"
    counter.write_text("0 0")
    base = await serve(aiohttp_server, runtimeinfo_routes(counter))
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError, match=r"^reload by signal: no process named 'no-such-proc-x'$"):
            await reload_signal(session, "no-such-proc-x", base + "/api/v1/status/runtimeinfo", timeout_s=30)


async def test_signal_with_runtimeinfo_down_is_a_clear_error(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/api/v1/status/runtimeinfo"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError, match=rf"^runtimeinfo {url}: ClientConnectorError"):
            await reload_signal(session, "prometheus", url, timeout_s=30)


def test_find_processes_never_returns_our_own_process() -> None:
    import os

    own = Path(f"/proc/{os.getpid()}/comm").read_text().strip()
    assert os.getpid() not in find_processes(own)


async def test_a_password_in_the_reload_url_never_reaches_the_error(unused_tcp_port: int) -> None:
    url = f"http://admin:pa55-word-x@127.0.0.1:{unused_tcp_port}/-/reload"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError) as err:
            await reload_http(session, url, timeout_s=10)
    assert "pa55-word-x" not in str(err.value)
    assert f"reload http://admin:xxxxx@127.0.0.1:{unused_tcp_port}/-/reload: " in str(err.value)
    assert redact("http://127.0.0.1:9090/-/reload") == "http://127.0.0.1:9090/-/reload"


def hup_count(counter: Path) -> int:
    return int(counter.read_text().split()[0])


async def test_an_empty_runtimeinfo_url_sends_sighup_without_verification(
    hup_counting_process: tuple[str, Path],
) -> None:
    name, counter = hup_counting_process
    async with aiohttp.ClientSession() as session:
        for expected in (1, 2):
            # One at a time: two signals pending at once would be one for the shell's trap.
            await reload_signal(session, name, "", timeout_s=10)
            await asyncio.to_thread(
                wait_for, lambda n=expected: hup_count(counter) == n, 30, 0.05, f"SIGHUP number {expected}"
            )


async def test_an_empty_runtimeinfo_url_with_no_such_process_is_still_an_error() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ReloadError, match=r"^reload by signal: no process named 'no-such-proc-y'$"):
            await reload_signal(session, "no-such-proc-y", "", timeout_s=10)


def slow_runtimeinfo_routes(counter: Path, delay_s: float) -> list[web.RouteDef]:
    """runtimeinfo of a Prometheus whose reload takes ``delay_s`` to show: each request answers at once,
    but lastConfigTime moves only ``delay_s`` after the SIGHUP was recorded."""
    shown: dict[str, Any] = {"hups": 0, "stamp": None}

    async def runtimeinfo(_: web.Request) -> web.Response:
        hups, _sep, epoch = (await asyncio.to_thread(counter.read_text)).strip().partition(" ")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
        if shown["stamp"] is None:
            shown["stamp"] = stamp
        if int(hups) > shown["hups"] and time.time() >= int(epoch) + delay_s:
            shown.update(hups=int(hups), stamp=stamp)
        data = {"reloadConfigSuccess": True, "lastConfigTime": shown["stamp"]}
        return web.json_response({"status": "success", "data": data})

    return [web.get("/api/v1/status/runtimeinfo", runtimeinfo)]


async def test_the_wait_for_runtimeinfo_is_bounded_by_wait_s_not_by_the_request_timeout(
    aiohttp_server: Server, hup_counting_process: tuple[str, Path]
) -> None:
    name, counter = hup_counting_process
    url = (
        await serve(aiohttp_server, slow_runtimeinfo_routes(counter, delay_s=2.5))
        + "/api/v1/status/runtimeinfo"
    )
    async with aiohttp.ClientSession() as session:
        # Each request has 1 s, the whole wait 60 s: a reload that takes 2.5 s to show is confirmed.
        await reload_signal(session, name, url, timeout_s=1, wait_s=60, poll_interval_s=0.05)
        assert hup_count(counter) == 1
        # With a whole wait of 1 s, the same slow reload is reported as not shown within 1 s.
        with pytest.raises(ReloadError, match=r"did not show a successful reload within 1s$"):
            await reload_signal(session, name, url, timeout_s=1, wait_s=1, poll_interval_s=0.05)
