"""httpclient: Prometheus' http_config for the reload URLs. Parsing by table, then real files that change,
then real TLS servers (aiohttp) that must or must not be trusted."""

from __future__ import annotations

import base64
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from reloader.httpclient import (
    ClientConfig,
    ClientConfigError,
    HTTPClient,
    TLSSettings,
    authorization_header,
    load_client_config,
    parse_client_config,
    unverified_https,
)
from reloader.reload import ReloadError, reload_http
from tests.support.certs import CA

BASE = Path("/etc/reloader")
SECRET = "pa55-w0rd-never-logged"


def parse(doc: object) -> ClientConfig:
    return parse_client_config(doc, "http client file f.yaml", BASE)


VALID = [
    (None, ClientConfig()),
    ({}, ClientConfig()),
    (
        {"basic_auth": {"username": "u", "password_file": "pw"}},
        ClientConfig(basic_auth=True, username="u", password_file=BASE / "pw"),
    ),
    (
        {"basic_auth": {"username_file": "/abs/user", "password": SECRET}},
        ClientConfig(basic_auth=True, username_file=Path("/abs/user"), password=SECRET),
    ),
    ({"authorization": {"credentials": "t"}}, ClientConfig(auth_type="Bearer", credentials="t")),
    (
        {"authorization": {"type": "Token", "credentials_file": "tok"}},
        ClientConfig(auth_type="Token", credentials_file=BASE / "tok"),
    ),
    ({"bearer_token_file": "tok"}, ClientConfig(auth_type="Bearer", credentials_file=BASE / "tok")),
    ({"bearer_token": "t"}, ClientConfig(auth_type="Bearer", credentials="t")),
    (
        {
            "tls_config": {
                "ca_file": "ca.crt",
                "cert_file": "c.crt",
                "key_file": "c.key",
                "server_name": "prometheus.local",
                "insecure_skip_verify": False,
                "min_version": "TLS12",
                "max_version": "TLS13",
            },
            "follow_redirects": True,
            "enable_http2": False,
        },
        ClientConfig(
            tls=TLSSettings(
                ca_file=BASE / "ca.crt",
                cert_file=BASE / "c.crt",
                key_file=BASE / "c.key",
                server_name="prometheus.local",
                min_version="TLS12",
                max_version="TLS13",
            )
        ),
    ),
]


@pytest.mark.parametrize(("doc", "expected"), VALID)
def test_valid_client_configs(doc: object, expected: ClientConfig) -> None:
    assert parse(doc) == expected


INVALID = [
    ([], "http client file f.yaml: not a mapping"),
    ({"basic_auth": {"username": "u"}, "bearer_token": "t"}, "at most one of basic_auth and bearer_token"),
    (
        {"authorization": {"credentials": "t"}, "basic_auth": {"username": "u"}},
        "at most one of basic_auth and authorization",
    ),
    ({"basic_auth": {"password": SECRET, "password_file": "f"}}, "at most one of password and password_file"),
    ({"basic_auth": {"username": "u", "username_file": "f"}}, "at most one of username and username_file"),
    ({"basic_auth": {"user": "u"}}, "basic_auth: unknown key 'user'"),
    (
        {"authorization": {"type": "Basic", "credentials": SECRET}},
        "type Basic is not allowed, use basic_auth",
    ),
    (
        {"authorization": {"credentials": SECRET, "credentials_file": "f"}},
        "at most one of credentials and credentials_file",
    ),
    ({"tls_config": {"cert_file": "c.crt"}}, "cert_file and key_file must be given together"),
    (
        {"tls_config": {"min_version": "TLS14"}},
        "min_version: 'TLS14' is not one of TLS10, TLS11, TLS12, TLS13",
    ),
    ({"tls_config": {"insecure_skip_verify": "yes"}}, "insecure_skip_verify: not true or false"),
    ({"tls_config": {"ca": "inline"}}, "tls_config: unknown key 'ca'"),
    ({"oauth2": {"client_id": "x"}}, "oauth2 is not supported"),
    ({"proxy_url": "http://proxy:3128"}, "proxy_url is not supported"),
    ({"basic_auth": {"username": ["u"]}}, "basic_auth.username: not a string"),
    ({"no_such_key": 1}, "unknown key 'no_such_key'"),
]


@pytest.mark.parametrize(("doc", "needle"), INVALID)
def test_invalid_client_configs_are_one_line_without_the_secret(doc: object, needle: str) -> None:
    with pytest.raises(ClientConfigError) as err:
        parse(doc)
    message = str(err.value)
    assert needle in message and message.startswith("http client file f.yaml"), message
    assert "\n" not in message and SECRET not in message


def test_inline_secrets_stay_out_of_repr() -> None:
    config = parse({"basic_auth": {"username": "u", "password": SECRET}})
    assert SECRET not in repr(config)


def test_authorization_headers() -> None:
    secrets = {BASE / "pw": SECRET, BASE / "tok": "tok-1"}
    basic = parse({"basic_auth": {"username": "admin", "password_file": "pw"}})
    token = base64.b64encode(f"admin:{SECRET}".encode()).decode()
    assert authorization_header(basic, secrets.__getitem__) == {"Authorization": f"Basic {token}"}
    bearer = parse({"bearer_token_file": "tok"})
    assert authorization_header(bearer, secrets.__getitem__) == {"Authorization": "Bearer tok-1"}
    assert authorization_header(parse({}), secrets.__getitem__) == {}


def test_a_yaml_error_names_the_position_and_not_the_text(tmp_path: Path) -> None:
    path = tmp_path / "client.yaml"
    path.write_text(f"basic_auth:\n  password: {SECRET}\n   bad: [\n")
    with pytest.raises(ClientConfigError) as err:
        load_client_config(path)
    assert str(err.value).startswith(f"http client file {path}: YAML: ")
    assert "line" in str(err.value) and SECRET not in str(err.value)


def test_files_named_in_the_client_file_are_re_read_when_they_change(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("first\n")
    path = tmp_path / "client.yaml"
    path.write_text("basic_auth:\n  username: admin\n  password_file: pw\n")
    client = HTTPClient(path)

    def password() -> str:
        header = client.settings().headers["Authorization"].removeprefix("Basic ")
        return base64.b64decode(header).decode().partition(":")[2]

    assert password() == "first"  # trailing newline trimmed, as Prometheus does
    tmp = tmp_path / ".pw.tmp"
    tmp.write_text("second")
    os.replace(tmp, tmp_path / "pw")  # a rename, as the kubelet's ..data swap: a new inode
    assert password() == "second"
    # The client file itself too: now a bearer token from another file.
    (tmp_path / "tok").write_text("tok-1")
    replacement = tmp_path / ".client.tmp"
    replacement.write_text("bearer_token_file: tok\n")
    os.replace(replacement, path)
    assert client.settings().headers == {"Authorization": "Bearer tok-1"}


def test_a_missing_secret_file_is_an_error_that_heals(tmp_path: Path) -> None:
    path = tmp_path / "client.yaml"
    path.write_text("basic_auth:\n  username: admin\n  password_file: pw\n")
    client = HTTPClient(path)
    with pytest.raises(ClientConfigError, match=rf"{tmp_path / 'pw'}: No such file or directory"):
        client.settings()
    (tmp_path / "pw").write_text(SECRET)
    assert "Authorization" in client.settings().headers


def test_no_client_file_means_no_verification_and_one_warning_for_https() -> None:
    settings = HTTPClient(None).settings()
    assert settings.ssl is False and dict(settings.headers) == {}
    assert unverified_https("https://localhost:9090/-/reload", None)
    assert not unverified_https("http://localhost:9090/-/reload", None)
    assert not unverified_https("https://localhost:9090/-/reload", Path("client.yaml"))


@pytest.fixture
def tls_server_files(tmp_path: Path) -> tuple[CA, ssl.SSLContext]:
    ca = CA(tmp_path / "pki")
    pair = ca.issue("server")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pair.cert, pair.key)
    return ca, ctx


async def https_reload_endpoint(aiohttp_server: Any, ctx: ssl.SSLContext, seen: list[str]) -> str:
    async def reload(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/-/reload", reload)
    server = await aiohttp_server(app, ssl=ctx)
    return f"https://127.0.0.1:{server.port}/-/reload"


async def test_https_with_no_client_file_is_not_verified(
    aiohttp_server: Any, tls_server_files: tuple[CA, ssl.SSLContext]
) -> None:
    _ca, ctx = tls_server_files
    seen: list[str] = []
    url = await https_reload_endpoint(aiohttp_server, ctx, seen)
    async with aiohttp.ClientSession() as session:
        await reload_http(session, url, timeout_s=10, client=HTTPClient(None))
    assert seen == [""]


async def test_https_with_a_ca_and_a_password_file_is_verified_and_authenticated(
    aiohttp_server: Any, tls_server_files: tuple[CA, ssl.SSLContext], tmp_path: Path
) -> None:
    ca, ctx = tls_server_files
    seen: list[str] = []
    url = await https_reload_endpoint(aiohttp_server, ctx, seen)
    (tmp_path / "pw").write_text(SECRET)
    good = tmp_path / "good.yaml"
    good.write_text(
        f"basic_auth: {{username: admin, password_file: pw}}\ntls_config: {{ca_file: {ca.cert_path}}}\n"
    )
    async with aiohttp.ClientSession() as session:
        await reload_http(session, url, timeout_s=10, client=HTTPClient(good))
        assert seen == ["Basic " + base64.b64encode(f"admin:{SECRET}".encode()).decode()]

        # Another CA: the server's certificate is refused, in one line without the password.
        other = CA(tmp_path / "other", name="other-ca")
        bad = tmp_path / "bad.yaml"
        bad.write_text(
            f"basic_auth: {{username: admin, password_file: pw}}\ntls_config: {{ca_file: {other.cert_path}}}\n"
        )
        with pytest.raises(ReloadError) as err:
            await reload_http(session, url, timeout_s=10, client=HTTPClient(bad))
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value) and SECRET not in str(err.value)
        assert "\n" not in str(err.value)

        # The name in the certificate is 127.0.0.1/localhost: server_name must match one of them.
        wrong_name = tmp_path / "name.yaml"
        wrong_name.write_text(f"tls_config: {{ca_file: {ca.cert_path}, server_name: elsewhere.example}}\n")
        with pytest.raises(ReloadError, match=r"elsewhere\.example"):
            await reload_http(session, url, timeout_s=10, client=HTTPClient(wrong_name))
        right_name = tmp_path / "right.yaml"
        right_name.write_text(f"tls_config: {{ca_file: {ca.cert_path}, server_name: localhost}}\n")
        await reload_http(session, url, timeout_s=10, client=HTTPClient(right_name))
    assert len(seen) == 2
