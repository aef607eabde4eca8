"""A reference model of Prometheus 2.42's relabeling and target labels, in plain Python (no I/O).

What it models, from Prometheus's model/relabel and scrape/target.go (facts, not their code):

- a relabel step joins its source labels' values (a missing label is "") with the separator, and
  matches the regex anchored at both ends; actions replace (the default), keep, drop, keepequal,
  dropequal, hashmod (md5, the last 8 bytes as a big-endian integer, modulo), labelmap, labeldrop,
  labelkeep, lowercase, uppercase. Setting a label to "" deletes it. Each step reads the labels as
  they were before it. Replacement templates follow Go's Regexp.Expand: ``$1``, ``${1}``, ``$name``,
  ``$$``; a name is the longest run of letters, digits and ``_``, so ``$1x`` is group "1x" (empty).
- a target starts from its discovered labels plus job, __scrape_interval__, __scrape_timeout__,
  __metrics_path__ and __scheme__ where unset, and __param_<k> for the job's params; after the
  relabel_configs, no labels means dropped, no __address__ is an error; __meta_* labels are removed,
  instance defaults to __address__; the API shows the labels without the ``__`` prefix; active
  targets with equal labels and URL are one.

Regexes are Python's ``re``: the fuzzing only writes ones on which RE2 and Python agree.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

Labels = dict[str, str]
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


class TargetError(ValueError):
    """Prometheus would refuse the target (and show it neither active nor dropped)."""


def expand(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.ExpandString of ``template`` with ``match``."""
    out: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char != "$":
            out.append(char)
            i += 1
            continue
        rest = template[i + 1 :]
        if rest.startswith("$"):
            out.append("$")
            i += 2
            continue
        name, consumed = _extract(rest)
        if name is None:
            out.append("$")  # malformed: a literal dollar
            i += 1
            continue
        i += 1 + consumed
        out.append(_group(match, name))
    return "".join(out)


def _extract(rest: str) -> tuple[str | None, int]:
    braced = rest.startswith("{")
    body = rest[1:] if braced else rest
    n = 0
    while n < len(body) and _NAME_CHAR.match(body[n]):
        n += 1
    if n == 0:
        return None, 0
    if braced:
        if n >= len(body) or body[n] != "}":
            return None, 0
        return body[:n], n + 2
    return body[:n], n


def _group(match: re.Match[str], name: str) -> str:
    if name.isdigit():
        index = int(name)
        if index <= (match.re.groups or 0):
            return match.group(index) or ""
        return ""
    if name in match.re.groupindex:
        return match.group(name) or ""
    return ""


def _anchored(regex: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{regex})$", re.DOTALL)


def _set(labels: Labels, name: str, value: str) -> None:
    if value:
        labels[name] = value
    else:
        labels.pop(name, None)


def relabel(labels: Mapping[str, str], configs: list[Mapping[str, Any]]) -> Labels | None:
    """Apply relabel_configs (Prometheus YAML, snake_case); None when the target is dropped."""
    current = dict(labels)
    for cfg in configs:
        result = _step(current, cfg)
        if result is None:
            return None
        current = result
    return current


def _step(labels: Labels, cfg: Mapping[str, Any]) -> Labels | None:
    action = str(cfg.get("action", "replace")).lower()
    regex = _anchored(str(cfg.get("regex", "(.*)")))
    separator = str(cfg.get("separator", ";"))
    value = separator.join(labels.get(name, "") for name in cfg.get("source_labels") or [])
    target = str(cfg.get("target_label", ""))
    replacement = str(cfg.get("replacement", "$1"))
    out = dict(labels)
    if action == "drop":
        return None if regex.match(value) else out
    if action == "keep":
        return out if regex.match(value) else None
    if action == "dropequal":
        return None if labels.get(target, "") == value else out
    if action == "keepequal":
        return out if labels.get(target, "") == value else None
    if action == "replace":
        match = regex.match(value)
        if match is None:
            return out
        name = expand(target, match)
        if not _LABEL_NAME.match(name):
            return out
        _set(out, name, expand(replacement, match))
        return out
    if action == "lowercase":
        _set(out, target, value.lower())
        return out
    if action == "uppercase":
        _set(out, target, value.upper())
        return out
    if action == "hashmod":
        digest = hashlib.md5(value.encode()).digest()
        _set(out, target, str(int.from_bytes(digest[8:], "big") % int(cfg["modulus"])))
        return out
    if action == "labelmap":
        for name, val in labels.items():
            match = regex.match(name)
            if match is not None:
                _set(out, expand(replacement, match), val)
        return out
    if action == "labeldrop":
        return {k: v for k, v in labels.items() if not regex.match(k)}
    if action == "labelkeep":
        return {k: v for k, v in labels.items() if regex.match(k)}
    raise ValueError(f"unknown relabel action {action!r}")


@dataclass(frozen=True)
class Target:
    """A target as the API shows it: its public labels and its scrape URL."""

    labels: tuple[tuple[str, str], ...]
    url: str

    @property
    def label_dict(self) -> Labels:
        return dict(self.labels)


@dataclass(frozen=True)
class Outcome:
    """What Prometheus makes of one job's discovered targets."""

    active: frozenset[Target]
    dropped: int


def _params(job: Mapping[str, Any]) -> dict[str, list[str]]:
    return {str(k): [str(x) for x in v] for k, v in (job.get("params") or {}).items()}


def populate(
    discovered: Mapping[str, str], job: Mapping[str, Any], global_: Mapping[str, Any]
) -> Target | None:
    """The target Prometheus builds from one discovered label set of ``job``; None when dropped."""
    interval = str(job.get("scrape_interval") or global_.get("scrape_interval") or "1m")
    timeout = str(job.get("scrape_timeout") or global_.get("scrape_timeout") or "10s")
    defaults = {
        "job": str(job["job_name"]),
        "__scrape_interval__": interval,
        "__scrape_timeout__": timeout,
        "__metrics_path__": str(job.get("metrics_path") or "/metrics"),
        "__scheme__": str(job.get("scheme") or "http"),
    }
    labels = dict(discovered)
    for name, value in defaults.items():
        if not labels.get(name):
            labels[name] = value
    params = _params(job)
    for key, values in params.items():
        if values:
            labels[f"__param_{key}"] = values[0]
    result = relabel(labels, list(job.get("relabel_configs") or []))
    if result is None:
        return None
    address = result.get("__address__", "")
    if not address:
        raise TargetError("no address")
    result = {k: v for k, v in result.items() if not k.startswith("__meta_")}
    if not result.get("instance"):
        result["instance"] = address
    for name, value in result.items():
        if name.startswith("__param_"):
            key = name[len("__param_") :]
            params[key] = [value, *params.get(key, [])[1:]] if params.get(key) else [value]
    query = urlencode(sorted((k, v) for k, vs in params.items() for v in vs))
    url = f"{result['__scheme__']}://{address}{result['__metrics_path__']}" + (f"?{query}" if query else "")
    public = tuple(sorted((k, v) for k, v in result.items() if not k.startswith("__")))
    return Target(public, url)


def outcome(
    groups: list[Mapping[str, Any]], job: Mapping[str, Any], global_: Mapping[str, Any], filepath: str
) -> Outcome:
    """What Prometheus shows for a job whose file_sd file at ``filepath`` holds ``groups``."""
    active: set[Target] = set()
    dropped = 0
    for group in groups:
        for address in group["targets"]:
            discovered = {**group.get("labels", {}), "__address__": address, "__meta_filepath": filepath}
            target = populate(discovered, job, global_)
            if target is None:
                dropped += 1
            else:
                active.add(target)
    return Outcome(frozenset(active), dropped)
