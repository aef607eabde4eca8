"""The watched tree: which files of the watched directories count, their hash, and which directories to watch.

No asyncio and no threads here: init mode hashes the watched directories too, and must start fast.

Watched directories are walked recursively, as prometheus-config-reloader does, so a rule file in a
subdirectory is part of the hash. Symlinks are followed, files and directories alike, because in a
Kubernetes volume every visible name is a symlink into ``..data``. Names that start with ``..`` are
skipped at every depth: they are the kubelet's own entries (``..data``, ``..<timestamp>``,
``..data_tmp``; the kubelet refuses user paths with that prefix), and following them would count each
file of the volume twice, once through its visible name and once through ``..<timestamp>/name``.
"""

from __future__ import annotations

import hashlib
import os
import stat

# Annotations only: init mode imports this module, and typing costs about 0.5 s at 10m CPU.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence
    from pathlib import Path
    from typing import Final

KUBELET_PREFIX: Final = ".."
"""Entries the kubelet's atomic writer owns; never hashed, never walked into."""


def _entries(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as it:
        return sorted((e for e in it if not e.name.startswith(KUBELET_PREFIX)), key=lambda e: e.name)


def walk(root: str | os.PathLike[str]) -> Iterator[tuple[str, str, bool]]:
    """``(relative name, path, is_dir)`` for everything below ``root``, depth first, sorted by name.

    Symlinks are followed; a directory already seen on the way down (a symlink loop) is not entered
    twice. Entries removed while walking, and dangling links, are skipped. OSError on ``root`` itself
    (a missing directory) propagates.
    """
    top = os.fspath(root)
    seen: set[tuple[int, int]] = set()
    st = os.stat(top)
    seen.add((st.st_dev, st.st_ino))
    stack: list[tuple[str, str]] = [("", top)]
    while stack:
        prefix, directory = stack.pop()
        try:
            entries = _entries(directory)
        except (FileNotFoundError, NotADirectoryError):
            if directory == top:
                raise
            continue
        subdirs: list[tuple[str, str]] = []
        for entry in entries:
            try:
                info = os.stat(entry.path)  # follows symlinks
            except (FileNotFoundError, NotADirectoryError):
                continue  # dangling, or removed since the listing
            name = prefix + entry.name
            if stat.S_ISDIR(info.st_mode):
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
                yield name, entry.path, True
                subdirs.append((name + "/", entry.path))
            elif stat.S_ISREG(info.st_mode):
                yield name, entry.path, False
        stack.extend(reversed(subdirs))


def subdirectories(root: str | os.PathLike[str]) -> list[str]:
    """Every directory below ``root`` that ``walk`` enters: what a recursive watch must cover."""
    return [path for _name, path, is_dir in walk(root) if is_dir]


def hash_dirs(
    dirs: Iterable[str | os.PathLike[str]], digest: hashlib._Hash, chunk_bytes: int = 64 * 1024
) -> int:
    """Feed every regular file below each directory into ``digest``; returns the file count.

    Names (relative to their watched directory) are hashed with the contents, so a rename or a move
    between subdirectories is a change. OSError on a watched directory itself propagates.
    """
    count = 0
    for directory in dirs:
        digest.update(os.fsencode(directory) + b"\0")
        for name, path, is_dir in walk(directory):
            if is_dir:
                continue
            try:
                with open(path, "rb") as f:
                    digest.update(os.fsencode(name) + b"\0")
                    while chunk := f.read(chunk_bytes):
                        digest.update(chunk)
                digest.update(b"\0")
            except FileNotFoundError:
                continue  # removed between listing and reading: the next event triggers again
            count += 1
    return count


def watch_roots(config_file: Path | None, watched_dirs: Sequence[Path]) -> list[Path]:
    """The directories to watch: the config file's parent and each watched dir, without duplicates."""
    roots: list[Path] = []
    candidates = ([config_file.absolute().parent] if config_file else []) + [
        d.absolute() for d in watched_dirs
    ]
    for path in candidates:
        if path not in roots:
            roots.append(path)
    return roots
