"""The apply path: render the input, write it atomically, hash it with the watched directories.

Init mode (``--watch-interval=0``) runs only this, so this module imports no asyncio, no web server and
no HTTP client: under prometheus-operator's 10m CPU limit every millisecond of imports is a tenth of a
second of wall time. ``reloader.app`` drives it from the sidecar's loop.
"""

from __future__ import annotations

import hashlib

from reloader import render, tree, write

# Annotations only: typing, dataclasses and logging cost about 30 ms of CPU to import, 3 s at 10m.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

    from reloader.logline import Log


ORDINAL_VAR: Final = "STATEFULSET_ORDINAL_NUMBER"


class StartupError(RuntimeError):
    """The first apply failed: the program cannot start. The message is one line."""


class Options:
    """What the flags say; durations in seconds, paths as strings (normalised by ``reloader.flags``).
    Not changed once made: ``replace`` makes a new one.

    - ``config_file``: input; gzip is detected by its magic bytes.
    - ``output_file``: rendered output; None means the input is only hashed.
    - ``watched_dirs``: directories whose files are part of the hash (rule files).
    - ``watch_interval_s``: period of the re-read ticker; 0 means init mode (render once and exit).
    - ``delay_interval_s``: quiet time after the last event before applying.
    - ``retry_interval_s``: wait before retrying a failed reload or apply.
    - ``reload_timeout_s``: limit for one reload.
    - ``reload_url``: POSTed to with the http method.
    - ``reload_method``: ``http`` or ``signal``.
    - ``process_executable_name``: gets SIGHUP with the signal method.
    - ``runtimeinfo_url``: polled after SIGHUP to see the reload take effect.
    - ``listen_address``: serves /metrics, /healthz, /readyz; None means no server.
    - ``web_config_file``: TLS and basic auth for that server.
    - ``http_client_file``: Prometheus-style HTTP client config for the reload and runtimeinfo URLs.
    - ``strict_env``: an unset ``$(VAR)`` is an error instead of staying literally.
    - ``max_config_bytes``: bound on the decompressed input (gzip bombs).
    - ``watch_heartbeat_s``: the file watcher proves it is alive this often; after three
      missed beats it counts as hung: /healthz fails and the watcher is restarted.
    """

    __slots__ = (
        "config_file",
        "delay_interval_s",
        "http_client_file",
        "listen_address",
        "max_config_bytes",
        "output_file",
        "process_executable_name",
        "reload_method",
        "reload_timeout_s",
        "reload_url",
        "retry_interval_s",
        "runtimeinfo_url",
        "strict_env",
        "watch_heartbeat_s",
        "watch_interval_s",
        "watched_dirs",
        "web_config_file",
    )

    def __init__(
        self,
        *,
        config_file: str | None = None,
        output_file: str | None = None,
        watched_dirs: tuple[str, ...] = (),
        watch_interval_s: float = 180.0,
        delay_interval_s: float = 1.0,
        retry_interval_s: float = 5.0,
        reload_timeout_s: float = 30.0,
        reload_url: str = "http://127.0.0.1:9090/-/reload",
        reload_method: str = "http",
        process_executable_name: str = "prometheus",
        runtimeinfo_url: str = "http://127.0.0.1:9090/api/v1/status/runtimeinfo",
        listen_address: str | None = None,
        web_config_file: str | None = None,
        http_client_file: str | None = None,
        strict_env: bool = False,
        max_config_bytes: int = render.DEFAULT_MAX_DECOMPRESSED_BYTES,
        watch_heartbeat_s: float = 5.0,
    ) -> None:
        self.config_file = config_file
        self.output_file = output_file
        self.watched_dirs = watched_dirs
        self.watch_interval_s = watch_interval_s
        self.delay_interval_s = delay_interval_s
        self.retry_interval_s = retry_interval_s
        self.reload_timeout_s = reload_timeout_s
        self.reload_url = reload_url
        self.reload_method = reload_method
        self.process_executable_name = process_executable_name
        self.runtimeinfo_url = runtimeinfo_url
        self.listen_address = listen_address
        self.web_config_file = web_config_file
        self.http_client_file = http_client_file
        self.strict_env = strict_env
        self.max_config_bytes = max_config_bytes
        self.watch_heartbeat_s = watch_heartbeat_s

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied."""
        return Options(**{**self._values(), **changes})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Options) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(self._values().values()))

    def __repr__(self) -> str:
        return "Options(" + ", ".join(f"{k}={v!r}" for k, v in self._values().items()) + ")"


def build_env(environ: Mapping[str, str], ordinal_from: str) -> dict[str, str]:
    """The variables ``$(NAME)`` may use: ``environ`` plus STATEFULSET_ORDINAL_NUMBER.

    The ordinal is the trailing digits of the variable named ``ordinal_from`` (POD_NAME ``prom-k8s-1``
    gives ``1``); when that variable is unset or has no trailing digits, it is the empty string, as
    prometheus-config-reloader always sets it.
    """
    env = dict(environ)
    env[ORDINAL_VAR] = trailing_digits(environ.get(ordinal_from, ""))
    return env


def trailing_digits(text: str) -> str:
    """The ASCII digits that end ``text``, as Go's ``\\d+$`` finds them; "" for none."""
    start = len(text)
    while start > 0 and "0" <= text[start - 1] <= "9":
        start -= 1
    return text[start:]


class Applied:
    """One successful apply.

    - ``sha256``: hash over the rendered config and every file of the watched directories.
    - ``output_changed``: the output file was rewritten (False when unchanged or with no output).
    - ``config_bytes``: size of the rendered config (of the raw input when there is no output file).
    - ``expansion``: unset variables seen while rendering.
    """

    __slots__ = ("config_bytes", "expansion", "output_changed", "sha256")

    def __init__(
        self,
        *,
        sha256: str,
        output_changed: bool,
        config_bytes: int,
        expansion: render.Expansion | None = None,
    ) -> None:
        self.sha256 = sha256
        self.output_changed = output_changed
        self.config_bytes = config_bytes
        self.expansion = expansion if expansion is not None else render.Expansion()


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


def log_applied(applied: Applied, opts: Options, log: Log) -> None:
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


def log_started(opts: Options, log: Log) -> None:
    """The "started" line, once the first apply has succeeded."""
    from reloader import __version__

    log.info(
        "started",
        extra={
            "version": __version__,
            "method": opts.reload_method,
            "config": str(opts.config_file),
            "output": str(opts.output_file),
            "watched_dirs": ",".join(str(d) for d in opts.watched_dirs),
        },
    )
