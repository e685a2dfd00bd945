"""Shared test fixtures: paths to the repository, test data and the shared mocap data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "test" / "data"
#: CI and developers have ../shared beside the checkout; a user's clone does not.
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_mocap() -> Path:
    path = SHARED_DATA / "cmu_h36m17_30fps.npz"
    if not path.exists():
        pytest.skip(f"shared mocap not found at {path} (only CI and developers have ../shared)")
    return path
