"""A minimal HTTP/1.1 POST, for the sidecar's first reload only: blocking before the event loop
exists (``post_blocking``, what ``reloader.cli`` sends), or on asyncio streams (``post``).

Importing asyncio, aiohttp and prometheus_client costs about 300 ms of CPU: 30 s of wall time under
prometheus-operator's 10m CPU limit, while Prometheus waits for its first config. So the first reload
of a plain ``http://`` URL goes out through this module, and everything heavy is imported after it.
Later reloads, https, and URLs with credentials use ``reloader.reload``.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

BODY_PREVIEW_BYTES: Final = 4000
"""Read at most this much of an error body (Prometheus puts the reason there)."""


class PostError(RuntimeError):
    """The POST failed; the message is one line naming the URL and the cause."""


class Target:
    """Where a plain ``http://host[:port]/path?query`` URL points."""

    __slots__ = ("host", "netloc", "port", "target")

    def __init__(self, host: str, port: int, netloc: str, target: str) -> None:
        self.host, self.port, self.netloc, self.target = host, port, netloc, target


def split_plain(url: str) -> Target | None:
    """The parts of a plain http URL, or None for anything else (https, credentials, IPv6 brackets,
    non-ASCII, spaces). String operations, not urllib.parse: that imports re, about 1 s at 10m CPU
    before the first reload."""
    if not url.startswith("http://") or not url.isascii() or not url.isprintable():
        return None
    if any(c in url for c in " []@\\"):
        return None
    rest = url[len("http://") :].split("#", 1)[0]
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:]
    host, colon, port = netloc.partition(":")
    if not host or (colon and port and not port.isdigit()) or ":" in port:
        return None
    path, _, query = tail.partition("?")
    return Target(host, int(port) if port else 80, netloc, (path or "/") + (f"?{query}" if query else ""))


def applies(url: str) -> bool:
    """True for a plain http URL without credentials: the only kind this client sends."""
    return split_plain(url) is not None


def _split(url: str) -> Target:
    parts = split_plain(url)
    if parts is None:
        raise PostError(f"reload {url}: not a plain http URL")
    return parts


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


def _request(parts: Target) -> bytes:
    return (
        f"POST {parts.target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: config-reloader\r\n"
        "Content-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


def _status(url: str, status_line: bytes) -> int:
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise PostError(f"reload {url}: not an HTTP answer: {_one_line(status_line.decode('latin-1'))}")
    return int(fields[1])


def _headers(lines: list[bytes]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def _refused(url: str, status: int, headers: dict[str, str], body: bytes) -> PostError:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return PostError(f"reload {url}: HTTP {status}: {_one_line(body.decode('utf-8', 'replace'))}")


def post_blocking(url: str, *, timeout_s: float) -> None:
    """``post`` without an event loop: a blocking socket, ``timeout_s`` for the whole exchange."""
    import socket

    parts = _split(url)
    deadline = time.monotonic() + timeout_s
    data = b""
    try:
        with socket.create_connection((parts.host, parts.port), timeout=timeout_s) as sock:
            sock.sendall(_request(parts))
            while b"\r\n\r\n" not in data:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(BODY_PREVIEW_BYTES)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            status_line, *header_lines = head.split(b"\r\n")
            status = _status(url, status_line)
            if 200 <= status < 300:
                return
            while len(body) < BODY_PREVIEW_BYTES:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(BODY_PREVIEW_BYTES - len(body))
                if not chunk:
                    break
                body += chunk
    except TimeoutError as exc:
        raise PostError(f"reload {url}: no answer within {timeout_s:g}s") from exc
    except OSError as exc:
        raise PostError(f"reload {url}: {exc.__class__.__name__}: {_one_line(str(exc))}") from exc
    raise _refused(url, status, _headers(header_lines), body[:BODY_PREVIEW_BYTES])


async def post(url: str, *, timeout_s: float) -> None:
    """POST an empty body to ``url``; any 2xx is success, else PostError with the status and the body's start."""
    import asyncio
    import contextlib

    parts = _split(url)
    request = _request(parts)
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(parts.host, parts.port)
            try:
                writer.write(request)
                await writer.drain()
                status_line = await reader.readline()
                lines: list[bytes] = []
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    lines.append(line)
                status = _status(url, status_line)
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
    raise _refused(url, status, _headers(lines), body)
