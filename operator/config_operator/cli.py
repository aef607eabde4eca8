"""``config-operator``: ``run`` the operator, or ``render`` what it would write, from YAML files.

Errors a user can fix (a bad kubeconfig, unreadable input files, a malformed PrometheusConfig) end with
one line on stderr and exit 1; never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from config_operator import __version__
from reloader import log as logsetup

if TYPE_CHECKING:
    from config_operator.app import Settings

log = logging.getLogger(__name__)


@click.group(name="config-operator", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="config-operator")
def cli() -> None:
    """Turns PrometheusConfig resources and the ServiceMonitors and PodMonitors they select into the
    gzipped Prometheus config Secret that config-reloader consumes."""


@cli.command()
@click.option(
    "--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig file; default: in-cluster config."
)
@click.option("--context", help="Kubeconfig context; default: its current-context.")
@click.option(
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace to watch for PrometheusConfigs and monitors (repeatable); default: all namespaces.",
)
@click.option(
    "--listen-address",
    default=":8080",
    show_default=True,
    help="Serves /metrics, /healthz, /readyz; '' for none.",
)
@click.option(
    "--leader-elect/--no-leader-elect",
    default=False,
    show_default=True,
    help="Run reconciles only while holding a Lease.",
)
@click.option("--leader-election-lease-name", default="config-operator", show_default=True)
@click.option(
    "--leader-election-namespace", default="default", show_default=True, help="Namespace of the Lease."
)
@click.option(
    "--leader-election-identity",
    default=None,
    help="Holder identity; default: $POD_NAME or host name + suffix.",
)
@click.option("--leader-election-lease-duration", type=int, default=15, show_default=True, help="Seconds.")
@click.option(
    "--leader-election-renew-deadline", type=float, default=10.0, show_default=True, help="Seconds."
)
@click.option("--leader-election-retry-period", type=float, default=2.0, show_default=True, help="Seconds.")
@click.option("--resync-interval", type=float, default=300.0, show_default=True, help="Seconds; 0 disables.")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True)
@click.option(
    "--watch-inactivity-timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds a silent watch is kept.",
)
@click.option("--log-format", type=click.Choice(logsetup.FORMATS), default="logfmt", show_default=True)
@click.option("--log-level", type=click.Choice(list(logsetup.LEVELS)), default="info", show_default=True)
def run(
    kubeconfig: str | None,
    context: str | None,
    namespaces: tuple[str, ...],
    listen_address: str,
    leader_elect: bool,
    leader_election_lease_name: str,
    leader_election_namespace: str,
    leader_election_identity: str | None,
    leader_election_lease_duration: int,
    leader_election_renew_deadline: float,
    leader_election_retry_period: float,
    resync_interval: float,
    workers: int,
    watch_inactivity_timeout: float,
    log_format: str,
    log_level: str,
) -> None:
    """Run the operator until SIGTERM or SIGINT."""
    # Imported here: kubernetes_asyncio takes longer to import than `render` takes to run.
    from config_operator.app import Settings, default_identity
    from config_operator.client import ConfigError
    from config_operator.informer import InformerSettings
    from config_operator.leader import LeaderSettings

    logsetup.setup(log_format, log_level)
    # At debug level the generated client logs whole response bodies, and those can be Secrets.
    logging.getLogger("kubernetes_asyncio.client.rest").setLevel(logging.INFO)
    identity = leader_election_identity or default_identity()
    leader = None
    if leader_elect:
        if not (
            leader_election_lease_duration
            > leader_election_renew_deadline
            > 1.2 * leader_election_retry_period
            >= 1.2
        ):
            raise click.BadParameter(
                "need lease-duration > renew-deadline > 1.2 * retry-period, and retry-period >= 1",
                param_hint="--leader-election-*",
            )
        leader = LeaderSettings(
            lease_name=leader_election_lease_name,
            lease_namespace=leader_election_namespace,
            identity=identity,
            lease_duration_s=leader_election_lease_duration,
            renew_deadline_s=leader_election_renew_deadline,
            retry_period_s=leader_election_retry_period,
        )
    settings = Settings(
        namespaces=tuple(dict.fromkeys(namespaces)),
        listen_address=listen_address or None,
        resync_interval_s=resync_interval,
        workers=workers,
        leader=leader,
        identity=identity,
        informer=InformerSettings(inactivity_timeout_s=watch_inactivity_timeout),
    )
    try:
        asyncio.run(_run(settings, kubeconfig=kubeconfig, context=context))
    except ConfigError as exc:
        click.echo(f"config-operator: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # the listen address is taken, say
        click.echo(f"config-operator: {exc.strerror or exc}", err=True)
        sys.exit(1)
    log.info("stopped")


async def _run(settings: Settings, *, kubeconfig: str | None, context: str | None) -> None:
    """Run the operator until a signal sets ``stop``; the signal handler only sets the event."""
    from config_operator.app import Operator
    from config_operator.client import Kube

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Kube.connect(
            kubeconfig=kubeconfig,
            context=context,
            user_agent=f"config-operator/{__version__} ({settings.identity})",
        ) as kube:
            operator = Operator(kube, settings)
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(operator.run(), name="operator")
                await stop.wait()
                log.info("signal received, stopping")
                task.cancel()
    except* OSError as group:
        raise _first_leaf(group) from None
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


def _first_leaf(error: BaseException) -> BaseException:
    """The first plain exception inside (nested) exception groups: the one line a user needs."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


@cli.command()
@click.option(
    "-f",
    "--filename",
    "files",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML file (multi-document) with PrometheusConfig, ServiceMonitor, PodMonitor, PrometheusRule, "
    "Probe, Namespace, Secret objects.",
)
@click.option(
    "--name", default=None, help="The PrometheusConfig to render (name or namespace/name), when several."
)
@click.option(
    "--rules-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Write the rule files here, one folder per rule ConfigMap (as mounted under /etc/prometheus/rules).",
)
def render(files: Sequence[str], name: str | None, rules_dir: str | None) -> None:
    """Print the prometheus.yaml the operator would write for these objects (no cluster needed)."""
    from config_operator.render import RenderError, render_files, write_rule_files

    try:
        rendered = render_files(list(files), name=name)
    except RenderError as exc:
        click.echo(f"config-operator render: {exc}", err=True)
        sys.exit(1)
    for warning in rendered.warnings:
        click.echo(f"warning: {warning}", err=True)
    if rendered.rules is not None and rules_dir is not None:
        try:
            write_rule_files(rendered.rules, rules_dir)
        except OSError as exc:
            click.echo(f"config-operator render: --rules-dir {rules_dir}: {exc.strerror or exc}", err=True)
            sys.exit(1)
    click.echo(rendered.text, nl=not rendered.text.endswith("\n") and bool(rendered.text))


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="config-operator")
