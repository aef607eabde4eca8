"""quickpost and keepalive: the answer parser, the kept-alive client and the blocking first POST against real servers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reloader.app import Reloader
from reloader.keepalive import Client, post
from reloader.quickpost import BadAnswer, PostError, Redirected, parse_answer, post_blocking
from tests.reloader.conftest import running, sample
from tests.reloader.test_app import ENV, options
from tests.support.polling import eventually

# --- the parser -------------------------------------------------------------------------------------


def test_a_whole_answer_with_content_length() -> None:
    answer = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", eof=False)
    assert answer is not None
    assert (answer.status, answer.body, answer.keep_alive) == (200, b"ok", True)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HT",
        b"HTTP/1.1 200 OK\r\nContent-Le",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
        b"HTTP/1.1 500 Boom\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nno framing: the body runs to the close",
    ],
)
def test_an_incomplete_answer_waits_for_more(data: bytes) -> None:
    assert parse_answer(data, eof=False) is None


def test_a_chunked_body_is_decoded_and_its_trailers_consumed() -> None:
    data = b"HTTP/1.1 500 Boom\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nboom\r\n3;x=y\r\n!!!\r\n0\r\nT: 1\r\n\r\n"
    answer = parse_answer(data, eof=False)
    assert answer is not None
    assert (answer.status, answer.body, answer.keep_alive) == (500, b"boom!!!", True)


def test_an_interim_answer_is_skipped() -> None:
    answer = parse_answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", eof=False)
    assert answer is not None and (answer.status, answer.keep_alive) == (204, True)


@pytest.mark.parametrize(
    "data",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",  # bytes nobody asked for
    ],
)
def test_the_connection_is_not_reused_when_the_answer_says_so(data: bytes) -> None:
    answer = parse_answer(data, eof=False)
    assert answer is not None and answer.status == 200 and not answer.keep_alive


def test_a_body_without_framing_ends_with_the_connection() -> None:
    answer = parse_answer(b"HTTP/1.1 500 Boom\r\n\r\nthe reason", eof=True)
    assert answer is not None
    assert (answer.status, answer.body, answer.keep_alive) == (500, b"the reason", False)


def test_a_long_error_body_gives_its_start_and_ends_the_connection() -> None:
    data = b"HTTP/1.1 500 Boom\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 70000
    answer = parse_answer(data, eof=False)
    assert answer is not None
    assert (answer.status, len(answer.body), answer.keep_alive) == (500, 4000, False)


@pytest.mark.parametrize(
    ("data", "eof", "message"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", False, "not an HTTP answer: SSH-2.0-OpenSSH_9.6"),
        (b"HTTP/2 200\r\n\r\n", False, "not an HTTP answer: HTTP/2 200"),
        (b"HTTP/1.1 abc\r\n\r\n", False, "not an HTTP answer"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2", True, "closed in the middle of the answer's header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", False, "bad Content-Length"),
        (b"HTTP/1.1 500 B\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", False, "bad chunk size"),
    ],
)
def test_bytes_that_are_no_answer_are_an_error(data: bytes, eof: bool, message: str) -> None:
    with pytest.raises(BadAnswer, match=message):
        parse_answer(data, eof=eof)


# --- the client against a raw server ------------------------------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
"""(reader, writer, connection number from 1) -> serve that connection."""


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        self.requests.append(head)
        return head

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def raw_server(make: Callable[[RawServer], Handler]) -> AsyncIterator[RawServer]:
    srv = RawServer(lambda _r, _w, _n: asyncio.sleep(0))
    srv.handler = make(srv)
    server = await asyncio.start_server(srv.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    srv.url = f"http://127.0.0.1:{port}/-/reload"
    try:
        yield srv
    finally:
        server.close()
        await server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def answering(answers: Callable[[int, int], bytes | None]) -> Callable[[RawServer], Handler]:
    """A server that answers the n-th request of connection c with answers(c, n); None: close instead."""

    def make(srv: RawServer) -> Handler:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: int) -> None:
            n = 0
            while True:
                await srv.read_request(reader)
                n += 1
                data = answers(conn, n)
                if data is None:
                    return
                writer.write(data)
                await writer.drain()

        return handler

    return make


async def test_reloads_share_one_kept_alive_connection() -> None:
    async with raw_server(answering(lambda _c, _n: OK)) as srv:
        client = Client(srv.url)
        try:
            for _ in range(3):
                await client.post(timeout_s=5)
        finally:
            client.close()
    assert srv.connections == 1
    assert len(srv.requests) == 3
    assert srv.requests[0].startswith(b"POST /-/reload HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 0\r\n" in srv.requests[0]


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    # Every connection carries one answer, then the server closes it (as an idle timeout would).
    async with raw_server(answering(lambda _c, n: OK if n == 1 else None)) as srv:

        async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _conn: int) -> None:
            await srv.read_request(reader)
            writer.write(OK)
            await writer.drain()
            await asyncio.sleep(0.05)

        srv.handler = closing
        client = Client(srv.url)
        try:
            await client.post(timeout_s=5)
            await asyncio.sleep(0.3)  # the close has reached the client
            await client.post(timeout_s=5)
        finally:
            client.close()
    assert (srv.connections, len(srv.requests)) == (2, 2)


async def test_a_kept_connection_closed_without_an_answer_is_retried_once_on_a_new_one() -> None:
    # The first connection answers once, then drops the second request unanswered (a close racing it).
    async with raw_server(answering(lambda c, n: OK if c > 1 or n == 1 else None)) as srv:
        client = Client(srv.url)
        try:
            await client.post(timeout_s=5)
            await client.post(timeout_s=5)
        finally:
            client.close()
    assert srv.connections == 2
    assert len(srv.requests) == 3


async def test_a_new_connection_closed_without_an_answer_is_one_error_line() -> None:
    async with raw_server(answering(lambda _c, _n: None)) as srv:
        with pytest.raises(PostError) as err:
            await post(srv.url, timeout_s=5)
    assert str(err.value) == f"reload {srv.url}: the server closed the connection without answering"
    assert srv.connections == 1


async def test_an_error_answer_gives_status_and_start_of_body_on_one_line() -> None:
    reason = b"failed to reload config: couldn't load configuration\n  line 3: mapping values\n" + b"x" * 5000
    answer = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (len(reason), reason)
    async with raw_server(answering(lambda _c, _n: answer)) as srv:
        client = Client(srv.url)
        try:
            with pytest.raises(PostError) as err:
                await client.post(timeout_s=5)
            message = str(err.value)
            assert message.startswith(
                f"reload {srv.url}: HTTP 500: failed to reload config: couldn't load configuration line 3:"
            )
            assert "\n" not in message and len(message) < 1200
            with pytest.raises(PostError, match="HTTP 500"):
                await client.post(timeout_s=5)  # the connection is still in step
        finally:
            client.close()
    assert srv.connections == 1


async def test_no_answer_within_the_timeout_then_a_new_connection() -> None:
    async with raw_server(answering(lambda c, _n: OK if c > 1 else b"")) as srv:
        client = Client(srv.url)
        try:
            with pytest.raises(PostError, match=r"^reload .*: no answer within 0\.2s$"):
                await client.post(timeout_s=0.2)
            await client.post(timeout_s=5)  # a late answer on the first connection cannot get mixed in
        finally:
            client.close()
    assert srv.connections == 2


async def test_a_refused_connection_is_one_line_naming_the_url(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/-/reload"
    with pytest.raises(PostError) as err:
        await Client(url).post(timeout_s=5)
    assert str(err.value).startswith(f"reload {url}: ConnectionRefusedError: ")
    assert "\n" not in str(err.value)


async def test_a_redirect_is_reported_as_such() -> None:
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(answering(lambda _c, _n: moved)) as srv:
        with pytest.raises(Redirected, match="HTTP 307"):
            await post(srv.url, timeout_s=5)


# --- the Reloader's reloads through it ------------------------------------------------------------------


async def test_the_reloader_follows_a_redirect_through_aiohttp(tmp_path: Path, aiohttp_server: Any) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\n")
    seen: list[str] = []

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/-/reload-here")

    async def here(_: web.Request) -> web.Response:
        seen.append((tmp_path / "out" / "prometheus.env.yaml").read_text())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/-/reload", moved)
    app.router.add_post("/-/reload-here", here)
    server = await aiohttp_server(app)
    reloader = Reloader(options(tmp_path, str(server.make_url("/-/reload"))), ENV)
    async with running(reloader):
        # The first reload goes out before aiohttp is imported: it fails on the redirect, and its
        # retry goes through aiohttp, which follows it.
        await eventually(reloader.ready, "readiness")
        (tmp_path / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\nchanged: yes\n")
        await eventually(lambda: len(seen) == 2, "the change's reload")
    assert seen == ["replica: prom-7\n", "replica: prom-7\nchanged: yes\n"]
    assert sample(reloader, "reloader_reloads_total") == 3
    assert sample(reloader, "reloader_reloads_failed_total") == 1


async def test_every_change_is_one_reload_over_one_connection(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    config = tmp_path / "in" / "prometheus.yaml"
    config.write_text("n: 0\n")
    async with raw_server(answering(lambda _c, _n: OK)) as srv:
        reloader = Reloader(options(tmp_path, srv.url), ENV)
        async with running(reloader):
            await eventually(reloader.ready, "readiness")
            for n in range(1, 6):
                config.write_text(f"n: {n}\n")
                await eventually(lambda n=n: len(srv.requests) == n + 1, f"the reload of change {n}")
            await asyncio.sleep(0.3)  # a second reload of the last change would have come by now
    assert len(srv.requests) == 6
    # The first reload has a connection of its own (sent before the steady-state client exists).
    assert srv.connections == 2
    assert sample(reloader, "reloader_reloads_total") == 6


# --- the blocking first POST (before the event loop exists) -------------------------------------------


async def test_the_blocking_post_reads_a_success() -> None:
    async with raw_server(answering(lambda _c, _n: OK)) as srv:
        await asyncio.to_thread(post_blocking, srv.url, timeout_s=5)
    assert srv.requests[0].startswith(b"POST /-/reload HTTP/1.1\r\n")
    assert b"Connection: close\r\n" in srv.requests[0]


async def test_the_blocking_post_gives_status_and_start_of_body_on_one_line() -> None:
    reason = b"failed to reload config: couldn't load configuration\n  line 3: mapping values\n" + b"x" * 5000
    answer = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (len(reason), reason)
    async with raw_server(answering(lambda _c, _n: answer)) as srv:
        with pytest.raises(PostError) as err:
            await asyncio.to_thread(post_blocking, srv.url, timeout_s=5)
    message = str(err.value)
    assert message.startswith(
        f"reload {srv.url}: HTTP 500: failed to reload config: couldn't load configuration line 3:"
    )
    assert "\n" not in message and len(message) < 1200


async def test_the_blocking_post_reports_a_redirect_and_a_silent_server() -> None:
    moved = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n"
    async with raw_server(answering(lambda _c, _n: moved)) as srv:
        with pytest.raises(Redirected):
            await asyncio.to_thread(post_blocking, srv.url, timeout_s=5)
    async with raw_server(answering(lambda _c, _n: b"")) as srv:
        with pytest.raises(PostError, match=r"^reload .*: no answer within 0\.2s$"):
            await asyncio.to_thread(post_blocking, srv.url, timeout_s=0.2)


def test_the_blocking_post_to_a_closed_port_is_one_line(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/-/reload"
    with pytest.raises(PostError) as err:
        post_blocking(url, timeout_s=5)
    assert str(err.value).startswith(f"reload {url}: ConnectionRefusedError: ")
    assert "\n" not in str(err.value)
