"""hash_dirs: every regular file below the watched dirs (recursively), once, following Kubernetes' symlinks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from reloader.tree import hash_dirs, subdirectories
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


def test_subdirectories_are_hashed_and_dangling_links_and_loops_skipped(tmp_path: Path) -> None:
    d = tmp_path / "rules"
    d.mkdir()
    (d / "r.yaml").write_text("x")
    (d / "sub" / "deeper").mkdir(parents=True)
    (d / "sub" / "deeper" / "deep.yaml").write_text("one")
    (d / "dangling").symlink_to(tmp_path / "nowhere")
    (d / "sub" / "loop").symlink_to(d)  # a loop back to the top: entered once, not forever
    before, count = digest(d)
    assert count == 2
    (d / "sub" / "deeper" / "deep.yaml").write_text("two")
    changed, _ = digest(d)
    assert changed != before
    (d / "sub" / "deeper" / "deep.yaml").rename(d / "sub" / "deep.yaml")  # a move is a change too
    assert digest(d)[0] != changed
    assert subdirectories(d) == [str(d / "sub"), str(d / "sub" / "deeper")]


def kubelet_volume_with_a_subdirectory(root: Path, stamp: str, files: dict[str, bytes]) -> None:
    """A ConfigMap volume whose items have paths ``sub/...``: the kubelet links the top name ``sub``."""
    data = root / f"..{stamp}"
    for key, body in files.items():
        (data / key).parent.mkdir(parents=True, exist_ok=True)
        (data / key).write_bytes(body)
    tmp = root / "..data_tmp"
    tmp.symlink_to(data.name)
    os.replace(tmp, root / "..data")
    for top in {key.split("/")[0] for key in files}:
        if not (root / top).is_symlink():
            (root / top).symlink_to(f"..data/{top}")


def test_kubelet_subdirectories_count_each_file_once(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    root.mkdir()
    kubelet_volume_with_a_subdirectory(root, "2026_01_01", {"a.yaml": b"a", "sub/b.yaml": b"b"})
    first, count = digest(root)
    # a.yaml and sub/b.yaml; not again through ..data or ..2026_01_01.
    assert count == 2
    assert subdirectories(root) == [str(root / "sub")]
    kubelet_volume_with_a_subdirectory(root, "2026_01_02", {"a.yaml": b"a", "sub/b.yaml": b"B"})
    second, count = digest(root)
    assert (second != first, count) == (True, 2)


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        digest(tmp_path / "gone")
