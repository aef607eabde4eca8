"""Cached generation: byte for byte what uncached generation gives, through every kind of change."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
import yaml

from bench import operator_fixtures as fx
from config_operator.generate import JobCache, Lookup, Reference, dump_yaml, generate
from config_operator.generate import cache as cache_module
from config_operator.generate.cache import Built
from config_operator.generate.common import Reject

NAMESPACES = 4


def _versioned(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"]["resourceVersion"] = str(rv)
    obj["metadata"]["uid"] = f"uid-{obj['metadata']['namespace']}-{obj['metadata']['name']}"
    return obj


class World:
    """A PrometheusConfig and its monitors, with resourceVersions moving as an API server's would."""

    def __init__(self, monitors: int = 12) -> None:
        self.rv = 0
        self.pc = fx.prometheus_config()
        self.namespaces = fx.namespaces(NAMESPACES)
        self.monitors = [self._stamp(fx.service_monitor(i, NAMESPACES)) for i in range(monitors)]

    def _stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        return _versioned(obj, self.rv)

    def edit(self, index: int, change: Any) -> None:
        obj = copy.deepcopy(self.monitors[index])
        change(obj)
        self.monitors[index] = self._stamp(obj)

    def both(self, cache: JobCache) -> tuple[bytes, bytes]:
        args = (self.pc, self.monitors, [], self.namespaces, [])
        return generate(*args, cache=cache).config, generate(*args).config


def _interval(value: str) -> Any:
    def change(obj: dict[str, Any]) -> None:
        obj["spec"]["endpoints"][0]["interval"] = value

    return change


def test_cached_output_is_uncached_output_through_changes() -> None:
    world, cache = World(), JobCache()
    first, uncached = world.both(cache)
    assert first == uncached
    # The pieces join into what dumping the whole config at once gives.
    assert dump_yaml(yaml.safe_load(first)) == first
    assert cache.misses == 12

    steps: list[tuple[str, Any]] = [
        ("one monitor edited", lambda: world.edit(3, _interval("45s"))),
        ("a monitor added", lambda: world.monitors.append(world._stamp(fx.service_monitor(40, NAMESPACES)))),
        ("a monitor deleted", lambda: world.monitors.pop(0)),
        ("a monitor made malformed", lambda: world.edit(2, _interval("soon"))),
        ("and fixed again", lambda: world.edit(2, _interval("20s"))),
        ("deselected by its labels", lambda: world.edit(4, lambda o: o["metadata"]["labels"].pop("release"))),
        ("a namespace deselected", lambda: world.namespaces[1]["metadata"]["labels"].pop("monitoring")),
        (
            "the namespace selector widened",
            lambda: world.pc["spec"].update(serviceMonitorNamespaceSelector={}),
        ),
        (
            "the selector narrowed",
            lambda: world.pc["spec"].update(serviceMonitorSelector={"matchLabels": {"team": "team-002"}}),
        ),
        ("the global interval changed", lambda: world.pc["spec"].update(scrapeInterval="1m")),
        ("rule files added", lambda: world.pc["spec"].update(ruleFiles=["/etc/rules/*.yaml"])),
    ]
    previous = first
    for what, step in steps:
        step()
        cached, uncached = world.both(cache)
        assert cached == uncached, what
        assert cached != previous, f"{what}: the config should have changed"
        previous = cached


def test_one_changed_monitor_is_the_only_one_rendered_again() -> None:
    world, cache = World(), JobCache()
    world.both(cache)
    misses = cache.misses
    world.edit(5, _interval("45s"))
    world.both(cache)
    assert cache.misses == misses + 1
    assert cache.hits == 11


def test_a_rejected_monitor_is_remembered_with_its_reason() -> None:
    world, cache = World(), JobCache()
    world.edit(1, _interval("soon"))
    args = (world.pc, world.monitors, [], world.namespaces, [])
    first = generate(*args, cache=cache)
    again = generate(*args, cache=cache)
    assert first.rejected == again.rejected == generate(*args).rejected
    assert len(first.rejected) == 1 and "soon" in first.rejected[0].reason
    assert cache.hits == 12


def test_a_context_change_renders_every_monitor_again() -> None:
    world, cache = World(), JobCache()
    world.both(cache)
    hits = cache.hits
    world.pc["spec"]["scrapeInterval"] = "5s"
    cached, uncached = world.both(cache)
    assert cache.hits == hits
    assert cached == uncached


def test_sweep_forgets_monitors_gone_from_the_selection() -> None:
    world, cache = World(), JobCache()
    world.both(cache)
    assert len(cache) == 12
    del world.monitors[4:]
    world.both(cache)
    assert len(cache) == 4


def test_objects_without_resource_version_are_never_cached() -> None:
    cache = JobCache()
    monitors = [fx.service_monitor(i, NAMESPACES) for i in range(3)]
    args = (fx.prometheus_config(), monitors, [], fx.namespaces(NAMESPACES), [])
    generate(*args, cache=cache)
    monitors[0]["spec"]["endpoints"][0]["interval"] = "45s"  # same (absent) version, new content
    assert generate(*args, cache=cache).config == generate(*args).config
    assert len(cache) == 0 and cache.hits == 0


def _secret(rv: str, value: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "auth", "resourceVersion": rv, "uid": "s1"},
        "data": {"password": base64.b64encode(value.encode()).decode()},
    }


def test_a_job_is_built_again_when_a_secret_it_read_changes() -> None:
    cache = JobCache()
    monitor = _versioned(fx.service_monitor(0, NAMESPACES), 7)
    built: list[str | None] = []

    def build(lookup: Lookup) -> Built:
        value = lookup.secret_value("ns", "auth", "password")
        built.append(value)
        if value is None:
            raise Reject("Secret ns/auth not found")
        return Built([{"job_name": "j", "params": {"v": [str(len(value))]}}])

    def fragment(*secrets: dict[str, Any]) -> Any:
        lookup = Lookup(secrets)  # type: ignore[arg-type]
        result = cache.fragment("ServiceMonitor", ("ns", "m"), monitor, ("30s",), lookup, build)
        assert Reference("Secret", "ns", "auth") in lookup.references  # even from the cache
        cache.sweep()
        return result

    assert fragment(_secret("1", "abc")).yaml == b"- job_name: j\n  params:\n    v:\n    - '3'\n"
    fragment(_secret("1", "abc"))
    assert built == ["abc"]
    assert b"'5'" in fragment(_secret("2", "abcde")).yaml
    assert fragment().rejected == "Secret ns/auth not found"
    assert built == ["abc", "abcde", None]


@pytest.mark.parametrize("extra", [{"additional": True}, {}])
def test_additional_scrape_configs_join_the_cached_jobs(extra: dict[str, Any]) -> None:
    world, cache = World(3), JobCache()
    secrets = []
    if extra:
        jobs = [
            {"job_name": "static", "static_configs": [{"targets": ["a:1"], "labels": {"note": "two\nlines"}}]}
        ]
        world.pc["spec"]["additionalScrapeConfigs"] = {"name": "extra", "key": "jobs.yaml"}
        secrets = [
            {
                "metadata": {"namespace": fx.PC_NAMESPACE, "name": "extra"},
                "stringData": {"jobs.yaml": yaml.safe_dump(jobs)},
            }
        ]
    args = (world.pc, world.monitors, [], world.namespaces, secrets)
    cached = generate(*args, cache=cache).config  # type: ignore[arg-type]
    assert cached == generate(*args).config  # type: ignore[arg-type]
    assert dump_yaml(yaml.safe_load(cached)) == cached


def test_no_selected_monitor_gives_an_empty_job_list() -> None:
    world = World(2)
    world.pc["spec"]["serviceMonitorSelector"] = {"matchLabels": {"release": "other"}}
    config = generate(world.pc, world.monitors, [], world.namespaces, [], cache=JobCache()).config
    assert b"\nscrape_configs: []\n" in config
    assert dump_yaml(yaml.safe_load(config)) == config


def test_the_emitters_memory_is_bounded_as_monitors_come_and_go(monkeypatch: pytest.MonkeyPatch) -> None:
    # Above what one config's shared lines take (about 160 with sharding and the external labels).
    monkeypatch.setattr(cache_module, "EMITTER_MEMO_BASE", 200)
    world, cache = World(3), JobCache()
    sizes = []
    for round_ in range(30):
        # Every round, three monitors that never existed before: new names, new lines to remember.
        world.monitors = [
            world._stamp(fx.service_monitor(100 + 3 * round_ + i, NAMESPACES)) for i in range(3)
        ]
        cached, uncached = world.both(cache)
        assert cached == uncached
        sizes.append(cache.emitter.memo_size())
    assert max(sizes) <= 200 + cache_module.EMITTER_MEMO_PER_MONITOR * 3 + max(sizes[:1])
    assert min(sizes[10:]) < max(sizes)  # it was reset along the way
