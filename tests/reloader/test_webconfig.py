"""webconfig + serve: exporter-toolkit's web config, by table; then the real server with TLS, client
certificates, basic auth and headers, and a certificate rotated on disk."""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from reloader.serve import serving
from reloader.webconfig import TLSServerSettings, WebConfig, WebConfigError, load_web_config, parse_web_config
from tests.support.certs import CA, Pair, bcrypt_hash, served_serial

BASE = Path("/etc/web")
HASH = "$2b$04$0123456789012345678901uJ7W1O0Yf5Sm7b9e6m3cQxV7ZT5Yy4e"


def parse(doc: object) -> WebConfig:
    return parse_web_config(doc, "web config w.yml", BASE)


def test_valid_web_configs() -> None:
    assert parse(None) == WebConfig()
    assert parse({"tls_server_config": {}}) == WebConfig()  # no cert and no key: plain HTTP, as Go
    full = parse(
        {
            "tls_server_config": {
                "cert_file": "tls.crt",
                "key_file": "/abs/tls.key",
                "client_auth_type": "RequireAndVerifyClientCert",
                "client_ca_file": "ca.crt",
                "min_version": "TLS13",
                "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
                "curve_preferences": ["CurveP256", "X25519"],
                "prefer_server_cipher_suites": True,
            },
            "http_server_config": {"http2": False, "headers": {"x-frame-options": "deny"}},
            "basic_auth_users": {"admin": HASH},
        }
    )
    assert full.tls == TLSServerSettings(
        cert_file=BASE / "tls.crt",
        key_file=Path("/abs/tls.key"),
        client_auth_type="RequireAndVerifyClientCert",
        client_ca_file=BASE / "ca.crt",
        min_version="TLS13",
        max_version="TLS13",
        ciphers=("ECDHE-RSA-AES128-GCM-SHA256",),
        curves=("prime256v1", "X25519"),
    )
    assert full.headers == {"X-Frame-Options": "deny"} and full.http2 is False
    assert full.basic_auth_users == {"admin": HASH.encode()}
    assert HASH not in repr(full)


INVALID = [
    ({"tls_server_config": {"cert_file": "c"}}, "tls_server_config: missing key_file"),
    ({"tls_server_config": {"key_file": "k"}}, "tls_server_config: missing cert_file"),
    ({"tls_server_config": {"cert_file": "c", "key_file": "k", "cert": "inline"}}, "unknown key 'cert'"),
    (
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_auth_type": "Maybe"}},
        "'Maybe' is not one of",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "c",
                "key_file": "k",
                "client_auth_type": "RequireAnyClientCert",
            }
        },
        "RequireAnyClientCert is not supported",
    ),
    (
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "client_ca_file": "ca"}},
        "client_ca_file is set but client_auth_type is NoClientCert",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "c",
                "key_file": "k",
                "client_auth_type": "RequireAndVerifyClientCert",
            }
        },
        "needs client_ca_file",
    ),
    (
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "min_version": "SSL3"}},
        "'SSL3' is not one of",
    ),
    (
        {
            "tls_server_config": {
                "cert_file": "c",
                "key_file": "k",
                "min_version": "TLS13",
                "max_version": "TLS12",
            }
        },
        "min_version is above max_version",
    ),
    (
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "cipher_suites": ["TLS_NULL"]}},
        "unknown name 'TLS_NULL'",
    ),
    (
        {"tls_server_config": {"cert_file": "c", "key_file": "k", "curve_preferences": ["P-999"]}},
        "unknown name 'P-999'",
    ),
    ({"tls_server_config": {"client_ca_file": "ca"}}, "client certificates need cert_file and key_file"),
    ({"http_server_config": {"headers": {"Server": "x"}}}, "'Server' is not one of"),
    ({"http_server_config": {"http2": "yes"}}, "http2: not true or false"),
    ({"http_server_config": {"http3": True}}, "unknown key 'http3'"),
    ({"basic_auth_users": {"admin": "plaintext-password"}}, "the entry of 'admin' is not a bcrypt hash"),
    ({"basic_auth_users": ["admin"]}, "basic_auth_users: not a mapping"),
    ({"tls_config": {}}, "unknown key 'tls_config'"),
    ("just text", "web config w.yml: not a mapping"),
]


@pytest.mark.parametrize(("doc", "needle"), INVALID)
def test_invalid_web_configs_are_one_line(doc: object, needle: str) -> None:
    with pytest.raises(WebConfigError) as err:
        parse(doc)
    assert needle in str(err.value) and "\n" not in str(err.value), str(err.value)
    assert "plaintext-password" not in str(err.value)


def test_a_certificate_that_does_not_load_is_an_error_at_load(tmp_path: Path) -> None:
    ca = CA(tmp_path)
    pair = ca.issue("server")
    other = ca.issue("other")
    path = tmp_path / "web.yml"
    path.write_text(f"tls_server_config:\n  cert_file: {pair.cert.name}\n  key_file: {other.key.name}\n")
    with pytest.raises(WebConfigError, match=r"^web config .*web.yml: tls_server_config: "):
        load_web_config(path)
    path.write_text(f"tls_server_config:\n  cert_file: {pair.cert.name}\n  key_file: {pair.key.name}\n")
    assert load_web_config(path).tls is not None


def _get(url: str, ctx: ssl.SSLContext, auth: tuple[str, str] | None = None) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
            return int(response.status), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers)


@pytest.fixture
async def tls_server(tmp_path: Path) -> AsyncIterator[tuple[int, CA, Pair, Path]]:
    """Our server behind TLS, verified client certificates, basic auth and a header."""
    ca = CA(tmp_path / "pki")
    server = ca.issue("server")
    path = tmp_path / "pki" / "web.yml"
    path.write_text(
        "tls_server_config:\n"
        "  cert_file: server.crt\n  key_file: server.key\n"
        f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {ca.cert_path.name}\n"
        "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        f"basic_auth_users:\n  scraper: {bcrypt_hash('right-password')}\n"
    )
    config = load_web_config(path)
    async with serving("127.0.0.1:0", CollectorRegistry(), lambda: True, lambda: True, config) as port:
        yield port, ca, server, tmp_path / "pki"


async def test_tls_client_certificates_and_basic_auth(tls_server: tuple[int, CA, Pair, Path]) -> None:
    port, ca, _server, pki = tls_server
    client = ca.issue("client", server=False)
    url = f"https://127.0.0.1:{port}/metrics"
    with_cert = ssl.create_default_context(cafile=str(ca.cert_path))
    with_cert.load_cert_chain(client.cert, client.key)
    status, headers = await asyncio.to_thread(_get, url, with_cert, ("scraper", "right-password"))
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    status, headers = await asyncio.to_thread(_get, url, with_cert, ("scraper", "wrong"))
    assert status == 401 and headers["WWW-Authenticate"] == "Basic"
    assert (await asyncio.to_thread(_get, url, with_cert))[0] == 401

    no_cert = ssl.create_default_context(cafile=str(ca.cert_path))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        await asyncio.to_thread(_get, url, no_cert, ("scraper", "right-password"))

    # A client certificate from another CA is refused too.
    stranger = CA(pki / "stranger", name="stranger-ca").issue("client", server=False)
    foreign = ssl.create_default_context(cafile=str(ca.cert_path))
    foreign.load_cert_chain(stranger.cert, stranger.key)
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        await asyncio.to_thread(_get, url, foreign, ("scraper", "right-password"))


async def test_a_certificate_rotated_on_disk_is_served_to_the_next_connection(
    tls_server: tuple[int, CA, Pair, Path],
) -> None:
    port, ca, server, pki = tls_server
    client = ca.issue("client", server=False)
    assert await asyncio.to_thread(served_serial, "127.0.0.1", port, ca.cert_path, client) == server.serial

    # cert-manager writes new files; the kubelet swaps them in with a rename.
    fresh = ca.issue("server-next")
    for src, dst in ((fresh.key, server.key), (fresh.cert, server.cert)):
        os.replace(src, dst)
    assert await asyncio.to_thread(served_serial, "127.0.0.1", port, ca.cert_path, client) == fresh.serial

    # A half-done rotation (a key that does not match) keeps serving the last good pair.
    stray = ca.issue("stray")
    os.replace(stray.key, server.key)
    assert await asyncio.to_thread(served_serial, "127.0.0.1", port, ca.cert_path, client) == fresh.serial
    assert pki.is_dir()
