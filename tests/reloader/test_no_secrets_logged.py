"""config-reloader at its most talkative never logs a secret: env values, passwords, config contents.

Every secret here is made by the ``secret`` fixture, so the end-of-run leak check
(tests/support/leaks.py) searches every log of the run for them as well; these tests also look at
their own reloader's log at once, so that a leak fails right here, naming the scenario.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from aiohttp import web

from tests.reloader.procs import Spawn, spawn
from tests.support.polling import eventually
from tests.support.procs import free_port
from tests.support.reloader_proc import replace_file, run_reloader_once

__all__ = ["spawn"]  # the fixture, imported for pytest

Secret = Callable[..., str]


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def assert_clean(log: str, secrets: list[str]) -> None:
    for value in secrets:
        assert value not in log, "a secret is in the reloader's log"


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
async def test_a_running_reloader_logs_no_secret(
    tmp_path: Path, spawn: Spawn, aiohttp_server: Any, secret: Secret, log_format: str
) -> None:
    env_password = secret("env value expanded into the config")
    in_config = secret("a password written literally in the config")
    url_password = secret("password in the reload URL")
    web_password = secret("basic-auth password of /metrics")
    answers = iter([500, 200])

    async def reload(_: web.Request) -> web.Response:
        status = next(answers, 200)
        return web.Response(status=status, text="ok" if status == 200 else "err: bad config")

    app = web.Application()
    app.router.add_post("/-/reload", reload)
    server = await aiohttp_server(app)
    web_config = tmp_path / "web.yaml"
    hashed = bcrypt.hashpw(web_password.encode(), bcrypt.gensalt(rounds=4)).decode()
    web_config.write_text(f"basic_auth_users:\n  admin: {hashed}\n")
    config = tmp_path / "prometheus.yaml"
    replace_file(
        config,
        f"remote_write:\n- url: http://w\n  basic_auth: {{username: u, password: $(PASS)}}\n"
        f"  headers: {{X-Literal: {in_config}}}\n  other: $(UNSET_VAR)\n".encode(),
    )
    running = await spawn(
        f"--config-file={config}",
        f"--config-envsubst-file={tmp_path / 'out.yaml'}",
        f"--reload-url=http://admin:{url_password}@127.0.0.1:{server.port}/-/reload",
        f"--web-config-file={web_config}",
        "--retry-interval=200ms",
        "--delay-interval=0s",
        "--log-level=debug",
        f"--log-format={log_format}",
        env={"PASS": env_password},
    )
    await eventually(lambda: any("reloaded" in line for line in running.lines()), "the retried reload")
    assert env_password.encode() in (tmp_path / "out.yaml").read_bytes()  # the value was really used

    # /metrics with a wrong and with the right password.
    url = f"http://127.0.0.1:{running.port}/metrics"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers=basic_auth("admin", web_password + "-wrong")) as r:
            assert r.status == 401
        async with http.get(url, headers=basic_auth("admin", web_password)) as r:
            assert r.status == 200

    # A bad input, then a good one again.
    replace_file(config, b"bad: \xff\n")
    await eventually(lambda: any("not valid UTF-8" in line for line in running.lines()), "the bad input")
    replace_file(config, f"again: $(PASS) {in_config}\n".encode())
    await eventually(lambda: sum("reloaded" in line for line in running.lines()) >= 2, "the next reload")

    assert await running.stop() == 0
    log = running.log_path.read_text()
    assert "UNSET_VAR" in log  # the name of an unset variable is logged, which is fine
    basic = base64.b64encode(f"admin:{web_password}".encode()).decode()
    assert_clean(log, [env_password, in_config, url_password, web_password, basic])


def test_startup_errors_log_no_secret(tmp_path: Path, secret: Secret) -> None:
    value = secret("env value")
    in_config = secret("config contents")
    config = tmp_path / "prometheus.yaml"
    config.write_text(f"a: $(PASS) {in_config}\nb: $(MISSING)\n")
    closed = f"http://u:{secret('URL password')}@127.0.0.1:{free_port()}/-/reload"
    results = [
        run_reloader_once(  # strict mode: an unset variable is an error
            f"--config-file={config}",
            f"--config-envsubst-file={tmp_path / 'out.yaml'}",
            "--watch-interval=0",
            "--strict-env",
            "--log-level=debug",
            env={"PASS": value},
        ),
        run_reloader_once(  # the output directory is missing
            f"--config-file={config}",
            f"--config-envsubst-file={tmp_path / 'missing' / 'out.yaml'}",
            "--watch-interval=0",
            "--log-level=debug",
            f"--reload-url={closed}",
            env={"PASS": value},
        ),
    ]
    for result in results:
        assert result.returncode == 1, result.stdout
        assert_clean(result.stdout, [value, in_config, closed.split("@")[0].split(":")[-1]])
