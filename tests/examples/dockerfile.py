"""A small Dockerfile reader and the image rules that both Dockerfiles must follow.

No container engine runs on the test machines, so the rules are checked on the text: the tests feed the
real Dockerfiles (which must pass) and broken variants (which must not).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

# A full version tag (python:3.11.N-slim-<debian>), optionally with a digest.
PINNED_BASE = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")
REQUIRED_LABELS = (
    "org.opencontainers.image.title",
    "org.opencontainers.image.description",
    "org.opencontainers.image.version",
    "org.opencontainers.image.source",
    "org.opencontainers.image.licenses",
)
COMPILERS = ("gcc", "g++", "clang", "build-essential", "cc ", "make ", "rustc", "cargo")


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined."""

    keyword: str
    args: str


@dataclass
class Stage:
    """A FROM and what follows it, with its base resolved through ARG defaults."""

    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction with this keyword, in order."""
        return [i.args for i in self.instructions if i.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    """Split a Dockerfile into instructions: comments dropped, backslash continuations joined."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    if pending:
        keyword, _, args = pending.strip().partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


def stages(text: str) -> list[Stage]:
    """The build stages, in order; a global ARG's default substitutes into FROM."""
    global_args: dict[str, str] = {}
    result: list[Stage] = []
    for ins in instructions(text):
        if ins.keyword == "ARG" and not result:
            arg, _, default = ins.args.partition("=")
            global_args[arg.strip()] = default.strip()
        elif ins.keyword == "FROM":
            words = ins.args.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m[1] or m[2], ""), words[0])
            stage_name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=base, name=stage_name))
        elif result:
            result[-1].instructions.append(ins)
    return result


def _pairs(stage: Stage, keyword: str) -> dict[str, str]:
    """The key=value pairs of a stage's ``keyword`` instructions (shell-style quoting; later wins)."""
    out: dict[str, str] = {}
    for args in stage.all(keyword):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            out[key] = value
    return out


def labels(stage: Stage) -> dict[str, str]:
    """LABEL key=value pairs of a stage."""
    return _pairs(stage, "LABEL")


def env(stage: Stage) -> dict[str, str]:
    """ENV key=value pairs of a stage."""
    return _pairs(stage, "ENV")


def copy_sources(stage: Stage) -> list[str]:
    """Source paths of the COPY instructions that read the build context (not --from=)."""
    out: list[str] = []
    for args in stage.all("COPY"):
        words = args.split()
        if any(w.startswith("--from=") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        out.extend(paths[:-1])
    return out


def violations(text: str, entrypoint: str, with_operator_extra: bool) -> list[str]:
    """Every rule the Dockerfile breaks, one line each; an empty list means it passes."""
    found: list[str] = []
    all_stages = stages(text)
    if len(all_stages) < 2:
        return [f"not multi-stage: {len(all_stages)} stage(s)"]
    stage_names = {s.name for s in all_stages if s.name}
    for s in all_stages:
        if s.base not in stage_names and not PINNED_BASE.match(s.base):
            found.append(f"base image {s.base!r} is not a pinned python:3.11.N-slim image")
    final = all_stages[-1]
    if final.base in stage_names:
        found.append("final stage builds on a build stage instead of a clean base")
    if not all_stages[0].all("RUN") or not any("pip wheel" in r for s in all_stages for r in s.all("RUN")):
        found.append("no stage builds the wheel with `pip wheel`")
    installs = [r for s in all_stages[:-1] for r in s.all("RUN") if " install " in f" {r} " and "pip" in r]
    if not installs:
        found.append("no build stage installs the wheel")
    for r in installs:
        if ".whl" not in r:
            found.append(f"install does not install the built wheel: {r}")
        if "--only-binary=:all:" not in r:
            found.append("dependencies are not restricted to binary wheels (--only-binary=:all:)")
        if ("[operator]" in r) != with_operator_extra:
            want = "with" if with_operator_extra else "without"
            found.append(f"the wheel must be installed {want} the [operator] extra")
    if not any(a.startswith("--from=") and "/opt/venv" in a for a in final.all("COPY")):
        found.append("final stage does not copy the venv from a build stage")
    for r in final.all("RUN"):
        if re.search(r"\b(apt-get|apt|apk)\s+install\b", r) or re.search(r"\bpip\b.*\binstall\b", r):
            found.append(f"final stage installs packages: {r}")
    for r in (r for s in all_stages for r in s.all("RUN")):
        if "install" in r and any(c in f"{r} " for c in COMPILERS):
            found.append(f"a stage installs a compiler: {r}")
    users = final.all("USER")
    if not users or users[-1] != "65534:65534":
        found.append(f"final stage does not run as USER 65534:65534 (got {users[-1:] or 'root'})")
    environment = env(final)
    if environment.get("PYTHONDONTWRITEBYTECODE") != "1":
        found.append("PYTHONDONTWRITEBYTECODE=1 is not set (read-only root filesystem)")
    if "/opt/venv/bin" not in environment.get("PATH", ""):
        found.append("the venv's bin is not on PATH")
    entrypoints = final.all("ENTRYPOINT")
    try:
        ep = json.loads(entrypoints[-1]) if entrypoints else None
    except json.JSONDecodeError:
        ep = None
    if ep != [entrypoint]:
        found.append(f"ENTRYPOINT is not the exec form [{entrypoint!r}]: {entrypoints[-1:]}")
    have = labels(final)
    for key in REQUIRED_LABELS:
        if not have.get(key):
            found.append(f"missing OCI label {key}")
    return found
