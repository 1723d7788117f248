"""Fixtures shared by the SAM and WSAM tests."""

from __future__ import annotations

import pytest
import torch

from captum_wsam.models import SmallCNN


@pytest.fixture(scope="module")
def small() -> SmallCNN:
    """An untrained SmallCNN (width 8, depth 3) in eval mode; tests must not modify it."""
    torch.manual_seed(0)
    return SmallCNN(width=8, depth=3).eval()
