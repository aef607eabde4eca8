"""A minimal HTTP/1.1 client for the reload POST of a plain ``http://`` URL without credentials: what
it sends and how it reads the answer (no I/O), and the sidecar's first reload over a blocking socket.

Two reasons, both about prometheus-operator's 10m CPU limit (1 ms of CPU is 100 ms of wall time):

- Start-up: importing asyncio, aiohttp and prometheus_client costs about 300 ms of CPU, 30 s of wall
  time while Prometheus waits for its first config. So the first reload goes out through
  ``post_blocking`` before the event loop exists, and this module imports nothing heavy (not even
  urllib.parse, which imports re).
- Every later change: a reload over aiohttp's client costs about 0.85 ms of CPU in the sidecar, over
  ``reloader.keepalive.Client`` (which parses with ``parse_answer``) about 0.3 ms.

https, URLs with credentials, ``--reload-http-client-file`` and the signal method use
``reloader.reload`` (aiohttp). A redirect is reported as ``Redirected``, for the caller to hand the
reload to that client, which follows redirects.

Every failure is a ``PostError`` with one line naming the URL and the cause.
"""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

BODY_PREVIEW_BYTES: Final = 4000
"""Keep at most this much of an error body (Prometheus puts the reason there)."""
BODY_LIMIT_BYTES: Final = 64 * 1024
"""A body longer than this is not read to its end: the preview is taken and the connection closed."""
HEAD_LIMIT_BYTES: Final = 64 * 1024
"""A status line and headers longer than this are not an answer of a reload endpoint."""
REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


class PostError(RuntimeError):
    """The POST failed; the message is one line naming the URL and the cause."""


class Redirected(PostError):
    """The endpoint answered with a redirect, which this client does not follow."""


class BadAnswer(ValueError):
    """The bytes that came back are not an HTTP/1.x answer."""


class Answer:
    """One parsed answer: its status, the start of its body, and whether the connection may be reused."""

    __slots__ = ("body", "keep_alive", "status")

    def __init__(self, status: int, body: bytes, keep_alive: bool) -> None:
        self.status = status
        self.body = body
        self.keep_alive = keep_alive


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


def request(parts: Target, *, keep_alive: bool) -> bytes:
    """The POST of an empty body to ``parts``."""
    close = "" if keep_alive else "Connection: close\r\n"
    return (
        f"POST {parts.target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: config-reloader\r\n"
        f"Content-Length: 0\r\n{close}\r\n"
    ).encode("ascii")


def outcome(url: str, answer: Answer) -> None:
    """Return for any 2xx; else PostError with the status and the start of the body (Redirected for 3xx)."""
    status = answer.status
    if 200 <= status < 300:
        return
    if status in REDIRECTS:
        raise Redirected(f"reload {url}: HTTP {status}: a redirect")
    preview = _one_line(answer.body.decode("utf-8", "replace"))
    raise PostError(f"reload {url}: HTTP {status}: {preview}")


def split(url: str) -> Target:
    """``split_plain``, or PostError for a URL this client does not send to."""
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


def _chunked_end(data: bytes | bytearray, pos: int) -> int | None:
    """Where a chunked body that starts at ``pos`` ends (after its trailers); None while incomplete."""
    while True:
        line_end = data.find(b"\r\n", pos)
        if line_end < 0:
            return None
        try:
            size = int(bytes(data[pos:line_end]).split(b";")[0], 16)
        except ValueError as exc:
            raise BadAnswer("bad chunk size in a chunked body") from exc
        pos = line_end + 2
        if size == 0:
            while True:  # trailers, up to an empty line
                line_end = data.find(b"\r\n", pos)
                if line_end < 0:
                    return None
                if line_end == pos:
                    return pos + 2
                pos = line_end + 2
        pos += size + 2
        if pos > len(data):
            return None


def _check_partial_head(head: bytes, *, eof: bool) -> None:
    """Raise BadAnswer unless ``head`` can still become the header of an answer."""
    line = head.split(b"\n", 1)[0].decode("latin-1").strip()
    if not (head.startswith(b"HTTP/") or b"HTTP/".startswith(head)):
        raise BadAnswer(f"not an HTTP answer: {_one_line(line)}")
    if len(head) > HEAD_LIMIT_BYTES:
        raise BadAnswer(f"an answer header longer than {HEAD_LIMIT_BYTES} bytes")
    if eof:
        raise BadAnswer("connection closed in the middle of the answer's header")


def parse_answer(data: bytes | bytearray, *, eof: bool) -> Answer | None:
    """The first final (not 1xx) answer in ``data``; None while more bytes are needed.

    ``eof``: the server closed its side, no more bytes come. Raises BadAnswer for bytes that are not an
    HTTP answer, and for a connection closed before the end of the header.
    """
    start = 0
    while True:
        head_end = data.find(b"\r\n\r\n", start)
        if head_end < 0:
            _check_partial_head(bytes(data[start:]), eof=eof)
            return None
        lines = bytes(data[start:head_end]).decode("latin-1").split("\r\n")
        fields = lines[0].split(None, 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].isdigit():
            raise BadAnswer(f"not an HTTP answer: {_one_line(lines[0])}")
        status = int(fields[1])
        body_start = head_end + 4
        if 100 <= status < 200:
            start = body_start  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            continue
        break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keep_alive = fields[0] == "HTTP/1.1" and "close" not in headers.get("connection", "").lower()
    end: int | None
    if status in (204, 304):
        end = body_start
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        end = _chunked_end(data, body_start)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as exc:
            raise BadAnswer(f"bad Content-Length: {_one_line(headers['content-length'])}") from exc
        end = body_start + length if len(data) >= body_start + length else None
    else:
        end = None  # the body runs until the server closes the connection
        keep_alive = False
    if end is None:
        if not eof and len(data) - body_start <= BODY_LIMIT_BYTES:
            return None
        # Cut short (closed, or longer than we read): the preview is what there is; the connection is done.
        end, keep_alive = len(data), False
    if end != len(data):
        keep_alive = False  # bytes beyond the answer: nothing was asked for them
    body = bytes(data[body_start : min(end, body_start + BODY_LIMIT_BYTES)])
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(body)
    return Answer(status, body[:BODY_PREVIEW_BYTES], keep_alive)


def post_blocking(url: str, *, timeout_s: float) -> None:
    """POST an empty body to ``url`` over a blocking socket of its own, ``timeout_s`` for the whole
    exchange: the sidecar's first reload, before the event loop exists."""
    import socket

    parts = split(url)
    deadline = time.monotonic() + timeout_s
    data = bytearray()
    try:
        with socket.create_connection((parts.host, parts.port), timeout=timeout_s) as sock:
            sock.sendall(request(parts, keep_alive=False))
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                chunk = sock.recv(BODY_LIMIT_BYTES)
                data += chunk
                answer = parse_answer(data, eof=not chunk)
                if answer is not None:
                    break
    except TimeoutError as exc:
        raise PostError(f"reload {url}: no answer within {timeout_s:g}s") from exc
    except BadAnswer as exc:
        raise PostError(f"reload {url}: {_one_line(str(exc))}") from exc
    except OSError as exc:
        raise PostError(f"reload {url}: {exc.__class__.__name__}: {_one_line(str(exc))}") from exc
    outcome(url, answer)
