"""The small HTTP server both programs share: /metrics, /healthz and /readyz.

``--web-config-file`` takes Prometheus' web config (exporter-toolkit's format, see ``webconfig``):
TLS with certificates re-read on rotation, client certificates, response headers, and bcrypt basic
auth.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from reloader.webconfig import WebConfig, WebConfigError, load_web_config, rotating_context

__all__ = ["WebConfig", "WebConfigError", "build_app", "load_web_config", "parse_listen_address", "serving"]

log = logging.getLogger(__name__)

AUTH_CACHE_ENTRIES: Final = 64
"""bcrypt costs tens of milliseconds of CPU per check, a scrape's worth of a 10m CPU limit: a password
that matched once is remembered (as a hash of user, password and bcrypt hash) for later requests."""


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:8080`` -> (None, 8080), all interfaces; ``127.0.0.1:0`` -> ("127.0.0.1", 0)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} is not host:port")
    host = host.strip("[]")
    return (host or None), int(port)


def _credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _authorized(request: web.Request, users: Mapping[str, bytes], cache: dict[bytes, None]) -> bool:
    given = _credentials(request)
    if given is None:
        return False
    user, password = given
    hashed = users.get(user)
    if hashed is None:
        return False
    key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed))).digest()
    if key in cache:
        return True
    import bcrypt  # only needed when basic auth is configured

    try:
        ok = bool(bcrypt.checkpw(password.encode(), hashed))
    except ValueError:
        return False
    if ok:
        if len(cache) >= AUTH_CACHE_ENTRIES:
            cache.pop(next(iter(cache)))
        cache[key] = None
    return ok


def build_app(
    registry: CollectorRegistry,
    healthy: Callable[[], bool],
    ready: Callable[[], bool],
    web_config: WebConfig | None = None,
) -> web.Application:
    """The aiohttp application; ``healthy`` and ``ready`` are asked on every probe."""
    users = web_config.basic_auth_users if web_config else {}
    headers = web_config.headers if web_config else {}
    verified: dict[bytes, None] = {}

    @web.middleware
    async def basic_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse
        if users and not _authorized(request, users, verified):
            response = web.Response(status=401, text="Unauthorized\n", headers={"WWW-Authenticate": "Basic"})
        else:
            response = await handler(request)
        response.headers.update(headers)
        return response

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(text="ok\n") if healthy() else web.Response(status=503, text="unhealthy\n")

    async def readyz(_: web.Request) -> web.Response:
        return web.Response(text="ready\n") if ready() else web.Response(status=503, text="not ready\n")

    app = web.Application(middlewares=[basic_auth])
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


@contextlib.asynccontextmanager
async def serving(
    listen_address: str,
    registry: CollectorRegistry,
    healthy: Callable[[], bool],
    ready: Callable[[], bool],
    web_config: WebConfig | None = None,
) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful with port 0)."""
    host, port = parse_listen_address(listen_address)
    runner = web.AppRunner(build_app(registry, healthy, ready, web_config), access_log=None)
    await runner.setup()
    try:
        tls = web_config.tls if web_config else None
        ssl_context = rotating_context(tls, "web config") if tls is not None else None
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        # runner.addresses holds the real port when port 0 was asked for.
        bound = runner.addresses[0][1] if runner.addresses else port
        log.info("listening", extra={"address": listen_address, "port": bound})
        yield int(bound)
    finally:
        await runner.cleanup()
