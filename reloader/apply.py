"""The apply path: render the input, write it atomically, hash it with the watched directories.

Init mode (``--watch-interval=0``) runs only this, so this module imports no asyncio, no web server and
no HTTP client: under prometheus-operator's 10m CPU limit every millisecond of imports is a tenth of a
second of wall time. ``reloader.app`` drives it from the sidecar's loop.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from reloader import render, tree, write

log = logging.getLogger("reloader")

ORDINAL_VAR: Final = "STATEFULSET_ORDINAL_NUMBER"
_TRAILING_DIGITS: Final = re.compile(r"(\d+)$")


class StartupError(RuntimeError):
    """The first apply failed: the program cannot start. The message is one line."""


@dataclass(frozen=True)
class Options:
    """What the flags say; durations in seconds."""

    config_file: Path | None = None
    """Input; gzip is detected by its magic bytes."""
    output_file: Path | None = None
    """Rendered output; None means the input is only hashed."""
    watched_dirs: tuple[Path, ...] = ()
    """Directories whose files are part of the hash (rule files)."""
    watch_interval_s: float = 180.0
    """Period of the re-read ticker; 0 means init mode (the CLI renders once and exits)."""
    delay_interval_s: float = 1.0
    """Quiet time after the last event before applying."""
    retry_interval_s: float = 5.0
    """Wait before retrying a failed reload or apply."""
    reload_timeout_s: float = 30.0
    """Limit for one reload."""
    reload_url: str = "http://127.0.0.1:9090/-/reload"
    """POSTed to with the http method."""
    reload_method: str = "http"
    """``http`` or ``signal``."""
    process_executable_name: str = "prometheus"
    """Gets SIGHUP with the signal method."""
    runtimeinfo_url: str = "http://127.0.0.1:9090/api/v1/status/runtimeinfo"
    """Polled after SIGHUP to see the reload take effect."""
    listen_address: str | None = None
    """Serves /metrics, /healthz, /readyz; None means no server."""
    web_config_file: Path | None = None
    """TLS and basic auth for that server."""
    http_client_file: Path | None = None
    """Prometheus-style HTTP client config for the reload and runtimeinfo URLs."""
    strict_env: bool = False
    """An unset ``$(VAR)`` is an error instead of staying literally."""
    max_config_bytes: int = render.DEFAULT_MAX_DECOMPRESSED_BYTES
    """Bound on the decompressed input (gzip bombs)."""
    watch_heartbeat_s: float = 5.0
    """The file watcher's thread proves it is alive this often; after three missed beats it counts as
    hung: /healthz fails and the watcher is restarted."""


def build_env(environ: Mapping[str, str], ordinal_from: str) -> dict[str, str]:
    """The variables ``$(NAME)`` may use: ``environ`` plus STATEFULSET_ORDINAL_NUMBER.

    The ordinal is the trailing digits of the variable named ``ordinal_from`` (POD_NAME ``prom-k8s-1``
    gives ``1``); when that variable is unset or has no trailing digits, it is the empty string, as
    prometheus-config-reloader always sets it.
    """
    env = dict(environ)
    match = _TRAILING_DIGITS.search(environ.get(ordinal_from, ""))
    env[ORDINAL_VAR] = match.group(1) if match else ""
    return env


@dataclass(frozen=True)
class Applied:
    """One successful apply."""

    sha256: str
    """Hash over the rendered config and every file of the watched directories."""
    output_changed: bool
    """The output file was rewritten (False when unchanged or when there is no output)."""
    config_bytes: int
    """Size of the rendered config (of the raw input when there is no output file)."""
    expansion: render.Expansion = field(default_factory=render.Expansion)
    """Unset variables seen while rendering."""


class ApplyError(RuntimeError):
    """An apply failed; the message is one line naming the path and the cause."""


def apply_config(opts: Options, env: Mapping[str, str]) -> Applied:
    """Render the input, write it atomically, and hash it with the watched directories.

    Blocking file I/O: the loop runs it in a thread. Raises ApplyError; the output is then untouched.
    """
    digest = hashlib.sha256()
    expansion = render.Expansion()
    changed = False
    size = 0
    try:
        if opts.config_file is not None:
            source = str(opts.config_file)
            chunks = write.read_chunks(opts.config_file)
            if opts.output_file is not None:
                rendered = render.render(
                    chunks,
                    env,
                    expansion,
                    source=source,
                    strict=opts.strict_env,
                    max_bytes=opts.max_config_bytes,
                )
                result = write.write_atomic(opts.output_file, rendered)
                digest.update(bytes.fromhex(result.sha256))
                changed, size = result.changed, result.size
            else:
                # No output: like the Go reloaders, the raw input is only hashed.
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                if size == 0:
                    raise render.RenderError(f"{source}: input is empty")
        tree.hash_dirs(opts.watched_dirs, digest)
    except render.RenderError as exc:
        raise ApplyError(str(exc)) from exc
    except write.WriteError as exc:
        raise ApplyError(str(exc.strerror)) from exc
    except OSError as exc:
        where = exc.filename if exc.filename is not None else opts.config_file
        raise ApplyError(f"{where}: {exc.strerror or exc.__class__.__name__}") from exc
    return Applied(sha256=digest.hexdigest(), output_changed=changed, config_bytes=size, expansion=expansion)


def log_applied(applied: Applied, opts: Options) -> None:
    """One info line for a written config, and one warning per unset variable (names only, never values)."""
    if applied.output_changed:
        log.info(
            "config written",
            extra={
                "path": str(opts.output_file),
                "bytes": applied.config_bytes,
                "sha256": applied.sha256[:16],
            },
        )
    for name, count in sorted(applied.expansion.unset.items()):
        log.warning(
            "environment variable not set, left as is",
            extra={"var": name, "references": count, "path": str(opts.config_file)},
        )
