"""The fast YAML paths against PyYAML itself: the loader gives safe_load's data, the emitter dump_yaml's bytes."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from config_operator.generate import common as generate_common
from config_operator.generate.common import dump_yaml
from config_operator.generate.emit import Emitter
from config_operator.generate.load import load, load_all

ROOT = Path(__file__).resolve().parents[2]
YAML_FILES = sorted(
    str(p.relative_to(ROOT))
    for pattern in ("tests/config_operator/golden/*/*.yaml", "examples/**/*.yaml")
    for p in ROOT.glob(pattern)
)

# Strings that take every path of PyYAML's scalar analysis: plain, quoted, escaped, implicit types.
TRICKY = [
    "",
    " ",
    "a",
    "web",
    "__meta_kubernetes_pod_label_app",
    "serviceMonitor/ns/name/0",
    "${1}",
    "$(POD_NAME)",
    "(.+)",
    "Node;(.*)",
    "true",
    "True",
    "yes",
    "No",
    "off",
    "null",
    "~",
    "1",
    "0x1F",
    "012",
    "1.5",
    ".inf",
    "1e3",
    "2001-12-14",
    "1:30",
    "- a",
    "-a",
    "a: b",
    "a:b",
    "a #b",
    "a#b",
    "#a",
    "'quoted'",
    '"double"',
    "back\\slash",
    "[x]",
    "{x}",
    "x,y",
    "?x",
    "!tag",
    "&anchor",
    "*alias",
    "|",
    ">",
    "%",
    "@",
    "`",
    "---",
    "...",
    "trailing ",
    " leading",
    "tab\there",
    "ümlaut",
    "emoji 🔥",
    "\x07bell",
    "\u2028",
    "line\nbreak",
    "two\n\nbreaks\n",
    "=",
    "<<",
    "x" * 200,
    "a/b-c.d_e",
    "_",
]
SCALARS: list[Any] = [*TRICKY, 0, 1, -7, 10**20, 1.5, -0.0, float("inf"), True, False, None]


def _random_data(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.35:
        return rng.choice(SCALARS)
    if roll < 0.45:
        return rng.choice([{}, []])
    if roll < 0.75:
        return {
            rng.choice([*TRICKY, 1, True, None]): _random_data(rng, depth - 1)
            for _ in range(rng.randint(1, 4))
        }
    return [_random_data(rng, depth - 1) for _ in range(rng.randint(1, 4))]


@pytest.mark.parametrize("seed", range(300))
def test_emitter_writes_dump_yamls_bytes(seed: int) -> None:
    rng = random.Random(seed)
    data = _random_data(rng, 5)
    emitter = Emitter()
    assert emitter.dump(data) == dump_yaml(data)
    assert emitter.dump(data) == dump_yaml(data)  # again, from what it remembered


class _PurePythonDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


@pytest.mark.parametrize("seed", range(50))
def test_emitter_matches_the_pure_python_dumper_too(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generate_common, "_Dumper", _PurePythonDumper)
    data = _random_data(random.Random(seed), 5)
    assert Emitter().dump(data) == dump_yaml(data)


def test_emitter_hands_what_it_does_not_write_to_dump_yaml() -> None:
    emitter = Emitter()
    for data in ({"a": (1, 2)}, {"x": [b"bytes"]}, [{"k": {1, 2}}], {"long " * 40: 1}):
        assert emitter.dump(data) == dump_yaml(data)
    with pytest.raises(yaml.representer.RepresenterError):
        emitter.dump({"a": object()})  # PyYAML's own error, as before


@pytest.mark.parametrize("path", YAML_FILES)
def test_loader_gives_safe_loads_data(path: str) -> None:
    text = (ROOT / path).read_text()
    assert load_all(text) == list(yaml.safe_load_all(text))


@pytest.mark.parametrize(
    "text",
    [
        "a: &x {b: [1, 2]}\nc: *x\n",
        "base: &b {x: 1}\nmerged:\n  <<: *b\n  y: 2\n",
        "when: 2001-12-14\nbin: !!binary aGVsbG8=\n",
        "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\n",
        "yes: no\non: off\nhex: 0x1F\noct: 0o17\nold_oct: 017\nsexa: 1:30\nfloat: 1e3\ninf: -.inf\n",
        "dup: 1\ndup: 2\n",
        "? [complex, key]\n: value\n",
        "'quoted true': 'true'\n\"esc\": \"\\t\\u00fc\"\nnull_key: ~\n",
        "- - nested\n  - list\n- {}\n- []\n",
        "",
        "just a scalar\n",
        "!custom tag\n",
        "a: [unclosed\n",
        "key: value\n\tbad: tab\n",
    ],
)
def test_loader_on_unusual_yaml_is_safe_load(text: str) -> None:
    try:
        want: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        with pytest.raises(yaml.YAMLError) as info:
            load(text)
        assert type(info.value).__name__ == type(exc).__name__
        return
    assert load(text) == want


def test_loader_keeps_aliases_shared_as_safe_load_does() -> None:
    data = load("a: &x [1]\nb: *x\n")
    assert data["a"] is data["b"]


@pytest.mark.parametrize("pure_python", [False, True])
@pytest.mark.parametrize("seed", range(40))
def test_emitter_plain_shortcut_agrees_with_dump_yaml(
    seed: int, pure_python: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emitter writes strings of [A-Za-z0-9_(/$][A-Za-z0-9_./()$;|*+-]* without asking dump_yaml
    # (unless the resolver reads them as something else): check that against dump_yaml on many such
    # strings, and on neighbours that must not take the shortcut.
    rng = random.Random(seed)
    first, rest = "Aaz09_(/$YyNnOoTtFf.-|*+", "az09_./()$;|*+-AZeE:#, "
    words = ["true", "False", "yes", "NO", "on", "Off", "null", "Null", "y", "n", "_", "x.y", "a-", "b/"]
    words += ["15s", "1e3", "1_000", "0x1F", "012", "1.5", "(.+)", "$(SHARD);|.+;.+", "/metrics", "$1"]
    words += ["(app-00001);true", "go_gc_.*|go_memstats_.*", "-", "---", "...", "*", "|", "+1", "1:30"]
    strings = [
        rng.choice(first) + "".join(rng.choice(rest) for _ in range(rng.randint(0, 12))) for _ in range(200)
    ]
    strings += words
    if pure_python:
        monkeypatch.setattr(generate_common, "_Dumper", _PurePythonDumper)
    data = {s: [s, {s: s}] for s in strings}
    assert Emitter().dump(data) == dump_yaml(data)


def test_emitter_tells_remembered_items_apart_by_type() -> None:
    # 1, 1.0 and True are equal in Python and written differently; so are a list and a mapping.
    emitter = Emitter()
    variants: list[Any] = [1, 1.0, True, "1", None, [1], {"x": 1}, -0.0, 0.0, 0, False]
    for value in variants * 2:
        data = {"rules": [{"a": value, "b": [str(value)]}, {"a": value}], "v": value, "s": [value]}
        assert emitter.dump(data) == dump_yaml(data)
        assert emitter.dump([data]) == dump_yaml([data])
    # Keys too, in one mapping's sub-mappings: each line is remembered by its key.
    keys: dict[str, Any] = {f"m{i}": {k: "x", "k": {k: []}} for i, k in enumerate([1, True, 1.0, 0.0, -0.0])}
    assert emitter.dump(keys) == dump_yaml(keys)


class _Str(str):
    pass


def test_emitter_hands_subclasses_in_remembered_items_to_dump_yaml() -> None:
    # marshal refuses subclasses, so an item holding one is never taken for the equal plain item.
    emitter = Emitter()
    plain = {"rules": [{"a": "x"}]}
    assert emitter.dump(plain) == dump_yaml(plain)
    with pytest.raises(yaml.representer.RepresenterError):
        emitter.dump({"rules": [{"a": _Str("x")}]})


def test_emitter_writes_the_same_with_and_without_what_it_remembered() -> None:
    # Every job of a config through one emitter (most items remembered) against a fresh emitter per
    # job (nothing remembered) and against dump_yaml.
    rng = random.Random(7)
    rules = [{"source_labels": [rng.choice(TRICKY)], "regex": rng.choice(TRICKY)} for _ in range(20)]
    jobs = [
        {"job_name": f"j{i}", "relabel_configs": [rng.choice(rules) for _ in range(rng.randint(0, 6))]}
        for i in range(300)
    ]
    shared = Emitter()
    for job in jobs:
        assert shared.dump([job]) == Emitter().dump([job]) == dump_yaml([job])


def test_loader_without_libyaml_is_safe_load_too() -> None:
    # Where PyYAML was built without libyaml the loader sits on the pure-Python one; a fresh process,
    # so that hiding CSafeLoader changes nothing for the other tests.
    script = (
        "import sys, yaml\n"
        "del yaml.CSafeLoader\n"
        "from config_operator.generate.load import _Loader, load_all\n"
        "assert _Loader.__mro__[1] is yaml.SafeLoader, _Loader.__mro__\n"
        "for path in sys.argv[1:]:\n"
        "    text = open(path).read()\n"
        "    assert load_all(text) == list(yaml.safe_load_all(text)), path\n"
        "print('ok')\n"
    )
    files = [str(ROOT / p) for p in YAML_FILES]
    proc = subprocess.run(
        [sys.executable, "-c", script, *files], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr
