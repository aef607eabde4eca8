"""hash_dirs: every regular file of the watched dirs, once, following Kubernetes' symlinks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from reloader.watch import hash_dirs
from tests.support.reloader_proc import K8sVolume


def digest(*dirs: Path) -> tuple[str, int]:
    h = hashlib.sha256()
    count = hash_dirs(dirs, h)
    return h.hexdigest(), count


def test_kubernetes_volume_files_count_once(tmp_path: Path) -> None:
    volume = K8sVolume(tmp_path / "rules")
    volume.update({"a.yaml": b"groups: []\n", "b.yaml": b"groups: [x]\n"})
    # Visible a.yaml and b.yaml; ..data and ..<timestamp> are directories and are skipped.
    _, count = digest(volume.root)
    assert count == 2


def test_hash_moves_with_content_and_name_but_not_with_a_swap_to_equal_bytes(tmp_path: Path) -> None:
    volume = K8sVolume(tmp_path / "rules")
    volume.update({"a.yaml": b"one\n"})
    first, _ = digest(volume.root)
    volume.update({"a.yaml": b"one\n"})  # new ..data, same bytes
    assert digest(volume.root)[0] == first
    volume.update({"a.yaml": b"two\n"})
    second, _ = digest(volume.root)
    assert second != first

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.yaml").write_bytes(b"two\n")
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    (renamed / "b.yaml").write_bytes(b"two\n")
    assert digest(plain)[0] != digest(renamed)[0]


def test_subdirectories_and_dangling_links_are_skipped(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "r.yaml").write_text("x")
    (d / "sub").mkdir()
    (d / "sub" / "deep.yaml").write_text("not watched: no recursion")
    (d / "dangling").symlink_to(tmp_path / "nowhere")
    before, count = digest(d)
    assert count == 1
    (d / "sub" / "deep.yaml").write_text("changed")
    assert digest(d)[0] == before


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        digest(tmp_path / "gone")
