"""The old path ``captum_wsam.attacks.functional``: every name of the split modules, and the deprecated LP-A3 names."""

from __future__ import annotations

import math

import pytest
import torch

from captum_wsam.attacks import functional as SF
from captum_wsam.attacks import lpa3_functional, sat_functional


def test_old_path_re_exports_the_split_modules() -> None:
    assert set(SF.__all__) == set(sat_functional.__all__) | set(lpa3_functional.__all__)
    for module in (sat_functional, lpa3_functional):
        for name in module.__all__:
            assert getattr(SF, name) is getattr(module, name), name


@pytest.mark.filterwarnings("ignore:captum_wsam.attacks.functional:DeprecationWarning")
def test_selection_and_instability():
    values = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    tau = SF.selection_threshold(values, 0.4)
    assert (values >= tau).sum() == 2 and set((values >= tau).nonzero().flatten().tolist()) == {2, 4}
    p, q = torch.tensor([[0.2, 0.8]], dtype=torch.float64), torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    ref = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5)
    assert math.isclose(SF.prediction_instability(p, q).item(), ref, rel_tol=1e-9)
    assert torch.equal(SF.ema_update(torch.tensor([1.0]), torch.tensor([0.0]), 0.25), torch.tensor([0.25]))
