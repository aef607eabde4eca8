"""README.md against the code (issue 4): its flag and metric tables list exactly what the two programs
have, and it holds the sections a user needs to deploy the project in any of its four ways."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from prometheus_client import CollectorRegistry

from config_operator.cli import cli as operator_cli
from config_operator.metrics import OperatorMetrics
from reloader.command import command as reloader_command
from reloader.metrics import new_metrics

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    """The text under the ``## title`` heading, up to the next heading of that level."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def first_column(text: str, header: str) -> set[str]:
    """The backticked names in the first cell of each row of the table whose header starts ``| header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    names: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cell = line.split("|")[1]
        names |= {re.sub(r"\{.*\}$", "", n) for n in re.findall(r"`([^`]+)`", cell)}
    return names


def long_options(command: click.Command) -> set[str]:
    """Every ``--flag`` a click command declares (``--help`` aside, which click adds to all)."""
    return {o for p in command.params if isinstance(p, click.Option) for o in p.opts if o.startswith("--")}


def exported(registry: CollectorRegistry, prefix: str) -> set[str]:
    """The metric names a scrape shows for a registry's families with ``prefix`` (counters with _total)."""
    return {
        f.name + ("_total" if f.type == "counter" else "")
        for f in registry.collect()
        if f.name.startswith(prefix)
    }


def test_reloader_flag_table_is_the_cli() -> None:
    table = first_column(section("config-reloader flags"), "flag")
    assert table == long_options(reloader_command)


def test_operator_flag_table_is_the_run_command() -> None:
    run = operator_cli.commands["run"]
    table = first_column(section("config-operator"), "flag of `config-operator run`")
    assert table == long_options(run)


def test_reloader_metric_table_is_the_registry() -> None:
    table = first_column(section("config-reloader metrics and endpoints"), "metric")
    registry = new_metrics("http").registry
    ours = exported(registry, "reloader_") | exported(registry, "prometheus_config_reloader_")
    assert table - {"process_*"} == ours
    assert "process_*" in table and exported(registry, "process_")


def test_operator_metric_table_is_the_registry() -> None:
    table = first_column(section("config-operator"), "metric")
    assert table == exported(OperatorMetrics.create(process_metrics=False).registry, "config_operator_")


def test_four_ways_to_run_it_link_to_their_examples() -> None:
    links = re.findall(r"\]\((examples/[^)]+)\)", section("Four ways to run it"))
    assert sorted(set(links)) == [
        "examples/kubernetes/operator",
        "examples/kubernetes/sidecar",
        "examples/prometheus-operator",
        "examples/vm",
    ]
    for link in links:
        assert (ROOT / link / "README.md").is_file(), link


def test_the_comparison_says_what_is_the_same_and_what_is_better() -> None:
    text = section("Compared with prometheus-config-reloader")
    assert text.lstrip().startswith("The same:")
    assert "\nBetter:\n" in text


@pytest.mark.parametrize("topic", ["A reload that fails.", "An unset variable.", "A watch that seems dead."])
def test_troubleshooting_covers(topic: str) -> None:
    assert f"**{topic}**" in section("Troubleshooting")


def test_the_two_commands_are_introduced() -> None:
    intro = README.split("\n## ", 1)[0]
    assert "config-reloader" in intro and "config-operator" in intro
    assert "pip install .  " in intro and "pip install '.[operator]'" in intro


def _supported(text: str, header: str) -> tuple[set[str], set[str]]:
    """Top-level field names (not those in parentheses or after a colon) of a field table's rows: those
    config-operator supports ("yes" in its column), and the others."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header}"))
    yes: set[str] = set()
    other: set[str] = set()
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = line.split("|")
        cell = re.sub(r"\([^)]*\)", "", cells[1]).split(":")[0]
        (yes if cells[3].strip().startswith("yes") else other).update(re.findall(r"`([^`]+)`", cell))
    return yes, other


def test_monitor_field_tables_are_what_generation_reads() -> None:
    from config_operator.generate import (
        POD_METRICS_ENDPOINT_FIELDS,
        POD_MONITOR_FIELDS,
        SERVICE_MONITOR_ENDPOINT_FIELDS,
        SERVICE_MONITOR_FIELDS,
    )

    text = section("config-operator")
    spec_yes, spec_other = _supported(text, "monitor spec field")
    assert spec_yes == SERVICE_MONITOR_FIELDS | POD_MONITOR_FIELDS
    assert not spec_other & spec_yes
    endpoint_yes, endpoint_other = _supported(text, "endpoint field")
    assert endpoint_yes == SERVICE_MONITOR_ENDPOINT_FIELDS | POD_METRICS_ENDPOINT_FIELDS
    assert endpoint_other == set()
