"""The shipped MoveNet ONNX files are the ones the conversion script produced and documents."""

from __future__ import annotations

import hashlib
import re

import pytest

from hpe3d_ros.detection.session import WEIGHTS_DIR

LICENSE_MD = WEIGHTS_DIR / "MOVENET_LICENSE.md"


def documented_hashes() -> dict[str, str]:
    """``file -> sha256`` from the table in MOVENET_LICENSE.md."""
    rows = re.findall(
        r"^\| `(movenet_\w+\.onnx)` \|.*\| `([0-9a-f]{64})` \|$", LICENSE_MD.read_text(), re.M
    )
    return dict(rows)


def test_licence_note_documents_three_models() -> None:
    hashes = documented_hashes()
    assert set(hashes) == {
        "movenet_multipose_lightning.onnx",
        "movenet_singlepose_thunder.onnx",
        "movenet_singlepose_lightning.onnx",
    }
    text = LICENSE_MD.read_text()
    assert "Apache License 2.0" in text and "tools/convert_movenet.py" in text


@pytest.mark.parametrize("name", sorted(documented_hashes()))
def test_shipped_onnx_matches_documented_sha256(name: str) -> None:
    path = WEIGHTS_DIR / name
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == documented_hashes()[name]
    assert len(data) <= 15 * 1024 * 1024, f"{name} is too large to commit"


def test_weights_are_not_git_lfs_pointers() -> None:
    for name in documented_hashes():
        assert not (WEIGHTS_DIR / name).read_bytes()[:64].startswith(b"version https://git-lfs")
