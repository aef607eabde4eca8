"""A minimal HTTP/1.1 client for the reload POST of a plain ``http://`` URL without credentials.

Two reasons, both about prometheus-operator's 10m CPU limit (1 ms of CPU is 100 ms of wall time):

- Start-up: importing aiohttp and prometheus_client costs about 250 ms of CPU, 25 s of wall time while
  Prometheus waits for its first config. So the first reload goes out through ``post`` (one connection,
  closed after), and everything heavy is imported after it.
- Every later change: a reload over aiohttp's client costs about 0.85 ms of CPU in the sidecar (its
  request path is some hundreds of Python calls, run with cold caches after a quiet pause), over a
  ``Client`` about 0.3 ms: one write and one read on a kept-alive connection, parsed here.

https, URLs with credentials, ``--reload-http-client-file`` and the signal method use
``reloader.reload`` (aiohttp). A redirect is reported as ``Redirected``, for the caller to hand the
reload to that client, which follows redirects.

Every failure is a ``PostError`` with one line naming the URL and the cause.
"""

from __future__ import annotations

import asyncio
from typing import Final
from urllib.parse import urlsplit

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


class _Closed(ConnectionResetError):
    """The server closed the connection before the first byte of an answer."""


class _Connection(asyncio.Protocol):
    """One connection to the endpoint: one request at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.usable = False
        """Connected, and no answer left it in an unknown state: it may carry the next request."""
        self._buffer = bytearray()
        self._answer: asyncio.Future[Answer] | None = None
        self._eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.usable = True

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None or answer.done():
            self.close()  # bytes no request asked for: the connection is out of step
            return
        self._buffer += data
        self._parse(answer)

    def eof_received(self) -> bool:
        self._eof = True
        self.usable = False
        if self._answer is not None and not self._answer.done():
            self._parse(self._answer)
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        answer = self._answer
        if answer is not None and not answer.done():
            if self._buffer:
                answer.set_exception(exc or BadAnswer("connection closed in the middle of the answer"))
            else:
                answer.set_exception(_Closed("the server closed the connection without answering"))

    def _parse(self, answer: asyncio.Future[Answer]) -> None:
        if self._eof and not self._buffer:
            answer.set_exception(_Closed("the server closed the connection without answering"))
            return
        try:
            parsed = parse_answer(self._buffer, eof=self._eof)
        except BadAnswer as exc:
            self.close()
            answer.set_exception(exc)
            return
        if parsed is None:
            return
        self._buffer.clear()
        if not parsed.keep_alive:
            self.close()
        answer.set_result(parsed)

    async def exchange(self, request: bytes) -> Answer:
        """Send ``request``, wait for its answer. Until it comes, the connection counts as unusable."""
        assert self.transport is not None
        self.usable = False
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        answer = await self._answer  # on any error the connection stays unusable
        self._answer = None
        self.usable = not self.transport.is_closing()
        return answer

    def close(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.close()


class Client:
    """POSTs an empty body to one URL, over one connection kept open between reloads.

    A connection the server closed while idle (Prometheus closes idle ones after its read timeout) is
    noticed when that happens, and the next POST opens a new one. When the server closed a kept
    connection just as the POST went out, without answering it, the POST is sent once more on a new
    connection, as Go's HTTP client does.
    """

    def __init__(self, url: str, *, keep_alive: bool = True) -> None:
        parts = urlsplit(url)
        if parts.hostname is None:
            raise ValueError(f"no host in {url}")
        self.url = url
        self._host = parts.hostname
        self._port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        close = "" if keep_alive else "Connection: close\r\n"
        self._request = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nUser-Agent: config-reloader\r\n"
            f"Content-Length: 0\r\n{close}\r\n"
        ).encode("ascii")
        self._conn: _Connection | None = None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(_Connection, self._host, self._port)
        self._conn = conn
        return conn

    async def _exchange(self) -> Answer:
        conn = self._conn
        reused = conn is not None and conn.usable
        if conn is None or not reused:
            self.close()
            conn = await self._connect()
        try:
            return await conn.exchange(self._request)
        except _Closed:
            if not reused:
                raise
        return await (await self._connect()).exchange(self._request)

    async def post(self, *, timeout_s: float) -> None:
        """Any 2xx is success; else PostError with the status and the start of the body (Redirected for 3xx)."""
        try:
            async with asyncio.timeout(timeout_s):
                answer = await self._exchange()
        except TimeoutError as exc:
            self.close()  # a late answer must not be taken for the next request's
            raise PostError(f"reload {self.url}: no answer within {timeout_s:g}s") from exc
        except (BadAnswer, _Closed) as exc:
            self.close()
            raise PostError(f"reload {self.url}: {_one_line(str(exc))}") from exc
        except OSError as exc:
            self.close()
            raise PostError(f"reload {self.url}: {exc.__class__.__name__}: {_one_line(str(exc))}") from exc
        status = answer.status
        if 200 <= status < 300:
            return
        if status in REDIRECTS:
            raise Redirected(f"reload {self.url}: HTTP {status}: a redirect")
        preview = _one_line(answer.body.decode("utf-8", "replace"))
        raise PostError(f"reload {self.url}: HTTP {status}: {preview}")

    def close(self) -> None:
        """Close the connection, if one is open; the next POST opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


async def post(url: str, *, timeout_s: float) -> None:
    """One POST of an empty body to ``url`` on a connection of its own, closed after (the first reload)."""
    client = Client(url, keep_alive=False)
    try:
        await client.post(timeout_s=timeout_s)
    finally:
        client.close()
