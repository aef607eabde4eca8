"""The start-up parser (reloader.flags.parse) against the click command it stands in for.

Both read every plain command line the same; anything else the start-up parser leaves to click, which
reports it. The small lexers that replace re, json and urllib.parse on the start-up path are checked
against those modules.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from click.core import ParameterSource
from hypothesis import given
from hypothesis import strategies as st

from reloader import flags
from reloader.apply import trailing_digits
from reloader.command import command
from reloader.logline import quote
from reloader.quickpost import split_plain


def by_click(argv: list[str]) -> tuple[dict[str, Any], frozenset[str]]:
    with command.make_context("config-reloader", argv) as ctx:
        given = frozenset(n for n in ctx.params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE)
        return dict(ctx.params), given


PLAIN = [
    # prometheus-operator's sidecar and init container
    [
        "--listen-address=:8080",
        "--reload-url=http://127.0.0.1:9090/-/reload",
        "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
        "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
        "--watched-dir=/etc/prometheus/rules/prometheus-k8s-rulefiles-0",
        "--web-config-file=/etc/prometheus/web_config/web-config.yaml",
    ],
    [
        "--watch-interval=0",
        "--listen-address=:8081",
        "--config-file=/etc/prometheus/config/prometheus.yaml.gz",
        "--config-envsubst-file=/etc/prometheus/config_out/prometheus.env.yaml",
    ],
    # the Thanos sidecar's names, values as separate words
    [
        "--reloader.config-file",
        "/etc/prometheus/prometheus.yaml.tmpl",
        "--reloader.rule-dir",
        "/etc/prometheus/rules/",
        "--reloader.rule-dir=/etc/prometheus/more//rules",
        "--prometheus.url",
        "http://localhost:9090/prefix/",
        "--reloader.method=signal",
        "--reloader.watch-interval=1m30s",
    ],
    # switches, empty values, a repeated flag (the last one wins), "=" inside a value
    ["--config-file=a", "--strict-env", "--listen-address=", "--log-level=none", "--log-level=debug"],
    ["--config-file=", "--watched-dir=", "--watched-dir=/r", "--reload-url=http://h/x?a=b=c"],
    ["--config-file=a", "--delay-interval=0", "--max-config-bytes=1_000", "--auto-gomemlimit-ratio=1e-1"],
    ["--config-file=a", "--log-format", "json", "--reload-timeout=1.5h", "--retry-interval=+500ms"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_a_plain_command_line_parses_as_click_parses_it(argv: list[str]) -> None:
    assert flags.parse(argv) == by_click(argv)


LEFT_TO_CLICK = [
    ["--help"],
    ["-h"],
    ["--version"],
    ["--short-version"],
    ["--config-file=a", "--no-such-flag"],
    ["--config-file=a", "positional"],
    ["--config-file=a", "--"],
    ["--config-file"],  # no value
    ["--config-file", "-x"],  # a value that looks like a flag
    ["--strict-env=true"],
    ["--watch-interval=3x"],
    ["--watch-interval=-1s"],
    ["--reload-method=HTTP"],
    ["--max-config-bytes=0"],
    ["--max-config-bytes=many"],
    ["--auto-gomemlimit-ratio=half"],
]


@pytest.mark.parametrize("argv", LEFT_TO_CLICK)
def test_anything_else_is_left_to_click(argv: list[str]) -> None:
    assert flags.parse(argv) is None


def test_every_flag_of_the_table_is_an_option_of_the_click_command() -> None:
    options = {p.name: p for p in command.params}
    for flag in flags.FLAGS:
        assert flag.dest in options, flag.name
        assert flag.name in options[flag.dest].opts
    defaults = flags.parse([])
    assert defaults is not None
    assert defaults == by_click([])


@given(st.text(alphabet="hts:p/?#@[]a .1\t\nHTPS", max_size=20), st.sampled_from(["", "http://", "https://"]))
def test_a_url_read_as_plainly_http_is_one_that_urlsplit_reads_so(tail: str, head: str) -> None:
    url = head + tail
    if flags.plainly_http(url):
        parts = urlsplit(url)
        assert parts.scheme in ("http", "https") and parts.netloc


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:9090/-/reload", True),
        ("https://prom:9443/", True),
        (" http://padded/", True),  # urlsplit strips it: accepted as before
        ("ftp://host/", False),
        ("http:///no-host", False),
        ("127.0.0.1:9090", False),
    ],
)
def test_check_url_accepts_what_urlsplit_accepts(url: str, ok: bool) -> None:
    if ok:
        flags.check_url(url, "--reload-url")
    else:
        with pytest.raises(flags.FlagError, match="is not an http or https URL"):
            flags.check_url(url, "--reload-url")


@given(st.text())
def test_quote_is_json_dumps(text: str) -> None:
    assert quote(text) == json.dumps(text)


@given(st.text(alphabet="ab-0123456789\u0661\n", max_size=12))
def test_trailing_digits_are_what_gos_regexp_finds(text: str) -> None:
    # Go's \d+$: ASCII digits at the very end of the text (Python's re needs [0-9] and \Z for that).
    match = re.search(r"[0-9]+\Z", text)
    assert trailing_digits(text) == (match.group(0) if match else "")


@given(
    st.text(alphabet="h/?#:@[]a.1 %9\t", max_size=16), st.sampled_from(["http://", "https://", "HTTP://", ""])
)
def test_a_plain_http_url_splits_as_urlsplit_splits_it(tail: str, head: str) -> None:
    url = head + tail
    plain = split_plain(url)
    if plain is None:
        return
    parts = urlsplit(url)
    assert parts.scheme == "http" and "@" not in parts.netloc
    assert (parts.hostname, parts.port or 80, parts.netloc) == (plain.host.lower(), plain.port, plain.netloc)
    assert (parts.path or "/") + (f"?{parts.query}" if parts.query else "") == plain.target


def test_split_plain_reads_prometheus_operator_s_reload_url() -> None:
    plain = split_plain("http://127.0.0.1:9090/-/reload")
    assert plain is not None
    assert (plain.host, plain.port, plain.netloc, plain.target) == (
        "127.0.0.1",
        9090,
        "127.0.0.1:9090",
        "/-/reload",
    )
    assert split_plain("http://user:pw@127.0.0.1:9090/-/reload") is None
    assert split_plain("https://127.0.0.1:9090/-/reload") is None
