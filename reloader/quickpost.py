"""A minimal HTTP/1.1 POST on asyncio streams, for the sidecar's first reload only.

Importing aiohttp and prometheus_client costs about 250 ms of CPU: 25 s of wall time under
prometheus-operator's 10m CPU limit, while Prometheus waits for its first config. So the first reload
of a plain ``http://`` URL goes out through this module, and everything heavy is imported after it.
Later reloads, https, and URLs with credentials use ``reloader.reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final
from urllib.parse import urlsplit

BODY_PREVIEW_BYTES: Final = 4000
"""Read at most this much of an error body (Prometheus puts the reason there)."""


class PostError(RuntimeError):
    """The POST failed; the message is one line naming the URL and the cause."""


def applies(url: str) -> bool:
    """True for a plain http URL without credentials: the only kind this client sends."""
    parts = urlsplit(url)
    return parts.scheme == "http" and bool(parts.hostname) and "@" not in parts.netloc


def _one_line(text: str, limit: int = 1000) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _dechunk(data: bytes) -> bytes:
    """As much of a chunked body as ``data`` holds."""
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            break
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


async def post(url: str, *, timeout_s: float) -> None:
    """POST an empty body to ``url``; any 2xx is success, else PostError with the status and the body's start."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: config-reloader\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                fields = status_line.split()
                if len(fields) < 2 or not fields[1].isdigit():
                    raise PostError(
                        f"reload {url}: not an HTTP answer: {_one_line(status_line.decode('latin-1'))}"
                    )
                status = int(fields[1])
                if 200 <= status < 300:
                    return
                body = await reader.read(BODY_PREVIEW_BYTES)
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except TimeoutError as exc:
        raise PostError(f"reload {url}: no answer within {timeout_s:g}s") from exc
    except OSError as exc:
        raise PostError(f"reload {url}: {exc.__class__.__name__}: {_one_line(str(exc))}") from exc
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    raise PostError(f"reload {url}: HTTP {status}: {_one_line(body.decode('utf-8', 'replace'))}")
