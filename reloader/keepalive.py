"""The reload client of the sidecar's loop for a plain ``http://`` URL without credentials: one
connection kept open between reloads, on asyncio, the answers read by ``reloader.quickpost``.

About 0.3 ms of CPU per reload, where aiohttp's client takes about 0.85 ms (its request path is some
hundreds of Python calls, run with cold caches after a quiet pause): under prometheus-operator's 10m
CPU limit that is 55 ms less latency per change.
"""

from __future__ import annotations

import asyncio

from reloader.quickpost import (
    Answer,
    BadAnswer,
    PostError,
    _one_line,
    outcome,
    parse_answer,
    request,
    split_plain,
)


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
        parts = split_plain(url)
        if parts is None:
            raise ValueError(f"not a plain http URL: {url}")
        self.url = url
        self._host = parts.host
        self._port = parts.port
        self._request = request(parts, keep_alive=keep_alive)
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
        outcome(self.url, answer)

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
