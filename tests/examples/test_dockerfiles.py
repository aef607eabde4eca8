"""The Dockerfiles follow the image rules (issue 4): pinned slim base, multi-stage, non-root, read-only
root filesystem, exec-form entry point, OCI labels, and the right extras per image."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from tests.examples import dockerfile

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {
    # file: (console script, installs the [operator] extra)
    "Dockerfile.reloader": ("config-reloader", False),
    "Dockerfile.operator": ("config-operator", True),
}


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_follows_the_rules(name: str) -> None:
    entrypoint, extra = IMAGES[name]
    assert dockerfile.violations((ROOT / name).read_text(), entrypoint, extra) == []


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_entrypoint_is_a_console_script(name: str) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    final = dockerfile.stages((ROOT / name).read_text())[-1]
    assert final.all("ENTRYPOINT")[-1] == f'["{IMAGES[name][0]}"]'
    assert IMAGES[name][0] in scripts


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_copied_sources_exist_and_pass_dockerignore(name: str) -> None:
    """Everything COPYed from the context exists and .dockerignore lets it through."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:  # the last matching pattern wins, as in Docker
            negate = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path.rstrip("/"), bare):
                verdict = not negate
        return verdict

    sources = [
        s for stage in dockerfile.stages((ROOT / name).read_text()) for s in dockerfile.copy_sources(stage)
    ]
    assert {"pyproject.toml", "README.md", "reloader/", "operator/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, old  # the mutation must apply, or the test below proves nothing
    return text.replace(old, new)


BROKEN = [
    # (description, file, old, new, expected violation fragment)
    ("root user", "Dockerfile.reloader", "USER 65534:65534", "USER root", "USER 65534:65534"),
    (
        "floating base",
        "Dockerfile.reloader",
        "python:3.11.11-slim-bookworm\n",
        "python:3.11-slim\n",
        "pinned",
    ),
    ("shell-form entry point", "Dockerfile.reloader", '["config-reloader"]', "config-reloader", "exec form"),
    (
        "no bytecode guard",
        "Dockerfile.reloader",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONDONTWRITEBYTECODE=0",
        "read-only",
    ),
    (
        "operator extra in the sidecar",
        "Dockerfile.reloader",
        "/dist/*.whl",
        '"$(echo /dist/*.whl)[operator]"',
        "without",
    ),
    (
        "no operator extra",
        "Dockerfile.operator",
        '"$(echo /dist/*.whl)[operator]"',
        "/dist/*.whl",
        "with the",
    ),
    ("no title label", "Dockerfile.operator", "org.opencontainers.image.title", "title", "image.title"),
    (
        "pip at runtime",
        "Dockerfile.reloader",
        "USER 65534:65534",
        "RUN pip install requests\nUSER 65534:65534",
        "final stage installs",
    ),
    (
        "compiler",
        "Dockerfile.reloader",
        "RUN pip wheel",
        "RUN apt-get update && apt-get install -y gcc\nRUN pip wheel",
        "compiler",
    ),
]


@pytest.mark.parametrize(("what", "name", "old", "new", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_dockerfile_is_caught(what: str, name: str, old: str, new: str, expected: str) -> None:
    text = _mutate((ROOT / name).read_text(), old, new)
    found = dockerfile.violations(text, *IMAGES[name])
    assert any(expected in v for v in found), found


def test_single_stage_is_caught() -> None:
    text = 'FROM python:3.11.11-slim-bookworm\nUSER 65534:65534\nENTRYPOINT ["config-reloader"]\n'
    assert dockerfile.violations(text, "config-reloader", False) == ["not multi-stage: 1 stage(s)"]


def test_reloader_image_answers_to_prometheus_operators_command() -> None:
    """prometheus-operator sets command /bin/prometheus-config-reloader on its reloader containers."""
    final = dockerfile.stages((ROOT / "Dockerfile.reloader").read_text())[-1]
    links = [r for r in final.all("RUN") if "ln -s /opt/venv/bin/config-reloader" in r]
    assert links and any(
        f"/opt/venv/bin/config-reloader {target}" in links[0]
        for target in ("/usr/bin/prometheus-config-reloader", "/bin/prometheus-config-reloader")
    )


def test_both_images_build_from_the_same_context() -> None:
    """test_install.py builds one wheel for both: that holds only while they COPY the same sources."""
    sources = {
        name: [
            src
            for stage in dockerfile.stages((ROOT / name).read_text())
            for src in dockerfile.copy_sources(stage)
        ]
        for name in IMAGES
    }
    assert sources["Dockerfile.reloader"] == sources["Dockerfile.operator"]
