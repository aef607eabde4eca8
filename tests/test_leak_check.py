"""The end-of-run leak check itself (tests/support/leaks.py): it finds what it must, and only that."""

from __future__ import annotations

import base64
import json
import os
import textwrap
from pathlib import Path

import pytest

from tests.support.leaks import Registry, find_leaks, harvest_files, log_files, variants

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose sessions load the leak check, as tests/conftest.py does."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest('pytest_plugins = ["tests.support.leaks"]\n')
    return pytester


def test_a_registered_secret_in_a_log_is_found_with_its_line(tmp_path: Path) -> None:
    registry = Registry()
    token = registry.new("reload bearer token")
    log = tmp_path / "reloader-1.log"
    log.write_text(f'msg=started level=info\nmsg="reload failed" err="401 for {token}"\n')
    (tmp_path / "clean.log").write_text("msg=started level=info\n")
    [leak] = find_leaks(registry.secrets, log_files(tmp_path))
    assert (leak.what, leak.log, leak.line) == ("reload bearer token", log, 2)


def test_escaped_forms_are_found_too(tmp_path: Path) -> None:
    value = 'pa"ss\\word-123'
    assert json.dumps(value)[1:-1] in variants(value)
    (tmp_path / "a.log").write_text(json.dumps({"msg": "x", "err": value}) + "\n")
    assert [leak.what for leak in find_leaks({value: "password"}, log_files(tmp_path))] == ["password"]


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter than 8"):
        Registry().register("hunter2", "password")


def test_secrets_written_into_files_are_harvested(tmp_path: Path) -> None:
    (tmp_path / "client.yaml").write_text(
        "basic_auth: {username: u, password: hunter2-hunter2}\n"
        "authorization: {credentials: tok-1234567890}\n"
        "tls_config: {key_file: /x/key.pem}\n"
        "password_file: /etc/pw\n"
        "other: {password: short, token: $(TOKEN_FROM_ENV)}\n"
    )
    body64 = "\n".join(textwrap.wrap(base64.b64encode(os.urandom(300)).decode(), 64))
    pem = f"-----BEGIN EC PRIVATE KEY-----\n{body64}\n-----END EC PRIVATE KEY-----\n"
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "key.pem").write_text(pem)
    found = harvest_files(tmp_path)
    assert found.pop("hunter2-hunter2") == "password in client.yaml"
    assert found.pop("tok-1234567890") == "credentials in client.yaml"
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    assert set(found) == {line for line in body if len(line) >= 40}
    assert set(found.values()) == {"private key in key.pem"}


def test_a_leak_fails_the_session_and_names_the_secret_not_its_value(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import logging

        def test_leaky(secret):
            logging.getLogger("reloader").warning("token is %s", secret("the bearer token"))

        def test_clean(secret):
            secret("an unused password")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*2 passed*"])
    result.stdout.fnmatch_lines(["secret leaked: the bearer token in *captured-output.log:*"])
    assert "an unused password" not in result.stdout.str()
    assert "sekrit-" not in result.stdout.str()


def test_no_leak_passes(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        def test_quiet(secret, tmp_path):
            value = secret("a password")
            (tmp_path / "proc.log").write_text("started\\n")
            assert value.startswith("sekrit-")
        """
    )
    result = inner.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["leak check: 1 secrets searched for in 1 logs under *"])
