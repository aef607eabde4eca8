"""The click command, built from ``reloader.flags.FLAGS``: help, ``--version``, and every error message.

``reloader.cli`` imports this only when ``flags.parse`` gives up on a command line (help, a version,
an unknown flag, a bad value): click is too slow to import for every start under a 10m CPU limit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import click
from click.core import ParameterSource

from reloader import __version__
from reloader.durations import parse_duration
from reloader.flags import (
    CHOICE,
    DURATION,
    FLAGS,
    FLOAT,
    PATH,
    POSITIVE_INT,
    SWITCH,
    Flag,
    normpath,
)

Parsed = tuple[dict[str, Any], frozenset[str]]


class NormPath(click.ParamType["str | None"]):
    """A path, normalised (``/etc/prometheus/rules/`` is ``/etc/prometheus/rules``); empty means unset.

    The Thanos sidecar's own reloader compares event paths with the flag as written, so a trailing
    slash there means rule changes wait for the next tick. Normalising once here avoids that.
    """

    name = "path"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | None:
        return None if value is None else normpath(os.fspath(value))


class Duration(click.ParamType[float]):
    """A click parameter type for Go durations; a bad one is a usage error naming the flag."""

    name = "duration"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, int | float):
            return float(value)
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _param_type(flag: Flag) -> click.ParamType[Any] | type[float] | None:
    if flag.kind == PATH:
        return NormPath()
    if flag.kind == DURATION:
        return Duration()
    if flag.kind == CHOICE:
        return click.Choice(list(flag.choices))
    if flag.kind == FLOAT:
        return float
    if flag.kind == POSITIVE_INT:
        return click.IntRange(min=1)
    return None


def _option(flag: Flag) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    kwargs: dict[str, Any] = {"help": flag.help}
    if flag.kind == SWITCH:
        kwargs.update(is_flag=True, default=flag.default)
    else:
        kwargs.update(type=_param_type(flag), multiple=flag.multiple)
        if flag.default is not None:
            kwargs.update(default=flag.default, show_default=flag.show_default)
    return click.option(flag.name, flag.dest, **kwargs)


def _print_short_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(__version__)
        ctx.exit(0)


def _parsed(**params: Any) -> Parsed:
    """Render a config (gzip, $(VAR) placeholders), write it atomically, and reload the target."""
    ctx = click.get_current_context()
    given = frozenset(n for n in params if ctx.get_parameter_source(n) is ParameterSource.COMMANDLINE)
    return params, given


def _build() -> click.Command:
    callback: Callable[..., Any] = _parsed
    # Decorators apply bottom-up: reversed, the options list (and --help shows them) in FLAGS' order.
    for flag in reversed(FLAGS):
        callback = _option(flag)(callback)
    callback = click.option(
        "--short-version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_print_short_version,
        help="Print the version number alone and exit.",
    )(callback)
    callback = click.version_option(
        __version__, "--version", prog_name="config-reloader", message="%(prog)s %(version)s"
    )(callback)
    return click.command(
        name="config-reloader",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    )(callback)


command = _build()


def parse(argv: Sequence[str]) -> Parsed | int:
    """(values, given) as ``flags.parse`` gives them, or the exit code once click has printed help,
    a version or an error (one line on stdout and 2, as kingpin prints its parse errors)."""
    try:
        result = command.main(args=list(argv), prog_name="config-reloader", standalone_mode=False)
    except click.ClickException as exc:
        click.echo(f"config-reloader: error: {exc.format_message()}")
        return 2
    except click.Abort:
        return 1
    return result if isinstance(result, tuple) else 0
