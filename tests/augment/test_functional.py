"""The old path ``captum_wsam.augment.functional`` re-exports the split modules' names, the very same objects."""

from __future__ import annotations

import pytest

from captum_wsam.augment import functional as AF
from captum_wsam.augment import linear_transfer_functional, patch_features, probes_functional


@pytest.mark.parametrize("module", [patch_features, linear_transfer_functional, probes_functional])
def test_old_path_re_exports_every_public_name(module: object) -> None:
    names = module.__all__
    assert set(names) <= set(AF.__all__)
    for name in names:
        assert getattr(AF, name) is getattr(module, name), name


def test_old_path_exports_nothing_else() -> None:
    split = set(patch_features.__all__) | set(linear_transfer_functional.__all__) | set(probes_functional.__all__)
    assert set(AF.__all__) == split
