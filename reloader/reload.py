"""Telling the target to reload: an HTTP POST, or SIGHUP checked through runtimeinfo.

Every failure is a ``ReloadError`` with one line naming the URL or process and the cause. Both URLs
take the settings of an ``HTTPClient`` (``--reload-http-client-file``): TLS, basic auth, tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import aiohttp

from reloader.httpclient import ClientConfigError, HTTPClient, RequestSettings, redact

BODY_PREVIEW_CHARS: Final = 1000
"""How much of an error body to report: Prometheus puts the reason for a failed reload there."""


class ReloadError(RuntimeError):
    """The reload failed; the message is one line."""


def _one_line(text: str, limit: int = BODY_PREVIEW_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _settings(client: HTTPClient | None, what: str, url: str) -> RequestSettings:
    try:
        return (client or HTTPClient()).settings()
    except ClientConfigError as exc:
        raise ReloadError(f"{what} {redact(url)}: {exc}") from exc


async def reload_http(
    session: aiohttp.ClientSession, url: str, *, timeout_s: float, client: HTTPClient | None = None
) -> None:
    """POST to ``url``; any 2xx is success. Raises ReloadError with the status and the start of the body."""
    settings = _settings(client, "reload", url)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.post(
                url, ssl=settings.ssl, headers=settings.headers, server_hostname=settings.server_hostname
            ) as response:
                if 200 <= response.status < 300:
                    return
                body = await response.content.read(4 * BODY_PREVIEW_CHARS)
    except TimeoutError as exc:
        raise ReloadError(f"reload {redact(url)}: no answer within {timeout_s:g}s") from exc
    except aiohttp.ClientError as exc:
        raise ReloadError(f"reload {redact(url)}: {exc.__class__.__name__}: {_one_line(str(exc))}") from exc
    preview = _one_line(body.decode("utf-8", "replace"))
    raise ReloadError(f"reload {redact(url)}: HTTP {response.status}: {preview}")


def find_processes(executable_name: str, proc_root: Path = Path("/proc")) -> list[int]:
    """PIDs of the processes whose executable is named ``executable_name`` (not our own process).

    A process matches when the base name of /proc/PID/exe, or its comm, equals the name (comm is cut to
    15 characters by the kernel, so only a name that short is compared with it).
    """
    own = os.getpid()
    found: list[int] = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        names: set[str] = set()
        with contextlib.suppress(OSError):
            names.add(os.path.basename(os.readlink(entry / "exe")).removesuffix(" (deleted)"))
        with contextlib.suppress(OSError):
            comm = (entry / "comm").read_text().strip()
            if len(executable_name) <= 15:
                names.add(comm)
        if executable_name in names:
            found.append(int(entry.name))
    return sorted(found)


async def _runtimeinfo(
    session: aiohttp.ClientSession, url: str, client: HTTPClient | None, timeout_s: float
) -> tuple[bool, str]:
    """(reloadConfigSuccess, lastConfigTime) from Prometheus's /api/v1/status/runtimeinfo."""
    settings = _settings(client, "runtimeinfo", url)
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(
                url, ssl=settings.ssl, headers=settings.headers, server_hostname=settings.server_hostname
            ) as response:
                if response.status != 200:
                    raise ReloadError(f"runtimeinfo {redact(url)}: HTTP {response.status}")
                doc: Any = await response.json(content_type=None)
    except TimeoutError as exc:
        raise ReloadError(f"runtimeinfo {redact(url)}: no answer within {timeout_s:g}s") from exc
    except aiohttp.ClientError as exc:
        raise ReloadError(
            f"runtimeinfo {redact(url)}: {exc.__class__.__name__}: {_one_line(str(exc))}"
        ) from exc
    except ValueError as exc:
        raise ReloadError(f"runtimeinfo {redact(url)}: answer is not JSON") from exc
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict) or "reloadConfigSuccess" not in data:
        raise ReloadError(f"runtimeinfo {redact(url)}: answer has no data.reloadConfigSuccess")
    return bool(data["reloadConfigSuccess"]), str(data.get("lastConfigTime", ""))


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_rfc3339(text: str) -> float | None:
    """``2026-01-01T00:00:05Z`` (Go's time format, nanoseconds allowed) -> Unix seconds; None if unreadable."""
    try:
        return datetime.fromisoformat(_FRACTION.sub(r"\1", text, count=1)).timestamp()
    except ValueError:
        return None


def _sighup(executable_name: str, find: Callable[[str], list[int]]) -> None:
    pids = find(executable_name)
    if not pids:
        raise ReloadError(f"reload by signal: no process named {executable_name!r}")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            continue
        except PermissionError as exc:
            raise ReloadError(
                f"reload by signal: cannot signal {executable_name} (pid {pid}): {exc}"
            ) from exc


async def reload_signal(
    session: aiohttp.ClientSession,
    executable_name: str,
    runtimeinfo_url: str,
    *,
    timeout_s: float,
    wait_s: float | None = None,
    client: HTTPClient | None = None,
    poll_interval_s: float = 0.1,
    find: Callable[[str], list[int]] = find_processes,
    clock: Callable[[], float] = time.time,
) -> None:
    """SIGHUP every process named ``executable_name``, then wait until runtimeinfo shows the reload.

    Success is ``reloadConfigSuccess`` true with a ``lastConfigTime`` that moved. When it was true before
    and turns false, the reload failed and we stop at once. When it was already false (an earlier failed
    reload), false proves nothing, so we wait for success.

    ``timeout_s`` bounds each runtimeinfo request; ``wait_s`` (default ``timeout_s``) bounds the whole
    wait for the reload to show, as the Go reloader bounds it by --watch-interval: a large config can
    take Prometheus longer than one request's timeout to load. An empty ``runtimeinfo_url`` sends the
    signal with no verification, for targets that have no runtimeinfo (Alertmanager, any daemon).
    """
    if not runtimeinfo_url:
        _sighup(executable_name, find)
        return
    ok_before, time_before = await _runtimeinfo(session, runtimeinfo_url, client, timeout_s)
    wait = timeout_s if wait_s is None else wait_s
    try:
        async with asyncio.timeout(wait):
            # lastConfigTime has one-second resolution: a reload in the same second as the previous one
            # would not move it. Signal in a later second, so that this reload always shows.
            previous = parse_rfc3339(time_before)
            if previous is not None:
                pause_s = previous + 1.0 - clock()
                if pause_s > 0:
                    await asyncio.sleep(min(pause_s, 1.0) + 0.01)
            _sighup(executable_name, find)
            while True:
                ok, last_time = await _runtimeinfo(session, runtimeinfo_url, client, timeout_s)
                if ok and last_time != time_before:
                    return
                if ok_before and not ok:
                    raise ReloadError(
                        f"reload by signal: {executable_name} reports reloadConfigSuccess=false "
                        f"({redact(runtimeinfo_url)})"
                    )
                await asyncio.sleep(poll_interval_s)
    except TimeoutError as exc:
        raise ReloadError(
            f"reload by signal: {redact(runtimeinfo_url)} did not show a successful reload within {wait:g}s"
        ) from exc
