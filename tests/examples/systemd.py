"""Reading the VM example's systemd units and environment file (the subset of systemd syntax they use)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path


def unit_settings(text: str) -> dict[tuple[str, str], list[str]]:
    """(section, key) -> values in order; comments dropped, backslash continuations joined."""
    settings: dict[tuple[str, str], list[str]] = {}
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def command(text: str, key: str) -> list[str]:
    """The argv of the one ``key`` (ExecStart, ExecStartPre) in [Service], with systemd's prefixes dropped."""
    (value,) = unit_settings(text)[("Service", key)]
    return shlex.split(value.lstrip("-@+!:"))


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of an EnvironmentFile (quotes stripped, comments skipped)."""
    env: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=value: {line!r}"
        env[key.strip()] = shlex.split(value)[0] if value.strip() else ""
    return env


def rewrite(text: str, replacements: dict[str, str]) -> str:
    """``text`` with every ``old`` substring replaced by ``replacements[old]`` in one pass (longest first,
    so a replacement is never rewritten again)."""
    pattern = re.compile("|".join(re.escape(old) for old in sorted(replacements, key=len, reverse=True)))
    return pattern.sub(lambda match: replacements[match[0]], text)
