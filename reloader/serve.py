"""The small HTTP server both programs share: /metrics, /healthz and /readyz.

``--web-config-file`` takes Prometheus's web-config format: ``tls_server_config`` (cert_file, key_file,
client_ca_file) and ``basic_auth_users`` (user: bcrypt hash).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)


class WebConfigError(ValueError):
    """The web-config file is unreadable or malformed."""


@dataclass(frozen=True)
class WebConfig:
    """TLS and basic auth for the server, as loaded from a Prometheus web-config file."""

    ssl_context: ssl.SSLContext | None = None
    """None serves plain HTTP."""
    basic_auth_users: dict[str, bytes] = field(default_factory=dict)
    """user name -> bcrypt hash; empty disables basic auth."""


def parse_listen_address(address: str) -> tuple[str | None, int]:
    """``:8080`` -> (None, 8080), all interfaces; ``127.0.0.1:0`` -> ("127.0.0.1", 0)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {address!r} is not host:port")
    host = host.strip("[]")
    return (host or None), int(port)


def load_web_config(path: str | Path) -> WebConfig:
    """Read a web-config file; raises WebConfigError with one line naming the path and cause."""
    import yaml  # only with --web-config-file: about 1.5 MiB of resident memory otherwise spent for nothing

    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WebConfigError(
            f"web config {path}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        ) from exc
    if not isinstance(doc, dict):
        raise WebConfigError(f"web config {path}: top level is not a mapping")
    base = Path(path).parent
    ctx: ssl.SSLContext | None = None
    tls = doc.get("tls_server_config") or {}
    if tls:
        try:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(base / tls["cert_file"], base / tls["key_file"])
            if tls.get("client_ca_file"):
                ctx.load_verify_locations(base / tls["client_ca_file"])
                ctx.verify_mode = ssl.CERT_REQUIRED
        except (KeyError, OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"web config {path}: tls_server_config: {exc}") from exc
    users = {str(u): str(h).encode() for u, h in (doc.get("basic_auth_users") or {}).items()}
    return WebConfig(ssl_context=ctx, basic_auth_users=users)


def _authorized(request: web.Request, users: dict[str, bytes]) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return False
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    hashed = users.get(user)
    if hashed is None:
        return False
    import bcrypt  # only needed when basic auth is configured

    try:
        return bool(bcrypt.checkpw(password.encode(), hashed))
    except ValueError:
        return False


def build_app(
    registry: CollectorRegistry,
    healthy: Callable[[], bool],
    ready: Callable[[], bool],
    web_config: WebConfig | None = None,
) -> web.Application:
    """The aiohttp application; ``healthy`` and ``ready`` are asked on every probe."""
    users = web_config.basic_auth_users if web_config else {}

    @web.middleware
    async def basic_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if users and not _authorized(request, users):
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="config-reloader"'})
        response: web.StreamResponse = await handler(request)
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
        site = web.TCPSite(runner, host, port, ssl_context=web_config.ssl_context if web_config else None)
        await site.start()
        # runner.addresses holds the real port when port 0 was asked for.
        bound = runner.addresses[0][1] if runner.addresses else port
        log.info("listening", extra={"address": listen_address, "port": bound})
        yield int(bound)
    finally:
        await runner.cleanup()
