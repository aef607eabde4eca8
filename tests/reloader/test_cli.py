"""The config-reloader command line, run as a real subprocess: flags, init mode, logs, signals, bad input."""

from __future__ import annotations

import asyncio
import gzip
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from reloader.command import command
from tests.reloader.conftest import Endpoint, start_endpoint
from tests.reloader.procs import Spawn, spawn, wait_serving
from tests.support.polling import eventually
from tests.support.procs import free_port
from tests.support.reloader_proc import reloader_binary, reloader_env, replace_file

__all__ = ["spawn"]

SECRET_ENV = "hunter2-env-value-never-logged"
SECRET_LITERAL = "s3cr3t-literal-in-config"


def run_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [reloader_binary(), *args],
        capture_output=True,
        text=True,
        env=reloader_env(env),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def output_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return (result.stdout + result.stderr).splitlines()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "prometheus.yaml").write_text("replica: $(POD_NAME)\n")
    return tmp_path


def io_args(files: Path) -> list[str]:
    return [
        f"--config-file={files / 'in' / 'prometheus.yaml'}",
        f"--config-envsubst-file={files / 'out' / 'out.yaml'}",
    ]


# Init mode ---------------------------------------------------------------------------------------------


def test_init_mode_renders_once_and_exits_0(files: Path) -> None:
    (files / "in" / "prometheus.yaml").write_bytes(
        gzip.compress(b"replica: $(POD_NAME)\nord: $(STATEFULSET_ORDINAL_NUMBER)\n")
    )
    result = run_once(*io_args(files), "--watch-interval=0", env={"POD_NAME": "prometheus-k8s-3"})
    assert result.returncode == 0, output_lines(result)
    assert (files / "out" / "out.yaml").read_text() == "replica: prometheus-k8s-3\nord: 3\n"


async def test_init_mode_sends_no_reload(files: Path, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml"))
    # An asyncio subprocess, so that the endpoint keeps answering while init mode runs.
    proc = await asyncio.create_subprocess_exec(
        reloader_binary(),
        *io_args(files),
        "--watch-interval=0",
        f"--reload-url={endpoint.url}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=reloader_env({"POD_NAME": "prom-2"}),
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output
    assert (files / "out" / "out.yaml").read_text() == "replica: prom-2\n"
    assert endpoint.seen == []
    assert b"reloaded" not in output


def test_init_mode_takes_the_ordinal_from_the_named_variable(files: Path) -> None:
    (files / "in" / "prometheus.yaml").write_text("ord: $(STATEFULSET_ORDINAL_NUMBER)\n")
    result = run_once(
        *io_args(files),
        "--watch-interval=0",
        "--statefulset-ordinal-from-envvar=MY_HOST",
        env={"MY_HOST": "web-42"},
    )
    assert result.returncode == 0, output_lines(result)
    assert (files / "out" / "out.yaml").read_text() == "ord: 42\n"


def test_init_mode_imports_no_web_server_and_no_http_client(files: Path) -> None:
    code = (
        "import sys\n"
        "from reloader.cli import cli\n"
        f"rc = cli({[*io_args(files), '--watch-interval=0']!r})\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'aiohttp', 'yarl', 'multidict', 'watchfiles', 'prometheus_client'})\n"
        "print('LOADED', rc, ','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert "LOADED 0 \n" in result.stdout + "\n", result.stdout + result.stderr
    assert (files / "out" / "out.yaml").exists()


def test_version_and_help() -> None:
    version = run_once("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("config-reloader ")
    help_text = run_once("--help").stdout
    for flag in (
        "--config-file",
        "--config-envsubst-file",
        "--watched-dir",
        "--watch-interval",
        "--delay-interval",
        "--retry-interval",
        "--reload-timeout",
        "--reload-url",
        "--reload-method",
        "--process-executable-name",
        "--runtimeinfo-url",
        "--listen-address",
        "--web-config-file",
        "--log-format",
        "--log-level",
        "--statefulset-ordinal-from-envvar",
        "--auto-gomemlimit-ratio",
        "--strict-env",
    ):
        assert flag in help_text, flag


def parsed(args: list[str]) -> dict[str, Any]:
    """What the flags parse to, without running anything."""
    with command.make_context("config-reloader", args) as ctx:
        return dict(ctx.params)


def test_every_flag_has_the_default_of_design_md() -> None:
    # Durations in seconds; the values are design.md's flag table, not read back from the code.
    assert parsed(["--config-file=in.yaml"]) == {
        "config_file": "in.yaml",
        "config_envsubst_file": None,
        "watched_dir": (),
        "watch_interval": 180.0,
        "delay_interval": 1.0,
        "retry_interval": 5.0,
        "reload_timeout": 30.0,
        "reload_url": "http://127.0.0.1:9090/-/reload",
        "reload_method": "http",
        "process_executable_name": "prometheus",
        "runtimeinfo_url": "http://127.0.0.1:9090/api/v1/status/runtimeinfo",
        "listen_address": None,
        "web_config_file": None,
        "log_format": "logfmt",
        "log_level": "info",
        "statefulset_ordinal_from_envvar": "POD_NAME",
        "auto_gomemlimit_ratio": 0.9,
        "reload_http_client_file": None,
        "strict_env": False,
        "max_config_bytes": 512 * 1024 * 1024,
        # The Thanos sidecar's names: unset unless given (they fold into the flags above).
        "thanos_config_file": None,
        "thanos_config_envsubst_file": None,
        "thanos_rule_dir": (),
        "thanos_watch_interval": None,
        "thanos_retry_interval": None,
        "thanos_method": None,
        "thanos_process_name": None,
        "prometheus_url": None,
        "thanos_http_client_file": None,
    }


ISSUE_COMMAND_LINE = (
    "--listen-address=:8080 --reload-url=http://127.0.0.1:9090/-/reload "
    "--config-file=/etc/prometheus/config/prometheus.yaml.gz "
    "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml "
    "--watched-dir=/etc/prometheus/rules/prometheus-k8s-rulefiles-0 --log-format=logfmt --log-level=info"
)


def test_the_issue_s_command_line_parses_as_written() -> None:
    # Its paths need /etc/prometheus: test_prometheus_operator_command_line_starts_and_reloads runs the
    # same flags on tmp_path.
    params = parsed(shlex.split(ISSUE_COMMAND_LINE))
    assert params["listen_address"] == ":8080"
    assert params["config_file"] == "/etc/prometheus/config/prometheus.yaml.gz"
    assert params["config_envsubst_file"] == "/etc/prometheus/config_out/prometheus.env.yaml"
    assert params["watched_dir"] == ("/etc/prometheus/rules/prometheus-k8s-rulefiles-0",)
    assert (params["log_format"], params["log_level"]) == ("logfmt", "info")


def test_repeated_and_go_style_values_are_read_as_prometheus_operator_writes_them() -> None:
    params = parsed(
        [
            "--watched-dir=/a",
            "--watched-dir=/b",
            "--watch-interval=1h30m",
            "--delay-interval=500ms",
            "--retry-interval=0s",
            "--reload-timeout=2m",
            "--reload-method=signal",
            "--auto-gomemlimit-ratio=0.5",
        ]
    )
    assert params["watched_dir"] == ("/a", "/b")
    assert (params["watch_interval"], params["delay_interval"]) == (5400.0, 0.5)
    assert (params["retry_interval"], params["reload_timeout"]) == (0.0, 120.0)
    assert params["reload_method"] == "signal"


# Startup errors: exit 1 with exactly one line -------------------------------------------


def make_input(files: Path, kind: str) -> str:
    """Write a bad input of ``kind``; returns a piece of text the error line must hold.

    Writes are renames, so a running reloader never sees the half-written file (an empty one is an
    error of its own, and would be the line it logs).
    """
    config = files / "in" / "prometheus.yaml"
    if kind == "missing":
        config.unlink()
        return "No such file or directory"
    if kind == "unreadable":
        config.unlink()
        config.mkdir()  # root reads any file, whatever its mode: a directory is what cannot be read
        return "Is a directory"
    if kind == "empty":
        replace_file(config, b"")
        return "input is empty"
    if kind == "truncated-gzip":
        whole = gzip.compress(b"global: {}\n" * 500)
        replace_file(config, whole[: len(whole) - 8])
        return "truncated gzip"
    if kind == "corrupt-gzip":
        replace_file(config, b"\x1f\x8b\x08\x00" + b"\xff" * 64)
        return "corrupt gzip"
    if kind == "gzip-bomb":
        replace_file(config, gzip.compress(b"a" * (8 * 1024 * 1024)))
        return "gzip bomb"
    if kind == "not-utf8":
        replace_file(config, b"key: \xff\xfe\n")
        return "not valid UTF-8"
    if kind == "strict-unset":
        replace_file(config, b"token: $(SECRET_TOKEN)\nmissing: $(NOT_SET_ANYWHERE)\n")
        return "environment variable NOT_SET_ANYWHERE is not set"
    raise AssertionError(kind)


BAD_INPUTS = [
    "missing",
    "unreadable",
    "empty",
    "truncated-gzip",
    "corrupt-gzip",
    "gzip-bomb",
    "not-utf8",
    "strict-unset",
]
LIMITS = ["--strict-env", "--max-config-bytes=1048576"]


@pytest.mark.parametrize("kind", BAD_INPUTS)
@pytest.mark.parametrize("watch_interval", ["0", "3m"])
def test_bad_input_at_startup_is_exit_1_with_one_line(files: Path, kind: str, watch_interval: str) -> None:
    (files / "out" / "out.yaml").write_text("previous\n")
    needle = make_input(files, kind)
    result = run_once(
        *io_args(files),
        f"--watch-interval={watch_interval}",
        "--reload-url=http://127.0.0.1:1/-/reload",
        *LIMITS,
        env={"SECRET_TOKEN": SECRET_ENV},
    )
    lines = output_lines(result)
    assert result.returncode == 1, lines
    assert len(lines) == 1, lines
    assert "level=error" in lines[0] and needle in lines[0] and "prometheus.yaml" in lines[0], lines[0]
    assert SECRET_ENV not in lines[0]
    assert (files / "out" / "out.yaml").read_text() == "previous\n"


def test_missing_output_directory_at_startup_is_exit_1_with_one_line(files: Path) -> None:
    missing = files / "nope" / "out.yaml"
    args = [f"--config-file={files / 'in' / 'prometheus.yaml'}", f"--config-envsubst-file={missing}"]
    result = run_once(*args, "--reload-url=http://127.0.0.1:1/-/reload")
    lines = output_lines(result)
    assert result.returncode == 1 and len(lines) == 1, lines
    assert (
        f"output {missing}: cannot create a file in {missing.parent}: No such file or directory" in lines[0]
    )


def test_a_startup_error_in_json_is_one_json_line(files: Path) -> None:
    make_input(files, "truncated-gzip")
    result = run_once(*io_args(files), "--log-format=json", "--reload-url=http://127.0.0.1:1/-/reload")
    lines = output_lines(result)
    assert result.returncode == 1 and len(lines) == 1, lines
    doc = json.loads(lines[0])
    assert next(iter(doc)) == "msg" and doc["level"] == "error", doc
    assert "truncated gzip" in doc["err"] and "prometheus.yaml" in doc["err"], doc


@pytest.mark.parametrize("watch_interval", ["0", "3m"])
def test_missing_watched_directory_at_startup_is_exit_1_with_one_line(
    files: Path, watch_interval: str
) -> None:
    missing = files / "rules-nope"
    result = run_once(
        *io_args(files),
        f"--watched-dir={missing}",
        f"--watch-interval={watch_interval}",
        "--reload-url=http://127.0.0.1:1/-/reload",
    )
    lines = output_lines(result)
    assert result.returncode == 1 and len(lines) == 1, lines
    assert "level=error" in lines[0] and f"{missing}: No such file or directory" in lines[0], lines[0]


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        ("--watch-interval=3x", "invalid duration '3x'"),
        ("--delay-interval=-1s", "invalid duration '-1s'"),
        ("--reload-timeout=", "empty duration"),
        ("--reload-method=smoke", "'smoke' is not one of 'http', 'signal'"),
        ("--log-format=xml", "'xml' is not one of 'logfmt', 'json'"),
        ("--log-level=verbose", "'verbose' is not one of"),
        ("--no-such-flag=1", "No such option '--no-such-flag'"),
        ("--max-config-bytes=0", "--max-config-bytes"),
    ],
)
def test_bad_flag_values_are_exit_2_with_one_line(files: Path, flag: str, needle: str) -> None:
    # Go's kingpin exits 2 on a flag error, and prints it on stdout.
    result = run_once(*io_args(files), flag)
    lines = output_lines(result)
    assert result.returncode == 2, lines
    assert result.stdout.splitlines() == lines, "the flag error goes to stdout, as Go's does"
    assert len(lines) == 1 and needle in lines[0], lines


def test_nothing_to_watch_is_a_usage_error() -> None:
    result = run_once("--reload-url=http://127.0.0.1:1/-/reload")
    assert result.returncode == 2
    assert output_lines(result) == [
        "config-reloader: error: nothing to watch: give --config-file and/or --watched-dir"
    ]


# Running: flags as prometheus-operator passes them, signals, logs ---------------------------------------


async def test_prometheus_operator_command_line_starts_and_reloads(
    tmp_path: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    config = tmp_path / "config" / "prometheus.yaml.gz"
    config.parent.mkdir()
    config.write_bytes(gzip.compress(b"global:\n  external_labels:\n    replica: $(POD_NAME)\n"))
    out = tmp_path / "config_out" / "prometheus.env.yaml"
    out.parent.mkdir()
    rules = tmp_path / "rules" / "prometheus-k8s-rulefiles-0"
    rules.mkdir(parents=True)
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    port = free_port()
    running = await spawn(
        f"--listen-address=:{port}",
        f"--reload-url={endpoint.url}",
        f"--config-file={config}",
        f"--config-envsubst-file={out}",
        f"--watched-dir={rules}",
        "--log-format=logfmt",
        "--log-level=info",
        "--auto-gomemlimit-ratio=0.5",
        "--watch-interval=3m",
        "--delay-interval=1s",
        "--retry-interval=5s",
        "--reload-timeout=30s",
        "--statefulset-ordinal-from-envvar=POD_NAME",
        listen=False,
        env={"POD_NAME": "prometheus-k8s-0"},
    )
    running.port = port
    await wait_serving(running, "/readyz")
    assert endpoint.seen == ["global:\n  external_labels:\n    replica: prometheus-k8s-0\n"]
    (rules / "alerts.yaml").write_text("groups: []\n")
    await eventually(lambda: len(endpoint.seen) == 2, "the reload for the new rule file")
    assert await running.stop() == 0


def assert_no_leftover_tasks(lines: list[str]) -> None:
    """What asyncio prints when a program exits with a task still pending or failing unseen."""
    text = "\n".join(lines)
    for needle in ("Task was destroyed but it is pending", "Task exception was never retrieved", "Traceback"):
        assert needle not in text, text[-2000:]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_sigint_exit_0(files: Path, spawn: Spawn, aiohttp_server: Any, signum: int) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml"))
    running = await spawn(*io_args(files), f"--reload-url={endpoint.url}")
    await wait_serving(running, "/readyz")
    assert await running.stop(signum) == 0
    assert running.lines()[-1].startswith("msg=stopped level=info")
    assert_no_leftover_tasks(running.lines())


async def test_sigterm_while_a_reload_hangs_exits_0(files: Path, spawn: Spawn, aiohttp_server: Any) -> None:
    hang = asyncio.Event()
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml", hang=hang))
    try:
        running = await spawn(*io_args(files), f"--reload-url={endpoint.url}", "--reload-timeout=1h")
        await eventually(lambda: len(endpoint.seen) == 1, "the hanging reload request")
        assert await running.stop() == 0
        assert running.lines()[-1].startswith("msg=stopped level=info")
        assert_no_leftover_tasks(running.lines())
    finally:
        hang.set()


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
async def test_logs_never_hold_config_content_or_env_values(
    files: Path, spawn: Spawn, aiohttp_server: Any, log_format: str
) -> None:
    config = files / "in" / "prometheus.yaml"
    config.write_text(f"token: $(SECRET_TOKEN)\npassword: {SECRET_LITERAL}\nunset: $(NOT_SET_X)\n")
    out = files / "out" / "out.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out, answer=lambda n: 500 if n == 2 else 200))
    running = await spawn(
        *io_args(files),
        f"--reload-url={endpoint.url}",
        f"--log-format={log_format}",
        "--log-level=debug",
        "--delay-interval=50ms",
        "--retry-interval=100ms",
        env={"SECRET_TOKEN": SECRET_ENV},
    )
    await wait_serving(running, "/readyz")
    replace_file(
        config, f"token: $(SECRET_TOKEN)\npassword: {SECRET_LITERAL}-2\nunset: $(NOT_SET_X)\n".encode()
    )
    await eventually(lambda: len(endpoint.seen) == 3, "a failed reload and its retry")
    replace_file(config, b"\xff not utf-8 " + SECRET_LITERAL.encode())
    await eventually(lambda: any("not valid UTF-8" in line for line in running.lines()), "the apply error")
    assert await running.stop() == 0
    assert out.read_text() == f"token: {SECRET_ENV}\npassword: {SECRET_LITERAL}-2\nunset: $(NOT_SET_X)\n"

    lines = running.lines()
    assert len(lines) >= 6, lines
    for line in lines:
        assert SECRET_ENV not in line and SECRET_LITERAL not in line, line
        if log_format == "json":
            doc = json.loads(line)
            assert next(iter(doc)) == "msg", line
        else:
            assert line.startswith("msg="), line
    text = "\n".join(lines)
    for expected in ("reload failed", "HTTP 500", "NOT_SET_X", "reloaded", "not valid UTF-8", "stopped"):
        assert expected in text, expected


# Bad input while running: one line, output intact, still running -------------------------------------


@pytest.mark.parametrize("kind", BAD_INPUTS)
async def test_bad_input_while_running_keeps_output_and_process(
    files: Path, spawn: Spawn, aiohttp_server: Any, kind: str
) -> None:
    out = files / "out" / "out.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await spawn(
        *io_args(files),
        f"--reload-url={endpoint.url}",
        "--delay-interval=50ms",
        "--retry-interval=1h",
        *LIMITS,
        env={"POD_NAME": "prom-1", "SECRET_TOKEN": SECRET_ENV},
    )
    await wait_serving(running, "/readyz")
    await wait_serving(running, "/healthz")
    before = len(running.lines())
    needle = make_input(files, kind)

    def errors() -> list[str]:
        return [line for line in running.lines()[before:] if "level=error" in line]

    await eventually(lambda: bool(errors()), f"an error line for {kind}")
    assert all(needle in line and "prometheus.yaml" in line for line in errors()), errors()
    assert out.read_text() == "replica: prom-1\n"
    assert running.alive()
    assert await running.metric("reloader_config_apply_operations_failed_total") == 1.0
    assert (await running.get("/healthz"))[0] == 200

    # Fixed again: applied and reloaded, and nothing was lost on the way.
    if (files / "in" / "prometheus.yaml").is_dir():
        (files / "in" / "prometheus.yaml").rmdir()
    replace_file(files / "in" / "prometheus.yaml", b"replica: $(POD_NAME)\nfixed: true\n")
    await eventually(lambda: len(endpoint.seen) == 2, "the reload of the fixed config")
    assert out.read_text() == "replica: prom-1\nfixed: true\n"
    assert await running.stop() == 0


async def test_reload_500_while_running_is_one_line_and_last_reload_successful_0(
    files: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    out = files / "out" / "out.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out, answer=lambda n: 200 if n == 1 else 500))
    running = await spawn(
        *io_args(files), f"--reload-url={endpoint.url}", "--delay-interval=50ms", "--retry-interval=1h"
    )
    await wait_serving(running, "/readyz")
    await wait_serving(running, "/healthz")
    replace_file(files / "in" / "prometheus.yaml", b"bad: config\n")
    await eventually(lambda: len(endpoint.seen) == 2, "the failing reload")
    await eventually(lambda: any("reload failed" in line for line in running.lines()), "the error line")
    [line] = [line for line in running.lines() if "reload failed" in line]
    assert f"{endpoint.url}: HTTP 500: boom: bad config" in line
    assert await running.metric("reloader_last_reload_successful") == 0.0
    assert running.alive()


def test_unreadable_web_config_at_startup_is_exit_2_with_one_line(files: Path) -> None:
    web_config = files / "web.yml"
    web_config.write_text("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n")
    result = run_once(
        *io_args(files),
        f"--listen-address=127.0.0.1:{free_port()}",
        f"--web-config-file={web_config}",
        "--reload-url=http://127.0.0.1:1/-/reload",
    )
    lines = output_lines(result)
    # prometheus-config-reloader exits 2 when its web config does not validate.
    assert result.returncode == 2, lines
    assert len(lines) == 1 and f"web config {web_config}" in lines[0], lines
    assert f"{web_config.parent / 'missing.crt'}: No such file or directory" in lines[0], lines


async def test_listen_address_in_use_at_startup_is_exit_1_with_one_error_line(
    files: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml"))
    first = await spawn(*io_args(files), f"--reload-url={endpoint.url}")
    await wait_serving(first)
    second = await spawn(
        *io_args(files),
        f"--reload-url={endpoint.url}",
        f"--listen-address=127.0.0.1:{first.port}",
        listen=False,
    )
    assert await asyncio.wait_for(second.proc.wait(), 30) == 1
    errors = [line for line in second.lines() if "level=error" in line]
    assert len(errors) == 1 and "cannot start" in errors[0] and "address already in use" in errors[0], (
        second.lines()
    )
    assert first.alive()


async def test_signal_method_with_no_such_process_is_one_line_and_keeps_running(
    files: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    async def runtimeinfo(_: web.Request) -> web.Response:
        data = {"reloadConfigSuccess": True, "lastConfigTime": "2026-01-01T00:00:00Z"}
        return web.json_response({"status": "success", "data": data})

    app = web.Application()
    app.router.add_get("/api/v1/status/runtimeinfo", runtimeinfo)
    server = await aiohttp_server(app)
    running = await spawn(
        *io_args(files),
        "--reload-method=signal",
        "--process-executable-name=no-such-binary-x",
        f"--runtimeinfo-url={server.make_url('/api/v1/status/runtimeinfo')}",
        "--retry-interval=1h",
    )
    await wait_serving(running)
    await eventually(lambda: any("reload failed" in line for line in running.lines()), "the error line")
    [line] = [line for line in running.lines() if "level=error" in line]
    assert "no process named 'no-such-binary-x'" in line
    assert (await running.get("/readyz"))[0] == 503
    assert await running.metric("reloader_last_reload_successful") == 0.0
    assert running.alive()
    assert await running.stop() == 0


async def test_output_directory_removed_while_running_is_one_line_and_keeps_running(
    files: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    out = files / "out" / "out.yaml"
    endpoint = await start_endpoint(aiohttp_server, Endpoint(out))
    running = await spawn(
        *io_args(files), f"--reload-url={endpoint.url}", "--delay-interval=50ms", "--retry-interval=1h"
    )
    await wait_serving(running, "/readyz")
    await wait_serving(running, "/healthz")
    out.unlink()
    out.parent.rmdir()
    replace_file(files / "in" / "prometheus.yaml", b"v: 2\n")
    await eventually(lambda: any("level=error" in line for line in running.lines()), "the error line")
    [line] = [line for line in running.lines() if "level=error" in line]
    assert f"output {out}: cannot create a file in {out.parent}: No such file or directory" in line, line
    assert running.alive()
    assert len(endpoint.seen) == 1  # nothing new was written, so nothing was reloaded

    out.parent.mkdir()
    replace_file(files / "in" / "prometheus.yaml", b"v: 3\n")
    await eventually(lambda: len(endpoint.seen) == 2, "the reload once the directory is back")
    assert out.read_text() == "v: 3\n"
    assert await running.stop() == 0
