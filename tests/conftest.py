"""Shared test settings: deterministic CPU maths (as when the golden vectors were made) and the golden folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The node fixtures (pack, vae, clip, ...) serve tests/nodes and tests/reliability from one session-wide pack.
pytest_plugins = ["_support.node_fixtures"]

SHARED_DIR = Path(os.environ.get("RELIGHTVID_SHARED", Path(__file__).resolve().parents[2] / "shared"))
GOLDEN_DIR = SHARED_DIR / "reference" / "golden"
ASSETS_DIR = SHARED_DIR / "assets"

torch.use_deterministic_algorithms(True)
# One thread: the tests run tiny networks whose many small ops gain nothing from more threads, and on
# cores shared with other work OpenMP barriers make several threads much slower. The golden vectors are
# bitwise identical at 1 thread except the U-Net forward (2e-6, within its tolerance).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """The official golden vectors; tests that need them skip, saying where they were looked for."""
    if not GOLDEN_DIR.is_dir():
        pytest.skip(
            f"golden vectors not found at {GOLDEN_DIR} (the shared/ folder beside the checkout); "
            "set RELIGHTVID_SHARED to its location"
        )
    return GOLDEN_DIR


@pytest.fixture(scope="session")
def assets_dir() -> Path:
    """The sample clips; smoke tests that need them skip when absent."""
    if not ASSETS_DIR.is_dir():
        pytest.skip(f"sample clips not found at {ASSETS_DIR}; set RELIGHTVID_SHARED to the shared/ folder")
    return ASSETS_DIR
