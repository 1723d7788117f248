from __future__ import annotations

import pytest
import torch

from captum_wsam import _checks as C


def test_check_images():
    C.check_images(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="inputs must be a 4-D tensor"):
        C.check_images(torch.rand(3, 4, 4))
    with pytest.raises(TypeError, match="inputs must have a floating-point dtype"):
        C.check_images(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    with pytest.raises(TypeError, match="inputs must be Tensor"):
        C.check_images([1, 2])


def test_check_target():
    C.check_target(None, 6, 2)
    C.check_target([1, 2], 6, 2)
    C.check_target(torch.tensor([0, 5]), 6, 2)
    with pytest.raises(ValueError, match="target must lie in \\[0, 5\\].*got 6"):
        C.check_target(6, 6, 2)
    with pytest.raises(ValueError, match="target must hold 2"):
        C.check_target([1, 2, 3], 6, 2)
    with pytest.raises(TypeError, match="target"):
        C.check_target(torch.tensor([0.5]), 6, 1)


def test_ranges_and_choices():
    assert C.check_range_pair(0.5, "alpha", 0, 1) == (0.5, 0.5)
    assert C.check_range_pair((0.2, 0.4), "alpha", 0, 1) == (0.2, 0.4)
    with pytest.raises(ValueError, match="alpha"):
        C.check_range_pair((0.4, 0.2), "alpha", 0, 1)
    with pytest.raises(ValueError, match="mode must be one of"):
        C.check_choice("x", "mode", ("a", "b"))
    with pytest.raises(TypeError, match="eps must be a real number"):
        C.check_in_range("1", "eps", 0)
    with pytest.raises(ValueError, match="eps must lie in"):
        C.check_in_range(-1.0, "eps", 0)


def test_check_submodule():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    C.check_submodule(model[0], model)
    with pytest.raises(ValueError, match="layer must be a submodule"):
        C.check_submodule(torch.nn.Linear(2, 2), model)
