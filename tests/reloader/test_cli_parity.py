"""The command line as prometheus-config-reloader's and the Thanos sidecar's: exit codes, stdout, flags
that Go has and we lacked, the Thanos aliases, build_info, and counting applies as Go does."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import click
import pytest
from click.core import ParameterSource

from reloader import __version__
from reloader.app import Reloader
from reloader.command import command
from reloader.flags import merge_aliases, url_under
from reloader.metrics import build_labels
from tests.reloader.conftest import Endpoint, running, sample, start_endpoint
from tests.reloader.procs import Spawn, spawn, wait_serving
from tests.reloader.test_app import options
from tests.support.polling import eventually
from tests.support.procs import sample as metric_sample
from tests.support.reloader_proc import reloader_binary, reloader_env, replace_file

__all__ = ["spawn"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [reloader_binary(), *args],
        capture_output=True,
        text=True,
        env=reloader_env(env),
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "prometheus.yaml").write_text("ord: '$(STATEFULSET_ORDINAL_NUMBER)'\n")
    return tmp_path


def io_args(files: Path) -> list[str]:
    return [
        f"--config-file={files / 'in' / 'prometheus.yaml'}",
        f"--config-envsubst-file={files / 'out' / 'out.yaml'}",
    ]


def resolved(args: list[str]) -> dict[str, Any]:
    """What the command acts on: the flags parsed, with the Thanos aliases folded in."""
    with command.make_context("config-reloader", args) as ctx:
        given = {n for n in ctx.params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE}
        return merge_aliases(ctx.params, given)


# Version, levels, stdout -------------------------------------------------------------------------------


def test_short_version_prints_the_number_alone() -> None:
    result = run("--short-version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{__version__}\n", "")


@pytest.mark.parametrize(
    ("level", "lines"), [("none", 0), ("error", 0), ("all", 2), ("debug", 2), ("info", 2)]
)
def test_log_levels_include_all_and_none(files: Path, level: str, lines: int) -> None:
    result = run(*io_args(files), "--watch-interval=0", f"--log-level={level}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == lines, result.stdout
    assert result.stderr == ""


def test_logs_go_to_stdout_and_errors_too(files: Path) -> None:
    ok = run(*io_args(files), "--watch-interval=0")
    assert ok.stderr == "" and "rendered once" in ok.stdout
    (files / "in" / "prometheus.yaml").unlink()
    failed = run(*io_args(files), "--watch-interval=0")
    assert failed.returncode == 1 and failed.stderr == ""
    assert "level=error" in failed.stdout and len(failed.stdout.splitlines()) == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"POD_NAME": "prometheus-k8s-2"}, "2"), ({"POD_NAME": "prometheus"}, ""), ({}, "")],
)
def test_the_statefulset_ordinal_is_always_set(files: Path, env: dict[str, str], expected: str) -> None:
    result = run(*io_args(files), "--watch-interval=0", env=env)
    assert result.returncode == 0, result.stdout
    assert (files / "out" / "out.yaml").read_text() == f"ord: '{expected}'\n"
    assert "STATEFULSET_ORDINAL_NUMBER" not in result.stdout  # set, so never reported as unset


# Flag errors: exit 2, one line on stdout ----------------------------------------------------------------

FLAG_ERRORS = [
    (["--auto-gomemlimit-ratio=0"], "--auto-gomemlimit-ratio must be greater than 0"),
    (["--auto-gomemlimit-ratio=1.5"], "--auto-gomemlimit-ratio must be greater than 0"),
    (
        ["--reload-url=localhost:9090/-/reload"],
        "--reload-url: 'localhost:9090/-/reload' is not an http or https URL",
    ),
    (["--reload-url="], "--reload-url: '' is not an http or https URL"),
    (["--reload-method=signal", "--runtimeinfo-url=ftp://x/"], "--runtimeinfo-url: 'ftp://x/' is not"),
    (["--listen-address=localhost"], "--listen-address: 'localhost' is not host:port"),
    (["--reloader.config-file=/x"], "--reloader.config-file is the Thanos name of --config-file"),
    (
        ["--reloader.rule-dir=/r", "--watched-dir=/w"],
        "--reloader.rule-dir is the Thanos name of --watched-dir",
    ),
    (["--reloader.watch-interval=1m", "--watch-interval=1m"], "is the Thanos name of --watch-interval"),
    (["--reloader.method=signal", "--reload-method=signal"], "is the Thanos name of --reload-method"),
    (
        ["--prometheus.url=http://p:9090", "--reload-url=http://p:9090/-/reload"],
        "--prometheus.url sets --reload-url",
    ),
    (
        ["--prometheus.url=http://p:9090", "--runtimeinfo-url=http://p/x"],
        "--prometheus.url sets --runtimeinfo-url",
    ),
    (["--prometheus.url=p:9090"], "--prometheus.url: 'p:9090' is not an http or https URL"),
    (["--reloader.method=smoke"], "'smoke' is not one of 'http', 'signal'"),
]


@pytest.mark.parametrize(("flags", "needle"), FLAG_ERRORS)
def test_flag_errors_exit_2_with_one_line_on_stdout(files: Path, flags: list[str], needle: str) -> None:
    result = run(*io_args(files), *flags)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "" and len(result.stdout.splitlines()) == 1, result.stdout
    assert result.stdout.startswith("config-reloader: error: ") and needle in result.stdout, result.stdout


@pytest.mark.parametrize("watch_interval", ["0", "3m"])
@pytest.mark.parametrize(
    ("flag", "content", "needle"),
    [
        ("--web-config-file", "tls_server_config: {certfile: x}\n", "unknown key 'certfile'"),
        ("--web-config-file", "basic_auth_users: [a]\n", "basic_auth_users: not a mapping"),
        (
            "--reload-http-client-file",
            "basic_auth: {username: u, pasword: hunter2}\n",
            "unknown key 'pasword'",
        ),
        ("--prometheus.http-client-file", "tls_config: {min_version: TLS9}\n", "'TLS9' is not one of"),
    ],
)
def test_a_bad_web_config_or_client_file_is_exit_2_at_start_in_both_modes(
    files: Path, watch_interval: str, flag: str, content: str, needle: str
) -> None:
    path = files / "bad.yaml"
    path.write_text(content)
    result = run(*io_args(files), f"--watch-interval={watch_interval}", f"{flag}={path}")
    assert result.returncode == 2, result.stdout
    [line] = result.stdout.splitlines()
    assert "level=error" in line and needle in line and str(path) in line, line
    assert "hunter2" not in line
    assert not (files / "out" / "out.yaml").exists()


# The Thanos sidecar's flags -------------------------------------------------------------------------


def test_the_seed_s_thanos_command_line_means_what_the_sidecar_meant() -> None:
    params = resolved(
        [
            "--prometheus.url=http://localhost:9090",
            "--reloader.config-file=/etc/prometheus/prometheus.yaml.tmpl",
            "--reloader.config-envsubst-file=/etc/prometheus-shared/prometheus.yaml",
            "--reloader.rule-dir=/etc/prometheus/rules/",
            "--reloader.rule-dir=/etc/prometheus/more//rules/./",
            "--reloader.watch-interval=1m",
            "--reloader.retry-interval=2s",
            "--reloader.method=signal",
            "--reloader.process-name=thanos-ruler",
            "--prometheus.http-client-file=/etc/reloader/client.yaml",
        ]
    )
    assert params["config_file"] == "/etc/prometheus/prometheus.yaml.tmpl"
    assert params["config_envsubst_file"] == "/etc/prometheus-shared/prometheus.yaml"
    # Normalised: the trailing slash would otherwise never match a file event's directory.
    assert params["watched_dir"] == ("/etc/prometheus/rules", "/etc/prometheus/more/rules")
    assert str(params["watched_dir"][0]) == "/etc/prometheus/rules"
    assert (params["watch_interval"], params["retry_interval"]) == (60.0, 2.0)
    assert (params["reload_method"], params["process_executable_name"]) == ("signal", "thanos-ruler")
    assert params["reload_url"] == "http://localhost:9090/-/reload"
    assert params["runtimeinfo_url"] == "http://localhost:9090/api/v1/status/runtimeinfo"
    assert params["reload_http_client_file"] == "/etc/reloader/client.yaml"
    assert not any(k.startswith("thanos_") or k == "prometheus_url" for k in params)


def test_without_aliases_our_own_flags_and_defaults_stand() -> None:
    params = resolved(["--config-file=/in", "--watched-dir=/rules/"])
    assert params["watched_dir"] == ("/rules",)
    assert params["reload_url"] == "http://127.0.0.1:9090/-/reload"
    assert (params["watch_interval"], params["reload_method"]) == (180.0, "http")


@pytest.mark.parametrize(
    ("base", "reload_url"),
    [
        ("http://localhost:9090", "http://localhost:9090/-/reload"),
        ("https://prom.example:9443/", "https://prom.example:9443/-/reload"),
        ("http://localhost:9090/prometheus/", "http://localhost:9090/prometheus/-/reload"),
    ],
)
def test_prometheus_url_keeps_a_route_prefix(base: str, reload_url: str) -> None:
    assert url_under(base, "/-/reload") == reload_url


def test_every_alias_is_a_real_option() -> None:
    names = {p.name for p in command.params if isinstance(p, click.Option)}
    from reloader.flags import THANOS_ALIASES

    for alias, _flag, ours, _our_flag in THANOS_ALIASES:
        assert {alias, ours} <= names


# Running: no server, warnings, build_info, apply counting ----------------------------------------------


async def test_an_empty_listen_address_means_no_server(
    files: Path, spawn: Spawn, aiohttp_server: Any
) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml"))
    proc = await spawn(*io_args(files), "--listen-address=", f"--reload-url={endpoint.url}", listen=False)
    await eventually(
        lambda: len(endpoint.seen) == 1, "the first reload", detail=lambda: "\n".join(proc.lines())
    )
    assert proc.alive()
    assert not any("listening" in line for line in proc.lines()), proc.lines()
    assert await proc.stop() == 0


async def test_an_https_reload_url_with_no_client_file_warns_once(files: Path, spawn: Spawn) -> None:
    proc = await spawn(*io_args(files), "--reload-url=https://127.0.0.1:1/-/reload", "--retry-interval=1h")
    await wait_serving(proc)
    warnings = [line for line in proc.lines() if "level=warn" in line]
    assert len(warnings) == 1 and "not verified" in warnings[0], proc.lines()
    assert "url=https://127.0.0.1:1/-/reload" in warnings[0]


async def test_signal_with_an_empty_runtimeinfo_url_says_it_is_not_verified(
    files: Path, spawn: Spawn
) -> None:
    proc = await spawn(
        *io_args(files),
        "--reload-method=signal",
        "--runtimeinfo-url=",
        "--process-executable-name=no-such-proc-z",
        "--retry-interval=1h",
    )
    await wait_serving(proc)
    await eventually(lambda: any("reload failed" in line for line in proc.lines()), "the reload attempt")
    text = "\n".join(proc.lines())
    assert "--runtimeinfo-url is empty: SIGHUP is sent and not verified" in text
    assert "no process named 'no-such-proc-z'" in text  # no runtimeinfo request was made first


async def test_build_info_and_no_created_series(files: Path, spawn: Spawn, aiohttp_server: Any) -> None:
    endpoint = await start_endpoint(aiohttp_server, Endpoint(files / "out" / "out.yaml"))
    proc = await spawn(*io_args(files), f"--reload-url={endpoint.url}")
    await wait_serving(proc, "/readyz")
    _, text = await proc.get("/metrics")
    labels = build_labels()
    assert labels["goversion"].startswith("python3.") and labels["version"] == __version__
    exposed = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels))
    assert metric_sample(text, "prometheus_config_reloader_build_info", exposed) == 1.0, text
    assert "_created" not in text
    assert metric_sample(text, "reloader_reloads_total") == 1.0


@pytest.fixture
def dirs(tmp_path: Path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "prometheus.yaml").write_text("a: 1\n")
    return tmp_path


async def test_apply_operations_count_as_go_counts_them(dirs: Path, aiohttp_server: Any) -> None:
    """Go counts one apply per wake-up of its loop (an event or the ticker): not the apply at startup,
    and not the retries of a reload, which happen inside one apply."""
    endpoint = await start_endpoint(
        aiohttp_server,
        Endpoint(dirs / "out" / "prometheus.env.yaml", answer=lambda n: 500 if n in (2, 3) else 200),
    )
    reloader = Reloader(options(dirs, endpoint.url), {})
    async with running(reloader):
        await eventually(reloader.healthy, "the watcher")
        await eventually(lambda: len(endpoint.seen) == 1, "the first reload")
        # The watcher's start re-reads once (changes made before it was in place): one apply.
        await eventually(lambda: sample(reloader, "reloader_config_apply_operations_total") == 1, "one apply")
        replace_file(dirs / "in" / "prometheus.yaml", b"a: 2\n")
        await eventually(lambda: len(endpoint.seen) == 4, "two failed reloads and a successful retry")
        await asyncio.sleep(0.3)  # a few retry intervals: nothing else may count
        assert sample(reloader, "reloader_config_apply_operations_total") == 2
        assert sample(reloader, "reloader_config_apply_operations_failed_total") == 0
        assert sample(reloader, "reloader_reloads_total") == 4
        assert sample(reloader, "reloader_reloads_failed_total") == 2
