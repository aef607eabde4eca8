"""No secret in any log of a whole test run: a pytest plugin (enabled in tests/conftest.py).

Tests register the secrets they set, best by letting the ``secret`` fixture make them::

    def test_x(secret):
        token = secret("bearer token")           # a fresh random value, registered
        password = secret("basic-auth password", "s3cret-chosen-by-the-test")

At the end of the session, every log of the run is searched for every secret:

- every ``*.log`` file under pytest's base temporary directory, which is where the process helpers
  (tests/support/procs.py, reloader_proc.py, tests/reloader/procs.py, ...) put each reloader's,
  operator's and target's output;
- what pytest captured from each test (stdout, stderr, log records of in-process reloaders and
  operators), which this plugin copies into ``captured-output.log`` there as the reports come in.

Secrets that tests write into files without registering them are found too: the values of
``password``, ``bearer_token``, ``credentials``, ``token`` and ``client_secret`` keys in YAML and JSON
files under the base temporary directory, and the body of every PEM private key there.

A secret found in a log fails the session (exit status 1) with a line naming the secret's description,
never its value, and the log file. The search itself is ``find_leaks``, a plain function.
"""

from __future__ import annotations

import json
import os
import re
import secrets as random_tokens
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

MIN_SECRET_CHARS = 8
"""Shorter values would match by chance (and make poor secrets): registering one is an error."""
SECRET_KEYS = frozenset({"password", "bearer_token", "credentials", "token", "client_secret"})
CAPTURED_LOG = "captured-output.log"
_MAX_HARVEST_BYTES = 256 * 1024
_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)\n-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
)


@dataclass(frozen=True)
class Leak:
    """A secret found in a log: what it is (never its value) and where."""

    what: str
    log: Path
    line: int


@dataclass
class Registry:
    """The secrets of this run: value -> description."""

    secrets: dict[str, str] = field(default_factory=dict)

    def register(self, value: str, what: str) -> str:
        """Remember ``value`` as a secret; returns it. Values under MIN_SECRET_CHARS are refused."""
        if len(value) < MIN_SECRET_CHARS:
            raise ValueError(f"secret {what!r} is shorter than {MIN_SECRET_CHARS} characters")
        self.secrets.setdefault(value, what)
        return value

    def new(self, what: str) -> str:
        """A fresh random secret (it cannot appear in a log by chance), registered."""
        return self.register(f"sekrit-{random_tokens.token_hex(12)}", what)


def variants(value: str) -> set[str]:
    """The forms a leaked value takes in a log: as is, JSON-escaped, logfmt-escaped."""
    return {value, json.dumps(value)[1:-1], value.replace("\\", "\\\\").replace('"', '\\"')}


def find_leaks(secrets: dict[str, str], logs: Iterable[Path]) -> list[Leak]:
    """Every (secret, log line) where a registered value appears, in any of its ``variants``."""
    needles = [(v.encode(), what) for value, what in secrets.items() for v in variants(value)]
    found: list[Leak] = []
    for log in logs:
        try:
            data = log.read_bytes()
        except OSError:
            continue  # removed meanwhile (a test's own cleanup)
        for needle, what in needles:
            at = data.find(needle)
            if at >= 0:
                found.append(Leak(what=what, log=log, line=data.count(b"\n", 0, at) + 1))
    return sorted(set(found), key=lambda leak: (str(leak.log), leak.line, leak.what))


def harvest(doc: Any, where: str) -> Iterator[tuple[str, str]]:
    """(value, description) for every secret-looking key in a parsed YAML or JSON document."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in SECRET_KEYS and isinstance(value, str) and "$(" not in value:
                if len(value) >= MIN_SECRET_CHARS:
                    yield value, f"{key} in {where}"
            else:
                yield from harvest(value, where)
    elif isinstance(doc, list):
        for item in doc:
            yield from harvest(item, where)


def harvest_files(root: Path) -> dict[str, str]:
    """Secrets that tests wrote into files under ``root`` (see the module docstring)."""
    found: dict[str, str] = {}
    for path in _files(root, (".yaml", ".yml", ".json", ".pem", ".key", ".crt")):
        try:
            if path.stat().st_size > _MAX_HARVEST_BYTES:
                continue
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        where = path.name
        for match in _PEM_KEY.finditer(text):
            for line in match.group(1).splitlines():
                if len(line) >= 40 and ":" not in line:  # base64 lines, not PEM headers
                    found.setdefault(line, f"private key in {where}")
        if path.suffix in (".yaml", ".yml", ".json"):
            try:
                docs = list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
            except yaml.YAMLError:
                continue
            for doc in docs:
                for value, what in harvest(doc, where):
                    found.setdefault(value, what)
    return found


def log_files(root: Path) -> list[Path]:
    return sorted(_files(root, (".log",)))


def _files(root: Path, suffixes: tuple[str, ...]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda _e: None):
        # Prometheus' TSDB and Alertmanager's storage hold no logs and many files.
        dirnames[:] = [d for d in dirnames if not d.startswith(("prom-data-", "am-data-", "wal", "chunks"))]
        for name in filenames:
            if name.endswith(suffixes):
                yield Path(dirpath) / name


# --- the pytest plugin ------------------------------------------------------------------------------

_CHECK = pytest.StashKey["LeakCheck"]()


class LeakCheck:
    """The hooks, bound to one session's config and registry."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.registry = Registry()

    def basetemp(self) -> Path | None:
        factory = getattr(self.config, "_tmp_path_factory", None)  # set by pytest's tmp_path plugin
        if factory is None:
            return None
        try:
            return Path(factory.getbasetemp())
        except OSError:
            return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Copy what pytest captured from the test into the run's log, which the final search reads."""
        base = self.basetemp() if report.sections else None
        if base is None:
            return
        with (base / CAPTURED_LOG).open("a", errors="backslashreplace") as f:
            for title, text in report.sections:
                f.write(f"=== {report.nodeid} {report.when}: {title}\n{text}\n")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        base = self.basetemp()
        if base is None:
            return
        found = {**harvest_files(base), **self.registry.secrets}
        logs = log_files(base)
        leaks = find_leaks(found, logs)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        summary = f"leak check: {len(found)} secrets searched for in {len(logs)} logs under {base}"
        if reporter is not None:
            reporter.write("\n")
            reporter.write_line(summary)
        if leaks:
            lines = [f"secret leaked: {leak.what} in {leak.log}:{leak.line}" for leak in leaks]
            if reporter is not None:
                for line in lines:
                    reporter.write_line(line, red=True)
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    check = LeakCheck(config)
    config.stash[_CHECK] = check
    config.pluginmanager.register(check, "leak-check")


@pytest.fixture
def secret(request: pytest.FixtureRequest) -> Callable[..., str]:
    """``secret(what)`` gives a fresh random secret; ``secret(what, value)`` registers a chosen one."""
    registry = request.config.stash[_CHECK].registry

    def make(what: str, value: str | None = None) -> str:
        return registry.new(what) if value is None else registry.register(value, what)

    return make
