from pathlib import Path

import pytest

from pix2pix.io import atomic_path, atomic_write_text


def test_atomic_path_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "model.onnx"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="writer failed"):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]  # no temporary file left
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible until the block ends
    assert target.read_text() == "new"
    assert [p.name for p in target.parent.iterdir()] == ["model.onnx"]
